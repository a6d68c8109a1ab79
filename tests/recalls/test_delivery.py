"""Recall notices: content (21 CFR 7.49), exactly-once delivery, retries, failures, the stale-claim
requeue, reminders and escalation. Real SMTP server and HTTP receiver; the delivery functions and
tasks are called in this process (the worker has its own tests, test_worker.py)."""

from __future__ import annotations

import datetime
import json

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from recalls import delivery, notices
from recalls.delivery import Outcome, TransientDeliveryError
from recalls.models import (
    Acknowledgement,
    Channel,
    Notification,
    NotificationStatus,
    Recall,
)
from recalls.services import recall_reminders_send
from recalls.tasks import notification_deliver, recall_notices_send
from tests.factories import MembershipFactory, PatientFactory, UserFactory, treat
from tests.recalls.conftest import (
    GTIN,
    acknowledgement_link,
    affected_clinic,
    free_port,
    message_text,
    open_recall,
    recalled_lot,
    webhook_endpoint,
)

pytestmark = pytest.mark.django_db


def _email_notice(recall: Recall, clinic) -> Notification:
    return Notification.objects.get(recall=recall, clinic=clinic, channel=Channel.EMAIL)


def _acknowledgement_link_in(body: str) -> Notification:
    """The notice the body's signed acknowledgement link resolves to."""
    from recalls.services.acknowledgements import acknowledgement_link_resolve

    link = acknowledgement_link(body, django_settings.SITE_URL)
    token = link.rstrip("/").rsplit("/", 1)[1]
    return acknowledgement_link_resolve(token)


def _deliver_all(recall: Recall) -> None:
    for notification in Notification.objects.filter(recall=recall).order_by("pk"):
        assert delivery.notification_deliver(notification.pk) == Outcome.SENT


# ---------------------------------------------------------------------------------------------
# Content


def test_class_one_notice_says_what_21_cfr_7_49_asks_in_text_and_html(quality_manager, smtp):
    lot = recalled_lot()
    affected = affected_clinic(lot, units_held=4)
    recall = open_recall(quality_manager, lot, recall_class="I", depth="patient")
    notification = _email_notice(recall, affected.clinic)

    delivery.notification_deliver(notification.pk)

    [message] = smtp.messages
    subject = str(message["Subject"])
    assert subject.startswith("URGENT: PRODUCT RECALL ")
    assert recall.reference in subject and lot.lot_number in subject
    assert message["Message-ID"] == f"<{notification.message_id}@traceability.example>"
    assert message["To"] == affected.contacts[0].email
    for body in (message_text(message, "plain"), message_text(message, "html")):
        assert "recalled" in body.lower() and "stop using it at once" in body.lower()
        assert lot.lot_number in body and GTIN in body
        assert lot.product.name in body and lot.manufacturer.legal_name in body
        assert lot.expires_on.isoformat() in body
        assert recall.reason in body and recall.hazard in body
        assert "Class I: reasonable probability of serious harm or death" in body
        assert "Quarantine every unit" in body and "Account for every unit" in body
        assert "Follow the instructions below for its return or destruction" in body
        assert "lot " + lot.lot_number + ": 4 vial(s)" in body  # what the clinic must account for
        assert "Contact" in body and "each" in body.lower()
        assert _acknowledgement_link_in(body) == notification
        assert "Keep the vials frozen" in body
        assert "DRILL" not in body


@pytest.mark.parametrize(
    "instructions",
    [
        "Return or destroy every remaining vial within 10 days; the manufacturer collects returns.",
        "Destroy every remaining vial as clinical waste.",
    ],
)
def test_the_notice_defers_to_return_or_destroy_instructions(quality_manager, smtp, instructions):
    """The quality manager's instructions say how stock leaves the clinic: the standard text must
    not tell the clinic to keep it or to wait for instructions it has just been given."""
    lot = recalled_lot()
    affected = affected_clinic(lot, units_held=2)
    recall = open_recall(quality_manager, lot, instructions=instructions)

    delivery.notification_deliver(_email_notice(recall, affected.clinic).pk)

    [message] = smtp.messages
    for body in (message_text(message, "plain"), message_text(message, "html")):
        assert instructions in body
        assert "Follow the instructions below for its return or destruction" in body
        assert "Quarantine every unit" in body
        for contradiction in ("destroy it on your own", "until you receive return or destruction"):
            assert contradiction not in body


def test_without_instructions_the_notice_says_to_wait_for_them(quality_manager, smtp):
    lot = recalled_lot()
    affected = affected_clinic(lot, units_held=2)
    recall = open_recall(quality_manager, lot, instructions="")

    delivery.notification_deliver(_email_notice(recall, affected.clinic).pk)

    [message] = smtp.messages
    for body in (message_text(message, "plain"), message_text(message, "html")):
        assert "keep it until you receive return or destruction instructions" in body
        assert "instructions below" not in body and "Further instructions" not in body


def _patient_data(affected) -> list[str]:
    """Everything that would identify the clinic's patient: name, phone, e-mail, birth date."""
    contact = affected.ready.patient.contact
    return [
        contact.full_name,
        contact.phone,
        contact.email,
        contact.date_of_birth.isoformat(),
        f"{contact.date_of_birth:%d.%m.%Y}",
        f"{contact.date_of_birth:%b. %d, %Y}",
    ]


