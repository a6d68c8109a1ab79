"""Delivering recall notices exactly once (DESIGN rule 5), and reminding clinics that have not
acknowledged.

One notice is one outbox row (`Notification`). Delivery is claim, send, record:

1. claim: a conditional UPDATE `pending -> sending` (attempts + 1, claimed_at = now); a row count of
   0 means another task has it or it is done, and nothing is sent. A duplicated or retried task
   therefore sends nothing twice.
2. send, outside any transaction (no network I/O while holding row locks).
3. record: `-> sent` (and the recall's first notice time); on a named transient error back to
   `pending` for the task to retry with backoff; on a permanent error `failed` with the reason.

A transient error is retried for as long as the notice's delivery window lasts, counted from its
first failed attempt (`delivery_window`: hours for class I and II recalls), so a notice outlives any
outage of its channel shorter than that window (DESIGN rule 10). The delay before each retry is
`retry_delay`: the documented backoff doubled per attempt up to its maximum, plus a jitter that only
ever adds. A notice that fails for good stays visible on its recall and can be resent
(`recalls.outbox.recall_notice_resend`) under the same message id.

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
import random
import smtplib
import socket
from collections.abc import Callable
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
    RecallClass,
    RecallStatus,
    WebhookEndpoint,
)
from recalls.webhooks import webhook_endpoint_deactivate_gone

logger = logging.getLogger(__name__)

# Errors after which the same notice may well go through later. Everything else is either
# permanent (below) or unexpected; an unexpected error leaves the claim to expire, so the notice is
# retried by the stale-claim requeue, inside the same delivery window.
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
    """Retry later: the notice is back in `pending`. The delivery task retries on this alone,
    after `retry_in` seconds (set by `notification_deliver`)."""

    retry_in: float = 0.0


class PermanentDeliveryError(DeliveryError):
    """Retrying will not help: the notice is `failed`, with the reason."""


class EndpointGoneError(PermanentDeliveryError):
    """The endpoint answered 410 Gone: its owner removed it. Standard Webhooks asks senders to
    stop calling it, so the endpoint is deactivated and the quality managers are told."""


# ---------------------------------------------------------------------------------------------
# How long and how often


def delivery_window(recall_class: str) -> datetime.timedelta:
    """How long a notice of a recall of this class is retried after its first failed attempt."""
    hours = (
        settings.RECALL_DELIVERY_WINDOW_HOURS_CLASS_III
        if recall_class == RecallClass.CLASS_III
        else settings.RECALL_DELIVERY_WINDOW_HOURS
    )
    return datetime.timedelta(hours=hours)


def retry_delay(attempts: int, *, draw: Callable[[], float] = random.random) -> float:
    """Seconds to wait after `attempts` failed attempts: RECALL_DELIVERY_BACKOFF_SECONDS doubled
    for each attempt after the first, at most RECALL_DELIVERY_BACKOFF_MAX_SECONDS, plus a jitter of
    up to RECALL_DELIVERY_JITTER of that (`draw` returns a number in [0, 1)). Never shorter than
    the documented figure: jitter spreads retries out, it does not bring them forward."""
    doublings = min(max(attempts - 1, 0), 62)  # 2**62 seconds outlasts any maximum
    documented = min(
        settings.RECALL_DELIVERY_BACKOFF_SECONDS * 2**doublings,
        settings.RECALL_DELIVERY_BACKOFF_MAX_SECONDS,
    )
    return float(documented * (1 + settings.RECALL_DELIVERY_JITTER * draw()))


def retry_delay_longest() -> datetime.timedelta:
    return datetime.timedelta(
        seconds=settings.RECALL_DELIVERY_BACKOFF_MAX_SECONDS * (1 + settings.RECALL_DELIVERY_JITTER)
    )


def _hours(duration: datetime.timedelta) -> str:
    hours = duration.total_seconds() / 3600
    return f"{hours:.3g} h"


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


def webhook_signature(
    *, endpoint: WebhookEndpoint, webhook_id: str, at: datetime.datetime, body: str
) -> str:
    """The webhook-signature header: one `v1,<base64>` per secret in use, space-separated. Right
    after a rotation the previous secret signs too, so a receiver still holding it verifies."""
    secrets = [endpoint.secret]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires is not None and at < expires:
        secrets.append(endpoint.previous_secret)
    signatures = []
    for secret in secrets:
        try:
            signatures.append(Webhook(secret).sign(webhook_id, at, body))
        except Exception as error:  # malformed base64 or an empty secret: the endpoint is invalid
            raise PermanentDeliveryError(
                f"endpoint {endpoint.name} has an invalid secret"
            ) from error
    return " ".join(signatures)


def send_webhook(*, endpoint: WebhookEndpoint, webhook_id: str, payload: dict[str, Any]) -> None:
    """POST one event, signed per the Standard Webhooks spec (webhook-id, webhook-timestamp,
    webhook-signature over `id.timestamp.body`)."""
    if not endpoint.active:
        raise PermanentDeliveryError(f"endpoint {endpoint.name} is deactivated")
    body = webhook_body(payload)
    now = timezone.now()
    signature = webhook_signature(endpoint=endpoint, webhook_id=webhook_id, at=now, body=body)
    headers = {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
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
    if status == 410:
        raise EndpointGoneError(summary)
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
    # gave up on it), the notice did go out: record that, once. An earlier attempt's error is no
    # longer true of it.
    Notification.objects.filter(pk=notification.pk).exclude(status=NotificationStatus.SENT).update(
        status=NotificationStatus.SENT, sent_at=now, last_error=""
    )
    # Drills are timed too; the earliest sent notice wins whatever order the workers finish in.
    Recall.objects.filter(pk=notification.recall_id).filter(
        Q(first_notice_sent_at__isnull=True) | Q(first_notice_sent_at__gt=now)
    ).update(first_notice_sent_at=now)


def notification_deliver(notification_id: int) -> Outcome:
    """Deliver one notice if it is still pending. Raises TransientDeliveryError (with
    `retry_in`) when the task should retry later; safe to call any number of times, concurrently
    too.

    Runs outside any transaction: each UPDATE commits on its own."""
    claimed_at = timezone.now()
    if not _claim(notification_id, claimed_at):
        return Outcome.NOT_CLAIMED
    notification = Notification.objects.select_related(
        "recall", "clinic", "contact", "endpoint"
    ).get(pk=notification_id)
    # This attempt began at claimed_at; if it fails, the window counts from the first failure.
    failing_since = notification.failing_since or claimed_at
    try:
        _send_notice(notification)
    except TransientDeliveryError as error:
        now = timezone.now()
        window = delivery_window(notification.recall.recall_class)
        if now >= failing_since + window:
            reason = (
                f"gave up after {notification.attempts} attempts over "
                f"{_hours(now - failing_since)} (delivery window of a class "
                f"{notification.recall.recall_class} recall: {_hours(window)}): {error.reason}"
            )
            _ours(notification_id, claimed_at).update(
                status=NotificationStatus.FAILED,
                last_error=reason,
                failing_since=failing_since,
                failed_at=now,
            )
            logger.error("recall notice %s failed: %s", notification_id, reason)
            return Outcome.FAILED
        released = _ours(notification_id, claimed_at).update(
            status=NotificationStatus.PENDING, last_error=error.reason, failing_since=failing_since
        )
        error.retry_in = retry_delay(notification.attempts)
        logger.warning(
            "recall notice %s attempt %s: %s; next attempt in %.0f s",
            notification_id,
            notification.attempts,
            error.reason,
            error.retry_in,
        )
        if not released:  # the requeue took it back meanwhile: its new task owns the retry
            return Outcome.NOT_CLAIMED
        raise
    except PermanentDeliveryError as error:
        _ours(notification_id, claimed_at).update(
            status=NotificationStatus.FAILED,
            last_error=error.reason,
            failing_since=failing_since,
            failed_at=timezone.now(),
        )
        logger.error("recall notice %s failed: %s", notification_id, error.reason)
        if isinstance(error, EndpointGoneError) and notification.endpoint is not None:
            endpoint_gone(notification.endpoint, notification=notification, reason=error.reason)
        return Outcome.FAILED
    except Exception as error:
        # Unexpected: keep the claim (the requeue retries it after the lease) but say why.
        _ours(notification_id, claimed_at).update(
            last_error=f"unexpected {type(error).__name__}: {error}"[:2000],
            failing_since=failing_since,
        )
        raise
    _record_sent(notification)
    return Outcome.SENT


def endpoint_gone(endpoint: WebhookEndpoint, *, notification: Notification, reason: str) -> bool:
    """Deactivate an endpoint that answered 410 Gone and tell the quality managers, once: the
    deactivation is a conditional UPDATE that only the first notice to hear 410 wins. The other
    notices of the endpoint then fail at their next attempt, visibly, and can be resent once an
    integrator registers or reactivates an endpoint."""
    if not webhook_endpoint_deactivate_gone(endpoint=endpoint, reason=reason):
        return False
    recipients = notices.quality_manager_emails()
    if not recipients:
        logger.error(
            "webhook endpoint %s deactivated (410 Gone); no quality manager to tell", endpoint.pk
        )
        return True
    try:
        send_email(
            notices.endpoint_gone_email(
                endpoint=endpoint, notification=notification, reason=reason, to=recipients
            )
        )
    except DeliveryError as error:
        logger.error(
            "endpoint %s deactivated (410 Gone); the quality managers could not be told: %s",
            endpoint.pk,
            error.reason,
        )
    return True


def notifications_requeue_stale(*, now: datetime.datetime | None = None) -> list[int]:
    """Notices to queue again: rows whose worker died mid-delivery (`sending`, claim older than
    the lease) go back to `pending`, or to `failed` once their delivery window has passed; and
    `pending` rows no task seems to hold (never claimed within the lease, or released longer than
    the longest retry delay ago: their message died with a worker). Returns the ids to queue.

    Queuing a notice twice is harmless (the claim); the bump of `claimed_at` keeps one row from
    being queued again on every run while it waits in a long queue."""
    now = now or timezone.now()
    lease = datetime.timedelta(seconds=settings.RECALL_DELIVERY_LEASE_SECONDS)
    stale_ids = []
    stale = Notification.objects.filter(
        status=NotificationStatus.SENDING, claimed_at__lt=now - lease
    ).values_list("pk", "claimed_at", "failing_since", "attempts", "recall__recall_class")
    for pk, claimed_at, failing_since, attempts, recall_class in stale:
        # The attempt that never completed failed at its claim, as far as anyone can tell.
        since: datetime.datetime = failing_since or claimed_at or now
        window = delivery_window(recall_class)
        row = Notification.objects.filter(
            pk=pk, status=NotificationStatus.SENDING, claimed_at=claimed_at
        )
        if now >= since + window:
            row.update(
                status=NotificationStatus.FAILED,
                failing_since=since,
                failed_at=now,
                last_error=Concat(
                    Value(
                        f"gave up after {attempts} attempts over {_hours(now - since)} (delivery "
                        f"window of a class {recall_class} recall: {_hours(window)}); the last "
                        "never completed (worker lost or timed out). "
                    ),
                    F("last_error"),
                ),
            )
        elif row.update(status=NotificationStatus.PENDING, claimed_at=now, failing_since=since):
            stale_ids.append(pk)
    orphaned = Notification.objects.filter(status=NotificationStatus.PENDING).filter(
        Q(claimed_at__isnull=True, created_at__lt=now - lease)
        | Q(claimed_at__lt=now - lease - retry_delay_longest())
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
