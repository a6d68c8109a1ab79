"""Query-string filters of the audit search (`GET /api/v1/audit/events/`, its CSV export and the
admin's audit search page). Bad input is a 400 naming the field."""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from pghistory.models import Events

from audit.selectors import audit_event_list, audited_record_types
from common.api_fields import IdFilter, IsoDateTimeFilter


@extend_schema_field(OpenApiTypes.STR)
class RecordTypeFilter(django_filters.ChoiceFilter):  # type: ignore[misc]
    """A model label among those with a history (read when validating, so models tracked later
    are included)."""


class AuditEventFilter(django_filters.FilterSet):  # type: ignore[misc]
    """Filters over pghistory's aggregate events; each value is handed to `audit_event_list`,
    which builds the query (the aggregate is not a table django-filter could filter field by
    field)."""

    record_type = RecordTypeFilter(
        choices=lambda: [(label, label) for label in audited_record_types()],
        method="keep",
        help_text="The record's model label, e.g. `lots.Lot` or `treatments.Treatment`.",
    )
    record = IdFilter(method="keep", help_text="The record's id (with `record_type`).")
    user = IdFilter(method="keep", help_text="Id of the user who made the change.")
    at_after = IsoDateTimeFilter(
        method="keep", help_text="Changed at or after this ISO 8601 date-time."
    )
    at_before = IsoDateTimeFilter(
        method="keep", help_text="Changed at or before this ISO 8601 date-time."
    )

    class Meta:
        model = Events
        fields: list[str] = []

    def __init__(self, *args: Any, require_range: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.require_range = require_range

    def keep(self, queryset: Any, name: str, value: Any) -> Any:
        return queryset  # applied together in filter_queryset

    @property
    def form(self) -> forms.Form:
        form: forms.Form = super().form
        if self.require_range:
            for name in ("at_after", "at_before"):
                form.fields[name].required = True
        return form

    def is_valid(self) -> bool:
        valid: bool = super().is_valid()
        data = getattr(self.form, "cleaned_data", {})
        if valid and data.get("record") is not None and not data.get("record_type"):
            self.form.add_error("record", _("Give the record_type of the record too."))
            return False
        return valid

    def filter_queryset(self, queryset: Any) -> Any:
        data = self.form.cleaned_data
        return audit_event_list(
            record_type=data.get("record_type") or None,
            record_id=data.get("record"),
            user_id=data.get("user"),
            at_after=data.get("at_after"),
            at_before=data.get("at_before"),
            oldest_first=self.require_range,
        )
