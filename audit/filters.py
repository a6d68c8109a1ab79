"""Query-string filters for the contact-data read record."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet

from audit.models import ContactDataRead
from common.api_fields import IdFilter, IsoDateTimeFilter


class ContactDataReadFilter(django_filters.FilterSet):
    clinic = IdFilter(field_name="clinic_id", help_text="Clinic id.")
    user = IdFilter(field_name="user_id", help_text="User id of the reader.")
    patient = IdFilter(
        method="filter_patient", help_text="Patient id: the reads that showed this patient."
    )
    at_after = IsoDateTimeFilter(
        field_name="at", lookup_expr="gte", help_text="Read at or after this ISO 8601 date-time."
    )
    at_before = IsoDateTimeFilter(
        field_name="at", lookup_expr="lte", help_text="Read at or before this ISO 8601 date-time."
    )

    class Meta:
        model = ContactDataRead
        fields: list[str] = []

    def filter_patient(
        self, queryset: QuerySet[ContactDataRead], name: str, value: int
    ) -> QuerySet[ContactDataRead]:
        # `@>` on the array: answered from the GIN index.
        return queryset.filter(patient_ids__contains=[value])
