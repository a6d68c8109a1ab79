"""Writes about the outbox after the recall's own transaction: a quality manager resending a notice
that failed for good (DESIGN rule 10).

A resent notice is the same notice: same row, same message id, so an e-mail's Message-ID and a
webhook's webhook-id do not change and a receiver that did get it once drops the duplicate. Its
delivery window starts again with its next failure.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from common.errors import DomainError, Problem
from common.services import history
from providers.models import Role
from providers.selectors import require_role
from recalls.models import (
    Channel,
    Notification,
    NotificationResend,
    NotificationStatus,
    RecallStatus,
)


@transaction.atomic
def recall_notice_resend(*, actor: Any, notification: Notification, reason: str) -> Notification:
    """Give a failed notice back to the outbox and queue its delivery after commit.

    Refused, with every reason at once: a notice that has not failed (`notice_not_failed`), a
    closed recall (`recall_closed`), a webhook endpoint that is deactivated
    (`webhook_endpoint_inactive`: reactivate it first), no reason (`reason_required`)."""
    require_role(actor, Role.QUALITY_MANAGER)
    notification = (
        Notification.objects.select_for_update(of=("self",), no_key=True)
        .select_related("recall", "endpoint")
        .get(pk=notification.pk)
    )
    reason = (reason or "").strip()
    problems = []
    if not reason:
        problems.append(Problem("reason_required", _("State why the notice is resent."), "reason"))
    if notification.status != NotificationStatus.FAILED:
        problems.append(
            Problem(
                "notice_not_failed",
                _("Only a notice that failed can be resent; this one is %(status)s.")
                % {"status": notification.status},
            )
        )
    if notification.recall.status != RecallStatus.OPEN:
        problems.append(
            Problem(
                "recall_closed",
                _("Recall %(recall)s is closed.") % {"recall": notification.recall.reference},
            )
        )
    endpoint = notification.endpoint
    if notification.channel == Channel.WEBHOOK and endpoint is not None and not endpoint.active:
        problems.append(
            Problem(
                "webhook_endpoint_inactive",
                _(
                    "The webhook endpoint %(endpoint)s is deactivated: %(why)s. Reactivate it (or "
                    "register a new one) before resending."
                )
                % {"endpoint": endpoint.name, "why": endpoint.deactivation_reason}
                if endpoint.deactivation_reason
                else _(
                    "The webhook endpoint %(endpoint)s is deactivated. Reactivate it (or register "
                    "a new one) before resending."
                )
                % {"endpoint": endpoint.name},
            )
        )
    if problems:
        status = 400 if [p.code for p in problems] == ["reason_required"] else 409
        raise DomainError(problems, status=status)

    now = timezone.now()
    with history(actor, reason):
        NotificationResend.objects.create(
            notification=notification,
            resent_by=actor,
            resent_at=now,
            reason=reason[:500],
            error_before=notification.last_error,
        )
    # claimed_at = now: the stale-notice requeue leaves it to the task queued below; should the
    # broker refuse that task, queue_failed_at is set and the sweep queues it.
    Notification.objects.filter(pk=notification.pk, status=NotificationStatus.FAILED).update(
        status=NotificationStatus.PENDING,
        last_error="",
        failing_since=None,
        failed_at=None,
        claimed_at=now,
        queue_failed_at=None,
    )
    _queue(notification.pk)
    notification.refresh_from_db()
    return notification


def _queue(notification_id: int) -> None:
    from recalls.tasks import notification_deliver

    notification_deliver.delay_on_commit(notification_id)