def _born_1961(affected) -> None:
    contact = affected.ready.patient.contact
    contact.date_of_birth = datetime.date(1961, 4, 17)
    contact.save()


def _patient_list_url(recall: Recall, affected) -> str:
    return (
        f"{django_settings.SITE_URL.rstrip('/')}/admin/recalls/recall/{recall.pk}/patients/"
        f"{affected.clinic.pk}/"
    )


@pytest.mark.parametrize("depth", ["patient", "clinic"])
def test_no_notice_reminder_or_escalation_carries_patient_data_only_counts_and_a_link(
    quality_manager, smtp, webhook_receiver, settings, depth
):
    settings.RECALL_REMINDER_AFTER_HOURS = 24
    settings.RECALL_ESCALATE_AFTER_REMINDERS = 1
    quality_manager.email = "quinn@network.example"
    quality_manager.save()
    lot = recalled_lot()
    first, second = affected_clinic(lot, units_held=4), affected_clinic(lot, units_held=6)
    treat(first.ready, lot, 1, patient=PatientFactory(clinic=first.clinic))
    for affected in (first, second):
        _born_1961(affected)
    webhook_endpoint(webhook_receiver, "network")
    webhook_endpoint(webhook_receiver, "first-clinic", clinic=first.clinic)
    recall = open_recall(quality_manager, lot, depth=depth)

    # Given the notices, a reminder and an escalation have gone out,
    _deliver_all(recall)
    sent_at = Notification.objects.filter(recall=recall).order_by("sent_at").first().sent_at
    for hours in (25, 49, 73):
        recall_reminders_send(now=sent_at + datetime.timedelta(hours=hours))
    subjects = [str(message["Subject"]) for message in smtp.messages]
    assert any("REMINDER 1" in subject for subject in subjects)
    assert any("ESCALATION" in subject for subject in subjects)

    # then no e-mail, text or HTML, and no webhook names a patient or how to reach one,
    everything = [
        str(message["Subject"]) + message_text(message, "plain") + message_text(message, "html")
        for message in smtp.messages
    ] + [json.dumps(webhook.payload) for webhook in webhook_receiver.deliveries]
    for text in everything:
        for affected in (first, second):
            for value in _patient_data(affected):
                assert value not in text
            assert affected.ready.patient.reference not in text
    # and each clinic's notices and reminders give its counts and the link to its patient list.
    for own, patients, units in ((first, 2, 3), (second, 1, 6)):
        messages = smtp.to(own.contacts[0].email)
        assert len(messages) == 4  # the notice and three reminders
        for message in messages:
            for body in (message_text(message, "plain"), message_text(message, "html")):
                assert f"Patients of {own.clinic.name} treated with these lots: " in body
                assert f"{patients} (" in body or f"<strong>{patients}</strong>" in body
                assert f"held when the recall reached it: {units}" in body or (
                    f"held when the recall reached it: <strong>{units}</strong>" in body
                )
                assert _patient_list_url(recall, own) in body
                other = second if own is first else first
                assert _patient_list_url(recall, other) not in body


def test_the_patient_list_link_asks_for_sign_in_and_shows_contacts_to_the_clinics_own_staff(
    quality_manager, smtp, client
):
    from audit.models import ContactDataRead

    lot = recalled_lot()
    affected = affected_clinic(lot)
    recall = open_recall(quality_manager, lot, depth="patient")
    delivery.notification_deliver(_email_notice(recall, affected.clinic).pk)
    [message] = smtp.messages
    path = _patient_list_url(recall, affected).removeprefix(django_settings.SITE_URL.rstrip("/"))
    assert path in message_text(message)

    anonymous = client.get(path)
    assert anonymous.status_code == 302 and "/admin/login/" in anonymous["Location"]
    assert not ContactDataRead.objects.exists()

    administrator = affected.ready.administrator
    administrator.is_staff = True
    administrator.save()
    client.force_login(administrator)
    page = client.get(path)
    assert page.status_code == 200
    assert affected.patient_name in page.content.decode()
    assert ContactDataRead.objects.filter(user=administrator).count() == 1


def test_clinic_level_notice_lists_no_patients(quality_manager, smtp):
    lot = recalled_lot()
    affected = affected_clinic(lot)
    recall = open_recall(quality_manager, lot, recall_class="II", depth="clinic")

    delivery.notification_deliver(_email_notice(recall, affected.clinic).pk)

    [message] = smtp.messages
    body = message_text(message)
    assert str(message["Subject"]).startswith("URGENT: ")
    assert affected.patient_name not in body and affected.ready.patient.reference not in body
    assert "clinic-level recall" in body
    counts = f"Patients of {affected.clinic.name} treated with these lots: 1 (1 treatment line)"
    assert counts in body


