"""Delivering recall notices exactly once (DESIGN rule 5), and reminding clinics that have not
acknowledged.

One notice is one outbox row (`Notification`). Delivery is claim, send, record:

1. claim: a conditional UPDATE `pending -> sending` (attempts + 1, claimed_at = now); a row count of
   0 means another task has it or it is done, and nothing is sent. A duplicated or retried task
   therefore sends nothing twice.
2. send, outside any transaction (no network I/O while holding row locks).
3. record: `-> sent` (and the recall's first notice time); on a named transient error back to
   `pending` for the task to retry with backoff; on a permanent error `failed` with the reason.

A worker killed between 1 and 3 leaves the row in `sending`. `notifications_requeue_stale` (beat,
every minute) gives such a row back to the queue once its claim is older than the lease, which
outlasts the task's hard time limit, so a live delivery is never taken from its worker. If the
worker died after the receiver got the notice but before step 3, the notice is sent again: with the
same Message-ID / webhook-id, which is what a receiver deduplicates on. That window cannot be closed
from this side of the wire; the stable id closes it on the other.
"""

from __future__ import annotations

import datetime
import json
import logging
import smtplib
import socket
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import requests
from django.conf import settings
from django.core.mail import EmailMessage
from django.db.models import Exists, F, Min, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Concat
from django.utils import timezone
from standardwebhooks import Webhook

from recalls import notices
from recalls.models import (
    Acknowledgement,
    Channel,
    Notification,
    NotificationStatus,
    Recall,
    RecallStatus,
    WebhookEndpoint,
)

logger = logging.getLogger(__name__)

# Errors after which the same notice may well go through later. Everything else is either
# permanent (below) or unexpected; an unexpected error leaves the claim to expire, so the notice is
# retried by the stale-claim requeue, at most RECALL_DELIVERY_MAX_ATTEMPTS times.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    smtplib.SMTPServerDisconnected,
    smtplib.SMTPConnectError,
    ConnectionError,  # refused, reset, aborted
    TimeoutError,  # socket.timeout is TimeoutError
    socket.gaierror,
    requests.ConnectionError,
    requests.Timeout,
)
# HTTP answers worth retrying: request timeout, rate limited, and every server error.
TRANSIENT_HTTP_STATUSES = frozenset({408, 429})
USER_AGENT = "exosome-traceability-recalls/1"
# Pending notices queued again per requeue run: bounds the extra messages while a long queue drains
# (each costs one UPDATE that finds the notice claimed or sent).
ORPHANS_PER_RUN = 1000


class DeliveryError(Exception):
    """A notice could not be delivered; `reason` is what an operator sees."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TransientDeliveryError(DeliveryError):
    """Retry later: the notice is back in `pending`. The delivery task retries on this alone."""


class PermanentDeliveryError(DeliveryError):
    """Retrying will not help: the notice is `failed`, with the reason."""


class Outcome(StrEnum):
    SENT = "sent"
    FAILED = "failed"
    RETRY = "retry"
    NOT_CLAIMED = "not_claimed"  # already sent, failed, or being sent by another task


# ---------------------------------------------------------------------------------------------
# Sending


def _text(message: bytes | str) -> str:
    return message.decode(errors="replace") if isinstance(message, bytes) else str(message)


def _smtp_error(error: Exception) -> DeliveryError | None:
    """Classify an SMTP reply: 4xx is transient, 5xx permanent (RFC 5321 4.2.1)."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in error.recipients.values()]
        detail = "; ".join(
            f"{address}: {code} {_text(message)}"
            for address, (code, message) in error.recipients.items()
        )
        if codes and all(400 <= code < 500 for code in codes):
            return TransientDeliveryError(f"recipient deferred: {detail}")
        return PermanentDeliveryError(f"recipient refused: {detail}")
    if isinstance(error, smtplib.SMTPResponseException):
        text = _text(error.smtp_error)
        if isinstance(error, smtplib.SMTPConnectError) or 400 <= error.smtp_code < 500:
            return TransientDeliveryError(f"SMTP {error.smtp_code} {text}")
        return PermanentDeliveryError(f"SMTP {error.smtp_code} {text}")
    return None


