"""Clinic pages, recalls: a clinic's patient call list in a patient-level recall (that clinic's
staff only), where each contact attempt is recorded."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from audit.models import ReadVia
from audit.services import contact_data_read_record
from common.errors import DomainError
from pages.base import form_problems, page, refused
from pages.recalls.common import _page_of, _query_without_page, _recall_or_404
from providers.access import Access, access_for
from providers.models import Clinic
from recalls.models import ContactOutcome, RecallDepth, RecallStatus
from recalls.selectors import recall_patient_list
from recalls.services import recall_contact_attempt_record


class ContactAttemptForm(forms.Form):
    patient = forms.ChoiceField(label=gettext_lazy("Patient"))
    outcome = forms.ChoiceField(label=gettext_lazy("Outcome"), choices=ContactOutcome.choices)
    note = forms.CharField(
        label=gettext_lazy("Note"),
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args: Any, patients: list[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.patients = {str(patient.pk): patient for patient in patients}
        patient: Any = self.fields["patient"]
        patient.choices = [(key, _patient_label(patient)) for key, patient in self.patients.items()]


def _patient_label(patient: Any) -> str:
    """The name the list shows, with the reference that tells two namesakes apart."""
    if _has_contact(patient):
        return f"{patient.contact.full_name} ({patient.reference})"
    return str(patient.reference)


def _has_contact(patient: Any) -> bool:
    try:
        return patient.contact is not None
    except Exception:
        return False


def _caller(access: Access, clinic_id: int) -> bool:
    return access.may_read_contact(clinic_id)


@page(allowed=lambda access: bool(access.contact_clinic_ids))
def recall_patients(request: HttpRequest, recall_id: int, clinic_id: int) -> HttpResponse:
    access = access_for(request)
    if not _caller(access, clinic_id):
        return refused(request, _("Only the clinic's own staff see its patient call list."))
    recall = _recall_or_404(request, recall_id)
    clinic = Clinic.objects.filter(pk=clinic_id).first()
    if clinic is None:
        raise Http404(_("No such clinic."))
    if recall.depth != RecallDepth.PATIENT:
        return refused(request, _("This recall is at clinic level: no patient is to be called."))
    try:
        listing = recall_patient_list(recall=recall, clinic=clinic, user=request.user)
    except DomainError as error:
        return refused(request, error.problems[0].message)
    shown = _page_of(request, listing.patients)
    patients = list(shown.object_list)
    form = ContactAttemptForm(request.POST or None, patients=patients)
    status = 200
    if request.method == "POST":
        if recall.status != RecallStatus.OPEN:
            form.add_error(None, _("This recall is closed; it takes no more contact attempts."))
            status = 409
        elif form.is_valid():
            patient = form.patients[form.cleaned_data["patient"]]
            try:
                recall_contact_attempt_record(
                    recall=recall,
                    patient=patient,
                    outcome=form.cleaned_data["outcome"],
                    note=form.cleaned_data["note"],
                    actor=request.user,
                )
            except DomainError as error:
                form_problems(form, error)
                status = error.status
            else:
                messages.success(request, _("The contact attempt is recorded."))
                return redirect(request.get_full_path())
        else:
            status = 400
    if listing.with_contacts and patients:
        contact_data_read_record(
            user=request.user,
            patients=patients,
            what=f"recall {recall.reference} patient call list",
            via=ReadVia.PAGE,
        )
    response = render(
        request,
        "pages/recalls/patients.html",
        {
            "nav": "recalls",
            "recall": recall,
            "clinic": clinic,
            "listing": shown,
            "with_contacts": listing.with_contacts,
            "form": form if recall.status == RecallStatus.OPEN else None,
            "query": _query_without_page(request),
        },
        status=status,
    )
    response["Cache-Control"] = "no-store"
    return response


urlpatterns = [
    path(
        "recalls/<int:recall_id>/clinics/<int:clinic_id>/patients/",
        recall_patients,
        name="recall-patients",
    ),
]
