"""Clinic pages: patients. Finding a patient by name or reference, registering one with contact
details, and a patient's page: the backward trace (every lot, donor and certificate behind their
treatments), any recall touching them, the trace's CSV and PDF, and "Start a treatment".

Only the clinic administrators and clinicians of the patient's own clinic open these pages
(`Access.contact_clinic_ids`): they show contact details, and every showing is recorded
(`audit.services.contact_data_read_record`, DESIGN rule 7). Another clinic's patient is a 404.
"""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.core.paginator import Page, Paginator
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from audit.models import ReadVia
from audit.services import contact_data_read_record
from common.errors import DomainError
from pages.base import form_problems, page, refused
from providers.access import Access, access_for
from providers.models import Clinic
from recalls.models import Recall, RecallExposure, RecallLot
from recalls.selectors import recall_list
from treatments import services
from treatments.models import Patient
from treatments.selectors import patient_list, trace_backward

PAGE_SIZE = 50
CONTACT_FIELDS = ("full_name", "date_of_birth", "phone", "email", "postal_address")


SEES_PATIENTS = cast(
    str, gettext_lazy("Only a clinic's administrators and clinicians see its patients.")
)


def reads_contacts(access: Access) -> bool:
    """Clinic administrators and clinicians: the only ones who may see a patient's name."""
    return bool(access.contact_clinic_ids)


def own_patients(request: HttpRequest) -> QuerySet[Patient]:
    """The patients whose contact details the user may read, with those details joined."""
    access = access_for(request)
    return (
        patient_list(user=request.user)
        .filter(clinic_id__in=sorted(access.contact_clinic_ids))
        .select_related("contact")
    )


def patient_for(request: HttpRequest, patient_id: int | str | None) -> Patient | None:
    """One of the user's own clinic's patients, or None: another clinic's patient does not
    exist for them."""
    try:
        number = int(patient_id or 0)
    except (TypeError, ValueError):
        return None
    return own_patients(request).filter(pk=number).first()


def no_such_patient(request: HttpRequest) -> HttpResponse:
    return refused(
        request,
        _("No such patient at your clinic. Find the patient by name or reference."),
        status=404,
    )


def record_contact_read(request: HttpRequest, patients: list[Patient], what: str) -> None:
    shown = [p for p in patients if getattr(p, "contact", None) is not None]
    contact_data_read_record(user=request.user, what=what, via=ReadVia.PAGE, patients=shown)


def contact_of(patient: Patient) -> Any:
    try:
        return patient.contact
    except Patient.contact.RelatedObjectDoesNotExist:
        return None


def search(request: HttpRequest) -> tuple[str, Page[Patient] | None]:
    """The patients matching the search text, a page at a time. Nothing before a text is typed:
    names are shown only of the patients looked for (the minimum necessary), and each showing
    is recorded."""
    text = (request.GET.get("q") or "").strip()[:100]
    if not text:
        return text, None
    patients = own_patients(request).filter(
        Q(reference__icontains=text) | Q(contact__full_name__icontains=text)
    )
    paginator = Paginator(patients.order_by("reference", "pk"), PAGE_SIZE)
    rows = paginator.get_page(request.GET.get("page"))
    record_contact_read(request, list(rows), _("patient search"))
    return text, rows


@page(allowed=reads_contacts, refusal=SEES_PATIENTS)
def patients_index(request: HttpRequest) -> HttpResponse:
    text, rows = search(request)
    context = {"nav": "patients", "q": text, "rows": rows}
    if getattr(request, "htmx", False):
        return render(request, "pages/patients/_results.html", context)
    return render(request, "pages/patients/index.html", context)


@page(allowed=reads_contacts, refusal=SEES_PATIENTS)
def patient_detail(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = patient_for(request, patient_id)
    if patient is None:
        return no_such_patient(request)
    trace = trace_backward(user=request.user, patient_id=patient.pk)
    lot_ids = [lot.pk for lot in trace.lots]
    # Asked recall by recall, as the exposures are indexed (RecallExposure.Meta.indexes).
    recalls: list[Recall] = list(
        recall_list(user=request.user)
        .filter(
            Exists(RecallExposure.objects.filter(recall=OuterRef("pk"), patient_id=patient.pk))
            | Exists(RecallLot.objects.filter(recall=OuterRef("pk"), lot_id__in=lot_ids))
        )
        .order_by("-opened_at")
    )
    record_contact_read(request, [patient], _("patient page"))
    return render(
        request,
        "pages/patients/detail.html",
        {
            "nav": "patients",
            "patient": patient,
            "contact": contact_of(patient),
            "trace": trace,
            "recalls": recalls,
            "csv_url": reverse("trace-backward") + f"?patient={patient.pk}&format=csv",
            "pdf_url": reverse("patient-trace-pdf", args=[patient.pk]),
            "chair_url": reverse("pages:chair") + f"?patient={patient.pk}",
        },
    )


class PatientForm(forms.Form):
    clinic = forms.ModelChoiceField(Clinic.objects.none(), label=gettext_lazy("Clinic"))
    reference = forms.CharField(
        max_length=40,
        label=gettext_lazy("Patient reference"),
        help_text=gettext_lazy("Unique within the clinic; never a name or a record number."),
    )
    full_name = forms.CharField(max_length=200, label=gettext_lazy("Full name"))
    date_of_birth = forms.DateField(
        required=False,
        label=gettext_lazy("Date of birth"),
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    phone = forms.CharField(max_length=40, required=False, label=gettext_lazy("Phone"))
    email = forms.EmailField(required=False, label=gettext_lazy("E-mail"))
    postal_address = forms.CharField(
        required=False,
        label=gettext_lazy("Postal address"),
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args: Any, clinics: QuerySet[Clinic], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["clinic"]
        field.queryset = clinics  # type: ignore[attr-defined]
        if len(clinics) == 1:
            field.initial = clinics[0]
            field.widget = forms.HiddenInput()


@page(allowed=reads_contacts, refusal=SEES_PATIENTS)
def patient_new(request: HttpRequest) -> HttpResponse:
    clinics = Clinic.objects.filter(pk__in=sorted(access_for(request).contact_clinic_ids)).order_by(
        "name"
    )
    form = PatientForm(request.POST or None, clinics=clinics)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        contact = {name: data[name] for name in CONTACT_FIELDS if data.get(name)}
        try:
            patient = services.patient_create(
                actor=request.user,
                clinic=data["clinic"],
                reference=data["reference"],
                contact=contact,
            )
        except DomainError as error:
            for problem in error.problems:
                if problem.code == "unique_together":
                    # The only unique rule a new patient meets: (clinic, reference).
                    form.add_error(
                        "reference",
                        _(
                            "%(reference)s is already a patient at this clinic: find them, or "
                            "choose another reference."
                        )
                        % {"reference": data["reference"]},
                    )
                else:
                    form_problems(form, DomainError([problem], status=error.status))
        else:
            return redirect("pages:patient", patient_id=patient.pk)
    return render(request, "pages/patients/new.html", {"nav": "patients", "form": form})


urlpatterns = [
    path("patients/", patients_index, name="patients"),
    path("patients/new/", patient_new, name="patient-new"),
    path("patients/<int:patient_id>/", patient_detail, name="patient"),
]
