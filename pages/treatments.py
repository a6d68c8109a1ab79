"""Clinic pages: treatments. The list (paged, filtered, as CSV), one treatment with the stock it
left, and the treatment at the chair: scan the vial (a keyboard-wedge scanner or the camera), see
at once whether the lot may be used here, then record the treatment through
`treatments.services.treatment_record`.

A scan is resolved by `lots.scan.scan_resolve` and judged by the same words the service refuses
with (`treatments.api.lot_use_warnings`), plus the clinic's accepted stock. A refused treatment is
shown inline in plain words with what to do next; nothing is saved. The treatment's time is the
moment it is saved unless the user gives one, so consent taken after the page was opened is
never "after the treatment".
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

from django import forms
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from common.csv import csv_response
from common.errors import DomainError, Problem
from lots.models import Lot, Route
from lots.scan import scan_resolve
from pages.base import page, refused
from pages.patients import patient_for, reads_contacts, record_contact_read
from pages.templatetags.pages import day
from providers.access import Access, access_for
from providers.models import Clinic, Practitioner
from recalls.selectors import recall_list
from stock.models import StockState
from stock.selectors import stock_balance_list
from treatments import services
from treatments.api.scans import lot_use_warnings
from treatments.models import ConsentText, Indication, Patient, Treatment, TreatmentLine
from treatments.selectors import treatment_list

PAGE_SIZE = 50
RECORDS = cast(
    str,
    gettext_lazy(
        "Only a clinic's administrators and clinicians record treatments, for their own "
        "clinic's patients."
    ),
)


def lot_name(lot: Lot) -> str:
    return _("Lot %(number)s of %(product)s") % {
        "number": lot.lot_number,
        "product": lot.product.name,
    }


# ---------------------------------------------------------------------------------------------
# Plain words


def recall_words(user: Any, lot: Lot) -> str:
    """Why a recalled lot may not be used, naming the recall to read."""
    recall = (
        recall_list(user=user)
        .filter(recall_lots__lot_id=lot.pk, recall_lots__active=True)
        .order_by("-opened_at")
        .first()
    )
    if recall is None:
        return _(
            "Lot %(number)s is recalled: set the vial aside and tell your quality manager."
        ) % {"number": lot.lot_number}
    return _("Lot %(number)s was recalled on %(day)s: set the vial aside, see recall %(ref)s.") % {
        "number": lot.lot_number,
        "day": day(recall.opened_at),
        "ref": recall.reference,
    }


NEXT_STEPS = {
    "lot_on_hold": gettext_lazy("Set the vial aside until quality lifts the hold."),
    "lot_not_released": gettext_lazy("Set the vial aside and use a released lot."),
    "lot_expired": gettext_lazy("Set the vial aside and use another lot."),
    "treatment_before_lot_made": gettext_lazy("Check the treatment time."),
    "stock_insufficient": gettext_lazy("Lower the units, or receive the stock first."),
    "practitioner_not_member": gettext_lazy("Choose another practitioner."),
    "practitioner_not_licensed": gettext_lazy("Choose another practitioner."),
    "route_not_permitted": gettext_lazy("Choose a route the product permits."),
    "product_not_authorised": gettext_lazy("Set the vial aside and use another product."),
    "product_investigational_only": gettext_lazy("Set the vial aside and use another product."),
    "consent_required": gettext_lazy("Tick consent once the patient has agreed."),
    "consent_after_treatment": gettext_lazy(
        "Leave the consent time empty, or give one before the treatment time."
    ),
    "consent_text_retired": gettext_lazy("Choose the consent text in use."),
    "treatment_in_future": gettext_lazy("Leave the time empty to use the moment you save."),
    "treatment_no_lot": gettext_lazy("Scan the vial used."),
}


def plain(user: Any, problem: Problem, lot: Lot | None) -> str:
    """A service's problem in words a clinician acts on: what is wrong, then what to do."""
    if problem.code == "lot_recalled" and lot is not None:
        return recall_words(user, lot)
    step = NEXT_STEPS.get(problem.code)
    return f"{problem.message} {step}" if step else problem.message


# ---------------------------------------------------------------------------------------------
# Scanning


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
        if value.isdigit() and int(value) not in ids:
            ids.append(int(value))
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


