"""Clinic pages, treatments: the list of treatments, filtered, paged and as CSV."""

from __future__ import annotations

import datetime
from typing import Any, cast

from django import forms
from django.contrib.postgres.aggregates import StringAgg
from django.core.paginator import Paginator
from django.db.models import Exists, F, OuterRef, QuerySet, TextField, Value
from django.db.models.functions import Cast, Concat
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext_lazy

from common.csv import CsvFormatted, CsvText, csv_cells, csv_copy_response
from pages.base import page
from pages.treatments.common import PractitionerChoice
from providers.access import Access, access_for
from providers.models import Practitioner
from treatments.models import Treatment, TreatmentLine
from treatments.selectors import treatment_list

PAGE_SIZE = 50


class TreatmentFilters(forms.Form):
    performed_from = forms.DateField(
        required=False,
        label=gettext_lazy("From"),
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    performed_to = forms.DateField(
        required=False, label=gettext_lazy("To"), widget=forms.DateInput(attrs={"type": "date"})
    )
    lot = forms.CharField(required=False, max_length=20, label=gettext_lazy("Lot number"))
    practitioner = PractitionerChoice(
        Practitioner.objects.none(), required=False, label=gettext_lazy("Practitioner")
    )

    def __init__(self, *args: Any, access: Access, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        practitioners = Practitioner.objects.order_by("name", "pk")
        clinic_ids = access.visible_clinic_ids
        if clinic_ids is not None:
            practitioners = practitioners.filter(clinic_links__clinic_id__in=clinic_ids).distinct()
        self.fields["practitioner"].queryset = practitioners  # type: ignore[attr-defined]


def start_of(value: datetime.date) -> datetime.datetime:
    """The first instant of a calendar day in the active time zone (the user's)."""
    return timezone.make_aware(datetime.datetime.combine(value, datetime.time.min))


def filtered(request: HttpRequest, form: TreatmentFilters) -> QuerySet[Treatment]:
    treatments = treatment_list(user=request.user).order_by("-performed_at", "-pk")
    if not form.is_valid():
        return treatments
    data = form.cleaned_data
    if data["performed_from"]:
        treatments = treatments.filter(performed_at__gte=start_of(data["performed_from"]))
    if data["performed_to"]:
        following = data["performed_to"] + datetime.timedelta(days=1)
        treatments = treatments.filter(performed_at__lt=start_of(following))
    if data["lot"]:
        # Exists, not a join: two lots of one number (other manufacturers) repeat no row.
        treatments = treatments.filter(
            Exists(
                TreatmentLine.objects.filter(
                    treatment_id=OuterRef("pk"), lot__lot_number__iexact=data["lot"].strip()
                )
            )
        )
    if data["practitioner"]:
        treatments = treatments.filter(practitioner=data["practitioner"])
    return treatments


CSV_HEADER = (
    "treatment",
    "performed_at",
    "clinic",
    "patient_reference",
    "practitioner",
    "indication",
    "route",
    "anatomical_site",
    "lots",
)


CSV_FIELDS = (
    "pk",
    "performed_at",
    "clinic__name",
    "patient__reference",
    "practitioner__name",
    "indication",
    "route",
    "anatomical_site",
    "lots_cell",
)


def csv_source(treatments: QuerySet[Treatment]) -> QuerySet[Any]:
    """The CSV's cells (CSV_HEADER) of `treatments`, in their order, formatted by PostgreSQL for
    COPY (common.csv): the lots cell is each line's `lot number (product) xunits`, by line, joined
    by `; `, empty for a treatment without lines."""
    line_text = Concat(
        F("lot__lot_number"),
        Value(" ("),
        F("lot__product__name"),
        Value(") x"),
        Cast("units", TextField()),
        output_field=TextField(),
    )
    lots = CsvFormatted(
        TreatmentLine.objects.filter(treatment_id=OuterRef("pk"))
        .order_by()
        .values("treatment_id")
        .annotate(cell=CsvText(StringAgg(line_text, delimiter="; ", order_by=("id",))))
        .values("cell")
    )
    return csv_cells(treatments.annotate(lots_cell=lots), CSV_FIELDS)


@page()
def treatments_index(request: HttpRequest) -> HttpResponse:
    access = access_for(request)
    form = TreatmentFilters(request.GET or None, access=access)
    treatments = filtered(request, form)
    if request.GET.get("format") == "csv":
        # A streamed download, written by PostgreSQL (COPY) as the rows arrive: the page wrapper
        # passes it through untouched.
        return cast(
            HttpResponse,
            csv_copy_response("treatments.csv", CSV_HEADER, csv_source(treatments)),
        )
    rows = Paginator(treatments, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    query.pop("format", None)
    return render(
        request,
        "pages/treatments/index.html",
        {
            "nav": "treatments",
            "form": form,
            "rows": rows,
            "query": query.urlencode(),
            "contact_clinic_ids": access.contact_clinic_ids,
            "many_clinics": access.visible_clinic_ids is None or len(access.visible_clinic_ids) > 1,
        },
    )


urlpatterns = [
    path("treatments/", treatments_index, name="treatments"),
]
