"""Admin for treatments (recorded through the service, lots chosen from stock or scanned), their
adverse events and the consent texts they cite."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import URLPattern, path
from django.utils import timezone

from lots.models import Lot
from providers.admin_base import (
    ClinicWorkAdmin,
    LotFilter,
    ReadOnlyInline,
    ServiceAdmin,
    clinics_where,
    holds_any,
)
from providers.models import Clinic, Practitioner
from stock.models import StockState
from treatments import forms as treatment_forms
from treatments.admin.traces import trace_back_response
from treatments.models import AdverseEvent, ConsentText, Patient, Treatment, TreatmentLine
from treatments.selectors import patient_list, treatment_list
from treatments.services import TREATING_ROLES


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
    select_related = ("lot__product", "treatment__patient", "treatment__clinic")
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
