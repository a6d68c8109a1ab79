"""Delivery of recall notices, the stale-claim requeue and reminders. Tasks take primary keys, are
safe to run twice (recalls.delivery claims every notice before sending it), retry only the named
transient errors, with exponential backoff, and have time limits."""

from __future__ import annotations

import functools
import logging
from typing import Any

from celery import Task, shared_task
from celery.contrib.django.task import DjangoTask
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, transaction
from kombu.exceptions import OperationalError as BrokerUnavailable

from recalls import delivery, expiry, services
from recalls.models import Notification, NotificationStatus

logger = logging.getLogger(__name__)

DELIVERY_TIME_LIMIT = settings.RECALL_DELIVERY_TIME_LIMIT_SECONDS

# A database that is restarting or failing over refuses connections for a few seconds: a
# delivery task that meets it runs again after a backoff (2, 4, 8, ... s, at most a minute)
# rather than dropping its message. What the task had claimed comes back through the requeue.
DATABASE_ERRORS = (OperationalError, InterfaceError)
DATABASE_RETRY: dict[str, Any] = {
    "autoretry_for": DATABASE_ERRORS,
    "retry_backoff": 2,
    "retry_backoff_max": 60,
    "retry_jitter": False,
    "retry_kwargs": {"max_retries": 12},
}


