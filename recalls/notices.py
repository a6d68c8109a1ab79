"""What recall notices, reminders and escalations say, and how they are put on the wire.

Content follows 21 CFR 7.49: the product is recalled and use must stop at once; what to do with the
stock and with patients; the product, lots and codes; the reason and the hazard; the class; how to
respond. Class I and II notices are marked URGENT; drills say DRILL in subject and body.

No notice carries patient data: a clinic's e-mail says how many of its patients were treated with
the lots and how many units it held, and links to the clinic's patient list, read behind sign-in by
the clinic's own staff (each read recorded in audit.ContactDataRead); webhooks carry the recall,
the lots and the clinics only. E-mail crosses servers in the clear, and a data protection officer
rightly refuses patients' names and telephone numbers in it.

Message ids are derived from the outbox row's `message_id`, so a retried notice carries the same
Message-ID / webhook-id and a receiver can drop a duplicate.
"""

from __future__ import annotations

import contextlib
import datetime
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any, TypeVar, cast

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMultiAlternatives
from django.db.models import Count, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.html import escape
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from lots.models import Lot
from providers.models import Clinic, Role
from recalls.models import (
    Channel,
    Notification,
    Recall,
    RecallDepth,
    RecallExposure,
    RecallLot,
    RecallScope,
    RecallStock,
    WebhookEndpoint,
)
from recalls.services.acknowledgements import acknowledgement_url

EVENT_OPENED = "recall.opened"
EVENT_WIDENED = "recall.widened"
EVENT_REMINDER = "recall.reminder"
DRILL_SENTENCE = gettext_lazy("This is a mock recall drill — no product is actually recalled.")
LOT_NUMBERS_IN_SUBJECT = 3
T = TypeVar("T")
# Stand-ins for what differs between the notices of one clinic (the contact's name, the signed
# acknowledgement link): a clinic's notice is rendered once with them, and each recipient's
# e-mail is that text with its own values put in. Random per process, so no recall text, clinic
# name or address can contain one.
_SLOT = uuid.uuid4().hex
CONTACT_NAME_SLOT = f"contact-{_SLOT}"
ACKNOWLEDGEMENT_URL_SLOT = f"acknowledgement-{_SLOT}"


# ---------------------------------------------------------------------------------------------
# The clinic's language


@contextlib.contextmanager
def in_clinic_language(clinic: Clinic | None) -> Iterator[None]:
    """Render what a clinic reads (its notices, reminders and acknowledgement page) in the
    clinic's `language`. Without a clinic, the language already active."""
    if clinic is None or not clinic.language:
        yield
        return
    with translation.override(clinic.language):
        yield


def date_formats() -> dict[str, str]:
    """The `date` filter formats for the active language: English keeps the ISO dates notices
    always had (unambiguous across the Atlantic); another language writes dates its own way
    (German: 6. Dezember 2026)."""
    language = translation.get_language() or settings.LANGUAGE_CODE
    if language.split("-")[0] == "en":
        return {"date_format": "Y-m-d", "datetime_format": "Y-m-d H:i"}
    return {"date_format": "DATE_FORMAT", "datetime_format": "DATETIME_FORMAT"}


# ---------------------------------------------------------------------------------------------
# Identifiers


def message_domain() -> str:
    """The right-hand side of our Message-IDs: the sender's domain."""
    address = parseaddr(settings.DEFAULT_FROM_EMAIL)[1]
    return address.rpartition("@")[2] or "localhost"


def message_id_header(message_id: uuid.UUID) -> str:
    return f"<{message_id}@{message_domain()}>"


def reminder_message_id(notification: Notification, number: int) -> uuid.UUID:
    """Reminder `number` of a notice has its own id, the same on every attempt to send it."""
    return uuid.uuid5(notification.message_id, f"reminder-{number}")


def escalation_message_id(notification: Notification, after_reminders: int) -> uuid.UUID:
    return uuid.uuid5(notification.message_id, f"escalation-{after_reminders}")


def notice_acknowledgement_url(notification: Notification) -> str:
    """The signed, expiring acknowledgement link (built by recalls.services.acknowledgements)."""
    return acknowledgement_url(notification)


# ---------------------------------------------------------------------------------------------
# What a notice is about


