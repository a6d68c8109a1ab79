"""Reads about recall notices and the webhook endpoints that receive them (the outbox)."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce

from recalls.models import Notification, NotificationResend, Recall, WebhookEndpoint
from treatments.selectors import visible_clinic_ids


def notice_list(*, user: Any) -> QuerySet[Notification]:
    """Recall notices with their delivery state: every notice for network roles; for clinic
    staff, their own clinics' notices (not the network endpoints')."""
    resends = (
        NotificationResend.objects.filter(notification_id=OuterRef("pk"))
        .order_by()
        .values("notification_id")
        .annotate(count=Count("pk"))
        .values("count")
    )
    notices = Notification.objects.select_related("recall", "clinic", "endpoint").annotate(
        resend_count=Coalesce(Subquery(resends, output_field=IntegerField()), 0)
    )
    clinic_ids = visible_clinic_ids(user)
    if clinic_ids is None:
        return notices.order_by("-recall_id", "round", "pk")
    return notices.filter(clinic_id__in=clinic_ids).order_by("-recall_id", "round", "pk")


def webhook_endpoint_list() -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.select_related("clinic").order_by("name", "pk")


def notification_list(*, recall: Recall, clinic_ids: list[int] | None) -> QuerySet[Notification]:
    """The recall's outbox rows; clinic staff see their own clinics' notices only."""
    notifications = Notification.objects.filter(recall=recall).select_related("clinic")
    if clinic_ids is not None:
        notifications = notifications.filter(clinic_id__in=clinic_ids)
    return notifications.order_by("round", "clinic__name", "channel", "recipient", "pk")