def send_email(message: EmailMessage) -> None:
    """Send one message through the configured backend; raise DeliveryError when it did not go."""
    try:
        message.send(fail_silently=False)
    except smtplib.SMTPResponseException as error:
        raise _smtp_error(error) or PermanentDeliveryError(str(error)) from error
    except smtplib.SMTPRecipientsRefused as error:
        raise _smtp_error(error) or PermanentDeliveryError(str(error)) from error
    except TRANSIENT_ERRORS as error:
        raise TransientDeliveryError(f"{type(error).__name__}: {error}") from error


def webhook_body(payload: dict[str, Any]) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def send_webhook(*, endpoint: WebhookEndpoint, webhook_id: str, payload: dict[str, Any]) -> None:
    """POST one event, signed per the Standard Webhooks spec (webhook-id, webhook-timestamp,
    webhook-signature over `id.timestamp.body`)."""
    if not endpoint.active:
        raise PermanentDeliveryError(f"endpoint {endpoint.name} is deactivated")
    try:
        signer = Webhook(endpoint.secret)
    except Exception as error:  # malformed base64 or an empty secret: the endpoint is invalid
        raise PermanentDeliveryError(f"endpoint {endpoint.name} has an invalid secret") from error
    body = webhook_body(payload)
    now = timezone.now()
    headers = {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signer.sign(webhook_id, now, body),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }
    try:
        response = requests.post(
            endpoint.url,
            data=body.encode(),
            headers=headers,
            timeout=settings.RECALL_WEBHOOK_TIMEOUT_SECONDS,
            allow_redirects=False,
        )
    except (requests.ConnectionError, requests.Timeout) as error:
        raise TransientDeliveryError(f"{type(error).__name__}: {error}") from error
    except requests.RequestException as error:  # invalid URL, schema, ...
        raise PermanentDeliveryError(f"invalid endpoint {endpoint.url}: {error}") from error
    status = response.status_code
    if 200 <= status < 300:
        return
    summary = f"HTTP {status} from {endpoint.url}: {response.text[:200]}"
    if status >= 500 or status in TRANSIENT_HTTP_STATUSES:
        raise TransientDeliveryError(summary)
    raise PermanentDeliveryError(summary)


def _send_notice(notification: Notification) -> None:
    if notification.channel == Channel.EMAIL:
        send_email(notices.notice_email(notification))
    elif notification.endpoint is None:
        raise PermanentDeliveryError("webhook notice without an endpoint")
    else:
        send_webhook(
            endpoint=notification.endpoint,
            webhook_id=str(notification.message_id),
            payload=notices.webhook_payload(notification),
        )


# ---------------------------------------------------------------------------------------------
# Claim, send, record


def _claim(notification_id: int, now: datetime.datetime) -> bool:
    return bool(
        Notification.objects.filter(pk=notification_id, status=NotificationStatus.PENDING).update(
            status=NotificationStatus.SENDING, attempts=F("attempts") + 1, claimed_at=now
        )
    )


def _ours(notification_id: int, claimed_at: datetime.datetime) -> Any:
    """The row while this task still holds its claim (not taken back by the requeue)."""
    return Notification.objects.filter(
        pk=notification_id, status=NotificationStatus.SENDING, claimed_at=claimed_at
    )


def _record_sent(notification: Notification) -> None:
    now = timezone.now()
    # Whatever happened to the row meanwhile (its claim expired and another task took it, or
    # gave up on it), the notice did go out: record that, once.
    Notification.objects.filter(pk=notification.pk).exclude(status=NotificationStatus.SENT).update(
        status=NotificationStatus.SENT, sent_at=now
    )
    # Drills are timed too; the earliest sent notice wins whatever order the workers finish in.
    Recall.objects.filter(pk=notification.recall_id).filter(
        Q(first_notice_sent_at__isnull=True) | Q(first_notice_sent_at__gt=now)
    ).update(first_notice_sent_at=now)