@dataclass(frozen=True)
class LotLine:
    lot_number: str
    product: str
    gtin: str
    manufacturer: str
    manufactured_on: datetime.date
    expires_on: datetime.date
    unit: str

    @classmethod
    def of(cls, lot: Lot) -> LotLine:
        return cls(
            lot_number=lot.lot_number,
            product=lot.product.name,
            gtin=lot.product.gtin or "",
            manufacturer=lot.manufacturer.legal_name,
            manufactured_on=lot.manufactured_on,
            expires_on=lot.expires_on,
            unit=lot.get_unit_display(),
        )

    def as_json(self) -> dict[str, str]:
        return {
            "lot_number": self.lot_number,
            "product": self.product,
            "gtin": self.gtin,
            "manufacturer": self.manufacturer,
            "manufactured_on": self.manufactured_on.isoformat(),
            "expires_on": self.expires_on.isoformat(),
        }


@dataclass(frozen=True)
class HeldStock:
    lot_number: str
    quantity: int
    unit: str


@dataclass(frozen=True)
class Exposed:
    """How many of the clinic's patients and treatment lines this round reached: counts only."""

    patients: int
    treatment_lines: int


def _lots(
    recall: Recall, *, round_number: int | None = None, before: int | None = None
) -> list[Lot]:
    rows = RecallLot.objects.filter(recall=recall)
    if round_number is not None:
        rows = rows.filter(round=round_number)
    if before is not None:
        rows = rows.filter(round__lt=before)
    return list(
        Lot.objects.filter(pk__in=rows.values("lot_id"))
        .select_related("product", "manufacturer")
        .order_by("product__name", "lot_number")
    )


def _round_clinics(recall: Recall, round_number: int, lots: list[Lot]) -> list[Clinic]:
    """The clinics this round reached: they held the lots or treated patients with them."""
    held = RecallStock.objects.filter(recall=recall, lot__in=lots).values("clinic_id")
    treated = RecallExposure.objects.filter(recall=recall, round=round_number).values("clinic_id")
    return list(Clinic.objects.filter(Q(pk__in=held) | Q(pk__in=treated)).order_by("name"))


def _round_added_at(recall: Recall, round_number: int) -> datetime.datetime:
    scope = RecallScope.objects.filter(recall=recall, round=round_number).first()
    return scope.added_at if scope else recall.opened_at


def _held_stock(recall: Recall, clinic: Clinic, lots: list[Lot]) -> list[HeldStock]:
    rows = (
        RecallStock.objects.filter(recall=recall, clinic=clinic, lot__in=lots)
        .select_related("lot")
        .order_by("lot__lot_number")
    )
    return [
        HeldStock(row.lot.lot_number, row.quantity_held, row.lot.get_unit_display().lower())
        for row in rows
    ]


def _exposed(notification: Notification, clinic: Clinic) -> Exposed:
    """The clinic's exposures in this round, counted (one query): never who the patients are."""
    counts = RecallExposure.objects.filter(
        recall=notification.recall, round=notification.round, clinic=clinic
    ).aggregate(patients=Count("patient_id", distinct=True), lines=Count("pk"))
    return Exposed(patients=counts["patients"], treatment_lines=counts["lines"])


def patient_list_url(recall: Recall, clinic: Clinic) -> str:
    """The clinic's patient list for the recall: an admin page that asks for sign-in and shows
    contact details only to the clinic's own staff, recording each read."""
    path = reverse("admin:recalls_recall_patients", args=[recall.pk, clinic.pk])
    return f"{settings.SITE_URL.rstrip('/')}{path}"


