"""Clinic pages: lots. The list (filtered, paged, as CSV), one lot with everything behind it and
everything it reached (drawn as a graph), the signed decisions on a lot (release, reject, hold)
and the manufacturer certificates that need attention.

Everyone with a role reads lots, as the API lets them (lots are the network's, not a clinic's);
what a lot reached is scoped to the clinics the user may see (`trace_forward` asks
providers.access). Only a network quality manager (`Access.writes_network`) signs decisions, and
signing goes through the same services as the API's release, reject and hold endpoints.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, Q, QuerySet, Subquery, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from common.csv import csv_response
from common.errors import DomainError, Problem
from lots import services
from lots.models import (
    MANUFACTURER_CERTIFICATE_KINDS,
    Certificate,
    CertificateKind,
    Donor,
    Lot,
    LotAction,
    LotStatus,
    LotStatusChange,
    Product,
    QcSpecification,
    SignatureMeaning,
)
from lots.selectors import (
    RELEASABLE_FROM,
    ReleaseCheck,
    certificate_list,
    current_certificates,
    donor_list,
    lot_get,
    lot_list,
    lot_release_check,
    qc_result_passes,
    qc_specifications_for,
)
from pages.base import form_problems, network_writer, page, refused
from pages.graph import COLLAPSE_ABOVE, ClinicNode, Trace, TreatmentNode, render_trace_svg
from pages.templatetags.pages import quantity
from providers.access import access_for
from providers.models import Manufacturer
from stock.models import StockState
from treatments.selectors import ForwardScope, trace_forward

PAGE_SIZE = 50
ATTENTION_DAYS = 60

STOCK_STATES = [
    (StockState.ACCEPTED.value, gettext_lazy("Usable")),
    (StockState.QUARANTINED.value, gettext_lazy("Quarantined at receipt")),
    (StockState.REJECTED.value, gettext_lazy("Rejected at receipt")),
    (StockState.BLOCKED.value, gettext_lazy("Blocked (recall)")),
]

KIND_LABELS = {
    CertificateKind.COA: gettext_lazy("Certificate of analysis"),
    CertificateKind.GMP: gettext_lazy("GMP certificate"),
    CertificateKind.ISO_13485: gettext_lazy("ISO 13485 certificate"),
}

STATUS_LABELS = {
    LotStatus.QUARANTINED: gettext_lazy("Quarantined"),
    LotStatus.RELEASED: gettext_lazy("Released"),
    LotStatus.REJECTED: gettext_lazy("Rejected"),
    LotStatus.ON_HOLD: gettext_lazy("On hold"),
    LotStatus.RECALLED: gettext_lazy("Recalled"),
}


def lot_title(lot: Lot) -> str:
    """A lot as people name it: "Lot HX-1234 of ProductName"."""
    return _("Lot %(number)s of %(product)s") % {
        "number": lot.lot_number,
        "product": lot.product.name,
    }


# ---------------------------------------------------------------------------------------------
# What the home page shows (imported by pages.home)


@dataclass(frozen=True)
class CertificateAttention:
    """A manufacturer certificate that has expired or expires soon, and no later certificate of
    the same kind for that manufacturer runs longer."""

    certificate: Certificate
    expired: bool
    days_left: int

    @property
    def manufacturer(self) -> Manufacturer:
        return self.certificate.manufacturer


def certificates_needing_attention(
    *, today: datetime.date, within_days: int = ATTENTION_DAYS
) -> list[CertificateAttention]:
    """Manufacturer certificates (GMP, ISO 13485) expired or expiring within `within_days` of
    `today`: per manufacturer and kind, the current certificate that runs longest, when even that
    one ends within the window. Expired first, then soonest. One query."""
    longest: dict[tuple[int, str], Certificate] = {}
    rows = (
        current_certificates()
        .filter(kind__in=MANUFACTURER_CERTIFICATE_KINDS, lot__isnull=True)
        .select_related("manufacturer")
        .order_by("manufacturer_id", "kind", "pk")
    )
    for certificate in rows:
        key = (certificate.manufacturer_id, certificate.kind)
        held = longest.get(key)
        if held is None or _runs_longer(certificate, held):
            longest[key] = certificate
    horizon = today + datetime.timedelta(days=within_days)
    found = [
        CertificateAttention(
            certificate=certificate,
            expired=certificate.valid_until < today,
            days_left=(certificate.valid_until - today).days,
        )
        for certificate in longest.values()
        if certificate.valid_until is not None and certificate.valid_until <= horizon
    ]
    return sorted(
        found, key=lambda item: (item.days_left, item.manufacturer.legal_name, item.certificate.pk)
    )


def _runs_longer(candidate: Certificate, held: Certificate) -> bool:
    if held.valid_until is None:
        return False
    return candidate.valid_until is None or candidate.valid_until > held.valid_until


@dataclass(frozen=True)
class AwaitingRelease:
    lot: Lot
    problems: list[Problem]
    warnings: list[Problem]

    @property
    def releasable(self) -> bool:
        return not self.problems

    @property
    def title(self) -> str:
        return lot_title(self.lot)


def lots_awaiting_release(*, limit: int = 10) -> list[AwaitingRelease]:
    """Quarantined lots, oldest first, each with every unmet release requirement. At most `limit`
    lots are checked, so the queries are bounded: one for the lots, then the release check's
    fixed handful per lot."""
    lots = list(
        lot_list()
        .filter(status=LotStatus.QUARANTINED)
        .prefetch_related(None)
        .order_by("created_at", "pk")[:limit]
    )
    found = []
    for lot in lots:
        check = lot_release_check(lot=lot)
        found.append(AwaitingRelease(lot=lot, problems=check.problems, warnings=check.warnings))
    return found


# ---------------------------------------------------------------------------------------------
# The list


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


# ---------------------------------------------------------------------------------------------
# One lot


@dataclass
class CertificateRow:
    certificate: Certificate
    state: str  # valid, expiring, expired, not_yet_valid
    days_left: int | None


def _certificate_rows(lot: Lot, today: datetime.date) -> list[CertificateRow]:
    rows = (
        certificate_list()
        .filter(
            Q(lot=lot)
            | Q(
                manufacturer_id=lot.manufacturer_id,
                kind__in=MANUFACTURER_CERTIFICATE_KINDS,
                lot__isnull=True,
            ),
            superseded_by__isnull=True,
        )
        .order_by("kind", "-valid_from", "pk")
    )
    found = []
    for certificate in rows:
        until = certificate.valid_until
        days_left = None if until is None else (until - today).days
        if certificate.valid_from > today:
            state = "not_yet_valid"
        elif days_left is not None and days_left < 0:
            state = "expired"
        elif days_left is not None and days_left <= ATTENTION_DAYS:
            state = "expiring"
        else:
            state = "valid"
        found.append(CertificateRow(certificate, state, days_left))
    return found


@dataclass
class QcRow:
    name: str
    specification: str
    required: bool
    result: str
    tested_on: datetime.date | None
    laboratory: str
    passes: bool | None  # None: no result, or no specification to judge it by


def _specification(spec: QcSpecification) -> str:
    """What the result must show, with large numbers as a clinic reads them (4.8 × 10⁹)."""
    if spec.expected_outcome:
        return spec.get_expected_outcome_display()
    unit = f" {spec.test.unit}" if spec.test.unit else ""
    if spec.min_value is not None and spec.max_value is not None:
        return f"{quantity(spec.min_value)}\u2013{quantity(spec.max_value)}{unit}"  # an en dash
    if spec.max_value is not None:
        return f"≤ {quantity(spec.max_value)}{unit}"
    return f"≥ {quantity(spec.min_value)}{unit}"


def _qc_rows(lot: Lot) -> list[QcRow]:
    specifications = qc_specifications_for(lot.product)
    results = {result.test_id: result for result in lot.qc_results.all()}
    rows = []
    for test_id in sorted(
        set(specifications) | set(results),
        key=lambda pk: (specifications[pk].test if pk in specifications else results[pk].test).code,
    ):
        spec = specifications.get(test_id)
        result = results.get(test_id)
        test = spec.test if spec is not None else results[test_id].test
        shown = ""
        if result is not None and result.outcome:
            shown = result.get_outcome_display()
        elif result is not None and result.numeric_value is not None:
            shown = f"{quantity(result.numeric_value)} {test.unit}".strip()
        rows.append(
            QcRow(
                name=test.name,
                specification=_specification(spec) if spec is not None else "",
                required=spec.required if spec is not None else False,
                result=shown,
                tested_on=result.tested_on if result is not None else None,
                laboratory=result.laboratory if result is not None else "",
                passes=(
                    qc_result_passes(spec, result)
                    if spec is not None and result is not None
                    else None
                ),
            )
        )
    return rows


@dataclass
class StockRow:
    clinic_name: str
    by_state: dict[str, int] = field(default_factory=dict)

    @property
    def usable(self) -> int:
        return self.by_state.get(StockState.ACCEPTED, 0)


@dataclass
class Reached:
    trace: Trace
    stock: list[StockRow]


def _reached(request: HttpRequest, lot: Lot) -> Reached:
    """What the lot reached that this user may see: stock and treatments per clinic.

    Four queries whatever the size: treatments counted per clinic, the treatments of clinics
    small enough to draw one node each, the stock, and nothing per row."""
    traced = trace_forward(user=request.user, scope=ForwardScope(lot_ids=[lot.pk]))
    lines = traced.lines.prefetch_related(None).order_by()
    clinics: dict[int, ClinicNode] = {}
    per_clinic = lines.values("treatment__clinic_id", "treatment__clinic__name").annotate(
        treatments=Count("treatment_id", distinct=True), units=Sum("units")
    )
    for row in per_clinic:
        clinics[row["treatment__clinic_id"]] = ClinicNode(
            clinic_id=row["treatment__clinic_id"],
            name=row["treatment__clinic__name"],
            treatment_count=row["treatments"],
            units_used=row["units"] or 0,
        )
    small_clinics = (
        lines.values("treatment__clinic_id")
        .annotate(treatments=Count("treatment_id", distinct=True))
        .filter(treatments__lte=COLLAPSE_ABOVE)
        .values("treatment__clinic_id")
    )
    drawn = (
        lines.filter(treatment__clinic_id__in=Subquery(small_clinics))
        .order_by("treatment__clinic_id", "treatment__performed_at", "treatment_id")
        .values_list(
            "treatment__clinic_id",
            "treatment__patient__reference",
            "treatment__performed_at",
            "units",
        )
    )
    for clinic_id, reference, performed_at, units in drawn:
        if clinic_id in clinics:
            clinics[clinic_id].treatments.append(TreatmentNode(reference, performed_at, units))
    stock: dict[int, StockRow] = {}
    for balance in traced.stock:
        row_ = stock.setdefault(balance.clinic_id, StockRow(balance.clinic.name))
        row_.by_state[balance.state] = row_.by_state.get(balance.state, 0) + balance.quantity
        node = clinics.setdefault(
            balance.clinic_id, ClinicNode(clinic_id=balance.clinic_id, name=balance.clinic.name)
        )
        if balance.state == StockState.ACCEPTED:
            node.units_in_stock += balance.quantity
        elif balance.state == StockState.BLOCKED:
            node.units_blocked += balance.quantity
    trace = Trace(
        lot_label=_("Lot %(number)s") % {"number": lot.lot_number},
        lot_status=str(STATUS_LABELS.get(LotStatus(lot.status), lot.status)),
        donors=[donor.code for donor in lot.donors.all()],
        clinics=sorted(clinics.values(), key=lambda clinic: (clinic.name, clinic.clinic_id)),
    )
    return Reached(trace=trace, stock=sorted(stock.values(), key=lambda row: row.clinic_name))


def _release_signature(changes: list[LotStatusChange], lot: Lot) -> LotStatusChange | None:
    if lot.status != LotStatus.RELEASED:
        return None
    return next((change for change in changes if change.to_status == LotStatus.RELEASED), None)


def _lot_or_none(lot_id: int) -> Lot | None:
    try:
        return lot_get(lot_id=lot_id)
    except Lot.DoesNotExist:
        return None


def _no_such_lot(request: HttpRequest) -> HttpResponse:
    return refused(request, _("There is no such lot."), status=404)


@page()
def lot_detail(request: HttpRequest, lot_id: int) -> HttpResponse:
    lot = _lot_or_none(lot_id)
    if lot is None:
        return _no_such_lot(request)
    access = access_for(request)
    today = timezone.localdate()
    donors: list[Donor] = list(donor_list().filter(lot_donors__lot=lot).order_by("code"))
    changes = list(lot.status_changes.all())
    reached = _reached(request, lot)
    check = lot_release_check(lot=lot) if lot.status in RELEASABLE_FROM else None
    return render(
        request,
        "pages/lots/detail.html",
        {
            "nav": "lots",
            "lot": lot,
            "title": lot_title(lot),
            "expired": lot.is_expired(on=today),
            "status_label": STATUS_LABELS.get(LotStatus(lot.status), lot.status),
            "status_labels": STATUS_LABELS,
            "donors": donors,
            "qc_rows": _qc_rows(lot),
            "certificates": _certificate_rows(lot, today),
            "changes": changes,
            "signature": _release_signature(changes, lot),
            "stock": reached.stock,
            "stock_states": STOCK_STATES,
            "kinds": KIND_LABELS,
            "graph": render_trace_svg(reached.trace, element_id=f"trace-{lot.pk}"),
            "check": check,
            "actions": _actions(lot) if access.writes_network else [],
            "dossier_url": (
                reverse("lot-dossier-pdf", args=[lot.pk]) if access.reads_network else None
            ),
            "sees_every_clinic": access.visible_clinic_ids is None,
        },
    )


# ---------------------------------------------------------------------------------------------
# Signed decisions


@dataclass(frozen=True)
class Decision:
    action: LotAction
    url_name: str
    allowed_from: tuple[str, ...]
    meanings: tuple[SignatureMeaning, ...]
    service: Callable[..., LotStatusChange]
    heading: Any
    button: Any
    done: Any


DECISIONS = {
    LotAction.RELEASE: Decision(
        LotAction.RELEASE,
        "pages:lot-release",
        RELEASABLE_FROM,
        (SignatureMeaning.APPROVAL, SignatureMeaning.REVIEW, SignatureMeaning.RESPONSIBILITY),
        services.lot_release,
        gettext_lazy("Release %(lot)s"),
        gettext_lazy("Sign and release"),
        gettext_lazy("%(lot)s is released."),
    ),
    LotAction.REJECT: Decision(
        LotAction.REJECT,
        "pages:lot-reject",
        RELEASABLE_FROM,
        (SignatureMeaning.REJECTION, SignatureMeaning.REVIEW, SignatureMeaning.RESPONSIBILITY),
        services.lot_reject,
        gettext_lazy("Reject %(lot)s"),
        gettext_lazy("Sign and reject"),
        gettext_lazy("%(lot)s is rejected: it can never be used."),
    ),
    LotAction.HOLD: Decision(
        LotAction.HOLD,
        "pages:lot-hold",
        (LotStatus.RELEASED,),
        (SignatureMeaning.REVIEW, SignatureMeaning.RESPONSIBILITY),
        services.lot_hold,
        gettext_lazy("Put %(lot)s on hold"),
        gettext_lazy("Sign and put on hold"),
        gettext_lazy("%(lot)s is on hold."),
    ),
}

MEANING_LABELS = {
    SignatureMeaning.APPROVAL: gettext_lazy("Approval: the lot meets its release criteria"),
    SignatureMeaning.REJECTION: gettext_lazy("Rejection: the lot must not be used"),
    SignatureMeaning.REVIEW: gettext_lazy("Review"),
    SignatureMeaning.RESPONSIBILITY: gettext_lazy("Responsibility"),
}


def _actions(lot: Lot) -> list[tuple[str, Any, str]]:
    """The decisions a quality manager can take on the lot in its status: (url, label, style)."""
    labels = {
        LotAction.RELEASE: (gettext_lazy("Release…"), "primary"),
        LotAction.REJECT: (gettext_lazy("Reject…"), "danger"),
        LotAction.HOLD: (gettext_lazy("Put on hold…"), "danger"),
    }
    return [
        (reverse(decision.url_name, args=[lot.pk]), *labels[action])
        for action, decision in DECISIONS.items()
        if lot.status in decision.allowed_from
    ]


class SignatureForm(forms.Form):
    password = forms.CharField(
        label=gettext_lazy("Your password"),
        strip=False,
        max_length=4096,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text=gettext_lazy("Re-enter your own password: it is your signature."),
    )
    meaning = forms.ChoiceField(label=gettext_lazy("Meaning of your signature"))
    reason = forms.CharField(
        label=gettext_lazy("Reason"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy("Kept with the lot's history beside your signature."),
    )

    def __init__(self, *args: Any, decision: Decision, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, described in self.fields.items():
            if described.help_text:
                described.widget.attrs["aria-describedby"] = f"id_{name}-help"
        field = self.fields["meaning"]
        if isinstance(field, forms.ChoiceField):
            field.choices = [
                (meaning.value, MEANING_LABELS[meaning]) for meaning in decision.meanings
            ]


def _decide(request: HttpRequest, lot_id: int, decision: Decision) -> HttpResponse:
    lot = _lot_or_none(lot_id)
    if lot is None:
        return _no_such_lot(request)
    title = lot_title(lot)
    signer: Any = request.user
    unmet: list[Problem] = []
    form = SignatureForm(request.POST or None, decision=decision)
    if request.method == "POST" and form.is_valid():
        try:
            decision.service(actor=request.user, lot_id=lot.pk, **form.cleaned_data)
        except DomainError as error:
            if decision.action == LotAction.RELEASE and error.status == 409:
                unmet = list(error.problems)
            else:
                form_problems(form, error)
        else:
            messages.success(request, str(decision.done) % {"lot": title})
            return redirect("pages:lot", lot_id=lot.pk)
    check: ReleaseCheck | None = None
    if decision.action == LotAction.RELEASE:
        check = lot_release_check(lot=lot)
        if not unmet:
            unmet = check.problems
    return render(
        request,
        "pages/lots/decide.html",
        {
            "nav": "lots",
            "lot": lot,
            "title": title,
            "heading": str(decision.heading) % {"lot": title},
            "signer": signer.get_full_name() or signer.get_username(),
            "button": decision.button,
            "decision": decision,
            "form": form,
            "unmet": unmet,
            "warnings": check.warnings if check is not None else [],
            "allowed": lot.status in decision.allowed_from,
            "status_label": STATUS_LABELS.get(LotStatus(lot.status), lot.status),
        },
    )


# Lazy: translated when the refusal is shown, in the user's language.
NOT_QM = cast(str, gettext_lazy("Only a quality manager of the network signs decisions on lots."))


@page(allowed=network_writer, refusal=NOT_QM)
def lot_release(request: HttpRequest, lot_id: int) -> HttpResponse:
    return _decide(request, lot_id, DECISIONS[LotAction.RELEASE])


@page(allowed=network_writer, refusal=NOT_QM)
def lot_reject(request: HttpRequest, lot_id: int) -> HttpResponse:
    return _decide(request, lot_id, DECISIONS[LotAction.REJECT])


@page(allowed=network_writer, refusal=NOT_QM)
def lot_hold(request: HttpRequest, lot_id: int) -> HttpResponse:
    return _decide(request, lot_id, DECISIONS[LotAction.HOLD])


# ---------------------------------------------------------------------------------------------
# Certificates needing attention


@page()
def certificates_attention(request: HttpRequest) -> HttpResponse:
    today = timezone.localdate()
    return render(
        request,
        "pages/lots/certificates.html",
        {
            "nav": "lots",
            "today": today,
            "within_days": ATTENTION_DAYS,
            "items": certificates_needing_attention(today=today),
            "kinds": KIND_LABELS,
        },
    )


urlpatterns = [
    path("lots/", lots_index, name="lots"),
    path("lots/certificates/", certificates_attention, name="lot-certificates"),
    path("lots/<int:lot_id>/", lot_detail, name="lot"),
    path("lots/<int:lot_id>/release/", lot_release, name="lot-release"),
    path("lots/<int:lot_id>/reject/", lot_reject, name="lot-reject"),
    path("lots/<int:lot_id>/hold/", lot_hold, name="lot-hold"),
]
