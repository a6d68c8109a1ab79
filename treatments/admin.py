"""Admin for patients, their contact details, consent texts, treatments and adverse events, and the
two trace pages (forward from a lot, back from a patient or a treatment).

Clinic staff see only their own clinics' records (DESIGN rule 8) and add them through the
services; network roles (quality manager, auditor) see every clinic but never a patient's contact
details, which only the staff of the patient's own clinic see. Every page that shows contact
details records the read (`audit.services.contact_data_read_record`, DESIGN rule 7).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html

from audit.models import ReadVia
from audit.services import contact_data_read_record
from lots.admin import LOT_PAGES
from lots.models import Lot
from providers.admin_base import (
    ClinicWorkAdmin,
    LotFilter,
    ReadOnlyInline,
    ServiceAdmin,
    can_view,
    clinics_where,
    contact_clinic_ids,
    holds_any,
)
from providers.models import Clinic, Practitioner, Role
from stock.models import StockState
from treatments import forms as treatment_forms
from treatments.models import (
    AdverseEvent,
    ConsentText,
    Patient,
    PatientContact,
    Treatment,
    TreatmentLine,
)
from treatments.selectors import (
    ForwardScope,
    patient_list,
    trace_backward,
    trace_forward,
    treatment_list,
    visible_clinic_ids,
)
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


class PatientTreatmentInline(ReadOnlyInline):
    model = Treatment
    fk_name = "patient"
    verbose_name_plural = "treatments"
    fields = ["performed_at", "clinic", "practitioner", "indication", "route", "lots"]

    def get_queryset(self, request: HttpRequest) -> Any:
        return (
            super()
            .get_queryset(request)
            .select_related("clinic", "practitioner")
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


@admin.register(ConsentText)
class ConsentTextAdmin(ServiceAdmin):
    """Read-only: consent texts are versioned documents, loaded with the reference data."""

    list_display = ["code", "version", "title", "active"]
    search_fields = ["code", "title", "body"]
    list_filter = ["active"]
    fields = ["code", "version", "title", "body", "active", "audit_trail_link"]
    readonly_fields = ["audit_trail_link"]


class TreatmentLineInline(ReadOnlyInline):
    model = TreatmentLine
    verbose_name_plural = "lots used"
    select_related = ("lot__product", "treatment")
    fields = ["lot", "product", "units"]
    show_change_link = False

    @admin.display(description="Product")
    def product(self, obj: TreatmentLine) -> str:
        return obj.lot.product.name


class TreatmentAdverseEventInline(ReadOnlyInline):
    model = AdverseEvent
    select_related = ("lot", "treatment")
    fields = ["onset_on", "lot", "description", "serious", "reported_at"]

    @admin.display(description="Serious", boolean=True)
    def serious(self, obj: AdverseEvent) -> bool:
        return obj.is_serious


@admin.register(Treatment)
class TreatmentAdmin(ClinicWorkAdmin):
    list_selector = staticmethod(treatment_list)
    write_roles = TREATING_ROLES
    list_display = [
        "performed_at",
        "patient",
        "clinic",
        "practitioner",
        "indication",
        "route",
        "lots",
        "consented",
    ]
    list_select_related = ["clinic", "patient", "practitioner"]
    search_fields = ["patient__reference", "practitioner__name", "lines__lot__lot_number"]
    list_filter = [
        ("clinic", admin.RelatedOnlyFieldListFilter),
        ("practitioner", admin.RelatedOnlyFieldListFilter),
        "indication",
        "route",
    ]
    date_hierarchy = "performed_at"
    fieldsets = [
        (None, {"fields": ["clinic", "patient", "practitioner", "performed_at"]}),
        ("Treatment", {"fields": ["indication", "route", "anatomical_site", "notes"]}),
        (
            "Consent",
            {
                "fields": [
                    "consent_text",
                    "consent_taken_by",
                    "consent_taken_at",
                    "consent_regulatory_statement",
                ]
            },
        ),
        ("Record", {"fields": ["recorded_by", "recorded_at", "audit_trail_link"]}),
    ]
    readonly_fields = ["audit_trail_link"]
    add_form = treatment_forms.TreatmentRecordForm
    add_fieldsets = [
        (None, {"fields": ["clinic", "patient", "practitioner", "performed_at"]}),
        ("Treatment", {"fields": ["indication", "route", "anatomical_site", "notes"]}),
        (
            "Lots used",
            {
                "fields": [
                    (f"line_{row}_lot", f"line_{row}_scan", f"line_{row}_units")
                    for row in range(1, treatment_forms.LINE_ROWS + 1)
                ],
                "description": "Choose each lot from the clinic's stock or scan the vial; "
                "leave unused rows empty.",
            },
        ),
        ("Consent", {"fields": ["consent_text", "consent_taken_at"]}),
    ]
    inlines = [TreatmentLineInline, TreatmentAdverseEventInline]
    change_form_template = "admin/treatments/treatment/change_form.html"

    @admin.display(description="Lots (units)")
    def lots(self, obj: Treatment) -> str:
        return ", ".join(f"{line.lot.lot_number} ({line.units})" for line in obj.lines.all())

    @admin.display(description="Consent", boolean=True)
    def consented(self, obj: Treatment) -> bool:
        return obj.consent_text_id is not None

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        clinics = clinics_where(request, self.write_roles)
        if db_field.name == "patient":
            kwargs["queryset"] = patient_list(user=request.user).filter(clinic__in=clinics)
        elif db_field.name == "practitioner":
            kwargs["queryset"] = Practitioner.objects.filter(
                clinic_links__clinic__in=clinics, clinic_links__active=True
            ).distinct()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is None:
            # The lots with usable stock at the user's clinics; a scan may name any other lot, and
            # the service then says why it cannot be used.
            form.line_lots = (
                Lot.objects.filter(
                    stock_balances__clinic__in=clinics_where(request, self.write_roles),
                    stock_balances__state=StockState.ACCEPTED,
                    stock_balances__quantity__gt=0,
                )
                .select_related("product")
                .distinct()
                .order_by("lot_number")
            )
        return form

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        initial = super().get_changeform_initial_data(request)
        initial.setdefault("performed_at", timezone.now())
        practitioner = Practitioner.objects.filter(user__pk=request.user.pk or 0).first()
        if practitioner is not None:
            initial.setdefault("practitioner", str(practitioner.pk))
        return initial

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        extra_context = {
            **(extra_context or {}),
            "can_report_adverse_event": holds_any(request, TREATING_ROLES),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<path:object_id>/trace-back/",
                self.admin_site.admin_view(self.trace_back_view),
                name="treatments_treatment_trace_back",
            ),
            *super().get_urls(),
        ]

    def trace_back_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        treatment = self.get_object(request, unquote(object_id))
        if treatment is None:
            raise Http404
        return trace_back_response(self, request, treatment=treatment)


@admin.register(AdverseEvent)
class AdverseEventAdmin(ClinicWorkAdmin):
    write_roles = TREATING_ROLES
    clinic_field = "treatment__clinic_id"
    list_display = ["reported_at", "onset_on", "clinic", "patient", "lot", "serious", "reported_by"]
    list_select_related = ["treatment__clinic", "treatment__patient", "lot__product", "reported_by"]
    search_fields = ["description", "lot__lot_number", "treatment__patient__reference"]
    list_filter = [
        ("treatment__clinic", admin.RelatedOnlyFieldListFilter),
        LotFilter,
        "results_in_death",
        "life_threatening",
        "hospitalisation",
    ]
    date_hierarchy = "onset_on"
    fieldsets = [
        (None, {"fields": ["treatment", "lot", "onset_on", "description"]}),
        ("Seriousness", {"fields": list(treatment_forms.SERIOUSNESS)}),
        ("Record", {"fields": ["reported_by", "reported_at", "audit_trail_link"]}),
    ]
    readonly_fields = ["audit_trail_link"]
    add_form = treatment_forms.AdverseEventRecordForm
    add_fieldsets = [
        (None, {"fields": ["treatment", "lot", "onset_on", "description"]}),
        ("Seriousness", {"fields": list(treatment_forms.SERIOUSNESS)}),
    ]

    @admin.display(description="Clinic")
    def clinic(self, obj: AdverseEvent) -> Clinic:
        return obj.treatment.clinic

    @admin.display(description="Patient")
    def patient(self, obj: AdverseEvent) -> Patient:
        return obj.treatment.patient

    @admin.display(description="Serious", boolean=True)
    def serious(self, obj: AdverseEvent) -> bool:
        return obj.is_serious

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "treatment":
            kwargs["queryset"] = (
                treatment_list(user=request.user)
                .filter(clinic__in=clinics_where(request, self.write_roles))
                .prefetch_related(None)
                .order_by("-performed_at", "-pk")
            )
        elif db_field.name == "lot":
            kwargs["queryset"] = Lot.objects.select_related("product").order_by("lot_number")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


def trace_forward_response(model_admin: Any, request: HttpRequest, *, lot: Lot) -> HttpResponse:
    """Every treatment, patient reference, practitioner and clinic that a lot reached, the stock
    still on hand and the adverse events reported: one query per kind of row."""
    if not can_view(request):
        raise PermissionDenied
    trace = trace_forward(user=request.user, scope=ForwardScope(lot_ids=[lot.pk]))
    lines = list(trace.lines)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "original": lot,
        "title": f"Trace forward: lot {lot.lot_number}",
        "lots": list(trace.lots),
        "lines": lines,
        "stock": list(trace.stock),
        "adverse_events": list(trace.adverse_events),
        "patients": len({line.treatment.patient_id for line in lines}),
        "clinics": len({line.treatment.clinic_id for line in lines}),
        "scoped": visible_clinic_ids(request.user) is not None,
        "csv_url": f"/api/v1/traces/forward/?lot={lot.pk}&format=csv",
    }
    return TemplateResponse(request, "admin/treatments/trace_forward.html", context)


def trace_back_response(
    model_admin: Any,
    request: HttpRequest,
    *,
    patient: Patient | None = None,
    treatment: Treatment | None = None,
) -> HttpResponse:
    """Every lot behind a patient's (or one treatment's) care, with the donors, marker results,
    QC results and certificates behind each lot."""
    if not can_view(request):
        raise PermissionDenied
    trace = trace_backward(
        user=request.user,
        patient_id=patient.pk if patient is not None else None,
        treatment_id=treatment.pk if treatment is not None else None,
    )
    lot_numbers = {lot.pk: lot.lot_number for lot in trace.lots}
    if patient is not None:
        subject: Any = patient
        title = f"Trace back: patient {patient.reference}"
    else:
        subject, title = treatment, f"Trace back: {treatment}"
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "original": subject,
        "title": title,
        "treatments": [
            {
                "treatment": item,
                "lines": list(item.lines.all()),
                "adverse_events": [
                    (event, lot_numbers.get(event.lot_id or 0, ""))
                    for event in item.adverse_events.all()
                ],
            }
            for item in trace.treatments
        ],
        "lots": [
            {
                "lot": lot,
                "donors": [(donor, list(donor.marker_results.all())) for donor in lot.donors.all()],
                "qc_results": list(lot.qc_results.all()),
                "certificates": list(lot.certificates.all()),
            }
            for lot in trace.lots
        ],
    }
    return TemplateResponse(request, "admin/treatments/trace_back.html", context)


LOT_PAGES["trace_forward"] = trace_forward_response
