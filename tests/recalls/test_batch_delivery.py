"""Delivering a recall round in batches: each batch claims its notices once (two batches never
share one), hands a transient failure to the notice's own task and
backoff, and gives back what it had no time left to send. Real SMTP server and HTTP receiver; the
worker has its own tests (test_worker.py)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from recalls import delivery
from recalls.models import Channel, Notification, NotificationStatus
from recalls.tasks import NOTICES_PER_TASK, recall_notices_send
from tests.recalls.conftest import (
    affected_clinic,
    free_port,
    open_recall,
    recalled_lot,
    webhook_endpoint,
)

pytestmark = pytest.mark.django_db


def test_a_batch_sends_every_notice_of_the_round_once_and_records_each_sent(
    quality_manager, smtp, webhook_receiver
):
    lot = recalled_lot()
    clinics = [affected_clinic(lot, contacts=2) for _ in range(2)]
    webhook_endpoint(webhook_receiver, "network")
    recall = open_recall(quality_manager, lot)

    batch = delivery.round_notices_deliver(recall.pk, 1, limit=10, seconds=60)

    assert len(batch.sent) == 5 and not (batch.failed or batch.retry or batch.released)
    assert sorted(str(m["To"]) for m in smtp.messages) == sorted(
        contact.email for clinic in clinics for contact in clinic.contacts
    )
    assert len(webhook_receiver.deliveries) == 1
    notices = Notification.objects.filter(recall=recall)
    assert {(n.status, n.attempts) for n in notices} == {(NotificationStatus.SENT, 1)}
    recall.refresh_from_db()
    assert recall.first_notice_sent_at == min(n.sent_at for n in notices)
    # A second batch finds nothing left to claim.
    assert delivery.round_notices_deliver(recall.pk, 1, limit=10, seconds=60).sent == []
    assert len(smtp.messages) == 4


def test_a_batch_claims_no_more_than_its_limit(quality_manager, smtp):
    lot = recalled_lot()
    affected_clinic(lot, contacts=3)
    recall = open_recall(quality_manager, lot)

    first = delivery.round_notices_deliver(recall.pk, 1, limit=2, seconds=60)
    second = delivery.round_notices_deliver(recall.pk, 1, limit=2, seconds=60)

    assert (len(first.sent), len(second.sent)) == (2, 1)
    assert not set(first.sent) & set(second.sent)
    assert len(smtp.messages) == 3


@pytest.mark.django_db(transaction=True)
def test_batches_running_at_once_never_claim_the_same_notice(quality_manager, smtp):
    lot = recalled_lot()
    affected_clinic(lot, contacts=12)
    recall = open_recall(quality_manager, lot)
    smtp.delay_seconds = 0.05  # every send overlaps the other batches' claims
    batches: list[delivery.Batch] = []
    lock = threading.Lock()

    def run() -> None:
        try:
            batch = delivery.round_notices_deliver(recall.pk, 1, limit=3, seconds=60)
            with lock:
                batches.append(batch)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    sent = [pk for batch in batches for pk in batch.sent]
    assert len(sent) == len(set(sent)) == 12
    assert sorted(smtp.counts().values()) == [1] * 12
    assert set(Notification.objects.filter(recall=recall).values_list("status", "attempts")) == {
        (NotificationStatus.SENT, 1)
    }


def test_a_transient_failure_goes_to_the_notices_own_retry_and_the_batch_goes_on(
    quality_manager, smtp
):
    lot = recalled_lot()
    affected = affected_clinic(lot, contacts=3)
    recall = open_recall(quality_manager, lot)
    busy = affected.contacts[1].email
    smtp.rcpt_replies[busy] = ["451 4.3.0 Mailbox busy"]

    batch = delivery.round_notices_deliver(recall.pk, 1, limit=10, seconds=60)

    assert len(batch.sent) == 2
    [(retried, retry_in)] = batch.retry
    notice = Notification.objects.get(pk=retried)
    assert notice.recipient == busy
    assert notice.status == NotificationStatus.PENDING
    assert notice.failing_since is not None and "451" in notice.last_error
    assert retry_in >= delivery.retry_delay(1, draw=lambda: 0.0)
    # A later batch leaves it to its own task and backoff.
    assert delivery.round_notices_deliver(recall.pk, 1, limit=10, seconds=60).sent == []
    assert delivery.notification_deliver(retried) == delivery.Outcome.SENT
    assert len(smtp.to(busy)) == 1


def test_with_the_mail_server_down_each_notice_meets_the_error_and_waits_for_its_retry(
    quality_manager, smtp, webhook_receiver, settings
):
    lot = recalled_lot()
    affected_clinic(lot, contacts=2)
    webhook_endpoint(webhook_receiver, "network")
    recall = open_recall(quality_manager, lot)
    settings.EMAIL_PORT = free_port()  # nothing listens there

    batch = delivery.round_notices_deliver(recall.pk, 1, limit=10, seconds=60)

    assert len(batch.sent) == 1 and len(batch.retry) == 2
    emails = Notification.objects.filter(recall=recall, channel=Channel.EMAIL)
    assert {(n.status, n.attempts) for n in emails} == {(NotificationStatus.PENDING, 1)}
    assert all("ConnectionRefusedError" in n.last_error for n in emails)


def test_a_batch_out_of_time_gives_its_unsent_notices_back_without_counting_an_attempt(
    quality_manager, smtp
):
    lot = recalled_lot()
    affected_clinic(lot, contacts=3)
    recall = open_recall(quality_manager, lot)

    batch = delivery.round_notices_deliver(recall.pk, 1, limit=10, seconds=-1)

    assert batch.sent == [] and len(batch.released) == 3
    assert set(Notification.objects.filter(recall=recall).values_list("status", "attempts")) == {
        (NotificationStatus.PENDING, 0)
    }
    assert len(delivery.round_notices_deliver(recall.pk, 1, limit=10, seconds=60).sent) == 3


def test_the_fan_out_queues_one_batch_task_per_batch_of_pending_notices(
    quality_manager, smtp, eager_celery
):
    lot = recalled_lot()
    affected_clinic(lot, contacts=NOTICES_PER_TASK + 1)
    recall = open_recall(quality_manager, lot)

    assert recall_notices_send.apply(args=[recall.pk, 1]).get() == NOTICES_PER_TASK + 1

    assert sorted(smtp.counts().values()) == [1] * (NOTICES_PER_TASK + 1)
    assert set(Notification.objects.filter(recall=recall).values_list("status", flat=True)) == {
        NotificationStatus.SENT
    }