def test_class_three_notice_is_not_marked_urgent(quality_manager, smtp):
    lot = recalled_lot()
    affected = affected_clinic(lot)
    recall = open_recall(quality_manager, lot, recall_class="III", depth="clinic")

    delivery.notification_deliver(_email_notice(recall, affected.clinic).pk)

    [message] = smtp.messages
    assert str(message["Subject"]).startswith("PRODUCT RECALL ")
    assert "URGENT" not in str(message["Subject"]) + message_text(message)
    assert "Class III: harm not likely" in message_text(message)
    assert message["Importance"] is None


def test_drill_notice_says_drill_in_subject_and_body(quality_manager, smtp, webhook_receiver):
    lot = recalled_lot()
    affected = affected_clinic(lot)
    webhook_endpoint(webhook_receiver, "network")
    recall = open_recall(quality_manager, lot, recall_class="II", drill=True)

    _deliver_all(recall)

    [message] = smtp.messages
    assert str(message["Subject"]).startswith("URGENT: DRILL: PRODUCT RECALL DRILL-")
    for body in (message_text(message, "plain"), message_text(message, "html")):
        assert "This is a mock recall drill — no product is actually recalled" in body
    assert affected.contacts[0].email in message["To"]
    [webhook] = webhook_receiver.deliveries
    assert webhook.payload["data"]["drill"] is True


# ---------------------------------------------------------------------------------------------
# Exactly once


def test_notice_delivered_twice_is_sent_once(quality_manager, smtp):
    lot = recalled_lot()
    affected = affected_clinic(lot)
    recall = open_recall(quality_manager, lot)
    notification = _email_notice(recall, affected.clinic)

    first = delivery.notification_deliver(notification.pk)
    second = delivery.notification_deliver(notification.pk)

    assert (first, second) == (Outcome.SENT, Outcome.NOT_CLAIMED)
    assert len(smtp.messages) == 1
    notification.refresh_from_db()
    recall.refresh_from_db()
    assert notification.status == NotificationStatus.SENT and notification.attempts == 1
    assert recall.first_notice_sent_at == notification.sent_at


def test_fan_out_delivers_every_pending_notice_of_the_round_and_a_second_run_sends_nothing(
    quality_manager, smtp, webhook_receiver, eager_celery
):
    lot = recalled_lot()
    clinics = [affected_clinic(lot, contacts=2) for _ in range(2)]
    webhook_endpoint(webhook_receiver, "network")
    recall = open_recall(quality_manager, lot)

    assert recall_notices_send.apply(args=[recall.pk, 1]).get() == 5
    assert recall_notices_send.apply(args=[recall.pk, 1]).get() == 0

    assert sorted(str(m["To"]) for m in smtp.messages) == sorted(
        contact.email for clinic in clinics for contact in clinic.contacts
    )
    assert len(webhook_receiver.deliveries) == 1
    assert set(Notification.objects.filter(recall=recall).values_list("status", flat=True)) == {
        NotificationStatus.SENT
    }


# ---------------------------------------------------------------------------------------------
# Transient and permanent errors


def test_transient_smtp_refusal_is_retried_by_the_task_then_sent_once(quality_manager, smtp):
    lot = recalled_lot()
    affected = affected_clinic(lot)
    recall = open_recall(quality_manager, lot)
    notification = _email_notice(recall, affected.clinic)
    address = affected.contacts[0].email
    smtp.rcpt_replies[address] = ["451 4.3.0 Mailbox busy", "421 4.7.0 Try again later"]

    result = notification_deliver.apply(args=[notification.pk])

    assert result.get() == "sent"
    notification.refresh_from_db()
    assert notification.status == NotificationStatus.SENT
    assert notification.attempts == 3
    assert notification.last_error == ""  # the earlier attempts' errors are no longer true of it
    assert smtp.message_ids() == [f"<{notification.message_id}@traceability.example>"]


def test_smtp_server_down_puts_the_notice_back_for_a_retry(quality_manager, smtp, settings):
    lot = recalled_lot()
    affected = affected_clinic(lot)
    recall = open_recall(quality_manager, lot)
    notification = _email_notice(recall, affected.clinic)
    settings.EMAIL_PORT = free_port()  # nothing listens there

    with pytest.raises(TransientDeliveryError):
        delivery.notification_deliver(notification.pk)

    notification.refresh_from_db()
    assert notification.status == NotificationStatus.PENDING
    assert notification.attempts == 1
    assert "ConnectionRefusedError" in notification.last_error


