"""Delivering a recall round in batches: each batch claims its notices once (two batches never
share one), hands a transient failure to the notice's own task and
backoff, and gives back what it had no time left to send. Real SMTP server and HTTP receiver; the
worker has its own tests (test_worker.py)."""

from __future__ import annotations

import re
import threading

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.template.loader import render_to_string
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from recalls import delivery, notices
from recalls.delivery.outbox import NOTICE_RELATED
from recalls.models import Channel, Notification, NotificationStatus
from recalls.services import recall_notice_resend
from recalls.services.acknowledgements import acknowledgement_link_resolve
from recalls.tasks import NOTICES_PER_TASK, notices_queue_failed, recall_notices_send
from tests.recalls.conftest import (
    acknowledgement_link,
    affected_clinic,
    free_port,
    message_text,
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


# ---------------------------------------------------------------------------------------------
# Rendered once per clinic, recorded in one statement


def _comparable(body: str) -> str:
    """The body without its acknowledgement link (signed with the second it was made) and with
    the line ends it had before the wire."""
    link = re.escape(django_settings.SITE_URL) + r"/recalls/acknowledge/[^\s\"<]+"
    return re.sub(link, "", body).replace("\r\n", "\n").strip()


def test_each_recipient_gets_the_clinics_notice_with_its_own_name_and_link(quality_manager, smtp):
    # Given a clinic with three contacts, one whose name HTML must escape,
    lot = recalled_lot()
    affected = affected_clinic(lot, contacts=3)
    odd = affected.contacts[0]
    odd.name = "Dr. O'Neil & <Partners>"
    odd.save(update_fields=["name"])
    recall = open_recall(quality_manager, lot)

    # when one batch delivers them (the clinic's notice rendered once),
    batch = delivery.round_notices_deliver(recall.pk, 1, limit=10, seconds=60)

    # then each e-mail is what the templates render for that recipient alone, its link signed
    # for its own notice.
    assert len(batch.sent) == 3
    rows = Notification.objects.filter(recall=recall).select_related(*NOTICE_RELATED)
    for notification in rows:
        context = notices.notice_context(notification)
        [message] = smtp.to(notification.recipient)
        text, html = message_text(message), message_text(message, "html")
        assert notification.contact.name in text
        assert _comparable(text) == _comparable(
            render_to_string("recalls/email/notice.txt", context)
        )
        assert _comparable(html) == _comparable(
            render_to_string("recalls/email/notice.html", context)
        )
        for body in (text, html):
            link = acknowledgement_link(body, django_settings.SITE_URL)
            token = link.rstrip("/").rsplit("/", 1)[1]
            assert acknowledgement_link_resolve(token) == notification
    assert "Dr. O&#x27;Neil &amp; &lt;Partners&gt;" in message_text(smtp.to(odd.email)[0], "html")


def _batch_statements(quality_manager, lot, contacts: int) -> int:
    for _ in range(2):
        affected_clinic(lot, contacts=contacts)
    recall = open_recall(quality_manager, lot)
    with CaptureQueriesContext(connection) as captured:
        batch = delivery.round_notices_deliver(recall.pk, 1, limit=50, seconds=60)
    assert len(batch.sent) == 2 * contacts
    return len(captured)


def test_a_batch_runs_as_many_statements_for_many_notices_as_for_few(quality_manager, smtp):
    few = recalled_lot()
    many = recalled_lot(product=few.product)
    assert _batch_statements(quality_manager, few, 2) == _batch_statements(quality_manager, many, 6)


def test_each_notice_of_a_batch_is_recorded_sent_at_the_moment_it_went(quality_manager, smtp):
    lot = recalled_lot()
    affected_clinic(lot, contacts=3)
    recall = open_recall(quality_manager, lot)
    smtp.delay_seconds = 0.05
    before = timezone.now()

    delivery.round_notices_deliver(recall.pk, 1, limit=10, seconds=60)

    times = sorted(Notification.objects.filter(recall=recall).values_list("sent_at", flat=True))
    assert before < times[0] < times[1] < times[2] <= timezone.now()
    recall.refresh_from_db()
    assert recall.first_notice_sent_at == times[0]


# ---------------------------------------------------------------------------------------------
# Refused by the broker, then swept


def test_a_round_the_broker_refused_is_marked_and_found_by_the_sweep_at_once(quality_manager, smtp):
    # Given a round whose delivery task was queued (nothing is marked),
    lot = recalled_lot()
    affected_clinic(lot, contacts=2)
    recall = open_recall(quality_manager, lot)
    assert delivery.rounds_queue_failed() == []
    # when the broker refuses it, its pending notices are marked and found, without any lease,
    assert delivery.round_queue_failed(recall.pk, 1) == 2
    assert delivery.rounds_queue_failed() == [(recall.pk, 1)]
    # and once the sweep clears the marks to queue it again, no longer.
    assert delivery.round_queue_retry(recall.pk, 1) == 2
    assert delivery.rounds_queue_failed() == []


def test_the_sweep_delivers_a_round_the_broker_refused_once_and_then_finds_nothing(
    quality_manager, smtp, eager_celery
):
    lot = recalled_lot()
    affected_clinic(lot, contacts=2)
    recall = open_recall(quality_manager, lot)
    delivery.round_queue_failed(recall.pk, 1)

    assert notices_queue_failed.apply().get() == 1

    assert sorted(smtp.counts().values()) == [1, 1]
    rows = Notification.objects.filter(recall=recall)
    assert {(row.status, row.queue_failed_at) for row in rows} == {(NotificationStatus.SENT, None)}
    # A second sweep finds nothing and sends nothing.
    assert notices_queue_failed.apply().get() == 0
    assert len(smtp.messages) == 2


def test_a_resent_notice_starts_unmarked_and_is_marked_if_the_broker_refuses_its_task(
    quality_manager, smtp
):
    lot = recalled_lot()
    affected = affected_clinic(lot, contacts=1)
    recall = open_recall(quality_manager, lot)
    [notice] = Notification.objects.filter(recall=recall)
    Notification.objects.filter(pk=notice.pk).update(
        status=NotificationStatus.FAILED,
        last_error="550 no such user",
        failed_at=timezone.now(),
        queue_failed_at=timezone.now(),
    )
    notice.refresh_from_db()

    recall_notice_resend(
        actor=quality_manager, notification=notice, reason=f"{affected.clinic} fixed the address"
    )

    notice.refresh_from_db()
    assert (notice.status, notice.queue_failed_at) == (NotificationStatus.PENDING, None)
    assert delivery.notice_queue_failed(notice.pk) == 1
    assert delivery.rounds_queue_failed() == [(recall.pk, 1)]
