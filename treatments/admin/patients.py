"""Admin for patients and their contact details. Network roles never see contact details, which
only the staff of the patient's own clinic see; every page that shows them records the read
(`audit.services.contact_data_read_record`, DESIGN rule 7)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.db.models import Prefetch, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from audit.models import ReadVia
from audit.services import contact_data_read_record
from providers.admin_base import ClinicWorkAdmin, ReadOnlyInline, can_view, contact_clinic_ids
from providers.models import Clinic, Role
from treatments import forms as treatment_forms
from treatments.admin.traces import trace_back_response
from treatments.models import Patient, PatientContact, Treatment, TreatmentLine
from treatments.selectors import patient_list, visible_clinic_ids
from treatments.services import TREATING_ROLES

# Who may read a patient's contact details: the staff of the patient's own clinic.
CONTACT_ROLES = (Role.CLINIC_ADMINISTRATOR, Role.CLINICIAN)


def may_read_contact(request: HttpRequest, patient: Patient) -> bool:
    return patient.clinic_id in contact_clinic_ids(request)


def sees_every_contact(request: HttpRequest) -> bool:
    """True when every patient the user can list is one whose contact details they may read."""
    visible = visible_clinic_ids(request.user)
    return visible is not None and bool(visible) and set(visible) <= contact_clinic_ids(request)


def record_contact_read(request: HttpRequest, patients: list[Patient], what: str) -> None:
    """DESIGN rule 7: the page about to be sent shows these patients' contact details."""
    contact_data_read_record(user=request.user, patients=patients, what=what, via=ReadVia.ADMIN)


def shown_rows(response: HttpResponse) -> list[Any]:
    """The rows of the change list a response is about to show (evaluated once: the template
    reuses them)."""
    changelist = getattr(response, "context_data", {}).get("cl")
    return [] if changelist is None else list(changelist.result_list)


def shows_contact_history(response: HttpResponse) -> bool:
    """Whether an audit trail page lists events of contact details (their values)."""
    events = getattr(response, "context_data", {}).get("events", [])
    prefix = f"{PatientContact._meta.label} #"
    return any(row["record"].startswith(prefix) for row in events)


class PatientContactInline(ReadOnlyInline):
    model = PatientContact
    verbose_name_plural = "contact details (shown only to the patient's clinic)"
    fields = ["full_name", "date_of_birth", "phone", "email", "postal_address"]
    show_change_link = False
    max_num = 1
    select_related = ("patient",)


class PatientTreatmentInline(ReadOnlyInline):
    model = Treatment
    fk_name = "patient"
    verbose_name_plural = "treatments"
    fields = ["performed_at", "clinic", "practitioner", "indication", "route", "lots"]

    def get_queryset(self, request: HttpRequest) -> Any:
        return (
            super()
            .get_queryset(request)
            # The row is named by its patient and clinic (Treatment.__str__).
            .select_related("clinic", "patient", "practitioner")
            .prefetch_related(
                Prefetch("lines", queryset=TreatmentLine.objects.select_related("lot"))
            )
        )

    @admin.display(description="Lots (units)")
    def lots(self, obj: Treatment) -> str:
        return ", ".join(f"{line.lot.lot_number} ({line.units})" for line in obj.lines.all())