class RoundFacts:
    """What the notices of one delivery batch share, each read once: a round's lots (and those of
    earlier rounds), when it was added and which clinics it reached, and per clinic the stock it
    held and its exposures counted. A notice composed without one reads them for itself."""

    def __init__(self) -> None:
        self._read: dict[tuple[object, ...], object] = {}

    def _once(self, key: tuple[object, ...], read: Callable[[], T]) -> T:
        if key not in self._read:
            self._read[key] = read()
        return cast(T, self._read[key])

    def lots(
        self, recall: Recall, *, round_number: int | None = None, before: int | None = None
    ) -> list[Lot]:
        return self._once(
            ("lots", recall.pk, round_number, before),
            lambda: _lots(recall, round_number=round_number, before=before),
        )

    def held(self, notification: Notification, clinic: Clinic, lots: list[Lot]) -> list[HeldStock]:
        return self._once(
            ("held", notification.recall_id, notification.round, clinic.pk),
            lambda: _held_stock(notification.recall, clinic, lots),
        )

    def exposed(self, notification: Notification, clinic: Clinic) -> Exposed:
        return self._once(
            ("exposed", notification.recall_id, notification.round, clinic.pk),
            lambda: _exposed(notification, clinic),
        )

    def added_at(self, recall: Recall, round_number: int) -> datetime.datetime:
        return self._once(
            ("added_at", recall.pk, round_number), lambda: _round_added_at(recall, round_number)
        )

    def clinics(self, recall: Recall, round_number: int, lots: list[Lot]) -> list[Clinic]:
        return self._once(
            ("clinics", recall.pk, round_number),
            lambda: _round_clinics(recall, round_number, lots),
        )

    def clinic_notice(self, notification: Notification, *, addressed: bool) -> ClinicNotice:
        """The notice of the notification's clinic in the active language, rendered once with
        the recipient's parts left as slots (`addressed`: with a contact's name)."""
        return self._once(
            (
                "notice",
                notification.recall_id,
                notification.round,
                notification.clinic_id,
                translation.get_language(),
                addressed,
            ),
            lambda: _clinic_notice(notification, self, addressed=addressed),
        )


def subject_prefix(recall: Recall) -> str:
    """The marks a subject opens with, each followed by a space: "URGENT: DRILL: "."""
    marks = [_("URGENT:")] if recall.is_urgent else []
    if recall.is_drill:
        marks.append(_("DRILL:"))
    return "".join(f"{mark} " for mark in marks)


def _lot_numbers(lots: list[LotLine]) -> str:
    numbers = [lot.lot_number for lot in lots]
    shown = ", ".join(numbers[:LOT_NUMBERS_IN_SUBJECT])
    more = len(numbers) - LOT_NUMBERS_IN_SUBJECT
    return _("%(shown)s and %(more)s more") % {"shown": shown, "more": more} if more > 0 else shown


def _products(lots: list[LotLine]) -> str:
    return ", ".join(sorted({lot.product for lot in lots}))


def _base_context(recall: Recall, lots: list[Lot]) -> dict[str, Any]:
    lines = [LotLine.of(lot) for lot in lots]
    return {
        "recall": recall,
        "recall_class": recall.recall_class,
        "class_label": recall.get_recall_class_display(),
        "urgent": recall.is_urgent,
        "drill": recall.is_drill,
        "drill_sentence": DRILL_SENTENCE,
        "patient_level": recall.depth == RecallDepth.PATIENT,
        "depth_label": recall.get_depth_display(),
        "lots": lines,
        "products": _products(lines),
        "site_url": settings.SITE_URL.rstrip("/"),
        **date_formats(),
    }


def notice_context(notification: Notification, facts: RoundFacts | None = None) -> dict[str, Any]:
    """Everything the notice templates show, for one e-mail outbox row."""
    facts = facts or RoundFacts()
    recall = notification.recall
    lots = facts.lots(recall, round_number=notification.round)
    clinic = notification.clinic
    context = _base_context(recall, lots)
    context.update(
        notification=notification,
        widened=notification.round > 1,
        earlier_lots=[LotLine.of(lot) for lot in facts.lots(recall, before=notification.round)]
        if notification.round > 1
        else [],
        clinic=clinic,
        contact_name=notification.contact.name if notification.contact else "",
        acknowledgement_url=notice_acknowledgement_url(notification),
        held=[],
        units_held=0,
        exposure_count=0,
        patients_exposed=0,
        patient_list_url="",
    )
    if clinic is not None:
        held = facts.held(notification, clinic, lots)
        exposed = facts.exposed(notification, clinic)
        context.update(
            held=held,
            units_held=sum(row.quantity for row in held),
            exposure_count=exposed.treatment_lines,
            patients_exposed=exposed.patients,
            patient_list_url=patient_list_url(recall, clinic),
        )
    return context


def notice_subject(recall: Recall, lots: list[LotLine], *, widened: bool) -> str:
    reference, recall_class = recall.reference, recall.recall_class
    products, numbers = _products(lots), _lot_numbers(lots)
    if widened:
        what = _(
            "RECALL WIDENED %(reference)s (Class %(class)s): stop using %(products)s lot %(lots)s"
        ) % {"reference": reference, "class": recall_class, "products": products, "lots": numbers}
    else:
        what = _(
            "PRODUCT RECALL %(reference)s (Class %(class)s): stop using %(products)s lot %(lots)s"
        ) % {"reference": reference, "class": recall_class, "products": products, "lots": numbers}
    return f"{subject_prefix(recall)}{what}"


