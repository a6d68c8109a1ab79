"""Query-string filters for the recall list."""

from __future__ import annotations

import django_filters

from recalls.models import Recall, RecallClass, RecallDepth, RecallStatus
from traceability.api_fields import IdFilter, StrictBooleanFilter


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
