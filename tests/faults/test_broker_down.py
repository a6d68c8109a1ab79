"""The broker is down while a recall opens: the recall and its notices commit, and delivery starts
by itself once the broker is back, at beat's next sweep rather than after the stale-claim lease;
nothing is lost and nothing is sent twice.

The broker is a Redis of the test's own, killed (it keeps nothing on disk, so it comes back
empty) and started again on the same port; a real Celery worker delivers to a real SMTP server."""

from __future__ import annotations

import time

import pytest
from django.test import Client

from recalls.models import Notification, NotificationStatus, Recall
from recalls.schedule import QUEUE_SWEEP_SECONDS
from recalls.tasks import notices_queue_failed, notifications_requeue_stale
from tests.factories import PASSWORD
from tests.faults.conftest import worker_environment
from tests.recalls import conftest as recall_fixtures
from tests.recalls.conftest import (
    affected_clinic,
    recalled_lot,
    wait_until,
    worker_database_url,
)

pytestmark = pytest.mark.django_db(transaction=True)

smtp = recall_fixtures.smtp
smtp_server = recall_fixtures.smtp_server

# Beat's sweep period, the worker's reconnection to the broker (it retries 2, 4, 6 s apart) and
# the sends: well under the lease (61 s in the worker), which delivery waited for before the sweep.
DELIVERY_WAIT_SECONDS = QUEUE_SWEEP_SECONDS + 20


def _open_recall_over_the_api(quality_manager, lot) -> tuple[int, dict, float]:
    client = Client()
    client.force_login(quality_manager)
    started = time.monotonic()
    response = client.post(
        "/api/v1/recalls/",
        {
            "recall_class": "I",
            "depth": "patient",
            "reason": "Endotoxin above the specification in retained samples",
            "hazard": "Fever after injection",
            "instructions": "Stop use.",
            "is_drill": False,
            "password": PASSWORD,
            "scope": {"lots": [lot.pk]},
        },
        content_type="application/json",
    )
    return response.status_code, response.json(), time.monotonic() - started


def test_a_recall_opened_while_the_broker_is_down_commits_and_is_delivered_once_it_is_back(
    reference_data, quality_manager, smtp, celery_on_private_redis, workers, caplog
):
    # Given a lot three clinics used (six e-mail notices), and a worker on a Redis broker,
    broker = celery_on_private_redis
    lot = recalled_lot()
    for _ in range(3):
        affected_clinic(lot, contacts=2)
    workers.environment = worker_environment(
        database_url=worker_database_url(), broker_url=broker.url, smtp_port=smtp.port
    )
    worker = workers.start()

    # when the broker dies and a quality manager opens the recall meanwhile,
    broker.stop()
    down_at = time.monotonic()
    status, body, took = _open_recall_over_the_api(quality_manager, lot)

    # then the recall is opened all the same: the recall, its exposures and its notices are
    # committed, and the lost message is logged, not answered as an error;
    assert status == 201, body
    recall = Recall.objects.get()
    notices = list(Notification.objects.filter(recall=recall))
    assert len(notices) == 6
    assert {notice.status for notice in notices} == {NotificationStatus.PENDING}
    assert None not in {notice.queue_failed_at for notice in notices}
    assert not smtp.messages
    assert any("broker unavailable" in record.getMessage() for record in caplog.records)

    # and when the broker comes back, empty, and beat sends its sweep (every
    # QUEUE_SWEEP_SECONDS; beat reaches the worker through the broker too),
    time.sleep(2)
    broker.start()
    back_at = time.monotonic()
    swept_at = 0.0

    def delivered() -> bool:
        nonlocal swept_at
        if time.monotonic() - swept_at >= QUEUE_SWEEP_SECONDS:
            notices_queue_failed.delay()
            swept_at = time.monotonic()
        statuses = set(Notification.objects.filter(recall=recall).values_list("status", flat=True))
        if statuses == {NotificationStatus.SENT}:
            return True
        time.sleep(0.5)
        return False

    wait_until(
        delivered,
        what=f"every notice sent once the broker is back\n{worker.log_tail()}",
        timeout=DELIVERY_WAIT_SECONDS,
    )
    sent_at = time.monotonic()

    # then every notice arrived exactly once, under its own Message-ID, within a sweep of the
    # broker's return and long before the lease, at the first attempt, no longer marked,
    expected = {f"<{notice.message_id}@traceability.example>" for notice in notices}
    assert set(smtp.counts()) == expected
    assert set(smtp.counts().values()) == {1}
    delivered_rows = Notification.objects.filter(recall=recall)
    assert {(row.attempts, row.queue_failed_at) for row in delivered_rows} == {(1, None)}
    # and neither a sweep nor a requeue run after delivery sends anything more.
    notices_queue_failed.delay()
    notifications_requeue_stale.delay()
    time.sleep(3)
    assert len(smtp.messages) == len(notices)
    print(
        f"broker down {back_at - down_at:.1f} s; the opening answered in {took:.2f} s; "
        f"delivered {sent_at - back_at:.1f} s after the broker came back"
    )