def chair_patient(request: HttpRequest) -> Patient | None:
    """The patient being treated: one of the user's own clinic's, from `patient`."""
    return patient_for(request, request.POST.get("patient") or request.GET.get("patient"))


def no_patient(request: HttpRequest) -> HttpResponse:
    return refused(
        request,
        _("No such patient at your clinic. Find the patient first, then start the treatment."),
        status=404,
    )


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
            units = int(existing.units) + 1 if existing.units.isdigit() else 1
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


# ---------------------------------------------------------------------------------------------
# The treatment at the chair


class PractitionerChoice(forms.ModelChoiceField):  # type: ignore[type-arg]
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.name} ({obj.get_profession_display().lower()})"


class ConsentTextChoice(forms.ModelChoiceField):  # type: ignore[type-arg]
    def label_from_instance(self, obj: Any) -> str:
        return _("%(title)s, version %(version)s") % {"title": obj.title, "version": obj.version}


class LocalDateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self) -> None:
        super().__init__(format="%Y-%m-%dT%H:%M")


class ChairForm(forms.Form):
    practitioner = PractitionerChoice(
        Practitioner.objects.none(), label=gettext_lazy("Practitioner")
    )
    route = forms.ChoiceField(
        choices=[("", "---------"), *Route.choices], label=gettext_lazy("Route")
    )
    anatomical_site = forms.CharField(max_length=200, label=gettext_lazy("Anatomical site"))
    indication = forms.ChoiceField(
        choices=[("", "---------"), *Indication.choices], label=gettext_lazy("Indication")
    )
    consent_text = ConsentTextChoice(
        ConsentText.objects.none(), required=False, label=gettext_lazy("Consent text")
    )
    consent = forms.BooleanField(
        required=False,
        label=gettext_lazy(
            "The patient has read the consent text and the statement above, and agrees"
        ),
    )
    consent_taken_at = forms.DateTimeField(
        required=False,
        label=gettext_lazy("Consent taken at"),
        help_text=gettext_lazy("Leave empty: the treatment time."),
        widget=LocalDateTimeInput(),
    )
    performed_at = forms.DateTimeField(
        required=False,
        label=gettext_lazy("Treatment time"),
        help_text=gettext_lazy("Leave empty: the moment you save."),
        widget=LocalDateTimeInput(),
    )
    notes = forms.CharField(
        required=False, label=gettext_lazy("Notes"), widget=forms.Textarea(attrs={"rows": 2})
    )

    def __init__(self, *args: Any, clinic: Clinic, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        practitioners = Practitioner.objects.filter(
            clinic_links__clinic=clinic, clinic_links__active=True
        ).order_by("name", "pk")
        self.fields["practitioner"].queryset = practitioners  # type: ignore[attr-defined]
        texts = ConsentText.objects.filter(active=True).order_by("code", "-version")
        self.fields["consent_text"].queryset = texts  # type: ignore[attr-defined]
        self.fields["consent_text"].empty_label = None  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("consent_taken_at") and not data.get("consent"):
            self.add_error(
                "consent", _("A consent time is given: tick consent, or clear the time.")
            )
        if data.get("consent") and data.get("consent_text") is None:
            # One text in use is the usual case: the select shows it chosen.
            text = self.fields["consent_text"].queryset.first()  # type: ignore[attr-defined]
            if text is None:
                self.add_error(
                    "consent", _("No consent text is in use: ask your clinic administrator.")
                )
            data["consent_text"] = text
        return data


def consent_texts(form: ChairForm) -> list[ConsentText]:
    return list(form.fields["consent_text"].queryset)  # type: ignore[attr-defined]


def line_requests(lines: list[Line]) -> list[services.LineRequest]:
    requests = []
    for line in lines:
        if not line.units.isdigit() or int(line.units) <= 0:
            line.error = _("Give the units used, a whole number above zero.")
            continue
        requests.append(services.LineRequest(lot=line.lot, units=int(line.units)))
    return requests


def show_refusal(
    request: HttpRequest, form: ChairForm, lines: list[Line], error: DomainError
) -> list[str]:
    """Put each problem where the user acts on it: on its line, its field, or the form's top.
    Returns the problems for the top of the form (every one, so nothing is missed)."""
    top: list[str] = []
    for problem in error.problems:
        where = problem.field or ""
        lot = None
        if where.startswith("lines[") and "]" in where:
            index = where[len("lines[") : where.index("]")]
            if index.isdigit() and int(index) < len(lines):
                lot = lines[int(index)].lot
        words = plain(request.user, problem, lot)
        top.append(words)
        name = where.split(".")[-1]
        name = {"consent": "consent", "taken_at": "consent_taken_at"}.get(name, name)
        if lot is not None:
            line = lines[int(index)]
            line.error = f"{line.error} {words}".strip()
        elif name in form.fields:
            form.add_error(name, words)
    return top


@page(allowed=reads_contacts, refusal=RECORDS)
def chair(request: HttpRequest) -> HttpResponse:
    if not (request.POST.get("patient") or request.GET.get("patient")):
        # A treatment starts from its patient: find them first.
        return redirect("pages:patients")
    patient = chair_patient(request)
    if patient is None:
        return no_patient(request)
    clinic = patient.clinic
    form = ChairForm(request.POST or None, clinic=clinic)
    lines = posted_lines(request, clinic) if request.method == "POST" else []
    problems: list[str] = []
    if request.method == "POST" and form.is_valid():
        requests = line_requests(lines)
        if len(requests) == len(lines):
            data = form.cleaned_data
            # Taken now, at saving: consent given after the page opened is never "after the
            # treatment", and a page left open does not date the treatment back.
            now = timezone.now()
            performed_at = data["performed_at"] or now
            consent = None
            if data["consent"]:
                consent = services.ConsentRequest(
                    consent_text=data["consent_text"],
                    taken_by=request.user,
                    taken_at=data["consent_taken_at"] or min(now, performed_at),
                )
            try:
                treatment = services.treatment_record(
                    actor=request.user,
                    clinic=clinic,
                    patient=patient,
                    practitioner=data["practitioner"],
                    performed_at=performed_at,
                    indication=data["indication"],
                    route=data["route"],
                    anatomical_site=data["anatomical_site"],
                    lines=requests,
                    consent=consent,
                    notes=data["notes"],
                )
            except DomainError as error:
                problems = show_refusal(request, form, lines, error)
            else:
                return redirect(reverse("pages:treatment", args=[treatment.pk]) + "?saved=1")
        else:
            problems = [_("Give the units used on each line.")]
    elif request.method == "POST":
        problems = [_("Check the fields marked below.")]
    texts = consent_texts(form)
    record_contact_read(request, [patient], _("treatment at the chair"))
    return render(
        request,
        "pages/treatments/chair.html",
        {
            "nav": "treatments",
            "patient": patient,
            "clinic": clinic,
            "form": form,
            "lines": lines,
            "problems": problems,
            "consent_texts": texts,
            "statement": services.regulatory_statement([line.lot for line in lines]),
        },
        status=409 if problems else 200,
    )


# ---------------------------------------------------------------------------------------------
# One treatment, and the list


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


def csv_rows(treatments: QuerySet[Treatment]) -> Iterator[list[Any]]:
    for treatment in treatments.iterator(chunk_size=2000):
        yield [
            treatment.pk,
            treatment.performed_at,
            treatment.clinic.name,
            treatment.patient.reference,
            treatment.practitioner.name,
            treatment.indication,
            treatment.route,
            treatment.anatomical_site,
            "; ".join(
                f"{line.lot.lot_number} ({line.lot.product.name}) x{line.units}"
                for line in treatment.lines.all()
            ),
        ]


@page()
def treatments_index(request: HttpRequest) -> HttpResponse:
    access = access_for(request)
    form = TreatmentFilters(request.GET or None, access=access)
    treatments = filtered(request, form)
    if request.GET.get("format") == "csv":
        # A streamed download: the page wrapper passes it through untouched.
        return cast(HttpResponse, csv_response("treatments.csv", CSV_HEADER, csv_rows(treatments)))
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
    path("treatments/new/", chair, name="chair"),
    path("treatments/new/scan/", chair_scan, name="chair-scan"),
    path("treatments/<int:treatment_id>/", treatment_detail, name="treatment"),
]
