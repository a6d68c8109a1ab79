"""Clinic pages, stock: stock on hand per lot and state (filtered, paged, as CSV), and what the
home page shows (`expiring_stock`, `unusable_stock`).

Only accepted units of a released, unexpired lot are usable; quarantined, blocked and rejected
units are listed with the reason they are not. Reads go through stock.selectors, scoped by the
user's access."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any, cast

from django import forms
from django.core.paginator import Paginator
from django.db.models import Q, QuerySet, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from common.csv import csv_response
from lots.models import LotStatus
from pages.base import page
from pages.stock.common import (
    FEFO,
    _unusable_q,
    badge_code,
    keeps_stock,
    keeps_stock_at,
    why_not_usable,
)
from providers.access import Access, access_for
from providers.models import Clinic
from stock.models import StockBalance, StockState
from stock.selectors import stock_balance_list

PAGE_SIZE = 50
EXPIRY_WINDOWS = (30, 60, 90)


def expiring_stock(user: Any, *, days: int = 90, limit: int = 20) -> list[StockBalance]:
    """Usable units the user sees whose lot expires within `days` (today included), first
    expiry first."""
    today = timezone.localdate()
    return list(
        stock_balance_list(user=user)
        .filter(
            state=StockState.ACCEPTED,
            lot__status=LotStatus.RELEASED,
            lot__expires_on__gte=today,
            lot__expires_on__lte=today + datetime.timedelta(days=days),
        )
        .order_by(*FEFO)[:limit]
    )


def unusable_stock(user: Any, *, limit: int = 20) -> list[StockBalance]:
    """Units on hand that must not be used: quarantined, blocked or rejected, or of a lot that is
    not released or has expired. These wait for a decision, a return or a destruction."""
    balances = stock_balance_list(user=user).filter(_unusable_q(timezone.localdate()))
    return list(balances.order_by(*FEFO)[:limit])


@dataclass
class Row:
    balance: StockBalance
    usable: bool
    why_not: str
    days_left: int
    may_move: bool
    badge: str


STATE_FILTERS = [
    ("", gettext_lazy("All states")),
    ("usable", gettext_lazy("Usable only")),
    ("unusable", gettext_lazy("Not usable")),
    (StockState.ACCEPTED.value, gettext_lazy("Accepted")),
    (StockState.QUARANTINED.value, gettext_lazy("Quarantined")),
    (StockState.BLOCKED.value, gettext_lazy("Blocked (recall)")),
    (StockState.REJECTED.value, gettext_lazy("Rejected")),
]
EXPIRY_FILTERS = [
    ("", gettext_lazy("Any expiry")),
    ("30", gettext_lazy("Within 30 days")),
    ("60", gettext_lazy("Within 60 days")),
    ("90", gettext_lazy("Within 90 days")),
    ("expired", gettext_lazy("Expired")),
]


class StockFilterForm(forms.Form):
    clinic = forms.ModelChoiceField(
        Clinic.objects.none(), required=False, empty_label=gettext_lazy("All clinics")
    )
    state = forms.ChoiceField(choices=STATE_FILTERS, required=False, label=gettext_lazy("State"))
    expires = forms.ChoiceField(
        choices=EXPIRY_FILTERS, required=False, label=gettext_lazy("Expires")
    )
    q = forms.CharField(required=False, max_length=100, label=gettext_lazy("Lot number or product"))
    lot = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, clinics: QuerySet[Clinic], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["clinic"].queryset = clinics  # type: ignore[attr-defined]
        self.fields["clinic"].label = _("Clinic")


def _filtered(
    balances: QuerySet[StockBalance], data: dict[str, Any], today: datetime.date
) -> QuerySet[StockBalance]:
    if data.get("clinic"):
        balances = balances.filter(clinic=data["clinic"])
    if data.get("lot"):
        balances = balances.filter(lot_id=data["lot"])
    state = data.get("state") or ""
    if state == "usable":
        balances = balances.exclude(_unusable_q(today))
    elif state == "unusable":
        balances = balances.filter(_unusable_q(today))
    elif state:
        balances = balances.filter(state=state)
    expires = data.get("expires") or ""
    if expires == "expired":
        balances = balances.filter(lot__expires_on__lt=today)
    elif expires:
        balances = balances.filter(
            lot__expires_on__gte=today,
            lot__expires_on__lte=today + datetime.timedelta(days=int(expires)),
        )
    if data.get("q"):
        term = data["q"].strip()
        balances = balances.filter(
            Q(lot__lot_number__icontains=term) | Q(lot__product__name__icontains=term)
        )
    return balances


def _summary(balances: QuerySet[StockBalance], today: datetime.date) -> dict[str, int]:
    """Units usable, expiring within each window, and not usable: one query."""
    usable = ~_unusable_q(today)
    sums: dict[str, Any] = {
        "usable": Sum("quantity", filter=usable),
        "unusable": Sum("quantity", filter=_unusable_q(today)),
    }
    for days in EXPIRY_WINDOWS:
        sums[f"within_{days}"] = Sum(
            "quantity",
            filter=usable & Q(lot__expires_on__lte=today + datetime.timedelta(days=days)),
        )
    return {key: value or 0 for key, value in balances.aggregate(**sums).items()}


def _visible_clinics(access: Access) -> QuerySet[Clinic]:
    visible = access.visible_clinic_ids
    clinics = Clinic.objects.order_by("name")
    return clinics if visible is None else clinics.filter(pk__in=visible)


CSV_HEADER = [
    "clinic",
    "product",
    "gtin",
    "lot_number",
    "expires_on",
    "lot_status",
    "state",
    "usable",
    "why_not_usable",
    "quantity",
    "unit",
]


@page()
def stock_index(request: HttpRequest) -> HttpResponse:
    access = access_for(request)
    clinics = _visible_clinics(access)
    form = StockFilterForm(request.GET or None, clinics=clinics)
    data = form.cleaned_data if form.is_valid() else {}
    today = timezone.localdate()
    balances = _filtered(stock_balance_list(user=request.user), data, today).order_by(*FEFO)
    if request.GET.get("format") == "csv":
        return cast(
            HttpResponse,
            csv_response(
                "stock.csv",
                CSV_HEADER,
                (
                    [
                        balance.clinic.name,
                        balance.lot.product.name,
                        balance.lot.product.gtin,
                        balance.lot.lot_number,
                        balance.lot.expires_on,
                        balance.lot.status,
                        balance.state,
                        "no" if why_not_usable(balance, today) else "yes",
                        why_not_usable(balance, today),
                        balance.quantity,
                        balance.lot.unit,
                    ]
                    for balance in balances.iterator(chunk_size=500)
                ),
            ),
        )
    paged = Paginator(balances, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [
        Row(
            balance=balance,
            usable=not (why := why_not_usable(balance, today)),
            why_not=why,
            days_left=(balance.lot.expires_on - today).days,
            may_move=keeps_stock_at(access, balance.clinic_id),
            badge=badge_code(balance, today),
        )
        for balance in paged.object_list
    ]
    query = request.GET.copy()
    query.pop("page", None)
    query.pop("format", None)
    return render(
        request,
        "pages/stock/index.html",
        {
            "nav": "stock",
            "form": form,
            "rows": rows,
            "paged": paged,
            "query": query.urlencode(),
            "summary": (summary := _summary(stock_balance_list(user=request.user), today)),
            "windows": [(days, summary[f"within_{days}"]) for days in EXPIRY_WINDOWS],
            "several_clinics": access.visible_clinic_ids is None
            or len(access.visible_clinic_ids) > 1,
            "keeps_stock": keeps_stock(access),
        },
    )


urlpatterns = [
    path("stock/", stock_index, name="stock"),
]
