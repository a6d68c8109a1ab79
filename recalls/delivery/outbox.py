"""Delivering recall notices exactly once (DESIGN rule 5).

One notice is one outbox row (`Notification`). Delivery is claim, send, record:

1. claim: a conditional UPDATE `pending -> sending` (attempts + 1, claimed_at = now); a row count of
   0 means another task has it or it is done, and nothing is sent. A duplicated or retried task
   therefore sends nothing twice.
2. send, outside any transaction (no network I/O while holding row locks).
3. record: `-> sent` (and the recall's first notice time); on a named transient error back to
   `pending` for the task to retry with backoff; on a permanent error `failed` with the reason.

A round's first delivery goes in batches (`round_notices_deliver`): one task claims up to a batch of
the round's pending notices in one statement (FOR UPDATE SKIP LOCKED, so concurrent batches never
share a notice), sends them over one SMTP connection and one HTTP session with what they share read
and rendered once (a clinic's notice is rendered once, each recipient's name and signed link put
into its copy), and records what it sent in one statement at most RECORD_SENT_SECONDS after each
send, each notice with the moment its receiver took it. A notice that meets a transient error
leaves the batch for its own task (`notification_deliver`) and backoff; an unexpected error ends
the batch, what it sent is recorded, and its unsent claims come back through the stale-claim
requeue below. A database that goes away mid-batch (a restart, a fail-over) is waited for a few
seconds: the notices already sent are then recorded (not sent again) and the rest are given back
for the next batch at once.

A transient error is retried for as long as the notice's delivery window lasts, counted from its
first failed attempt (`delivery_window`: hours for class I and II recalls), so a notice outlives any
outage of its channel shorter than that window (DESIGN rule 10). The delay before each retry is
`retry_delay`: the documented backoff doubled per attempt up to its maximum, plus a jitter that only
ever adds. A notice that fails for good stays visible on its recall and can be resent
(`recalls.services.recall_notice_resend`) under the same message id.

A worker killed between 1 and 3 leaves the row in `sending`. `notifications_requeue_stale` (beat,
every minute) gives such a row back to the queue once its claim is older than the lease, which
outlasts the task's hard time limit, so a live delivery is never taken from its worker. If the
worker died after the receiver got the notice but before step 3 (for a batch: at most
RECORD_SENT_SECONDS of its sends), the notice is sent again: with the same Message-ID / webhook-id,
which is what a receiver deduplicates on. That window cannot be closed from this side of the wire;
the stable id closes it on the other.

A delivery task is queued when the transaction that wrote its notices commits. A broker that is
down then refuses it, and the notices are marked `queue_failed_at`: `notices_queue_failed` (beat,
every QUEUE_SWEEP_SECONDS) queues the round's delivery again as soon as the broker takes messages,
without waiting for the lease. A message the broker took and then lost (a broker restarted empty),
or one never published (a web process killed between its commit and the publish), is the lease's
to find, as before.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import random
import smtplib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from typing import Any, TypeVar

import requests
from django.conf import settings
from django.core.mail import get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Concat
from django.utils import timezone

from recalls import notices
from recalls.delivery.errors import (
    TRANSIENT_ERRORS,
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
# What opening a mail connection may raise (a refusal, a timeout, an SMTP reply).
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (*TRANSIENT_ERRORS, smtplib.SMTPException)
# What a notice's content reads with it.
NOTICE_RELATED = ("recall", "clinic", "contact", "endpoint")
# A database that went away mid-delivery (a restart, a fail-over) is waited for this long, so
# what the delivery did is recorded and what it did not do is given back at once, rather than
# after the lease; a longer outage leaves both to the stale-claim requeue.
DATABASE_ERRORS = (OperationalError, InterfaceError)
DATABASE_WAIT_SECONDS = 15.0
# A batch records its sends in one statement, at the latest this long after the oldest of them
# went (and whenever it ends): a worker killed mid-batch sends again, under the same ids, at most
# this much of what it had sent; one statement per notice would cost more than the notice.
RECORD_SENT_SECONDS = 1.0

Result = TypeVar("Result")


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


def _send_notice(
    notification: Notification,
    mail: BaseEmailBackend | None = None,
    facts: notices.RoundFacts | None = None,
    session: requests.Session | None = None,
) -> None:
    if notification.channel == Channel.EMAIL:
        message = notices.notice_email(notification, facts)
        message.connection = mail
        send_email(message)
    elif notification.endpoint is None:
        raise PermanentDeliveryError("webhook notice without an endpoint")
    else:
        send_webhook(
            endpoint=notification.endpoint,
            webhook_id=str(notification.message_id),
            payload=notices.webhook_payload(notification, facts=facts),
            session=session,
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


def _record_sent(sent: dict[int, datetime.datetime]) -> None:
    """Record notices sent, each at the moment its receiver took it, in one statement.

    Committed without waiting for the disk (synchronous_commit off, this transaction only): a
    flush per record would cost more than the notices. What a database crash can take back is the
    record of the last moment's sends, never a notice: such a notice is sent again, under the
    same Message-ID or webhook-id, which is what the receiver deduplicates on, the same window a
    worker that dies after sending leaves."""
    if not sent:
        return
    ids = list(sent)
    table = Notification._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit TO OFF")
        # Whatever happened to a row meanwhile (its claim expired and another task took it,
        # or gave up on it), the notice did go out: record that, once. An earlier attempt's
        # error is no longer true of it.
        cursor.execute(
            f"""
            UPDATE {table} n SET status = %s, sent_at = s.at, last_error = ''
            FROM unnest(%s::bigint[], %s::timestamptz[]) AS s(id, at)
            WHERE n.id = s.id AND n.status <> %s
            """,  # noqa: S608 - the table name is ours; values are parameters
            [
                NotificationStatus.SENT,
                ids,
                [sent[pk] for pk in ids],
                NotificationStatus.SENT,
            ],
        )


@dataclass
class _Sends:
    """What a batch sent and has not recorded yet, with the moment each went."""

    unrecorded: dict[int, datetime.datetime] = field(default_factory=dict)
    oldest: float = 0.0
    first: datetime.datetime | None = None

    def add(self, notification_id: int) -> None:
        at = timezone.now()
        if not self.unrecorded:
            self.oldest = time.monotonic()
        self.unrecorded[notification_id] = at
        self.first = min(self.first or at, at)

    def due(self) -> bool:
        return bool(self.unrecorded) and time.monotonic() - self.oldest >= RECORD_SENT_SECONDS

    def record(self) -> None:
        """Record what is unrecorded; safe to call again after a database error."""
        _record_sent(self.unrecorded)
        self.unrecorded = {}


def _record_first_notice(recall_id: int, at: datetime.datetime) -> None:
    # Drills are timed too; the earliest sent notice wins whatever order the workers finish in.
    Recall.objects.filter(pk=recall_id).filter(
        Q(first_notice_sent_at__isnull=True) | Q(first_notice_sent_at__gt=at)
    ).update(first_notice_sent_at=at)


def notification_deliver(notification_id: int) -> Outcome:
    """Deliver one notice if it is still pending. Raises TransientDeliveryError (with
    `retry_in`) when the task should retry later; safe to call any number of times, concurrently
    too.

    Runs outside any transaction: each UPDATE commits on its own."""
    claimed_at = timezone.now()
    if not _claim(notification_id, claimed_at):
        return Outcome.NOT_CLAIMED
    notification = Notification.objects.select_related(*NOTICE_RELATED).get(pk=notification_id)
    try:
        outcome = _attempt(notification, claimed_at)
    except _Released as released:
        raise released.error from None
    if outcome == Outcome.SENT:
        sent_at = timezone.now()
        _when_database_answers(partial(_record_sent, {notification_id: sent_at}))
        _record_first_notice(notification.recall_id, sent_at)
    return outcome


def _when_database_answers(write: Callable[[], Result]) -> Result:
    """Run `write`, and if the database has gone away, again on a new connection every second
    for up to DATABASE_WAIT_SECONDS; then raise the last error. Only outside a transaction."""
    deadline = time.monotonic() + DATABASE_WAIT_SECONDS
    while True:
        try:
            return write()
        except DATABASE_ERRORS:
            if time.monotonic() > deadline:
                raise
            logger.warning("database unavailable during a delivery; trying again in 1 s")
            time.sleep(1)
            with contextlib.suppress(DatabaseError):
                connection.close()


@dataclass(frozen=True)
class Batch:
    """What one batch delivery did: the notices sent or failed for good, and those that met a
    transient error and wait `retry_in` seconds for their own task."""

    sent: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    retry: list[tuple[int, float]] = field(default_factory=list)
    # Claimed, then given back unsent when the batch ran out of time.
    released: list[int] = field(default_factory=list)


def round_notices_deliver(
    recall_id: int, round_number: int, *, limit: int, seconds: float
) -> Batch:
    """Claim up to `limit` pending notices of a recall round and deliver them over one SMTP
    connection, without a task of its own per notice, reading what they share once. Safe to run
    any number of times, concurrently too: the claim skips rows another claim has locked and
    takes only rows still pending, so no notice is claimed twice.

    A notice that has already failed once waits for its own task and backoff (`failing_since`
    is set): a batch never brings its retry forward. A batch starts no send after `seconds`
    (slow receivers): it gives the rest back to the outbox for the next task. Runs outside any
    transaction."""
    claimed_at = timezone.now()
    ids = _claim_batch(recall_id, round_number, limit, claimed_at)
    batch = Batch()
    if not ids:
        return batch
    claimed = list(
        Notification.objects.select_related(*NOTICE_RELATED).filter(pk__in=ids).order_by("pk")
    )
    sends = _Sends()
    facts = notices.RoundFacts()
    deadline = time.monotonic() + seconds
    mail = _mail_connection()
    session = requests.Session()
    try:
        for index, notification in enumerate(claimed):
            if time.monotonic() > deadline:
                batch.released.extend(_release(claimed[index:], claimed_at))
                break
            try:
                outcome = _attempt(notification, claimed_at, mail, facts, session)
            except _Released as released:
                batch.retry.append((notification.pk, released.error.retry_in))
                outcome = Outcome.RETRY
            except DATABASE_ERRORS:
                # Lost before this notice went out: it and the rest go back to the outbox
                # (what went out before it is recorded below, once the database answers).
                unsent = claimed[index:]
                batch.released.extend(_when_database_answers(partial(_release, unsent, claimed_at)))
                break
            if outcome == Outcome.SENT:
                sends.add(notification.pk)
                batch.sent.append(notification.pk)
                if not sends.due():
                    continue
                try:
                    sends.record()
                except DATABASE_ERRORS:
                    # They went out: say so once the database is back, so they are not sent
                    # again, and give the rest back for the next batch.
                    _when_database_answers(sends.record)
                    unsent = claimed[index + 1 :]
                    batch.released.extend(
                        _when_database_answers(partial(_release, unsent, claimed_at))
                    )
                    break
                continue
            if outcome == Outcome.FAILED:
                batch.failed.append(notification.pk)
            # After an error the connections may be dead: the next message gets fresh ones.
            mail.close()
            mail = _mail_connection()
            session.close()
            session = requests.Session()
    except BaseException:
        # Whatever ended the batch, what went out is recorded rather than left to the lease: one
        # try, as a database that went away has been waited for already.
        with contextlib.suppress(DatabaseError):
            sends.record()
        raise
    finally:
        mail.close()
        session.close()
    _when_database_answers(sends.record)
    if sends.first is not None:
        _record_first_notice(recall_id, sends.first)
    return batch


def _release(notifications: list[Notification], claimed_at: datetime.datetime) -> list[int]:
    """Give claimed notices back unsent; the claim counted an attempt that never began."""
    ids = [notification.pk for notification in notifications]
    Notification.objects.filter(
        pk__in=ids, status=NotificationStatus.SENDING, claimed_at=claimed_at
    ).update(status=NotificationStatus.PENDING, attempts=F("attempts") - 1)
    return ids


def _mail_connection() -> BaseEmailBackend:
    """A connection to the mail server that the batch's messages share. When it cannot be
    opened, each message opens its own and meets the error itself, so it is recorded against
    that notice."""
    mail = get_connection()
    try:
        mail.open()
    except CONNECTION_ERRORS:
        mail.close()
    return mail


def _claim_batch(
    recall_id: int, round_number: int, limit: int, claimed_at: datetime.datetime
) -> list[int]:
    """The ids claimed. The locking SELECT is a materialised CTE, run once: as a subquery under
    the UPDATE it may be run again for each row, each run skipping the rows the UPDATE has just
    changed, and the LIMIT would bound nothing."""
    table = Notification._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH claimable AS MATERIALIZED (
                SELECT id FROM {table}
                WHERE recall_id = %s AND round = %s AND status = %s AND failing_since IS NULL
                ORDER BY id LIMIT %s
                FOR UPDATE SKIP LOCKED
            )
            UPDATE {table} n SET status = %s, attempts = n.attempts + 1, claimed_at = %s
            FROM claimable WHERE n.id = claimable.id AND n.status = %s
            RETURNING n.id
            """,  # noqa: S608 - the table name is ours; values are parameters
            [
                recall_id,
                round_number,
                NotificationStatus.PENDING,
                limit,
                NotificationStatus.SENDING,
                claimed_at,
                NotificationStatus.PENDING,
            ],
        )
        return [pk for (pk,) in cursor.fetchall()]