@pytest.mark.parametrize(("recall_class", "window_hours"), [("I", 72), ("II", 72), ("III", 24)])
def test_transient_errors_fail_the_notice_once_its_delivery_window_has_passed(
    quality_manager, smtp, settings, recall_class, window_hours
):
    lot = recalled_lot()
    affected = affected_clinic(lot)
    recall = open_recall(quality_manager, lot, recall_class=recall_class)
    notification = _email_notice(recall, affected.clinic)
    settings.EMAIL_PORT = free_port()
    window = datetime.timedelta(hours=window_hours)
    assert delivery.delivery_window(recall_class) == window

    # Given a first failure, the notice goes back to the queue with its window started,
    with pytest.raises(TransientDeliveryError):
        delivery.notification_deliver(notification.pk)
    notification.refresh_from_db()
    assert notification.status == NotificationStatus.PENDING
    assert notification.failing_since is not None
    started = notification.failing_since
    # a failure a second before the window ends is still retried,
    Notification.objects.filter(pk=notification.pk).update(
        failing_since=timezone.now() - window + datetime.timedelta(seconds=5)
    )
    with pytest.raises(TransientDeliveryError):
        delivery.notification_deliver(notification.pk)
    # and the first failure after it fails the notice, saying why.
    Notification.objects.filter(pk=notification.pk).update(
        failing_since=timezone.now() - window - datetime.timedelta(seconds=1)
    )
    outcome = delivery.notification_deliver(notification.pk)

    notification.refresh_from_db()
    assert outcome == Outcome.FAILED
    assert notification.status == NotificationStatus.FAILED
    assert notification.last_error.startswith("gave up after 3 attempts over")
    assert f"class {recall_class} recall: {window_hours} h" in notification.last_error
    assert "ConnectionRefusedError" in notification.last_error
    assert started <= timezone.now()


def test_the_window_counts_from_the_first_failure_not_from_the_notice(
    quality_manager, smtp, settings
):
    """A notice that waited in a long queue still gets its whole window once its channel fails."""
    lot = recalled_lot()
    affected = affected_clinic(lot)
    recall = open_recall(quality_manager, lot)
    notification = _email_notice(recall, affected.clinic)
    Notification.objects.filter(pk=notification.pk).update(
        created_at=timezone.now() - datetime.timedelta(days=30)
    )
    settings.EMAIL_PORT = free_port()

    with pytest.raises(TransientDeliveryError) as raised:
        delivery.notification_deliver(notification.pk)

    notification.refresh_from_db()
    assert notification.status == NotificationStatus.PENDING
    assert timezone.now() - notification.failing_since < datetime.timedelta(minutes=1)
    assert raised.value.retry_in >= settings.RECALL_DELIVERY_BACKOFF_SECONDS


def test_refused_recipient_is_a_permanent_failure_with_the_reason(quality_manager, smtp):
    lot = recalled_lot()
    affected = affected_clinic(lot)
    recall = open_recall(quality_manager, lot)
    notification = _email_notice(recall, affected.clinic)
    smtp.refuse[affected.contacts[0].email] = "550 5.1.1 No such user here"

    result = notification_deliver.apply(args=[notification.pk])

    assert result.get() == "failed"
    notification.refresh_from_db()
    assert notification.status == NotificationStatus.FAILED
    assert notification.attempts == 1
    assert "550" in notification.last_error and "No such user" in notification.last_error
    assert smtp.messages == []


# ---------------------------------------------------------------------------------------------
# Webhooks


def test_webhook_is_signed_per_standard_webhooks_and_carries_no_patient_data(
    quality_manager, smtp, webhook_receiver
):
    lot = recalled_lot()
    first, second = affected_clinic(lot), affected_clinic(lot)
    endpoint = webhook_endpoint(webhook_receiver, "network")
    recall = open_recall(quality_manager, lot, recall_class="II", depth="patient")
    notification = Notification.objects.get(recall=recall, endpoint=endpoint)

    assert delivery.notification_deliver(notification.pk) == Outcome.SENT

    assert webhook_receiver.rejected == []
    [webhook] = webhook_receiver.deliveries
    assert webhook.webhook_id == str(notification.message_id)
    assert webhook.payload["type"] == "recall.opened"
    data = webhook.payload["data"]
    assert {key: data[key] for key in ("reference", "class", "depth", "drill")} == {
        "reference": recall.reference,
        "class": "II",
        "depth": "patient",
        "drill": False,
    }
    assert data["reason"] == recall.reason and data["hazard"] == recall.hazard
    assert data["lots"] == [
        {
            "lot_number": lot.lot_number,
            "product": lot.product.name,
            "gtin": GTIN,
            "manufacturer": lot.manufacturer.legal_name,
            "manufactured_on": lot.manufactured_on.isoformat(),
            "expires_on": lot.expires_on.isoformat(),
        }
    ]
    assert sorted(clinic["id"] for clinic in data["clinics"]) == sorted(
        [first.clinic.pk, second.clinic.pk]
    )
    assert "patient" not in json.dumps(data).replace('"depth": "patient"', "")


def test_clinic_endpoint_hears_only_of_its_own_clinic(quality_manager, smtp, webhook_receiver):
    lot = recalled_lot()
    first, _second = affected_clinic(lot), affected_clinic(lot)
    endpoint = webhook_endpoint(webhook_receiver, "first", clinic=first.clinic)
    recall = open_recall(quality_manager, lot)

    delivery.notification_deliver(Notification.objects.get(recall=recall, endpoint=endpoint).pk)

    [webhook] = webhook_receiver.deliveries
    assert [clinic["id"] for clinic in webhook.payload["data"]["clinics"]] == [first.clinic.pk]


