"""Clinic pages, recalls: the list of recalls (open and closed) with their progress, filtered,
paged and as CSV; and the open recalls the home page shows (`open_recalls_for`).

The list computes its progress figures in its one query (annotated subqueries), so it runs the
same number of queries whatever the number of recalls."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.db.models import OuterRef, Q, QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils.translation import gettext_lazy

from common.csv import csv_response
from pages.base import page
from pages.recalls.common import _count, _page_of, _query_without_page, _sum
from providers.access import access_for
from providers.models import Clinic
from recalls.models import (
    Acknowledgement,
    PatientContactAttempt,
    Recall,
    RecallClass,
    RecallExposure,
    RecallStatus,
    RecallStock,
    StockDisposition,
)
from recalls.selectors import FINAL_OUTCOMES, recall_list


def _within(queryset: QuerySet[Any], clinic_ids: list[int] | None, field: str) -> QuerySet[Any]:
    return queryset if clinic_ids is None else queryset.filter(**{f"{field}__in": clinic_ids})


def with_progress(recalls: QuerySet[Recall], clinic_ids: list[int] | None) -> QuerySet[Recall]:
    """The recalls annotated with the figures `recall_effectiveness` gives for one recall:
    consignee clinics and those that acknowledged, patients exposed and contacted (a final
    outcome on record), units held and accounted for; limited to `clinic_ids` when given."""
    recall = OuterRef("pk")
    consignee = OuterRef(OuterRef("pk"))
    clinics = _within(
        Clinic.objects.filter(
            Q(pk__in=RecallExposure.objects.filter(recall_id=consignee).values("clinic_id"))
            | Q(pk__in=RecallStock.objects.filter(recall_id=consignee).values("clinic_id"))
        ),
        clinic_ids,
        "pk",
    )
    return recalls.annotate(
        clinics_total=_count(clinics),
        clinics_acknowledged=_count(
            _within(Acknowledgement.objects.filter(recall_id=recall), clinic_ids, "clinic_id")
        ),
        patients_exposed=_count(
            _within(RecallExposure.objects.filter(recall_id=recall), clinic_ids, "clinic_id"),
            "patient_id",
            distinct=True,
        ),
        patients_contacted=_count(
            _within(
                PatientContactAttempt.objects.filter(recall_id=recall, outcome__in=FINAL_OUTCOMES),
                clinic_ids,
                "patient__clinic_id",
            ),
            "patient_id",
            distinct=True,
        ),
        units_held=_sum(
            _within(RecallStock.objects.filter(recall_id=recall), clinic_ids, "clinic_id"),
            "quantity_held",
        ),
        units_accounted=_sum(
            _within(StockDisposition.objects.filter(recall_id=recall), clinic_ids, "clinic_id"),
            "quantity",
        ),
    )


def percent(part: int, whole: int) -> int | None:
    return None if not whole else round(100 * min(part, whole) / whole)


def open_recalls_for(user: Any, *, limit: int = 10) -> list[Recall]:
    """The open recalls the user sees (clinic staff: those that reached their clinics), newest
    first, each with its progress figures (`clinics_total`, `clinics_acknowledged`,
    `patients_exposed`, `patients_contacted`, `units_held`, `units_accounted`) over the clinics
    the user sees; two queries."""
    access = access_for(user)
    if not access.has_role:
        return []
    recalls = recall_list(user=user).filter(status=RecallStatus.OPEN)
    return list(
        with_progress(recalls, access.visible_clinic_ids).order_by("-opened_at", "-pk")[:limit]
    )


class RecallFilterForm(forms.Form):
    status = forms.ChoiceField(
        label=gettext_lazy("Status"),
        required=False,
        choices=[("", gettext_lazy("Open and closed")), *RecallStatus.choices],
    )
    recall_class = forms.ChoiceField(
        label=gettext_lazy("Class"),
        required=False,
        choices=[("", gettext_lazy("Every class")), *[(v, v) for v in RecallClass.values]],
    )
    reference = forms.CharField(label=gettext_lazy("Reference"), required=False, max_length=40)


def _filtered(request: HttpRequest, form: RecallFilterForm) -> QuerySet[Recall]:
    access = access_for(request)
    recalls = with_progress(recall_list(user=request.user), access.visible_clinic_ids)
    if form.is_valid():
        if form.cleaned_data["status"]:
            recalls = recalls.filter(status=form.cleaned_data["status"])
        if form.cleaned_data["recall_class"]:
            recalls = recalls.filter(recall_class=form.cleaned_data["recall_class"])
        if form.cleaned_data["reference"]:
            recalls = recalls.filter(reference__icontains=form.cleaned_data["reference"].strip())
    return recalls.order_by("-opened_at", "-pk")


def _csv(recalls: Any) -> StreamingHttpResponse:
    header = [
        "reference",
        "status",
        "class",
        "depth",
        "drill",
        "opened_at",
        "closed_at",
        "lots",
        "clinics_acknowledged",
        "clinics_total",
        "patients_contacted",
        "patients_exposed",
        "units_accounted",
        "units_held",
    ]
    rows = (
        [
            recall.reference,
            recall.status,
            recall.recall_class,
            recall.depth,
            recall.is_drill,
            recall.opened_at,
            recall.closed_at,
            " ".join(row.lot.lot_number for row in recall.recall_lots.all()),
            recall.clinics_acknowledged,
            recall.clinics_total,
            recall.patients_contacted,
            recall.patients_exposed,
            recall.units_accounted,
            recall.units_held,
        ]
        for recall in recalls
    )
    return csv_response("recalls.csv", header, rows)


@page()
def recalls_index(request: HttpRequest) -> HttpResponse:
    form = RecallFilterForm(request.GET or None)
    recalls = _filtered(request, form)
    listing = _page_of(request, recalls)
    if request.GET.get("format") == "csv":
        return cast(HttpResponse, _csv(listing.object_list))
    return render(
        request,
        "pages/recalls/list.html",
        {
            "nav": "recalls",
            "form": form,
            "listing": listing,
            "query": _query_without_page(request),
        },
    )


urlpatterns = [
    path("recalls/", recalls_index, name="recalls"),
]
