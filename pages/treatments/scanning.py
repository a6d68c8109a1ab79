"""Clinic pages, treatments: scanning a vial at the chair (a keyboard-wedge scanner or the
camera). A scan is resolved by `lots.scan.scan_resolve` and judged by the same words the service
refuses with (`treatments.selectors.lot_use_warnings`), plus the clinic's accepted stock; the lines
already on the form are read back from it (`posted_lines`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from common.errors import DomainError
from common.validators import whole_number
from lots.models import Lot
from lots.scan import scan_resolve
from pages.base import page
from pages.patients import reads_contacts
from pages.treatments.common import RECORDS, chair_patient, lot_name, no_patient, plain
from providers.models import Clinic
from stock.models import StockState
from stock.selectors import stock_balance_list
from treatments import services
from treatments.selectors import lot_use_warnings


@dataclass
class ScanAnswer:
    lot: Lot | None = None
    usable: bool = False
    reasons: list[str] = field(default_factory=list)
    on_hand: int = 0
    quarantined: int = 0
    blocked: int = 0


def scan_answer(user: Any, clinic: Clinic, text: str) -> ScanAnswer:
    """The scanned vial: which lot, and whether it may be used at `clinic` today and why not."""
    try:
        lot = scan_resolve(text).lot
    except DomainError as error:
        return ScanAnswer(reasons=[problem.message for problem in error.problems])
    states = {
        balance.state: balance.quantity
        for balance in stock_balance_list(user=user).filter(clinic=clinic, lot=lot)
    }
    answer = ScanAnswer(
        lot=lot,
        on_hand=states.get(StockState.ACCEPTED, 0),
        quarantined=states.get(StockState.QUARANTINED, 0),
        blocked=states.get(StockState.BLOCKED, 0),
    )
    for problem in lot_use_warnings(lot, on=clinic.local_date()):
        answer.reasons.append(plain(user, problem, lot))
    if not answer.on_hand:
        if answer.quarantined:
            answer.reasons.append(
                _(
                    "%(clinic)s holds %(lot)s only in quarantine: finish the receipt check "
                    "before use."
                )
                % {"clinic": clinic.name, "lot": lot_name(lot)}
            )
        else:
            answer.reasons.append(
                _("%(clinic)s has no accepted stock of %(lot)s: receive it first.")
                % {"clinic": clinic.name, "lot": lot_name(lot)}
            )
    answer.usable = not answer.reasons
    return answer


@dataclass
class Line:
    lot: Lot
    units: str
    on_hand: int
    usable: bool
    error: str = ""


def posted_lines(request: HttpRequest, clinic: Clinic) -> list[Line]:
    """The lines on the form: a hidden `line_lot` per scanned lot, its units in `units_<id>`.
    Lots and balances are read in two queries whatever the number of lines."""
    ids: list[int] = []
    for value in request.POST.getlist("line_lot"):
        pk = whole_number(value)
        if pk is not None and pk not in ids:
            ids.append(pk)
    lots = {lot.pk: lot for lot in Lot.objects.select_related("product").filter(pk__in=ids)}
    on_hand = {
        balance.lot_id: balance.quantity
        for balance in stock_balance_list(user=request.user).filter(
            clinic=clinic, lot_id__in=ids, state=StockState.ACCEPTED
        )
    }
    today = clinic.local_date()
    return [
        Line(
            lot=lots[pk],
            units=(request.POST.get(f"units_{pk}") or "").strip(),
            on_hand=on_hand.get(pk, 0),
            usable=on_hand.get(pk, 0) > 0 and not lot_use_warnings(lots[pk], on=today),
        )
        for pk in ids
        if pk in lots
    ]


@require_POST
@page(allowed=reads_contacts, refusal=RECORDS)
def chair_scan(request: HttpRequest) -> HttpResponse:
    """Resolve one scan (htmx): the answer, and the lot as a new line or one more unit."""
    patient = chair_patient(request)
    if patient is None:
        return no_patient(request)
    clinic = patient.clinic
    answer = scan_answer(request.user, clinic, request.POST.get("scan") or "")
    lines = posted_lines(request, clinic)
    existing = next((line for line in lines if answer.lot and line.lot.pk == answer.lot.pk), None)
    line = None
    if answer.lot is not None:
        if existing is not None:
            units = (whole_number(existing.units) or 0) + 1
            existing.units = str(units)
            line = existing
        else:
            line = Line(lot=answer.lot, units="1", on_hand=answer.on_hand, usable=answer.usable)
            lines.append(line)
    return render(
        request,
        "pages/treatments/_scan.html",
        {
            "answer": answer,
            "line": line,
            "line_is_new": line is not None and existing is None,
            "statement": services.regulatory_statement([each.lot for each in lines]),
        },
    )


urlpatterns = [
    path("treatments/new/scan/", chair_scan, name="chair-scan"),
]