def test_webhook_signed_with_another_secret_is_refused_by_the_receiver(
    quality_manager, smtp, webhook_receiver
):
    lot = recalled_lot()
    affected_clinic(lot)
    endpoint = webhook_endpoint(webhook_receiver, "network")
    endpoint.secret = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"  # not the receiver's
    endpoint.save()
    recall = open_recall(quality_manager, lot)
    notification = Notification.objects.get(recall=recall, endpoint=endpoint)

    assert delivery.notification_deliver(notification.pk) == Outcome.FAILED

    assert webhook_receiver.rejected == [str(notification.message_id)]
    assert webhook_receiver.deliveries == []
    notification.refresh_from_db()
    assert "HTTP 401" in notification.last_error


def test_webhook_server_errors_are_retried_with_the_same_webhook_id(
    quality_manager, smtp, webhook_receiver
):
    lot = recalled_lot()
    affected_clinic(lot)
    endpoint = webhook_endpoint(webhook_receiver, "network")
    webhook_receiver.answers["/hooks/network"] = [500, 429]
    recall = open_recall(quality_manager, lot)
    notification = Notification.objects.get(recall=recall, endpoint=endpoint)

    assert notification_deliver.apply(args=[notification.pk]).get() == "sent"

    assert webhook_receiver.attempted == [str(notification.message_id)] * 3
    assert webhook_receiver.webhook_ids() == [str(notification.message_id)]
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == (NotificationStatus.SENT, 3)


def test_webhook_client_error_fails_permanently(quality_manager, smtp, webhook_receiver):
    lot = recalled_lot()
    affected_clinic(lot)
    endpoint = webhook_endpoint(webhook_receiver, "network")
    webhook_receiver.answers["/hooks/network"] = [400]
    recall = open_recall(quality_manager, lot)
    notification = Notification.objects.get(recall=recall, endpoint=endpoint)

    assert notification_deliver.apply(args=[notification.pk]).get() == "failed"

    notification.refresh_from_db()
    assert notification.status == NotificationStatus.FAILED
    assert notification.attempts == 1
    assert notification.last_error.startswith("HTTP 400")


def test_webhook_endpoint_with_an_invalid_url_fails_permanently(quality_manager, smtp):
    from recalls.models import WebhookEndpoint

    lot = recalled_lot()
    affected_clinic(lot)
    endpoint = WebhookEndpoint.objects.create(
        name="typo", url="htp:/broken", secret="whsec_QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"
    )
    recall = open_recall(quality_manager, lot)
    notification = Notification.objects.get(recall=recall, endpoint=endpoint)

    assert delivery.notification_deliver(notification.pk) == Outcome.FAILED

    notification.refresh_from_db()
    assert "invalid endpoint" in notification.last_error


# ---------------------------------------------------------------------------------------------
# A worker that died mid-delivery


def test_stale_claim_is_requeued_after_the_lease_and_then_delivered_once(
    quality_manager, smtp, settings
):
    lot = recalled_lot()
    dead, alive = affected_clinic(lot), affected_clinic(lot)
    recall = open_recall(quality_manager, lot)
    now = timezone.now()
    lease = datetime.timedelta(seconds=settings.RECALL_DELIVERY_LEASE_SECONDS)
    stale = _email_notice(recall, dead.clinic)
    live = _email_notice(recall, alive.clinic)
    # Given one worker killed after its claim, and one still sending inside its lease,
    Notification.objects.filter(pk=stale.pk).update(
        status=NotificationStatus.SENDING, attempts=1, claimed_at=now - lease - lease
    )
    Notification.objects.filter(pk=live.pk).update(
        status=NotificationStatus.SENDING, attempts=1, claimed_at=now
    )

    # when the requeue runs,
    requeued = delivery.notifications_requeue_stale(now=now)

    # then only the dead worker's notice goes back to the queue, and is then sent once.
    assert requeued == [stale.pk]
    stale.refresh_from_db()
    live.refresh_from_db()
    assert stale.status == NotificationStatus.PENDING
    assert live.status == NotificationStatus.SENDING
    assert delivery.notification_deliver(stale.pk) == Outcome.SENT
    assert delivery.notification_deliver(live.pk) == Outcome.NOT_CLAIMED
    assert smtp.message_ids() == [f"<{stale.message_id}@traceability.example>"]


def test_requeue_gives_up_on_a_stale_notice_once_its_window_has_passed(
    quality_manager, smtp, settings
):
    lot = recalled_lot()
    expired, inside = affected_clinic(lot), affected_clinic(lot)
    recall = open_recall(quality_manager, lot)
    now = timezone.now()
    window = delivery.delivery_window(recall.recall_class)
    late = _email_notice(recall, expired.clinic)
    Notification.objects.filter(pk=late.pk).update(
        status=NotificationStatus.SENDING,
        attempts=40,
        claimed_at=now - datetime.timedelta(hours=1),
        failing_since=now - window - datetime.timedelta(minutes=1),
    )
    # A worker lost on a notice whose window is still open: it goes back to the queue.
    young = _email_notice(recall, inside.clinic)
    Notification.objects.filter(pk=young.pk).update(
        status=NotificationStatus.SENDING,
        attempts=40,
        claimed_at=now - datetime.timedelta(hours=1),
        failing_since=now - window + datetime.timedelta(hours=1),
    )

    assert delivery.notifications_requeue_stale(now=now) == [young.pk]

    late.refresh_from_db()
    young.refresh_from_db()
    assert late.status == NotificationStatus.FAILED
    assert "never completed" in late.last_error
    assert late.last_error.startswith("gave up after 40 attempts")
    assert young.status == NotificationStatus.PENDING