class DeliveryTask(DjangoTask):  # type: ignore[misc]  # celery ships no types
    """Queued once the recall's transaction commits. A broker that is down then cannot take the
    message: the recall and its notices are committed already, so the request still succeeds,
    and the notices wait in the outbox (`pending`), marked `queue_failed_at`, until the sweep
    (`notices_queue_failed`, beat every QUEUE_SWEEP_SECONDS) queues their round again as soon as
    the broker answers. Nothing is lost and the claim keeps anything from going twice."""

    def delay_on_commit(self, *args: Any, **kwargs: Any) -> None:
        transaction.on_commit(functools.partial(self.publish, args, kwargs))

    def refused(self, *args: Any) -> None:
        """Mark what the broker's refusing the message with these arguments leaves undelivered;
        nothing by default."""

    def publish(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        """Queue the task; a broker that refuses it is logged and its notices marked."""
        try:
            self.delay(*args, **kwargs)
        except BrokerUnavailable as error:
            logger.error(
                "broker unavailable, %s%r not queued; the sweep queues its notices once the "
                "broker is back: %s",
                self.name,
                args,
                error,
            )
            try:
                self.refused(*args)
            except DatabaseError as mark_error:
                # Unmarked, the notices are the stale-claim requeue's, after the lease.
                logger.error("%s%r not marked for the sweep: %s", self.name, args, mark_error)
            return False
        return True


class RoundDeliveryTask(DeliveryTask):
    def refused(self, *args: Any) -> None:
        recall_id, round_number = args
        delivery.round_queue_failed(recall_id, round_number)


class NoticeDeliveryTask(DeliveryTask):
    def refused(self, *args: Any) -> None:
        (notification_id,) = args
        delivery.notice_queue_failed(notification_id)


# Notices one delivery task sends: enough that a task's own cost (its message, its claim, its
# mail connection and HTTP session, its clinics' figures and rendered notices) is shared out, few
# enough that the round still spreads over every worker (a round of 2,000: 20 tasks).
NOTICES_PER_TASK = 100
# A batch starts no send after this long, so that its last send, which may wait for a slow
# receiver's timeout, still ends inside the task's time limit.
BATCH_SECONDS = 15.0


@shared_task(
    base=RoundDeliveryTask,
    name="recalls.recall_notices_send",
    acks_late=True,
    **DATABASE_RETRY,
    soft_time_limit=DELIVERY_TIME_LIMIT - 10,
    time_limit=DELIVERY_TIME_LIMIT,
)
def recall_notices_send(recall_id: int, round_number: int) -> int:
    """Fan out: one batch task per NOTICES_PER_TASK pending notices of the round. Running it
    again queues batches for the notices still pending (a batch that finds none sends nothing)."""
    pending = Notification.objects.filter(
        recall_id=recall_id,
        round=round_number,
        status=NotificationStatus.PENDING,
        failing_since__isnull=True,
    ).count()
    for _ in range(-(-pending // NOTICES_PER_TASK)):
        round_notices_deliver.delay(recall_id, round_number)
    return pending


@shared_task(
    base=DeliveryTask,
    name="recalls.round_notices_deliver",
    acks_late=True,
    **DATABASE_RETRY,
    soft_time_limit=DELIVERY_TIME_LIMIT - 10,
    time_limit=DELIVERY_TIME_LIMIT,
)
def round_notices_deliver(recall_id: int, round_number: int) -> dict[str, int]:
    """Deliver up to NOTICES_PER_TASK pending notices of the round, each exactly once. A notice
    that meets a transient error gets its own task, with the backoff delivery says; a batch out
    of time queues the next one for the notices it gave back."""
    batch = delivery.round_notices_deliver(
        recall_id, round_number, limit=NOTICES_PER_TASK, seconds=BATCH_SECONDS
    )
    for notification_id, retry_in in batch.retry:
        notification_deliver.apply_async((notification_id,), countdown=retry_in)
    if batch.released:
        round_notices_deliver.delay(recall_id, round_number)
    return {
        "sent": len(batch.sent),
        "failed": len(batch.failed),
        "retry": len(batch.retry),
        "released": len(batch.released),
    }


@shared_task(
    base=NoticeDeliveryTask,
    bind=True,
    name="recalls.notification_deliver",
    acks_late=True,
    **DATABASE_RETRY,
    # The notice's delivery window decides when to give up (delivery marks it failed), and
    # delivery says how long to wait: Celery neither stops first nor draws its own delay.
    max_retries=None,
    soft_time_limit=DELIVERY_TIME_LIMIT - 10,
    time_limit=DELIVERY_TIME_LIMIT,
)
def notification_deliver(self: Task, notification_id: int) -> str:
    """Deliver one notice exactly once: claim, send outside any transaction, record."""
    try:
        return str(delivery.notification_deliver(notification_id))
    except delivery.TransientDeliveryError as error:
        raise self.retry(exc=error, countdown=error.retry_in) from error


@shared_task(
    name="recalls.notifications_requeue_stale",
    soft_time_limit=DELIVERY_TIME_LIMIT - 10,
    time_limit=DELIVERY_TIME_LIMIT,
)
def notifications_requeue_stale() -> int:
    """Beat, every minute: queue again the notices a dead worker left behind."""
    ids = delivery.notifications_requeue_stale()
    for notification_id in ids:
        notification_deliver.delay(notification_id)
    return len(ids)


@shared_task(
    name="recalls.notices_queue_failed",
    soft_time_limit=DELIVERY_TIME_LIMIT - 10,
    time_limit=DELIVERY_TIME_LIMIT,
)
def notices_queue_failed() -> int:
    """Beat, every QUEUE_SWEEP_SECONDS: queue again the delivery of every round with notices whose
    task the broker refused (it was down at their commit), without waiting for the lease. Beat
    reaches the workers only through the broker, so this runs as soon as the broker is back.
    Returns the rounds queued."""
    rounds = delivery.rounds_queue_failed()
    queued = 0
    for recall_id, round_number in rounds:
        delivery.round_queue_retry(recall_id, round_number)
        queued += recall_notices_send.publish((recall_id, round_number), {})
    if rounds:
        logger.warning("recall rounds queued again after the broker refused them: %s", rounds)
    return queued


@shared_task(name="recalls.recall_reminders_send")
def recall_reminders_send() -> dict[str, Any]:
    """Beat, every 15 minutes: remind clinics that have not acknowledged, escalate to the quality
    managers. Claims each reminder first; a run that overlaps another sends nothing twice."""
    report = services.recall_reminders_send()
    return {
        "reminded": len(report.reminded),
        "escalated": len(report.escalated),
        "failed": len(report.failed),
    }


@shared_task(name="recalls.expiry_watch", soft_time_limit=240, time_limit=300)
def expiry_watch() -> dict[str, int]:
    """Beat, daily: warn clinics of stock expiring within 90/60/30 days and the quality managers
    of manufacturer certificates expiring within 60 days, each warning once per threshold."""
    report = expiry.expiry_watch()
    return {
        "stock_warnings": report.stock_warnings,
        "certificate_warnings": report.certificate_warnings,
        "unsent": len(report.unsent),
    }