class _Released(Exception):
    """The attempt met a transient error and gave the notice back to the outbox."""

    def __init__(self, error: TransientDeliveryError) -> None:
        super().__init__(error.reason)
        self.error = error


def _attempt(
    notification: Notification,
    claimed_at: datetime.datetime,
    mail: BaseEmailBackend | None = None,
    facts: notices.RoundFacts | None = None,
    session: requests.Session | None = None,
) -> Outcome:
    """Send a notice this task has claimed and record a failure; the caller records a success.
    Raises _Released when the notice went back to pending for a retry."""
    notification_id = notification.pk
    # This attempt began at claimed_at; if it fails, the window counts from the first failure.
    failing_since = notification.failing_since or claimed_at
    try:
        _send_notice(notification, mail, facts, session)
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
        raise _Released(error) from error
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
# Refused by the broker


def round_queue_failed(recall_id: int, round_number: int) -> int:
    """The broker refused the round's delivery task: mark its pending notices for the sweep. No
    batch of the round runs (none was queued), so no claim meets these row locks."""
    return Notification.objects.filter(
        recall_id=recall_id,
        round=round_number,
        status=NotificationStatus.PENDING,
        queue_failed_at__isnull=True,
    ).update(queue_failed_at=timezone.now())


def notice_queue_failed(notification_id: int) -> int:
    """The broker refused the delivery task of this notice (a resend's)."""
    return Notification.objects.filter(
        pk=notification_id, status=NotificationStatus.PENDING, queue_failed_at__isnull=True
    ).update(queue_failed_at=timezone.now())


def rounds_queue_failed() -> list[tuple[int, int]]:
    """The (recall, round) pairs with pending notices whose delivery task the broker refused."""
    rows: Iterable[tuple[int, int]] = (
        Notification.objects.filter(
            status=NotificationStatus.PENDING, queue_failed_at__isnull=False
        )
        .order_by("recall_id", "round")
        .values_list("recall_id", "round")
        .distinct()
    )
    return list(rows)


def round_queue_retry(recall_id: int, round_number: int) -> int:
    """Clear the round's marks before the sweep queues its delivery again: before, so that the
    clearing never meets the round's batches; a refusal marks them again."""
    return Notification.objects.filter(
        recall_id=recall_id, round=round_number, queue_failed_at__isnull=False
    ).update(queue_failed_at=None)
