"""Reminding clinics that have not acknowledged a recall, and telling the quality managers about a
clinic that stays silent (escalation). Run by beat every 15 minutes (`recalls.tasks`); each reminder
and each escalation is claimed by a conditional UPDATE, so overlapping runs send nothing twice."""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Exists, Min, OuterRef, Q, QuerySet
from django.utils import timezone

from recalls import notices
from recalls.delivery.errors import DeliveryError
from recalls.delivery.mail import send_email
from recalls.delivery.webhook import send_webhook
from recalls.models import Acknowledgement, Channel, Notification, NotificationStatus, RecallStatus

logger = logging.getLogger(__name__)


@dataclass
class ReminderReport:
    reminded: list[int] = field(default_factory=list)
    escalated: list[tuple[int, int]] = field(default_factory=list)  # (recall, clinic)
    failed: list[int] = field(default_factory=list)


def _reminder_scope() -> QuerySet[Notification]:
    """Sent notices of open recalls whose clinic has not acknowledged. Only the latest round's
    notice of a recipient counts: one reminder covers the whole recall."""
    acknowledged = Acknowledgement.objects.filter(
        recall_id=OuterRef("recall_id"), clinic_id=OuterRef("clinic_id")
    )
    later_round = Notification.objects.filter(
        recall_id=OuterRef("recall_id"),
        channel=OuterRef("channel"),
        clinic_id=OuterRef("clinic_id"),
        recipient=OuterRef("recipient"),
        round__gt=OuterRef("round"),
    )
    return (
        Notification.objects.filter(
            status=NotificationStatus.SENT,
            recall__status=RecallStatus.OPEN,
            clinic__isnull=False,
        )
        .exclude(Exists(acknowledged))
        .exclude(Exists(later_round))
    )


def _due_for_reminder(
    scope: QuerySet[Notification], now: datetime.datetime
) -> QuerySet[Notification]:
    """Last written to (notice or reminder) longer ago than the reminder interval."""
    cutoff = now - datetime.timedelta(hours=settings.RECALL_REMINDER_AFTER_HOURS)
    return scope.filter(
        Q(last_reminded_at__isnull=True, sent_at__lte=cutoff) | Q(last_reminded_at__lte=cutoff)
    )


def _lead_notices(scope: QuerySet[Notification]) -> set[int]:
    """Per recall and clinic, the e-mail notice whose reminder count drives the escalation (the
    lowest id), so a clinic with several contacts is escalated once."""
    leads = (
        scope.filter(channel=Channel.EMAIL)
        .order_by()
        .values("recall_id", "clinic_id")
        .annotate(lead=Min("pk"))
    )
    return {row["lead"] for row in leads}


def _send_reminder(notification: Notification, number: int) -> None:
    if notification.channel == Channel.EMAIL:
        send_email(notices.reminder_email(notification, number=number))
    elif notification.endpoint is not None:
        send_webhook(
            endpoint=notification.endpoint,
            webhook_id=str(notices.reminder_message_id(notification, number)),
            payload=notices.webhook_payload(notification, reminder=number),
        )


def _send_escalation(notification: Notification, reminders: int) -> bool:
    recipients = notices.quality_manager_emails()
    if not recipients:
        logger.error(
            "recall %s: no quality manager with an e-mail address to escalate clinic %s to",
            notification.recall.reference,
            notification.clinic_id,
        )
        return False
    contacts = list(
        Notification.objects.filter(
            recall_id=notification.recall_id,
            clinic=notification.clinic,
            channel=Channel.EMAIL,
        ).order_by("recipient", "round")
    )
    send_email(
        notices.escalation_email(
            notification=notification,
            reminders=reminders,
            contacts=contacts,
            recipients=recipients,
        )
    )
    return True


def _escalate_once(notification: Notification, *, reminders: int, now: datetime.datetime) -> bool:
    """Tell the quality managers about a silent clinic, once per recall and clinic: the claim is
    a conditional UPDATE that no other notice of the clinic has already won (a widening's new
    notices start their reminder count again, but do not escalate again). A failed send gives the
    claim back, so the next run tries again."""
    already = Notification.objects.filter(
        recall_id=notification.recall_id,
        clinic=notification.clinic,
        escalated_at__isnull=False,
    )
    claimed = (
        Notification.objects.filter(pk=notification.pk, escalated_at__isnull=True)
        .exclude(Exists(already))
        .update(escalated_at=now)
    )
    if not claimed:
        return False
    try:
        sent = _send_escalation(notification, reminders)
    except DeliveryError as error:
        logger.warning("escalation for notice %s not sent: %s", notification.pk, error)
        sent = False
    if not sent:
        Notification.objects.filter(pk=notification.pk, escalated_at=now).update(escalated_at=None)
    return sent


def recall_reminders_send(*, now: datetime.datetime | None = None) -> ReminderReport:
    """Remind every recipient whose clinic has not acknowledged, once per interval, and tell the
    quality managers once a clinic has left RECALL_ESCALATE_AFTER_REMINDERS reminders unanswered.

    Each reminder is claimed by a conditional UPDATE of the counter (two beat runs cannot both
    send it) and given back if sending fails, to be tried on the next run with the same
    Message-ID."""
    now = now or timezone.now()
    escalate_after = settings.RECALL_ESCALATE_AFTER_REMINDERS
    report = ReminderReport()
    scope = _reminder_scope()
    leads = _lead_notices(scope)
    rows = (
        _due_for_reminder(scope, now)
        .select_related("recall", "clinic", "contact", "endpoint")
        .order_by("recall_id", "clinic_id", "pk")
    )
    for notification in rows:
        before = notification.reminders_sent
        previous = notification.last_reminded_at
        claim = Notification.objects.filter(pk=notification.pk, reminders_sent=before)
        claim = (
            claim.filter(last_reminded_at=previous)
            if previous
            else claim.filter(last_reminded_at__isnull=True)
        )
        if not claim.update(reminders_sent=before + 1, last_reminded_at=now):
            continue
        number = before + 1
        try:
            _send_reminder(notification, number)
        except DeliveryError as error:
            Notification.objects.filter(
                pk=notification.pk, reminders_sent=number, last_reminded_at=now
            ).update(reminders_sent=before, last_reminded_at=previous)
            logger.warning("reminder %s of notice %s not sent: %s", number, notification.pk, error)
            report.failed.append(notification.pk)
            continue
        report.reminded.append(notification.pk)
        if notification.pk in leads and before >= escalate_after:
            if _escalate_once(notification, reminders=before, now=now):
                report.escalated.append((notification.recall_id, notification.clinic_id or 0))
    return report
