"""Clinic pages: stock on hand per lot and state, receiving a delivery by scanning it, and
moving units out (transfer, wastage, return to the manufacturer, destruction).

Only accepted units of a released, unexpired lot are usable; quarantined, blocked and rejected
units are listed with the reason they are not. Reads go through stock.selectors (scoped by the
user's access), writes through stock.services, refusals are shown on the form in the service's
own words and change nothing.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any, cast

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Q, QuerySet, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from common.csv import csv_response
from common.errors import DomainError, Problem
from lots.models import Lot, LotStatus
from lots.scan import ScanResolution, scan_resolve
from pages import labels
from pages.base import form_problems, page, refused
from providers.access import Access, access_for
from providers.models import Clinic
from stock import services
from stock.models import MovementKind, ReceiptDecision, StockBalance, StockState
from stock.selectors import stock_balance_list

PAGE_SIZE = 50
EXPIRY_WINDOWS = (30, 60, 90)
# Lot statuses a receiving clinic is warned about before it saves the receipt.
WARN_STATUSES = (LotStatus.QUARANTINED, LotStatus.ON_HOLD, LotStatus.RECALLED, LotStatus.REJECTED)
# Oldest expiry first (first expiry, first out), then by name.
FEFO = ("lot__expires_on", "lot__product__name", "lot__lot_number", "clinic__name", "state")


# ---------------------------------------------------------------------------------------------
# Who may do what (asked of providers.access through the Access)


def stock_clinic_ids(access: Access) -> frozenset[int] | None:
    """Clinics where the user receives and moves stock: None for every clinic."""
    return access.clinic_ids(services.STOCK_ROLES)


def keeps_stock(access: Access) -> bool:
    ids = stock_clinic_ids(access)
    return ids is None or bool(ids)


def keeps_stock_at(access: Access, clinic_id: int) -> bool:
    return access.holds_any(services.STOCK_ROLES, clinic_id=clinic_id)


# ---------------------------------------------------------------------------------------------
# What the home page shows


def _balances(access: Access) -> QuerySet[StockBalance]:
    """Units on hand at the clinics `access` sees (the same scope stock_balance_list applies)."""
    balances = StockBalance.objects.filter(quantity__gt=0).select_related("clinic", "lot__product")
    visible = access.visible_clinic_ids
    return balances if visible is None else balances.filter(clinic_id__in=visible)


def _unusable_q(today: datetime.date) -> Q:
    return (
        ~Q(state=StockState.ACCEPTED)
        | ~Q(lot__status=LotStatus.RELEASED)
        | Q(lot__expires_on__lt=today)
    )


def expiring_stock(access: Access, *, days: int = 90, limit: int = 20) -> list[StockBalance]:
    """Usable units whose lot expires within `days` (today included), first expiry first."""
    today = timezone.localdate()
    return list(
        _balances(access)
        .filter(
            state=StockState.ACCEPTED,
            lot__status=LotStatus.RELEASED,
            lot__expires_on__gte=today,
            lot__expires_on__lte=today + datetime.timedelta(days=days),
        )
        .order_by(*FEFO)[:limit]
    )


def unusable_stock(access: Access, *, limit: int = 20) -> list[StockBalance]:
    """Units on hand that must not be used: quarantined, blocked or rejected, or of a lot that is
    not released or has expired. These wait for a decision, a return or a destruction."""
    return list(_balances(access).filter(_unusable_q(timezone.localdate())).order_by(*FEFO)[:limit])


# ---------------------------------------------------------------------------------------------
# The stock list


@dataclass
class Row:
    balance: StockBalance
    usable: bool
    why_not: str
    days_left: int
    may_move: bool
    badge: str


def why_not_usable(balance: StockBalance, today: datetime.date) -> str:
    """Empty when the units may be used; otherwise the reason, in a clinic's words."""
    lot = balance.lot
    if balance.state == StockState.QUARANTINED:
        return _("Quarantined: check before use")
    if balance.state == StockState.BLOCKED:
        return _("Blocked by a recall")
    if balance.state == StockState.REJECTED:
        return _("Rejected: return or destroy")
    if lot.status != LotStatus.RELEASED:
        return _("Lot %(status)s") % {"status": lot.get_status_display().lower()}
    if lot.is_expired(on=today):
        return _("Expired")
    return ""


def badge_code(balance: StockBalance, today: datetime.date) -> str:
    """The colour of the state badge: green only for usable units."""
    if balance.state != StockState.ACCEPTED:
        return str(balance.state)
    if balance.lot.status != LotStatus.RELEASED:
        return str(balance.lot.status)
    return "expired" if balance.lot.is_expired(on=today) else "accepted"


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


# ---------------------------------------------------------------------------------------------
# Receiving a delivery


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


# Lazy, so the refusal speaks the user's language; page() renders it as text.
STOCK_REFUSAL = cast(
    str,
    gettext_lazy(
        "Receiving and moving stock is for a clinic's administrators and quality managers."
    ),
)


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


# ---------------------------------------------------------------------------------------------
# Moving units out: transfer, wastage, return to the manufacturer, destruction

