"""Query-string filters for patients, consent texts, treatments and adverse events."""

from __future__ import annotations

import django_filters
from django.db.models import Exists, OuterRef, Q, QuerySet
from django_filters.constants import EMPTY_VALUES

from common.api_fields import IdFilter, IsoDateTimeFilter, StrictBooleanFilter
from treatments.models import AdverseEvent, ConsentText, Patient, Treatment, TreatmentLine

SERIOUS = (
    "results_in_death",
    "life_threatening",
    "hospitalisation",
    "disability",
    "intervention_required",
)


class PatientFilter(django_filters.FilterSet):
    clinic = IdFilter(field_name="clinic_id", help_text="Clinic id.")
    reference = django_filters.CharFilter(
        field_name="reference", max_length=40, help_text="The patient reference, exactly."
    )

    class Meta:
        model = Patient
        fields: list[str] = []


class ConsentTextFilter(django_filters.FilterSet):
    code = django_filters.CharFilter(field_name="code", max_length=40, help_text="The text's code.")

    class Meta:
        model = ConsentText
        fields: list[str] = []


class TreatmentFilter(django_filters.FilterSet):
    clinic = IdFilter(field_name="clinic_id", help_text="Clinic id.")
    patient = IdFilter(field_name="patient_id", help_text="Patient id.")
    practitioner = IdFilter(field_name="practitioner_id", help_text="Practitioner id.")
    # A treatment names a lot at most once (treatment_line_unique_lot): the join repeats no row.
    lot = IdFilter(field_name="lines__lot_id", help_text="Lot id: treatments that used it.")
    performed_after = IsoDateTimeFilter(
        field_name="performed_at",
        lookup_expr="gte",
        help_text="Performed at or after this ISO 8601 date-time.",
    )
    performed_before = IsoDateTimeFilter(
        field_name="performed_at",
        lookup_expr="lte",
        help_text="Performed at or before this ISO 8601 date-time.",
    )

    class Meta:
        model = Treatment
        fields: list[str] = []

    def lines(self) -> QuerySet[TreatmentLine] | None:
        """When a lot is named, its lines that the other filters keep, each read on the line's own
        copy of its treatment's field (LINE_COPIES): one line for each treatment the filters keep,
        for `treatments.selectors.treatments_by_lines`. None without a lot, or with a filter a
        line cannot answer. Call after `is_valid()`."""
        named = {
            name: value
            for name, value in self.form.cleaned_data.items()
            if value not in EMPTY_VALUES
        }
        if "lot" not in named or not named.keys() <= LINE_LOOKUPS.keys():
            return None
        return TreatmentLine.objects.filter(
            **{LINE_LOOKUPS[name]: value for name, value in named.items()}
        )


# TreatmentFilter's filters as a treatment line reads them: its lot, and its copies of the
# treatment's clinic, patient, practitioner and time.
LINE_LOOKUPS = {
    "lot": "lot_id",
    "clinic": "clinic_id",
    "patient": "patient_id",
    "practitioner": "practitioner_id",
    "performed_after": "performed_at__gte",
    "performed_before": "performed_at__lte",
}


class AdverseEventFilter(django_filters.FilterSet):
    lot = IdFilter(
        method="filter_lot",
        help_text="Lot id: events that suspect it, or that name no lot after a treatment with it.",
    )
    product = IdFilter(
        method="filter_product", help_text="Product id: as `lot`, for any lot of the product."
    )
    clinic = IdFilter(field_name="treatment__clinic_id", help_text="Clinic id.")
    serious = StrictBooleanFilter(
        method="filter_serious",
        help_text="true: death, life-threatening, hospitalisation, disability or intervention "
        "required; false: none of those.",
    )

    class Meta:
        model = AdverseEvent
        fields: list[str] = []

    @staticmethod
    def _used(**lookup: int) -> Exists:
        return Exists(TreatmentLine.objects.filter(treatment_id=OuterRef("treatment_id"), **lookup))

    def filter_lot(
        self, queryset: QuerySet[AdverseEvent], name: str, value: int
    ) -> QuerySet[AdverseEvent]:
        return queryset.filter(Q(lot_id=value) | Q(lot__isnull=True) & self._used(lot_id=value))

    def filter_product(
        self, queryset: QuerySet[AdverseEvent], name: str, value: int
    ) -> QuerySet[AdverseEvent]:
        return queryset.filter(
            Q(lot__product_id=value) | Q(lot__isnull=True) & self._used(lot__product_id=value)
        )

    def filter_serious(
        self, queryset: QuerySet[AdverseEvent], name: str, value: bool
    ) -> QuerySet[AdverseEvent]:
        any_serious = Q()
        for flag in SERIOUS:
            any_serious |= Q(**{flag: True})
        return queryset.filter(any_serious) if value else queryset.exclude(any_serious)
