"""A recall notice outlives an outage of its channel shorter than its delivery window (DESIGN rule
10), and one that fails for good is resent under the same message id.

A real Celery worker process delivers to a real SMTP server (aiosmtpd) that is taken down, so
connections are refused, and brought back on the same port. The windows and backoffs are shrunk
to seconds through the worker's environment; the rules are the same as with the defaults (72 h for
class I and II recalls, first retry after 30 s, doubling, at most 10 minutes apart)."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from rest_framework.test import APIClient

from recalls.models import Notification, NotificationResend, NotificationStatus
from tests.recalls.conftest import affected_clinic, open_recall, recalled_lot, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

BACKOFF_SECONDS = 1
BACKOFF_MAX_SECONDS = 2


def _shrunk(celery_worker, *, window_seconds: float) -> None:
    celery_worker.environment.update(
        RECALL_DELIVERY_BACKOFF_SECONDS=str(BACKOFF_SECONDS),
        RECALL_DELIVERY_BACKOFF_MAX_SECONDS=str(BACKOFF_MAX_SECONDS),
        RECALL_DELIVERY_WINDOW_HOURS=repr(window_seconds / 3600),
        RECALL_DELIVERY_WINDOW_HOURS_CLASS_III=repr(window_seconds / 3600),
    )


def _notices(recall) -> list[Notification]:
    return list(Notification.objects.filter(recall=recall).order_by("pk"))


def _most_attempts_within(outage_seconds: float) -> int:
    """The most attempts a notice can make while its channel is down for `outage_seconds`, when
    no delay is shorter than documented: the first, then one after 1 s, then one every 2 s; and
    the attempt that goes through."""
    attempts, elapsed, delay = 1, 0.0, BACKOFF_SECONDS
    while elapsed + delay <= outage_seconds:
        elapsed += delay
        attempts += 1
        delay = min(delay * 2, BACKOFF_MAX_SECONDS)
    return attempts + 1


def test_no_notice_fails_during_an_smtp_outage_shorter_than_its_window(
    reference_data, quality_manager, smtp, celery_worker
):
    # Given 16 e-mail notices of a class II recall whose delivery window is 40 s, and a mail
    # server that refuses connections for 15 s,
    outage_seconds = 15.0
    _shrunk(celery_worker, window_seconds=40)
    worker = celery_worker.start()
    lot = recalled_lot()
    for _ in range(4):
        affected_clinic(lot, contacts=4)
    smtp.down()
    down_at = time.monotonic()

    # when the recall opens during the outage, and the server comes back,
    recall = open_recall(quality_manager, lot, recall_class="II")
    wait_until(
        lambda: all(n.attempts >= 2 for n in _notices(recall)),
        what=f"every notice to fail at least once\n{worker.log_tail()}",
    )
    assert {n.status for n in _notices(recall)} <= {"pending", "sending"}
    time.sleep(max(0.0, outage_seconds - (time.monotonic() - down_at)))
    smtp.up()
    wait_until(
        lambda: {n.status for n in _notices(recall)} == {NotificationStatus.SENT},
        what=f"every notice sent after the outage\n{worker.log_tail()}",
    )

    # then none failed, each arrived once under its own Message-ID, none was retried sooner than
    # documented, and none still shows the outage's error.
    notices = _notices(recall)
    assert len(notices) == 16
    expected = {f"<{n.message_id}@traceability.example>" for n in notices}
    assert smtp.counts() == Counter(dict.fromkeys(expected, 1))
    most = _most_attempts_within(outage_seconds)
    assert all(2 <= n.attempts <= most for n in notices), [n.attempts for n in notices]
    assert all(n.last_error == "" and n.failed_at is None for n in notices)
    assert "Retry in 0s" not in worker.log.read_text()


def test_a_notice_fails_only_after_its_window_and_is_resent_under_the_same_id(
    reference_data, quality_manager, smtp, celery_worker
):
    # Given a class I recall whose notices have a 6 s window, and a mail server that stays down,
    window_seconds = 6
    _shrunk(celery_worker, window_seconds=window_seconds)
    worker = celery_worker.start()
    lot = recalled_lot()
    for _ in range(3):
        affected_clinic(lot)
    smtp.down()

    # when the recall opens, every notice fails, but not before its window has passed;
    recall = open_recall(quality_manager, lot, recall_class="I")
    wait_until(
        lambda: {n.status for n in _notices(recall)} == {NotificationStatus.FAILED},
        what=f"every notice to fail\n{worker.log_tail()}",
    )
    for notice in _notices(recall):
        assert notice.failing_since is not None and notice.failed_at is not None
        assert (notice.failed_at - notice.failing_since).total_seconds() >= window_seconds
        assert notice.last_error.startswith(f"gave up after {notice.attempts} attempts over")
        assert "ConnectionRefusedError" in notice.last_error

    # and once the server is back, a quality manager resends each through the API,
    smtp.up()
    client = APIClient()
    client.force_authenticate(quality_manager)
    for notice in _notices(recall):
        response = client.post(
            f"/api/v1/notices/{notice.pk}/resend/",
            {"reason": "Mail server restored"},
            format="json",
        )
        assert response.status_code == 200, response.json()
        assert response.json()["status"] in {"pending", "sending", "sent"}
        assert response.json()["message_id"] == str(notice.message_id)
    wait_until(
        lambda: {n.status for n in _notices(recall)} == {NotificationStatus.SENT},
        what=f"every resent notice sent\n{worker.log_tail()}",
    )

    # then each arrives once, under the message id it always had, and the resend is on record.
    notices = _notices(recall)
    assert smtp.counts() == Counter(
        dict.fromkeys({f"<{n.message_id}@traceability.example>" for n in notices}, 1)
    )
    resends = NotificationResend.objects.filter(notification__recall=recall)
    assert resends.count() == 3
    assert {r.resent_by_id for r in resends} == {quality_manager.pk}
    assert all(r.error_before.startswith("gave up after") for r in resends)
