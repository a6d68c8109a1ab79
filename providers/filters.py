"""Query-string filters for the provider lists."""

from __future__ import annotations

import django_filters
from django.db.models import Q, QuerySet

from providers.models import Clinic, Manufacturer, Practitioner, Profession


class ManufacturerFilter(django_filters.FilterSet):
    country = django_filters.CharFilter(
        field_name="country", max_length=2, help_text="ISO 3166-1 alpha-2 code, e.g. DE."
    )
    name = django_filters.CharFilter(
        field_name="legal_name",
        lookup_expr="icontains",
        max_length=200,
        help_text="Part of the legal name, any case.",
    )

    class Meta:
        model = Manufacturer
        fields: list[str] = []


class ClinicFilter(django_filters.FilterSet):
    jurisdiction = django_filters.CharFilter(
        method="filter_jurisdiction",
        max_length=6,
        help_text="ISO 3166 code. A country (US) also matches its subdivisions (US-TX).",
    )

    class Meta:
        model = Clinic
        fields: list[str] = []

    def filter_jurisdiction(
        self, queryset: QuerySet[Clinic], name: str, value: str
    ) -> QuerySet[Clinic]:
        value = value.upper()
        if "-" in value:
            return queryset.filter(jurisdiction=value)
        return queryset.filter(Q(jurisdiction=value) | Q(jurisdiction__startswith=f"{value}-"))


class PractitionerFilter(django_filters.FilterSet):
    name = django_filters.CharFilter(
        field_name="name",
        lookup_expr="icontains",
        max_length=200,
        help_text="Part of the name, any case.",
    )
    profession = django_filters.ChoiceFilter(choices=Profession.choices)

    class Meta:
        model = Practitioner
        fields: list[str] = []