def test_a_stale_claim_without_an_earlier_failure_starts_the_window_at_its_claim(
    quality_manager, smtp, settings
):
    lot = recalled_lot()
    affected = affected_clinic(lot)
    recall = open_recall(quality_manager, lot)
    now = timezone.now()
    claimed = now - datetime.timedelta(hours=1)
    notification = _email_notice(recall, affected.clinic)
    Notification.objects.filter(pk=notification.pk).update(
        status=NotificationStatus.SENDING, attempts=1, claimed_at=claimed
    )

    assert delivery.notifications_requeue_stale(now=now) == [notification.pk]

    notification.refresh_from_db()
    assert notification.failing_since == claimed


def test_requeue_queues_pending_notices_that_no_task_holds(quality_manager, smtp, settings):
    lot = recalled_lot()
    old, fresh, backing_off = affected_clinic(lot), affected_clinic(lot), affected_clinic(lot)
    recall = open_recall(quality_manager, lot)
    now = timezone.now()
    lease = datetime.timedelta(seconds=settings.RECALL_DELIVERY_LEASE_SECONDS)
    orphan = _email_notice(recall, old.clinic)
    Notification.objects.filter(pk=orphan.pk).update(created_at=now - lease * 2)
    Notification.objects.filter(pk=_email_notice(recall, fresh.clinic).pk).update(created_at=now)
    # Released after a transient error a moment ago: its task's retry is still to come.
    Notification.objects.filter(pk=_email_notice(recall, backing_off.clinic).pk).update(
        created_at=now - lease * 2, attempts=1, claimed_at=now - lease * 2
    )

    assert delivery.notifications_requeue_stale(now=now) == [orphan.pk]
    # Handed to the queue: not queued again on the next run.
    assert delivery.notifications_requeue_stale(now=now + datetime.timedelta(seconds=60)) == []


# ---------------------------------------------------------------------------------------------
# Reminders and escalation


def _acknowledge(recall: Recall, clinic) -> None:
    Acknowledgement.objects.create(
        recall=recall,
        clinic=clinic,
        via="admin",
        acknowledged_by_name="Clinic Admin",
        acknowledged_at=timezone.now(),
    )


def test_unacknowledged_clinic_is_reminded_once_per_interval(
    quality_manager, smtp, webhook_receiver, settings
):
    settings.RECALL_REMINDER_AFTER_HOURS = 24
    lot = recalled_lot()
    silent, acknowledging = affected_clinic(lot), affected_clinic(lot)
    webhook_endpoint(webhook_receiver, "silent-clinic", clinic=silent.clinic)
    recall = open_recall(quality_manager, lot, recall_class="I")
    _deliver_all(recall)
    _acknowledge(recall, acknowledging.clinic)
    notice = _email_notice(recall, silent.clinic)
    sent_at = notice.sent_at
    smtp.messages.clear()
    webhook_receiver.deliveries.clear()

    early = recall_reminders_send(now=sent_at + datetime.timedelta(hours=23))
    first = recall_reminders_send(now=sent_at + datetime.timedelta(hours=25))
    same_interval = recall_reminders_send(now=sent_at + datetime.timedelta(hours=26))
    second = recall_reminders_send(now=sent_at + datetime.timedelta(hours=50))

    assert early.reminded == [] and same_interval.reminded == []
    assert len(first.reminded) == 2 and len(second.reminded) == 2  # e-mail and webhook
    assert [str(m["To"]) for m in smtp.messages] == [silent.contacts[0].email] * 2
    subjects = [str(m["Subject"]) for m in smtp.messages]
    assert subjects[0].startswith("URGENT: REMINDER 1: recall " + recall.reference)
    assert subjects[1].startswith("URGENT: REMINDER 2: ")
    ids = smtp.message_ids()
    assert len(set(ids)) == 2 and f"<{notice.message_id}@traceability.example>" not in ids
    assert _acknowledgement_link_in(message_text(smtp.messages[0])) == notice
    assert [d.payload["type"] for d in webhook_receiver.deliveries] == ["recall.reminder"] * 2
    assert [d.payload["data"]["reminder"] for d in webhook_receiver.deliveries] == [1, 2]
    notice.refresh_from_db()
    assert notice.reminders_sent == 2
    assert notice.last_reminded_at == sent_at + datetime.timedelta(hours=50)


