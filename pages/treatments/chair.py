"""Clinic pages, treatments: the treatment at the chair, recorded through
`treatments.services.treatment_record`.

A refused treatment is shown inline in plain words with what to do next; nothing is saved. The
treatment's time is the moment it is saved unless the user gives one, so consent taken after the
page was opened is never "after the treatment"."""

from __future__ import annotations

from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from common.errors import DomainError
from common.validators import whole_number
from lots.models import Route
from pages.base import page
from pages.patients import reads_contacts, record_contact_read
from pages.treatments.common import RECORDS, PractitionerChoice, chair_patient, no_patient, plain
from pages.treatments.scanning import Line, posted_lines
from providers.models import Clinic, Practitioner
from treatments import services
from treatments.models import ConsentText, Indication


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
        units = whole_number(line.units)
        if not units:
            line.error = _("Give the units used, a whole number above zero.")
            continue
        requests.append(services.LineRequest(lot=line.lot, units=units))
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


urlpatterns = [
    path("treatments/new/", chair, name="chair"),
]
