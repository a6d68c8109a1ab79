"""A real Celery worker process (prefork, two children) on the real broker delivers recall notices
to a real SMTP server and a real HTTP receiver that verifies every Standard Webhooks signature.

The worker runs against the pytest test database (hence `transaction=True`: it must see committed
rows) and is stopped at fixture teardown. Every wait is bounded."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from recalls.models import Notification, NotificationStatus, Recall
from recalls.tasks import notifications_requeue_stale
from tests.recalls.conftest import (
    affected_clinic,
    open_recall,
    recalled_lot,
    wait_until,
    webhook_endpoint,
    worker_database_url,
)

pytestmark = pytest.mark.django_db(transaction=True)


def _expected_ids(recall: Recall) -> tuple[set[str], set[str]]:
    """(e-mail Message-IDs, webhook ids) the recall's notices must arrive with."""
    rows = Notification.objects.filter(recall=recall)
    emails = {
        f"<{message_id}@traceability.example>"
        for message_id in rows.filter(channel="email").values_list("message_id", flat=True)
    }
    webhooks = {
        str(message_id)
        for message_id in rows.filter(channel="webhook").values_list("message_id", flat=True)
    }
    return emails, webhooks


def _statuses(recall: Recall) -> Counter[str]:
    return Counter(Notification.objects.filter(recall=recall).values_list("status", flat=True))


def _all_sent(recall: Recall) -> bool:
    return set(_statuses(recall)) == {NotificationStatus.SENT}


def _delivers_every_notice_exactly_once(quality_manager, webhook_receiver, smtp, celery_worker):
    # Given three clinics with two contacts each, a network and a clinic webhook endpoint, the
    # network endpoint failing once with a server error,
    lot = recalled_lot()
    clinics = [affected_clinic(lot, contacts=2) for _ in range(3)]
    webhook_endpoint(webhook_receiver, "network")
    webhook_endpoint(webhook_receiver, "clinic", clinic=clinics[0].clinic)
    webhook_receiver.answers["/hooks/network"] = [503]
    worker = celery_worker.start()

    # when a recall is opened (delivery is queued on commit),
    recall = open_recall(quality_manager, lot)
    wait_until(lambda: _all_sent(recall), what=f"every notice sent\n{worker.log_tail()}")

    # then every notice arrived exactly once, the failed webhook after a retry with the same id.
    emails, webhooks = _expected_ids(recall)
    assert len(emails) == 6 and len(webhooks) == 2
    assert smtp.counts() == Counter(dict.fromkeys(emails, 1))
    assert webhook_receiver.counts() == Counter(dict.fromkeys(webhooks, 1))
    assert webhook_receiver.rejected == []
    network = Notification.objects.get(recall=recall, endpoint__name="network")
    assert webhook_receiver.attempted.count(str(network.message_id)) == 2
    assert network.attempts == 2
    recall.refresh_from_db()
    assert recall.first_notice_sent_at is not None


def test_worker_delivers_every_notice_exactly_once(
    reference_data, quality_manager, webhook_receiver, smtp, celery_worker
):
    """On the broker a newcomer has: CELERY_BROKER_URL, or kombu's directory broker."""
    _delivers_every_notice_exactly_once(quality_manager, webhook_receiver, smtp, celery_worker)


def test_worker_delivers_every_notice_exactly_once_over_redis_and_rabbitmq(
    machine_broker, reference_data, quality_manager, webhook_receiver, smtp, celery_worker
):
    """The same, with this process and the worker on the machine's Redis, then RabbitMQ."""
    _delivers_every_notice_exactly_once(quality_manager, webhook_receiver, smtp, celery_worker)
    assert celery_worker.environment["CELERY_BROKER_URL"] == machine_broker


def test_worker_database_url_reaches_the_test_database_also_through_a_socket():
    """The worker must use the database this test run created, whether it is reached over TCP
    (DATABASE_URL) or through the embedded server's socket directory (no DATABASE_URL)."""
    import psycopg
    from django.db import connection

    with psycopg.connect(worker_database_url()) as other, other.cursor() as cursor:
        cursor.execute("SELECT current_database()")
        assert cursor.fetchone() == (connection.settings_dict["NAME"],)


def test_worker_killed_during_fan_out_loses_nothing_and_sends_each_notice_once(
    reference_data, quality_manager, webhook_receiver, smtp, celery_worker, settings
):
    """Kill the worker (SIGKILL to its process group: parent and pool children) in the middle of
    delivering 30 notices, start another, run the stale-claim requeue, and every notice ends
    `sent`, each received under its own id.

    Exactly once, precisely: a notice whose delivery was in flight at the kill may already have
    reached the receiver (the SMTP server stored it, the HTTP receiver recorded it) while the dead
    worker never recorded it as sent. Its claim expires, it is sent again, and the receiver sees it
    twice, with the SAME Message-ID / webhook-id, which is what a receiver deduplicates on (the
    reason Standard Webhooks asks for a stable webhook-id). So: the unique ids received are exactly
    the notices' ids, one per notice; only a notice in flight at the kill may arrive twice, and
    then under the same id; every other notice arrived exactly once."""
    # Given 24 e-mail contacts at three clinics and six webhook endpoints, and receivers that take
    # a while to answer (so the kill lands mid-delivery),
    lot = recalled_lot()
    clinics = [affected_clinic(lot, contacts=8) for _ in range(3)]
    for number in range(3):
        webhook_endpoint(webhook_receiver, f"network-{number}")
        webhook_endpoint(webhook_receiver, f"clinic-{number}", clinic=clinics[number].clinic)
    smtp.delay_seconds = 0.3
    webhook_receiver.delay_seconds = 0.3
    first_worker = celery_worker.start()

    # when the recall is opened and the worker is killed after a few notices went out,
    recall = open_recall(quality_manager, lot)
    assert Notification.objects.filter(recall=recall).count() == 30
    wait_until(
        lambda: _statuses(recall)[NotificationStatus.SENT] >= 6,
        what=f"the first notices\n{first_worker.log_tail()}",
    )
    first_worker.kill()
    at_kill = _statuses(recall)
    in_flight = {
        str(message_id)
        for message_id in Notification.objects.filter(
            recall=recall, status=NotificationStatus.SENDING
        ).values_list("message_id", flat=True)
    }
    assert at_kill[NotificationStatus.SENT] < 30, "the kill came too late to test anything"

    # and another worker is started and the requeue (beat, every minute) runs after the lease,
    second_worker = celery_worker.start()
    settings.RECALL_DELIVERY_LEASE_SECONDS = 1
    time.sleep(1.5)  # let the dead worker's claims outlive the (shortened) lease
    notifications_requeue_stale()
    wait_until(lambda: _all_sent(recall), what=f"every notice sent\n{second_worker.log_tail()}")

    # then every notice is sent, and received under its own id: once, or (in flight at the kill)
    # again under the same id.
    emails, webhooks = _expected_ids(recall)
    smtp_counts, webhook_counts = smtp.counts(), webhook_receiver.counts()
    assert set(smtp_counts) == emails and len(emails) == 24
    assert set(webhook_counts) == webhooks and len(webhooks) == 6
    assert webhook_receiver.rejected == []
    duplicates = {
        message_id.strip("<>").split("@")[0]
        for message_id, count in (smtp_counts + webhook_counts).items()
        if count > 1
    }
    assert duplicates <= in_flight, (duplicates, in_flight, at_kill)
    assert all(count <= 2 for count in (smtp_counts + webhook_counts).values())