def test_clinic_silent_after_n_reminders_is_escalated_to_the_quality_managers_once(
    quality_manager, smtp, settings
):
    settings.RECALL_REMINDER_AFTER_HOURS = 24
    settings.RECALL_ESCALATE_AFTER_REMINDERS = 2
    quality_manager.email = "quinn@network.example"
    quality_manager.save()
    other_manager = UserFactory(email="olga@network.example")
    MembershipFactory(user=other_manager, role="quality_manager", clinic=None)
    lot = recalled_lot()
    silent = affected_clinic(lot, contacts=2)
    recall = open_recall(quality_manager, lot, recall_class="II", drill=True)
    _deliver_all(recall)
    sent_at = Notification.objects.filter(recall=recall).order_by("sent_at").first().sent_at
    smtp.messages.clear()

    def run(hours: int) -> list[str]:
        before = len(smtp.messages)
        recall_reminders_send(now=sent_at + datetime.timedelta(hours=hours))
        return [str(message["Subject"]) for message in smtp.messages[before:]]

    assert run(25) == [run_subject("REMINDER 1", recall, silent)] * 2
    assert run(49) == [run_subject("REMINDER 2", recall, silent)] * 2
    third = run(73)
    fourth = run(97)

    escalations = [subject for subject in third + fourth if "ESCALATION" in subject]
    assert escalations == [
        f"URGENT: DRILL: ESCALATION: {silent.clinic.name} has not acknowledged recall "
        f"{recall.reference} after 2 reminders"
    ]
    [escalation] = [m for m in smtp.messages if "ESCALATION" in str(m["Subject"])]
    assert sorted(str(escalation["To"]).split(", ")) == [
        "olga@network.example",
        "quinn@network.example",
    ]
    body = message_text(escalation)
    assert "DRILL" in body and silent.contacts[0].email in body
    assert silent.patient_name not in body  # the quality managers get no contact details
    assert len([s for s in third if "REMINDER 3" in s]) == 2


def run_subject(what: str, recall: Recall, silent) -> str:
    return (
        f"URGENT: DRILL: {what}: recall {recall.reference} (Class II) not yet acknowledged by "
        f"{silent.clinic.name}"
    )


def test_acknowledged_clinic_gets_no_reminders(quality_manager, smtp, settings):
    lot = recalled_lot()
    affected = affected_clinic(lot)
    recall = open_recall(quality_manager, lot)
    _deliver_all(recall)
    _acknowledge(recall, affected.clinic)
    later = timezone.now() + datetime.timedelta(hours=settings.RECALL_REMINDER_AFTER_HOURS * 5)

    assert recall_reminders_send(now=later).reminded == []


def test_failed_reminder_is_given_back_and_sent_on_the_next_run_with_the_same_id(
    quality_manager, smtp, settings
):
    lot = recalled_lot()
    affected = affected_clinic(lot)
    recall = open_recall(quality_manager, lot)
    _deliver_all(recall)
    notice = _email_notice(recall, affected.clinic)
    later = notice.sent_at + datetime.timedelta(hours=settings.RECALL_REMINDER_AFTER_HOURS + 1)
    smtp.messages.clear()
    smtp.rcpt_replies[affected.contacts[0].email] = ["452 4.2.2 Mailbox full"]

    failed = recall_reminders_send(now=later)
    retried = recall_reminders_send(now=later + datetime.timedelta(minutes=15))

    assert failed.failed == [notice.pk] and retried.reminded == [notice.pk]
    notice.refresh_from_db()
    assert notice.reminders_sent == 1
    assert smtp.message_ids() == [
        f"<{notices.reminder_message_id(notice, 1)}@traceability.example>"
    ]


# ---------------------------------------------------------------------------------------------
# Widening and the schedule


def test_widened_recall_notice_names_the_added_lots_and_the_earlier_ones(
    quality_manager, smtp, webhook_receiver
):
    from recalls.services import RecallScopeRequest, recall_widen
    from tests.factories import PASSWORD, receive

    first_lot = recalled_lot()
    affected = affected_clinic(first_lot)
    webhook_endpoint(webhook_receiver, "network")
    recall = open_recall(quality_manager, first_lot, recall_class="II")
    _deliver_all(recall)
    second_lot = recalled_lot(product=first_lot.product)
    receive(affected.ready, second_lot, 3)
    smtp.messages.clear()
    webhook_receiver.deliveries.clear()

    recall_widen(
        actor=quality_manager,
        password=PASSWORD,
        recall=recall,
        scope=RecallScopeRequest(lot_ids=[second_lot.pk]),
        reason="Same endotoxin finding in the next lot",
    )
    for notification in Notification.objects.filter(recall=recall, round=2):
        assert delivery.notification_deliver(notification.pk) == Outcome.SENT

    [message] = smtp.messages
    assert str(message["Subject"]).startswith(
        f"URGENT: RECALL WIDENED {recall.reference} (Class II): stop using "
    )
    assert second_lot.lot_number in str(message["Subject"])
    body = message_text(message)
    added, earlier = body.split("Lots recalled earlier")
    assert second_lot.lot_number in added and first_lot.lot_number not in added
    assert first_lot.lot_number in earlier.split("WHY:")[0]
    assert f"lot {second_lot.lot_number}: 3 vial(s)" in body
    [webhook] = webhook_receiver.deliveries
    assert webhook.payload["type"] == "recall.widened"
    assert [lot["lot_number"] for lot in webhook.payload["data"]["lots"]] == [second_lot.lot_number]


