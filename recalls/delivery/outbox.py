"""Delivering recall notices exactly once (DESIGN rule 5).

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
(`recalls.services.recall_notice_resend`) under the same message id.

A worker killed between 1 and 3 leaves the row in `sending`. `notifications_requeue_stale` (beat,
every minute) gives such a row back to the queue once its claim is older than the lease, which
outlasts the task's hard time limit, so a live delivery is never taken from its worker. If the
worker died after the receiver got the notice but before step 3, the notice is sent again: with the
same Message-ID / webhook-id, which is what a receiver deduplicates on. That window cannot be closed
from this side of the wire; the stable id closes it on the other.
"""

from __future__ import annotations

import datetime
import logging
import random
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.db.models import F, Q, Value
from django.db.models.functions import Concat
from django.utils import timezone

from recalls import notices
from recalls.delivery.errors import (
    DeliveryError,
    EndpointGoneError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from recalls.delivery.mail import send_email
from recalls.delivery.webhook import send_webhook
from recalls.models import (
    Channel,
    Notification,
    NotificationStatus,
    Recall,
    RecallClass,
    WebhookEndpoint,
)
from recalls.services.webhooks import webhook_endpoint_deactivate_gone

logger = logging.getLogger(__name__)

# Pending notices queued again per requeue run: bounds the extra messages while a long queue drains
# (each costs one UPDATE that finds the notice claimed or sent).
ORPHANS_PER_RUN = 1000


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
# Claim, send, record


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
