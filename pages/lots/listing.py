"""Clinic pages, lots: the list of lots, filtered, paged and as CSV."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any, cast

from django import forms
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext_lazy

from common.csv import csv_response
from lots.models import Lot, Product
from lots.selectors import lot_list, lots_matching_sec
from pages.base import page
from pages.lots.common import ATTENTION_DAYS, STATUS_LABELS
from providers.models import Manufacturer

PAGE_SIZE = 50


EXPIRY_CHOICES = [
    ("", gettext_lazy("Any expiry")),
    ("usable", gettext_lazy("Not expired")),
    ("soon", gettext_lazy("Expires within 60 days")),
    ("expired", gettext_lazy("Expired")),
]


class ProductChoice(forms.ModelChoiceField):  # type: ignore[type-arg]
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.name} ({obj.manufacturer.legal_name})"


class LotFilterForm(forms.Form):
    q = forms.CharField(
        label=gettext_lazy("Lot number"),
        required=False,
        max_length=20,
    )
    status = forms.ChoiceField(
        label=gettext_lazy("Status"),
        required=False,
        choices=[("", gettext_lazy("Any status")), *STATUS_LABELS.items()],
    )
    product = ProductChoice(
        label=gettext_lazy("Product"),
        required=False,
        empty_label=gettext_lazy("Any product"),
        queryset=Product.objects.select_related("manufacturer").order_by("name", "pk"),
    )
    manufacturer = forms.ModelChoiceField(
        label=gettext_lazy("Manufacturer"),
        required=False,
        empty_label=gettext_lazy("Any manufacturer"),
        queryset=Manufacturer.objects.order_by("legal_name"),
    )
    expiry = forms.ChoiceField(label=gettext_lazy("Expiry"), required=False, choices=EXPIRY_CHOICES)
    sec = forms.CharField(
        label=gettext_lazy("Single European Code"),
        required=False,
        max_length=60,
        help_text=gettext_lazy("The full code, or its start such as the donation sequence."),
    )

    def lots(self, today: datetime.date) -> QuerySet[Lot]:
        lots = lot_list().prefetch_related(None)
        if not self.is_valid():
            return lots.none()
        data = self.cleaned_data
        if data["q"]:
            lots = lots.filter(lot_number__icontains=data["q"].strip())
        if data["status"]:
            lots = lots.filter(status=data["status"])
        if data["product"]:
            lots = lots.filter(product=data["product"])
        if data["manufacturer"]:
            lots = lots.filter(manufacturer=data["manufacturer"])
        if data["sec"]:
            lots = lots_matching_sec(lots, data["sec"])
        # Lot.is_expired: usable through the expiry date, expired from the day after.
        if data["expiry"] == "usable":
            lots = lots.filter(expires_on__gte=today)
        elif data["expiry"] == "soon":
            horizon = today + datetime.timedelta(days=ATTENTION_DAYS)
            lots = lots.filter(expires_on__gte=today, expires_on__lte=horizon)
        elif data["expiry"] == "expired":
            lots = lots.filter(expires_on__lt=today)
        return lots.order_by("-manufactured_on", "lot_number", "pk")


CSV_HEADER = [
    "lot_number",
    "product",
    "manufacturer",
    "status",
    "manufactured_on",
    "expires_on",
    "quantity",
    "unit",
    "regulatory_basis",
    "regulatory_number",
]


def _csv_rows(lots: QuerySet[Lot]) -> Iterator[list[Any]]:
    for lot in lots.iterator(chunk_size=500):
        yield [
            lot.lot_number,
            lot.product.name,
            lot.manufacturer.legal_name,
            lot.status,
            lot.manufactured_on,
            lot.expires_on,
            lot.quantity,
            lot.unit,
            lot.regulatory_basis,
            lot.regulatory_number,
        ]


@page()
def lots_index(request: HttpRequest) -> HttpResponse:
    today = timezone.localdate()
    form = LotFilterForm(request.GET or None)
    lots = form.lots(today) if form.is_bound else lot_list().prefetch_related(None)
    if request.GET.get("format") == "csv":
        # Streamed; `page` hands any response through unchanged (its type names HttpResponse).
        return cast(HttpResponse, csv_response("lots.csv", CSV_HEADER, _csv_rows(lots)))
    if not form.is_bound:
        form = LotFilterForm()
    shown = Paginator(lots, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    query.pop("format", None)
    return render(
        request,
        "pages/lots/list.html",
        {
            "nav": "lots",
            "form": form,
            "shown": shown,
            "rows": [(lot, lot.is_expired(on=today)) for lot in shown],
            "query": query.urlencode(),
            "status_labels": STATUS_LABELS,
        },
    )


urlpatterns = [
    path("lots/", lots_index, name="lots"),
]