def test_beat_runs_the_requeue_every_minute_reminders_every_quarter_hour_and_expiry_daily():
    from celery.schedules import crontab

    from traceability.celery import app

    schedule = {
        entry["task"]: entry["schedule"] for entry in django_settings.CELERY_BEAT_SCHEDULE.values()
    }

    assert schedule["recalls.notifications_requeue_stale"] == 60.0
    # Notices whose task the broker refused are queued again within ten seconds of its return.
    assert schedule["recalls.notices_queue_failed"] == 10.0
    assert schedule["recalls.recall_reminders_send"] == 15 * 60.0
    assert schedule["recalls.expiry_watch"] == crontab(hour=6, minute=0)
    app.loader.import_default_modules()
    assert set(schedule) <= set(app.tasks)


def test_a_widening_does_not_escalate_a_silent_clinic_a_second_time(
    quality_manager, smtp, settings
):
    from recalls.services import RecallScopeRequest, recall_widen
    from tests.factories import PASSWORD, receive

    settings.RECALL_REMINDER_AFTER_HOURS = 24
    settings.RECALL_ESCALATE_AFTER_REMINDERS = 1
    quality_manager.email = "quinn@network.example"
    quality_manager.save()
    first_lot = recalled_lot()
    silent = affected_clinic(first_lot)
    recall = open_recall(quality_manager, first_lot, recall_class="II")
    _deliver_all(recall)
    sent_at = _email_notice(recall, silent.clinic).sent_at

    def escalations(hours: int) -> list:
        return recall_reminders_send(now=sent_at + datetime.timedelta(hours=hours)).escalated

    assert escalations(25) == []  # reminder 1
    assert escalations(49) == [(recall.pk, silent.clinic.pk)]  # reminder 2, 1 unanswered
    second_lot = recalled_lot(product=first_lot.product)
    receive(silent.ready, second_lot, 2)
    recall_widen(
        actor=quality_manager,
        password=PASSWORD,
        recall=recall,
        scope=RecallScopeRequest(lot_ids=[second_lot.pk]),
        reason="Same endotoxin finding in the next lot",
    )
    for notification in Notification.objects.filter(recall=recall, round=2):
        assert delivery.notification_deliver(notification.pk) == Outcome.SENT
    widened_at = Notification.objects.filter(recall=recall, round=2).first().sent_at
    later = [
        recall_reminders_send(now=widened_at + datetime.timedelta(hours=hours))
        for hours in (25, 49, 73)
    ]

    assert [len(run.reminded) for run in later] == [1, 1, 1]  # still reminded...
    assert [run.escalated for run in later] == [[], [], []]  # ...but told about once
    assert [str(m["Subject"]) for m in smtp.messages if "ESCALATION" in str(m["Subject"])] == [
        f"URGENT: ESCALATION: {silent.clinic.name} has not acknowledged recall "
        f"{recall.reference} after 1 reminders"
    ]
    escalated = Notification.objects.filter(recall=recall, escalated_at__isnull=False)
    assert [(n.round, n.clinic_id) for n in escalated] == [(1, silent.clinic.pk)]


def test_an_escalation_that_cannot_be_sent_is_tried_again_on_the_next_run(
    quality_manager, smtp, settings
):
    settings.RECALL_REMINDER_AFTER_HOURS = 24
    settings.RECALL_ESCALATE_AFTER_REMINDERS = 0
    quality_manager.email = ""
    quality_manager.save()
    lot = recalled_lot()
    silent = affected_clinic(lot)
    recall = open_recall(quality_manager, lot)
    _deliver_all(recall)
    notice = _email_notice(recall, silent.clinic)

    nobody_to_tell = recall_reminders_send(now=notice.sent_at + datetime.timedelta(hours=25))
    notice.refresh_from_db()
    assert nobody_to_tell.escalated == [] and notice.escalated_at is None

    quality_manager.email = "quinn@network.example"
    quality_manager.save()
    told = recall_reminders_send(now=notice.sent_at + datetime.timedelta(hours=49))
    notice.refresh_from_db()
    assert told.escalated == [(recall.pk, silent.clinic.pk)]
    assert notice.escalated_at == notice.sent_at + datetime.timedelta(hours=49)


def test_two_clinics_sharing_one_contact_address_each_get_their_own_notice(quality_manager, smtp):
    from tests.factories import ClinicContactFactory

    lot = recalled_lot()
    first, second = affected_clinic(lot, contacts=0), affected_clinic(lot, contacts=0)
    for affected in (first, second):
        ClinicContactFactory(clinic=affected.clinic, email="quality@clinic-group.example")
    recall = open_recall(quality_manager, lot)
    _deliver_all(recall)

    notices_sent = Notification.objects.filter(recall=recall, channel="email")
    assert sorted(n.clinic_id for n in notices_sent) == sorted([first.clinic.pk, second.clinic.pk])
    assert {n.status for n in notices_sent} == {"sent"}
    messages = smtp.to("quality@clinic-group.example")
    assert len(messages) == 2 and len(set(smtp.message_ids())) == 2
    bodies = [message_text(message) for message in messages]
    # each clinic's mail links to its own patient list, and only its own (no patient data)
    for own, other in ((first, second), (second, first)):
        [body] = [body for body in bodies if _patient_list_url(recall, own) in body]
        assert _patient_list_url(recall, other) not in body
        assert own.patient_name not in body and other.patient_name not in body