@admin.register(Patient)
class PatientAdmin(ClinicWorkAdmin):
    list_selector = staticmethod(patient_list)
    write_roles = TREATING_ROLES
    list_display = ["reference", "clinic", "created_at"]
    list_select_related = ["clinic"]
    search_fields = ["reference"]
    list_filter = [("clinic", admin.RelatedOnlyFieldListFilter)]
    date_hierarchy = "created_at"
    fields = ["reference", "clinic", "created_at", "trace_back_link", "audit_trail_link"]
    readonly_fields = ["created_at", "trace_back_link", "audit_trail_link"]
    add_form = treatment_forms.PatientAddForm
    add_fieldsets = [
        (None, {"fields": ["clinic", "reference"]}),
        (
            "Contact details",
            {
                "fields": list(treatment_forms.CONTACT_FIELDS),
                "description": "Kept apart from the treatment record; shown only to this "
                "clinic's administrators and clinicians, never to auditors or quality managers.",
            },
        ),
    ]
    inlines = [PatientContactInline, PatientTreatmentInline]
    change_form_template = "admin/treatments/patient/change_form.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = super().get_queryset(request)
        return queryset.select_related("contact") if sees_every_contact(request) else queryset

    def get_list_display(self, request: HttpRequest) -> Any:
        if sees_every_contact(request):
            return [*self.list_display[:1], "contact_name", *self.list_display[1:]]
        return self.list_display

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        if sees_every_contact(request):
            # The Name column: patients without contact details show "-".
            named = [row for row in shown_rows(response) if getattr(row, "contact", None)]
            record_contact_read(request, named, "admin patient list")
        return response

    def get_search_fields(self, request: HttpRequest) -> Any:
        if sees_every_contact(request):
            return [*self.search_fields, "contact__full_name", "contact__phone", "contact__email"]
        return self.search_fields

    @admin.display(description="Name")
    def contact_name(self, obj: Patient) -> str:
        contact = getattr(obj, "contact", None)
        return contact.full_name if contact is not None else "-"

    def get_inlines(self, request: HttpRequest, obj: Any) -> Any:
        inlines = list(super().get_inlines(request, obj))
        if obj is None or not may_read_contact(request, obj):
            inlines = [inline for inline in inlines if inline is not PatientContactInline]
        return inlines

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        response = super().change_view(request, object_id, form_url, extra_context)
        patient = getattr(response, "context_data", {}).get("original")
        if (
            patient is not None
            and may_read_contact(request, patient)
            and getattr(patient, "contact", None) is not None
        ):
            record_contact_read(request, [patient], f"patient {patient.reference} contact")
        return response

    def audit_trail_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        response = super().audit_trail_view(request, object_id)
        if shows_contact_history(response):
            patient = response.context_data["original"]  # type: ignore[attr-defined]
            record_contact_read(request, [patient], f"patient {patient.reference} contact history")
        return response

    def audit_trail_events(self, request: HttpRequest, obj: Any, *, related: bool) -> Any:
        events = super().audit_trail_events(request, obj, related=related)
        if related and not may_read_contact(request, obj):
            events = events.exclude(pgh_obj_model=PatientContact._meta.label)
        return events

    @admin.display(description="Trace")
    def trace_back_link(self, obj: Patient) -> str:
        url = reverse("admin:treatments_patient_trace_back", args=[obj.pk])
        return format_html('<a href="{}">Trace back to lots, donors and tests</a>', url)

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<path:object_id>/trace-back/",
                self.admin_site.admin_view(self.trace_back_view),
                name="treatments_patient_trace_back",
            ),
            *super().get_urls(),
        ]

    def trace_back_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        patient = self.get_object(request, unquote(object_id))
        if patient is None:
            raise Http404
        return trace_back_response(self, request, patient=patient)


@admin.register(PatientContact)
class PatientContactAdmin(ClinicWorkAdmin):
    """Only for the staff of the patient's own clinic; written with the patient
    (`patient_create`), read-only here."""

    list_display = ["full_name", "patient", "clinic", "phone", "email"]
    list_select_related = ["patient__clinic"]
    search_fields = ["full_name", "phone", "email", "patient__reference"]
    fields = [
        "patient",
        "full_name",
        "date_of_birth",
        "phone",
        "email",
        "postal_address",
        "audit_trail_link",
    ]
    readonly_fields = ["audit_trail_link"]

    def _allowed(self, request: HttpRequest) -> bool:
        return can_view(request) and bool(contact_clinic_ids(request))

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._allowed(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None:
            return self._allowed(request) and obj.patient.clinic_id in contact_clinic_ids(request)
        return self._allowed(request)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return (
            PatientContact.objects.filter(
                patient__clinic_id__in=sorted(contact_clinic_ids(request))
            )
            .select_related("patient__clinic")
            .order_by("full_name", "pk")
        )

    @admin.display(description="Clinic")
    def clinic(self, obj: PatientContact) -> Clinic:
        return obj.patient.clinic

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        contacts = shown_rows(response)
        record_contact_read(
            request, [contact.patient for contact in contacts], "admin patient contact list"
        )
        return response

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        response = super().change_view(request, object_id, form_url, extra_context)
        contact = getattr(response, "context_data", {}).get("original")
        if contact is not None:
            patient = contact.patient
            record_contact_read(request, [patient], f"patient {patient.reference} contact")
        return response

    def audit_trail_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        response = super().audit_trail_view(request, object_id)
        if shows_contact_history(response):
            patient = response.context_data["original"].patient  # type: ignore[attr-defined]
            record_contact_read(request, [patient], f"patient {patient.reference} contact history")
        return response