ACTIONS: dict[str, tuple[str, Any]] = {
    "transfer": ("", gettext_lazy("Transfer to another clinic")),
    "decide": ("", gettext_lazy("Decide on quarantined units")),
    "waste": (MovementKind.WASTAGE.value, gettext_lazy("Write off as waste")),
    "return": (MovementKind.RETURN.value, gettext_lazy("Return to the manufacturer")),
    "destroy": (MovementKind.DESTRUCTION.value, gettext_lazy("Record destruction")),
}
# Which stock each action takes units from (None: any state).
ACTION_STATES: dict[str, str | None] = {
    "transfer": StockState.ACCEPTED,
    "decide": StockState.QUARANTINED,
    "waste": None,
    "return": None,
    "destroy": None,
}


class MoveForm(forms.Form):
    to_clinic = forms.ModelChoiceField(
        Clinic.objects.none(),
        label=gettext_lazy("To clinic"),
        help_text=gettext_lazy(
            "The units arrive quarantined; the receiving clinic checks them before use."
        ),
    )
    decision = forms.ChoiceField(
        choices=[
            ("accept", gettext_lazy("Accept into usable stock")),
            ("reject", gettext_lazy("Reject: do not use")),
        ],
        widget=forms.RadioSelect,
        label=gettext_lazy("Decision"),
    )
    quantity = forms.IntegerField(min_value=1, max_value=1_000_000, label=gettext_lazy("Units"))
    reason = forms.CharField(
        max_length=2000,
        label=gettext_lazy("Reason"),
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=gettext_lazy("Kept in the ledger and the audit trail with your name."),
    )

    def __init__(self, *args: Any, balance: StockBalance, action: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["quantity"].help_text = _("At most %(quantity)s.") % {
            "quantity": balance.quantity
        }
        if action == "transfer":
            self.fields["to_clinic"].queryset = Clinic.objects.exclude(  # type: ignore[attr-defined]
                pk=balance.clinic_id
            ).order_by("name")
        else:
            del self.fields["to_clinic"]
        if action != "decide":
            del self.fields["decision"]


def _record_move(request: HttpRequest, balance: StockBalance, action: str, data: Any) -> str:
    """Call the service for `action`; return what was done, in words. Raises DomainError."""
    lot, units = balance.lot, data["quantity"]
    if action == "transfer":
        services.stock_transfer(
            actor=request.user,
            from_clinic=balance.clinic,
            to_clinic=data["to_clinic"],
            lot=lot,
            quantity=units,
            reason=data["reason"],
        )
        return _("%(quantity)s unit(s) of lot %(lot)s sent to %(clinic)s.") % {
            "quantity": units,
            "lot": lot.lot_number,
            "clinic": data["to_clinic"].name,
        }
    if action == "decide":
        accept = data["decision"] == "accept"
        services.stock_quarantine_resolve(
            actor=request.user,
            clinic=balance.clinic,
            lot=lot,
            quantity=units,
            accept=accept,
            reason=data["reason"],
        )
        done = _("accepted into usable stock") if accept else _("rejected")
        return _("%(quantity)s quarantined unit(s) of lot %(lot)s %(done)s.") % {
            "quantity": units,
            "lot": lot.lot_number,
            "done": done,
        }
    kind = ACTIONS[action][0]
    services.stock_write_off(
        actor=request.user,
        clinic=balance.clinic,
        lot=lot,
        quantity=units,
        kind=kind,
        reason=data["reason"],
        state=balance.state,
    )
    return _("%(quantity)s unit(s) of lot %(lot)s written off: %(kind)s.") % {
        "quantity": units,
        "lot": lot.lot_number,
        "kind": MovementKind(kind).label.lower(),
    }


@page(allowed=keeps_stock, refusal=STOCK_REFUSAL)
def stock_move(request: HttpRequest, balance_id: int, action: str) -> HttpResponse:
    access = access_for(request)
    balance = stock_balance_list(user=request.user).filter(pk=balance_id).first()
    if balance is None or action not in ACTIONS:
        return refused(
            request, _("No stock of yours has this number. Open the stock page."), status=404
        )
    if not keeps_stock_at(access, balance.clinic_id):
        return refused(request, str(STOCK_REFUSAL))
    title = ACTIONS[action][1]
    wanted = ACTION_STATES[action]
    if wanted is not None and balance.state != wanted:
        return refused(
            request,
            _("%(action)s takes %(wanted)s stock; this stock is %(state)s.")
            % {
                "action": title,
                "wanted": StockState(wanted).label.lower(),
                "state": balance.get_state_display().lower(),
            },
            status=409,
        )
    form = MoveForm(request.POST or None, balance=balance, action=action)
    if request.method == "POST" and form.is_valid():
        try:
            done = _record_move(request, balance, action, form.cleaned_data)
        except DomainError as error:
            form_problems(form, error)
        else:
            messages.success(request, done)
            query = urlencode({"lot": balance.lot_id, "clinic": balance.clinic_id})
            return redirect(f"{reverse('pages:stock')}?{query}")
    today = timezone.localdate()
    return render(
        request,
        "pages/stock/move.html",
        {
            "nav": "stock",
            "form": form,
            "balance": balance,
            "title": title,
            "action": action,
            "why_not": why_not_usable(balance, today),
            "badge": badge_code(balance, today),
        },
    )


urlpatterns = [
    path("stock/", stock_index, name="stock"),
    path("stock/receive/", stock_receive, name="stock-receive"),
    path("stock/receive/scan/", stock_receive_scan, name="stock-receive-scan"),
    path("stock/<int:balance_id>/<slug:action>/", stock_move, name="stock-move"),
    *labels.urlpatterns,
]