def notification_deliver(notification_id: int) -> Outcome:
    """Deliver one notice if it is still pending. Raises TransientDeliveryError when the task
    should retry later; safe to call any number of times, concurrently too.

    Runs outside any transaction: each UPDATE commits on its own."""
    claimed_at = timezone.now()
    if not _claim(notification_id, claimed_at):
        return Outcome.NOT_CLAIMED
    notification = Notification.objects.select_related(
        "recall", "clinic", "contact", "endpoint"
    ).get(pk=notification_id)
    try:
        _send_notice(notification)
    except TransientDeliveryError as error:
        if notification.attempts >= settings.RECALL_DELIVERY_MAX_ATTEMPTS:
            reason = f"gave up after {notification.attempts} attempts: {error.reason}"
            _ours(notification_id, claimed_at).update(
                status=NotificationStatus.FAILED, last_error=reason
            )
            logger.error("recall notice %s failed: %s", notification_id, reason)
            return Outcome.FAILED
        released = _ours(notification_id, claimed_at).update(
            status=NotificationStatus.PENDING, last_error=error.reason
        )
        logger.warning(
            "recall notice %s attempt %s: %s", notification_id, notification.attempts, error.reason
        )
        if not released:  # the requeue took it back meanwhile: its new task owns the retry
            return Outcome.NOT_CLAIMED
        raise
    except PermanentDeliveryError as error:
        _ours(notification_id, claimed_at).update(
            status=NotificationStatus.FAILED, last_error=error.reason
        )
        logger.error("recall notice %s failed: %s", notification_id, error.reason)
        return Outcome.FAILED
    except Exception as error:
        # Unexpected: keep the claim (the requeue retries it after the lease) but say why.
        _ours(notification_id, claimed_at).update(
            last_error=f"unexpected {type(error).__name__}: {error}"[:2000]
        )
        raise
    _record_sent(notification)
    return Outcome.SENT


def notifications_requeue_stale(*, now: datetime.datetime | None = None) -> list[int]:
    """Notices to queue again: rows whose worker died mid-delivery (`sending`, claim older than
    the lease) go back to `pending`, or to `failed` after the last attempt; and `pending` rows no
    task seems to hold (never claimed within the lease, or released longer than the longest
    backoff ago: their message died with a worker). Returns the ids to queue.

    Queuing a notice twice is harmless (the claim); the bump of `claimed_at` keeps one row from
    being queued again on every run while it waits in a long queue."""
    now = now or timezone.now()
    lease = datetime.timedelta(seconds=settings.RECALL_DELIVERY_LEASE_SECONDS)
    backoff = datetime.timedelta(seconds=settings.RECALL_DELIVERY_BACKOFF_MAX_SECONDS)
    stale = Notification.objects.filter(
        status=NotificationStatus.SENDING, claimed_at__lt=now - lease
    )
    stale.filter(attempts__gte=settings.RECALL_DELIVERY_MAX_ATTEMPTS).update(
        status=NotificationStatus.FAILED,
        last_error=Concat(
            Value(
                f"gave up after {settings.RECALL_DELIVERY_MAX_ATTEMPTS} attempts; the last never "
                "completed (worker lost or timed out). "
            ),
            F("last_error"),
        ),
    )
    stale_ids = list(stale.values_list("pk", flat=True))
    Notification.objects.filter(
        pk__in=stale_ids, status=NotificationStatus.SENDING, claimed_at__lt=now - lease
    ).update(status=NotificationStatus.PENDING, claimed_at=now)
    orphaned = Notification.objects.filter(status=NotificationStatus.PENDING).filter(
        Q(claimed_at__isnull=True, created_at__lt=now - lease)
        | Q(claimed_at__lt=now - lease - backoff)
    )
    orphan_ids = list(orphaned.order_by("pk").values_list("pk", flat=True)[:ORPHANS_PER_RUN])
    Notification.objects.filter(pk__in=orphan_ids, status=NotificationStatus.PENDING).update(
        claimed_at=now
    )
    if stale_ids or orphan_ids:
        logger.warning(
            "recall notices queued again: %s stale claims, %s orphaned",
            len(stale_ids),
            len(orphan_ids),
        )
    return sorted(set(stale_ids) | set(orphan_ids))


# ---------------------------------------------------------------------------------------------
# Reminders and escalation


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
