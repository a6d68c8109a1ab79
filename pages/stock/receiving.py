"""Clinic pages, stock: receiving a delivery by scanning it. The scan is looked up at once (htmx)
with any warning about the lot; the receipt is saved through `stock.services.stock_receive`, and a
refusal is shown on the form in the service's own words and changes nothing."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from common.errors import DomainError, Problem
from lots.models import Lot, LotStatus
from lots.scan import ScanResolution, scan_resolve
from pages.base import form_problems, page
from pages.stock.common import STOCK_REFUSAL, keeps_stock, stock_clinic_ids
from providers.access import Access, access_for
from providers.models import Clinic
from stock import services
from stock.models import ReceiptDecision

# Lot statuses a receiving clinic is warned about before it saves the receipt.
WARN_STATUSES = (LotStatus.QUARANTINED, LotStatus.ON_HOLD, LotStatus.RECALLED, LotStatus.REJECTED)


class ReceiveForm(forms.Form):
    scan = forms.CharField(
        label=gettext_lazy("Scan the delivery's DataMatrix"),
        max_length=200,
        help_text=gettext_lazy(
            "Scan the code on the package, or type its text, e.g. (01)…(17)…(10)…, and press "
            "Enter to look the lot up."
        ),
    )
    clinic = forms.ModelChoiceField(Clinic.objects.none(), label=gettext_lazy("Receiving clinic"))
    quantity = forms.IntegerField(
        min_value=1, max_value=1_000_000, label=gettext_lazy("Units delivered")
    )
    package_intact = forms.BooleanField(required=False, label=gettext_lazy("The package is intact"))
    label_readable = forms.BooleanField(
        required=False, label=gettext_lazy("Every label is readable")
    )
    transport_min_celsius = forms.DecimalField(
        max_digits=5,
        decimal_places=1,
        label=gettext_lazy("Lowest transport temperature (°C)"),
        help_text=gettext_lazy("From the shipment's temperature logger."),
    )
    transport_max_celsius = forms.DecimalField(
        max_digits=5,
        decimal_places=1,
        label=gettext_lazy("Highest transport temperature (°C)"),
        help_text=gettext_lazy("From the shipment's temperature logger."),
    )
    storage_location = forms.CharField(
        max_length=200,
        label=gettext_lazy("Storage location"),
        help_text=gettext_lazy("Where the units are put away, e.g. Freezer 2, shelf B."),
    )
    decision = forms.ChoiceField(
        choices=[
            (ReceiptDecision.ACCEPT.value, gettext_lazy("Accept: usable stock")),
            (ReceiptDecision.QUARANTINE.value, gettext_lazy("Quarantine: decide later")),
            (ReceiptDecision.REJECT.value, gettext_lazy("Reject: do not use")),
        ],
        widget=forms.RadioSelect,
        label=gettext_lazy("What happens to the units"),
        help_text=gettext_lazy(
            "Accept only when the package, the labels and the transport temperatures all pass."
        ),
    )
    received_at = forms.DateTimeField(
        required=False,
        label=gettext_lazy("Received at"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text=gettext_lazy("Leave empty for now."),
    )
    notes = forms.CharField(
        required=False,
        max_length=2000,
        label=gettext_lazy("Notes"),
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    acknowledge = forms.BooleanField(required=False)

    def __init__(self, *args: Any, clinics: QuerySet[Clinic], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["clinic"].queryset = clinics  # type: ignore[attr-defined]
        if len(choices := list(clinics[:2])) == 1:
            self.fields["clinic"].initial = choices[0]
        self.fields["scan"].widget.attrs.update({"autofocus": True, "autocomplete": "off"})

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        low, high = data.get("transport_min_celsius"), data.get("transport_max_celsius")
        if low is not None and high is not None and low > high:
            self.add_error(
                "transport_max_celsius",
                _("The highest temperature is below the lowest: check the logger's figures."),
            )
        return data


@dataclass
class Looked:
    """A scan looked up: the lot, or why it could not be found; and what to warn about."""

    resolution: ScanResolution | None
    problems: list[Problem]
    warnings: list[str]


def lot_warnings(lot: Lot, today: datetime.date) -> list[str]:
    """What the receiving clinic must know before it saves the receipt."""
    warnings = []
    if lot.status == LotStatus.QUARANTINED:
        warnings.append(
            _(
                "Lot %(lot)s is still quarantined by quality: it is not released for use. "
                "Receive it as quarantined and keep it apart until quality releases it."
            )
            % {"lot": lot.lot_number}
        )
    elif lot.status == LotStatus.ON_HOLD:
        warnings.append(
            _(
                "Lot %(lot)s is on hold: quality is investigating it. Receive it as quarantined "
                "and do not use it."
            )
            % {"lot": lot.lot_number}
        )
    elif lot.status in (LotStatus.RECALLED, LotStatus.REJECTED):
        warnings.append(
            _(
                "Lot %(lot)s is %(status)s: it can only be received as rejected. Do not use it; "
                "return it to the manufacturer or destroy it."
            )
            % {"lot": lot.lot_number, "status": lot.get_status_display().lower()}
        )
    if lot.is_expired(on=today):
        warnings.append(
            _("Lot %(lot)s expired on %(day)s: do not accept it.")
            % {"lot": lot.lot_number, "day": lot.expires_on.isoformat()}
        )
    return warnings


def look_up(scan: str) -> Looked:
    try:
        resolution = scan_resolve(scan)
    except DomainError as error:
        return Looked(None, list(error.problems), [])
    warnings = [problem.message for problem in resolution.warnings]
    return Looked(resolution, [], warnings + lot_warnings(resolution.lot, timezone.localdate()))


def _stock_clinics(access: Access) -> QuerySet[Clinic]:
    ids = stock_clinic_ids(access)
    clinics = Clinic.objects.order_by("name")
    return clinics if ids is None else clinics.filter(pk__in=ids)


@page(allowed=keeps_stock, refusal=STOCK_REFUSAL)
def stock_receive(request: HttpRequest) -> HttpResponse:
    clinics = _stock_clinics(access_for(request))
    looked: Looked | None = None
    if request.method == "POST":
        form = ReceiveForm(request.POST, clinics=clinics)
        if request.POST.get("scan", "").strip():
            looked = look_up(request.POST["scan"])
        if form.is_valid():
            receipt = _receive(request, form, looked)
            if receipt is not None:
                return receipt
    else:
        form = ReceiveForm(clinics=clinics)
    return render(
        request, "pages/stock/receive.html", {"nav": "stock", "form": form, "looked": looked}
    )


def _receive(request: HttpRequest, form: ReceiveForm, looked: Looked | None) -> HttpResponse | None:
    data = form.cleaned_data
    if looked is None or looked.resolution is None:
        for problem in looked.problems if looked else []:
            form.add_error("scan", problem.message)
        return None
    lot = looked.resolution.lot
    if looked.warnings and not data["acknowledge"]:
        form.add_error(
            None,
            _("Read the warning about lot %(lot)s and tick the box to confirm before saving.")
            % {"lot": lot.lot_number},
        )
        return None
    try:
        receipt = services.stock_receive(
            actor=request.user,
            clinic=data["clinic"],
            lot=lot,
            quantity=data["quantity"],
            decision=data["decision"],
            package_intact=data["package_intact"],
            label_readable=data["label_readable"],
            transport_min_celsius=data["transport_min_celsius"],
            transport_max_celsius=data["transport_max_celsius"],
            storage_location=data["storage_location"],
            received_at=data["received_at"],
            notes=data["notes"],
        )
    except DomainError as error:
        form_problems(form, error)
        return None
    messages.success(
        request,
        _("Received %(quantity)s unit(s) of lot %(lot)s of %(product)s at %(clinic)s: %(state)s.")
        % {
            "quantity": receipt.quantity,
            "lot": lot.lot_number,
            "product": lot.product.name,
            "clinic": receipt.clinic.name,
            "state": receipt.get_decision_display().lower(),
        },
    )
    query = urlencode({"lot": lot.pk, "clinic": receipt.clinic_id})
    return redirect(f"{reverse('pages:stock')}?{query}")


@page(allowed=keeps_stock, refusal=STOCK_REFUSAL)
def stock_receive_scan(request: HttpRequest) -> HttpResponse:
    """The htmx answer to a scan: the lot it names and any warning, or why it was not found."""
    scan = request.POST.get("scan", "") if request.method == "POST" else request.GET.get("scan", "")
    return render(request, "pages/stock/_scan.html", {"looked": look_up(scan), "checked": False})


urlpatterns = [
    path("stock/receive/", stock_receive, name="stock-receive"),
    path("stock/receive/scan/", stock_receive_scan, name="stock-receive-scan"),
]