def _email(
    *,
    subject: str,
    template: str,
    context: dict[str, Any],
    to: list[str],
    message_id: uuid.UUID,
    recall: Recall,
) -> EmailMultiAlternatives:
    return _message(
        subject=subject,
        text=render_to_string(f"recalls/email/{template}.txt", context),
        html=render_to_string(f"recalls/email/{template}.html", context),
        to=to,
        message_id=message_id,
        recall=recall,
    )


def _message(
    *, subject: str, text: str, html: str, to: list[str], message_id: uuid.UUID, recall: Recall
) -> EmailMultiAlternatives:
    headers = {
        "Message-ID": message_id_header(message_id),
        "X-Recall-Reference": recall.reference,
        "Auto-Submitted": "auto-generated",
    }
    if recall.is_urgent:
        headers.update({"Importance": "high", "X-Priority": "1"})
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=to,
        headers=headers,
    )
    message.attach_alternative(html, "text/html")
    return message


@dataclass(frozen=True)
class ClinicNotice:
    """A clinic's notice as rendered, with CONTACT_NAME_SLOT and ACKNOWLEDGEMENT_URL_SLOT where
    each recipient's own name and link go."""

    subject: str
    text: str
    html: str

    def to(self, *, contact_name: str, acknowledgement_url: str) -> tuple[str, str]:
        """The text and HTML bodies with one recipient's parts, escaped as the template would
        have escaped them: the text as written, the HTML escaped."""
        text = self.text.replace(CONTACT_NAME_SLOT, contact_name)
        html = self.html.replace(CONTACT_NAME_SLOT, escape(contact_name))
        return (
            text.replace(ACKNOWLEDGEMENT_URL_SLOT, acknowledgement_url),
            html.replace(ACKNOWLEDGEMENT_URL_SLOT, escape(acknowledgement_url)),
        )


def _clinic_notice(
    notification: Notification, facts: RoundFacts, *, addressed: bool
) -> ClinicNotice:
    context = notice_context(notification, facts)
    # Nothing of one recipient may stay in what the clinic's other recipients get.
    del context["notification"]
    context.update(
        contact_name=CONTACT_NAME_SLOT if addressed else "",
        acknowledgement_url=ACKNOWLEDGEMENT_URL_SLOT,
    )
    return ClinicNotice(
        subject=notice_subject(notification.recall, context["lots"], widened=context["widened"]),
        text=render_to_string("recalls/email/notice.txt", context),
        html=render_to_string("recalls/email/notice.html", context),
    )


def notice_email(
    notification: Notification, facts: RoundFacts | None = None
) -> EmailMultiAlternatives:
    """The recall notice for one e-mail outbox row, as plain text with an HTML alternative, in
    the clinic's language (the recall's own reason, hazard and instructions as written).

    The templates are rendered once per clinic, language and round (`facts` keeps them for a
    batch); what differs between the clinic's recipients, the contact's name and the signed
    acknowledgement link, is put into each copy."""
    facts = facts or RoundFacts()
    with in_clinic_language(notification.clinic):
        contact_name = notification.contact.name if notification.contact else ""
        shared = facts.clinic_notice(notification, addressed=bool(contact_name))
        text, html = shared.to(
            contact_name=contact_name,
            acknowledgement_url=notice_acknowledgement_url(notification),
        )
        return _message(
            subject=shared.subject,
            text=text,
            html=html,
            to=[notification.recipient],
            message_id=notification.message_id,
            recall=notification.recall,
        )


def reminder_email(notification: Notification, *, number: int) -> EmailMultiAlternatives:
    """Reminder `number` to a clinic contact that has not acknowledged yet, in the clinic's
    language."""
    with in_clinic_language(notification.clinic):
        context = notice_context(notification)
        context.update(number=number, sent_at=notification.sent_at)
        recall = notification.recall
        clinic_name = notification.clinic.name if notification.clinic else _("your clinic")
        reminder = _(
            "REMINDER %(number)s: recall %(reference)s (Class %(class)s) not yet acknowledged by "
            "%(clinic)s"
        ) % {
            "number": number,
            "reference": recall.reference,
            "class": recall.recall_class,
            "clinic": clinic_name,
        }
        return _email(
            subject=f"{subject_prefix(recall)}{reminder}",
            template="reminder",
            context=context,
            to=[notification.recipient],
            message_id=reminder_message_id(notification, number),
            recall=recall,
        )


