"""Query-string filters for the list of history imports."""

from __future__ import annotations

import django_filters

from common.api_fields import IdFilter
from history.models import HistoryImport, ImportKind, ImportStatus


class HistoryImportFilter(django_filters.FilterSet):
    clinic = IdFilter(field_name="clinic_id", help_text="Clinic id.")
    kind = django_filters.ChoiceFilter(choices=ImportKind.choices)
    status = django_filters.ChoiceFilter(choices=ImportStatus.choices)

    class Meta:
        model = HistoryImport
        fields: list[str] = []
