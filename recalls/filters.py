"""Query-string filters for the recall and notice lists."""

from __future__ import annotations

import django_filters

from common.api_fields import IdFilter, StrictBooleanFilter
from recalls.models import (
    Channel,
    Notification,
    NotificationStatus,
    Recall,
    RecallClass,
    RecallDepth,
    RecallStatus,
)


class RecallFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=RecallStatus.choices)
    recall_class = django_filters.ChoiceFilter(choices=RecallClass.choices)
    depth = django_filters.ChoiceFilter(choices=RecallDepth.choices)
    is_drill = StrictBooleanFilter(field_name="is_drill", help_text="true: drills only.")
    lot = IdFilter(
        field_name="recall_lots__lot_id", distinct=True, help_text="Recalls that include this lot."
    )

    class Meta:
        model = Recall
        fields: list[str] = []


class NoticeFilter(django_filters.FilterSet):
    recall = IdFilter(field_name="recall_id")
    clinic = IdFilter(field_name="clinic_id")
    status = django_filters.ChoiceFilter(choices=NotificationStatus.choices)
    channel = django_filters.ChoiceFilter(choices=Channel.choices)

    class Meta:
        model = Notification
        fields: list[str] = []