def escalation_email(
    *,
    notification: Notification,
    reminders: int,
    contacts: list[Notification],
    recipients: list[str],
) -> EmailMultiAlternatives:
    """Tell the quality managers that a clinic left `reminders` reminders unanswered.

    `notification` is the clinic's lead notice (its id keys the escalation's Message-ID);
    `contacts` are the clinic's e-mail notices, for who was written to and when."""
    recall = notification.recall
    lots = _lots(recall)
    context = _base_context(recall, lots)
    context.update(
        clinic=notification.clinic,
        reminders=reminders,
        contacts=contacts,
        sent_at=notification.sent_at,
    )
    clinic_name = notification.clinic.name if notification.clinic else "a clinic"
    return _email(
        subject=(
            f"{subject_prefix(recall)}ESCALATION: {clinic_name} has not acknowledged recall "
            f"{recall.reference} after {reminders} reminders"
        ),
        template="escalation",
        context=context,
        to=recipients,
        message_id=escalation_message_id(notification, reminders),
        recall=recall,
    )


def endpoint_gone_email(
    *, endpoint: WebhookEndpoint, notification: Notification, reason: str, to: list[str]
) -> EmailMultiAlternatives:
    """Tell the quality managers that a webhook endpoint answered 410 Gone and was deactivated:
    its notices of open recalls will fail until it is reactivated or replaced, then resent."""
    recall = notification.recall
    context = _base_context(recall, _lots(recall))
    context.update(endpoint=endpoint, notification=notification, error=reason)
    return _email(
        subject=(
            f"{subject_prefix(recall)}Webhook endpoint {endpoint.name} is gone (410) and was "
            f"deactivated: recall {recall.reference} notice not delivered"
        ),
        template="endpoint_gone",
        context=context,
        to=to,
        message_id=uuid.uuid5(notification.message_id, f"endpoint-gone-{endpoint.pk}"),
        recall=recall,
    )


def quality_manager_emails() -> list[str]:
    """The network quality managers who can be written to."""
    users = (
        get_user_model()
        .objects.filter(
            is_active=True,
            memberships__role=Role.QUALITY_MANAGER,
            memberships__clinic__isnull=True,
            memberships__active=True,
        )
        .exclude(email="")
        .distinct()
        .order_by("email")
    )
    return list(dict.fromkeys(user.email for user in users))


# ---------------------------------------------------------------------------------------------
# Webhooks


def webhook_payload(
    notification: Notification,
    *,
    reminder: int | None = None,
    facts: RoundFacts | None = None,
) -> dict[str, Any]:
    """The Standard Webhooks body for a webhook outbox row (`reminder`: the number of a reminder).
    Never patient data: a clinic-scoped endpoint sees its own clinic, a network endpoint every
    clinic the round reached."""
    if notification.channel != Channel.WEBHOOK:
        raise ValueError("webhook_payload is for webhook notices")
    facts = facts or RoundFacts()
    recall = notification.recall
    lots = facts.lots(recall, round_number=notification.round)
    if notification.clinic is not None:
        clinics = [notification.clinic]
    else:
        clinics = facts.clinics(recall, notification.round, lots)
    if reminder is not None:
        event = EVENT_REMINDER
    else:
        event = EVENT_WIDENED if notification.round > 1 else EVENT_OPENED
    payload: dict[str, Any] = {
        "type": event,
        "timestamp": facts.added_at(recall, notification.round).isoformat(),
        "data": {
            "reference": recall.reference,
            "round": notification.round,
            "class": recall.recall_class,
            "depth": recall.depth,
            "drill": recall.is_drill,
            "reason": recall.reason,
            "hazard": recall.hazard,
            "instructions": recall.instructions,
            "opened_at": recall.opened_at.isoformat(),
            "lots": [LotLine.of(lot).as_json() for lot in lots],
            "clinics": [
                {"id": clinic.pk, "name": clinic.name, "jurisdiction": clinic.jurisdiction}
                for clinic in clinics
            ],
        },
    }
    if reminder is not None:
        payload["data"]["reminder"] = reminder
    return payload
