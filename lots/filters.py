"""Query-string filters for the lot, donor, product and certificate lists."""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from common.api_fields import IdFilter, IsoDateFilter, StrictBooleanFilter
from common.validators import normalise_gtin
from lots.models import (
    Certificate,
    CertificateKind,
    Donor,
    Eligibility,
    Lot,
    LotStatus,
    Product,
    SourceKind,
    Tissue,
)
from lots.sec import search_parts
from lots.selectors import lots_matching_sec


class _GtinField(forms.CharField):
    """Any GS1 GTIN length (8, 12, 13, 14 digits); matched as the stored GTIN-14."""

    def to_python(self, value: Any) -> str | None:
        raw: str | None = super().to_python(value)
        if not raw:
            return raw
        try:
            return normalise_gtin(raw)
        except ValidationError as error:
            raise forms.ValidationError(error.messages[0], code=error.code) from error


class GtinFilter(django_filters.CharFilter):
    field_class = _GtinField


class _SecField(forms.CharField):
    """A Single European Code or its start (lots.sec.search_parts), eye-readable or not."""

    def to_python(self, value: Any) -> str | None:
        raw: str | None = super().to_python(value)
        if raw and search_parts(raw) is None:
            raise forms.ValidationError(
                _(
                    "Give a Single European Code or its start: letters and digits, up to 40 "
                    "(spaces and a leading SEC allowed)."
                ),
                code="sec_search_invalid",
            )
        return raw


class SecFilter(django_filters.CharFilter):
    field_class = _SecField


class ProductFilter(django_filters.FilterSet):
    manufacturer = IdFilter(field_name="manufacturer_id", help_text="Manufacturer id.")
    source_kind = django_filters.ChoiceFilter(choices=SourceKind.choices)
    tissue = django_filters.ChoiceFilter(choices=Tissue.choices)
    gtin = GtinFilter(
        field_name="gtin", max_length=14, help_text="GTIN-8, -12, -13 or -14; matched as GTIN-14."
    )

    class Meta:
        model = Product
        fields: list[str] = []


class DonorFilter(django_filters.FilterSet):
    eligibility = django_filters.ChoiceFilter(choices=Eligibility.choices)
    tissue = django_filters.ChoiceFilter(choices=Tissue.choices)
    code = django_filters.CharFilter(
        field_name="code", max_length=32, help_text="The donor code, exactly."
    )

    class Meta:
        model = Donor
        fields: list[str] = []


class LotFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=LotStatus.choices)
    product = IdFilter(field_name="product_id", help_text="Product id.")
    manufacturer = IdFilter(field_name="manufacturer_id", help_text="Manufacturer id.")
    lot_number = django_filters.CharFilter(
        field_name="lot_number", max_length=20, help_text="The lot number, exactly."
    )
    expires_before = IsoDateFilter(
        field_name="expires_on", lookup_expr="lte", help_text="Expires on or before this date."
    )
    expires_after = IsoDateFilter(
        field_name="expires_on", lookup_expr="gte", help_text="Expires on or after this date."
    )
    expired = StrictBooleanFilter(
        method="filter_expired",
        help_text="true: expired today (past the expiry date); false: still usable today.",
    )
    sec = SecFilter(
        method="filter_sec",
        max_length=60,
        help_text="Single European Code: the full code, its donation identification sequence, "
        "or a leading part; eye-readable form (SEC prefix, spaces) accepted.",
    )

    class Meta:
        model = Lot
        fields: list[str] = []

    def filter_sec(self, queryset: QuerySet[Lot], name: str, value: str) -> QuerySet[Lot]:
        return lots_matching_sec(queryset, value)

    def filter_expired(self, queryset: QuerySet[Lot], name: str, value: bool) -> QuerySet[Lot]:
        # Lot.is_expired: usable through the expiry date, expired from the day after.
        today = timezone.localdate()
        if value:
            return queryset.filter(expires_on__lt=today)
        return queryset.filter(expires_on__gte=today)


class CertificateFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=CertificateKind.choices)
    manufacturer = IdFilter(field_name="manufacturer_id", help_text="Manufacturer id.")
    lot = IdFilter(field_name="lot_id", help_text="Lot id.")
    current = StrictBooleanFilter(
        method="filter_current",
        help_text="true: only certificates no newer version supersedes; false: only superseded.",
    )

    class Meta:
        model = Certificate
        fields: list[str] = []

    def filter_current(
        self, queryset: QuerySet[Certificate], name: str, value: bool
    ) -> QuerySet[Certificate]:
        return queryset.filter(superseded_by__isnull=value)
