"""Clinic pages, treatments: one treatment, with the stock its lots left at the clinic."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils.translation import gettext as _

from pages.base import page, refused
from providers.access import access_for
from stock.models import StockState
from stock.selectors import stock_balance_list
from treatments.selectors import treatment_list


@page()
def treatment_detail(request: HttpRequest, treatment_id: int) -> HttpResponse:
    treatment = treatment_list(user=request.user).filter(pk=treatment_id).first()
    if treatment is None:
        return refused(request, _("No such treatment at the clinics you may see."), status=404)
    lines = list(treatment.lines.all())
    on_hand = {
        balance.lot_id: balance.quantity
        for balance in stock_balance_list(user=request.user).filter(
            clinic_id=treatment.clinic_id,
            lot_id__in=[line.lot_id for line in lines],
            state=StockState.ACCEPTED,
        )
    }
    return render(
        request,
        "pages/treatments/detail.html",
        {
            "nav": "treatments",
            "treatment": treatment,
            "lines": [(line, on_hand.get(line.lot_id, 0)) for line in lines],
            "saved": request.GET.get("saved") == "1",
            "sees_patient": access_for(request).may_read_contact(treatment.clinic_id),
        },
    )


urlpatterns = [
    path("treatments/<int:treatment_id>/", treatment_detail, name="treatment"),
]
