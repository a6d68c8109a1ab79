"""Admin for recalls: the list (scoped, with the share of clinics that acknowledged), opening a
recall (signed), its page with the scope rounds, live effectiveness and each clinic's progress, and
the pages that follow it up: widen and close (quality manager, signed), acknowledge, record a stock
disposition and a patient contact attempt (clinic staff for their own clinic, or a quality
manager). The evidence (CSV of exposures and of notices, the PDF report) streams from the same
report functions as the API, scoped the same way.

Every write is a service call and every DomainError is a form error (common.admin);
auditors only read; nothing is deleted. Notices, acknowledgements, dispositions, contact attempts
and expiry warnings are read-only here; webhook endpoints are kept by quality managers and their
secret is never shown back.

The forms are in recalls.admin_forms, the pages of one recall in recalls.admin_views, and webhook
endpoints are written by recalls.services.webhooks.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.db.models import F, Func, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.urls import URLPattern, path, reverse

from common.admin import mask_in_audit_trail
from providers.admin_base import (
    ClinicWorkAdmin,
    ServiceAdmin,
    can_view,
    contact_clinic_ids,
    is_network_user,
    untracked_urls,
)
from providers.models import Clinic
from recalls import admin_views as views
from recalls.admin_forms import (
    SCOPE_DESCRIPTION,
    SCOPE_FIELDS,
    RecallOpenForm,
    WebhookEndpointForm,
)
from recalls.models import (
    Acknowledgement,
    ExpiryWarning,
    ExpiryWarningKind,
    Notification,
    PatientContactAttempt,
    Recall,
    RecallExposure,
    RecallStock,
    StockDisposition,
    WebhookEndpoint,
)
from recalls.selectors import recall_list
from recalls.services.webhooks import mask_secret

# Records of one clinic's follow-up: clinic staff see none of other clinics' in a recall's trail.
CLINIC_FOLLOW_UP_RECORDS = (Acknowledgement, StockDisposition, PatientContactAttempt)


# ---------------------------------------------------------------------------------------------
# Recalls


def _count(queryset: QuerySet[Any]) -> Coalesce:
    """COUNT(*) of a correlated subquery, without a GROUP BY."""
    return Coalesce(
        Subquery(
            queryset.order_by().annotate(n=Func(F("pk"), function="COUNT")).values("n"),
            output_field=IntegerField(),
        ),
        Value(0),
    )


def with_acknowledgement_share(
    recalls: QuerySet[Recall], clinic_ids: list[int] | None
) -> QuerySet[Recall]:
    """Annotate each recall with its consignees (clinics with exposures or stock in it) and
    those that acknowledged, in the recall query itself: a list of any length is one query.
    Clinic staff count their own clinics only, as the effectiveness selector does."""
    recall = OuterRef(OuterRef("pk"))
    consignees = Clinic.objects.filter(
        Q(pk__in=RecallExposure.objects.filter(recall_id=recall).values("clinic_id"))
        | Q(pk__in=RecallStock.objects.filter(recall_id=recall).values("clinic_id"))
    )
    acknowledged = Acknowledgement.objects.filter(recall_id=OuterRef("pk"))
    if clinic_ids is not None:
        consignees = consignees.filter(pk__in=clinic_ids)
        acknowledged = acknowledged.filter(clinic_id__in=clinic_ids)
    return recalls.annotate(
        consignee_count=_count(consignees), acknowledged_count=_count(acknowledged)
    )


@admin.register(Recall)
class RecallAdmin(ServiceAdmin):
    list_display = [
        "reference",
        "recall_class",
        "depth",
        "is_drill",
        "status",
        "opened_at",
        "acknowledged_share",
        "lots",
    ]
    list_filter = ["status", "recall_class", "is_drill", "depth"]
    search_fields = ["reference", "reason", "recall_lots__lot__lot_number"]
    date_hierarchy = "opened_at"
    fieldsets = [
        (None, {"fields": ["reference", "recall_class", "depth", "is_drill", "status"]}),
        ("Why", {"fields": ["reason", "hazard", "instructions"]}),
        (
            "Signed",
            {
                "fields": [
                    "opened_by_name",
                    "opened_at",
                    "withdrawn_at",
                    "opened_signature_digest",
                    "first_notice_sent_at",
                    "fully_acknowledged_at",
                ]
            },
        ),
        (
            "Closed",
            {"fields": ["closed_by_name", "closed_at", "close_reason", "close_override"]},
        ),
        ("Record", {"fields": ["audit_trail_link"]}),
    ]
    readonly_fields = ["opened_by_name", "closed_by_name", "audit_trail_link"]
    add_form = RecallOpenForm
    add_fieldsets = [
        (None, {"fields": ["recall_class", "depth", "is_drill"]}),
        ("Why", {"fields": ["reason", "hazard", "instructions"]}),
        ("Scope", {"fields": list(SCOPE_FIELDS), "description": SCOPE_DESCRIPTION}),
        ("Entered after the fact", {"fields": ["withdrawn_at"], "classes": ["collapse"]}),
        ("Signature", {"fields": ["password"]}),
    ]
    change_form_template = "admin/recalls/recall/change_form.html"

    # -- list ------------------------------------------------------------------------------------

    def get_queryset(self, request: HttpRequest) -> QuerySet[Recall]:
        # Clinic staff see the recalls that reached their clinics (the selector's scoping).
        recalls = with_acknowledgement_share(
            recall_list(user=request.user), views.request_clinic_ids(request)
        )
        ordering = self.get_ordering(request)
        return recalls.order_by(*ordering) if ordering else recalls

    @admin.display(description="Clinics acknowledged", ordering="acknowledged_count")
    def acknowledged_share(self, obj: Recall) -> str:
        total = getattr(obj, "consignee_count", 0)
        done = getattr(obj, "acknowledged_count", 0)
        if not total:
            return "-"
        return f"{done} of {total} ({done * 100 / total:.0f} %)"

    @admin.display(description="Lots")
    def lots(self, obj: Recall) -> str:
        return ", ".join(row.lot.lot_number for row in obj.recall_lots.all())

    @admin.display(description="Opened by")
    def opened_by_name(self, obj: Recall) -> str:
        return _user_name(obj.opened_by)

    @admin.display(description="Closed by")
    def closed_by_name(self, obj: Recall) -> str:
        return _user_name(obj.closed_by) or "-"

    # -- opening ---------------------------------------------------------------------------------

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        extra_context = {
            **(extra_context or {}),
            "title": "Open a recall (signed)",
            "show_save_and_add_another": False,
            "show_save_and_continue": False,
        }
        return super().add_view(request, form_url, extra_context)

    def response_add(
        self, request: HttpRequest, obj: Any, post_url_continue: str | None = None
    ) -> HttpResponse:
        drill = " as a drill" if obj.is_drill else ""
        self.message_user(request, f"Recall {obj.reference} opened{drill}.")
        return HttpResponseRedirect(reverse("admin:recalls_recall_change", args=[obj.pk]))

    # -- detail ----------------------------------------------------------------------------------

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        extra_context = dict(extra_context or {})
        recall = self.get_object(request, unquote(object_id))
        if recall is not None and self.has_view_permission(request, recall):
            extra_context.update(views.recall_page_context(request, recall))
        return super().change_view(request, object_id, form_url, extra_context)

    def audit_trail_events(self, request: HttpRequest, obj: Any, *, related: bool) -> Any:
        events = super().audit_trail_events(request, obj, related=related)
        if related and not is_network_user(request):
            # Each clinic's follow-up is its own (DESIGN rule 8): clinic staff read theirs on the
            # acknowledgement, disposition and contact attempt pages, which are scoped.
            for model in CLINIC_FOLLOW_UP_RECORDS:
                events = events.exclude(pgh_obj_model=model._meta.label)
        return events

    # -- pages of one recall (recalls.admin_views) -----------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        def page(route: str, view: Callable[..., HttpResponseBase], name: str) -> URLPattern:
            pattern: URLPattern = path(
                f"<path:object_id>/{route}",
                self.admin_site.admin_view(partial(view, self)),
                name=f"recalls_recall_{name}",
            )
            return pattern

        return [
            page("widen/", views.widen_view, "widen"),
            page("acknowledge/", views.acknowledge_view, "acknowledge"),
            page("disposition/", views.disposition_view, "disposition"),
            page("patients/<int:clinic_id>/", views.patients_view, "patients"),
            page("close/", views.close_view, "close"),
            page("notices/<int:notice_id>/resend/", views.resend_view, "resend"),
            page("exposures.csv", views.exposures_csv_view, "exposures_csv"),
            page("notices.csv", views.notices_csv_view, "notices_csv"),
            page("report.pdf", views.report_pdf_view, "report_pdf"),
            *super().get_urls(),
        ]


def _user_name(user: Any) -> str:
    if user is None:
        return ""
    return str(user.get_full_name() or user.get_username())


# ---------------------------------------------------------------------------------------------
# What the recall left behind: read-only, each clinic's rows for its own staff


@admin.register(Notification)
class NotificationAdmin(ClinicWorkAdmin):
    """The outbox: one row per notice; the delivery worker writes it, nobody edits it."""

    list_display = [
        "recall",
        "round",
        "clinic",
        "channel",
        "recipient",
        "status",
        "attempts",
        "sent_at",
        "error",
    ]
    list_select_related = ["recall", "clinic"]
    list_filter = ["status", "channel", ("clinic", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["recall__reference", "recipient", "message_id"]
    date_hierarchy = "created_at"
    fields = [
        "recall",
        "round",
        "clinic",
        "channel",
        "recipient",
        "contact",
        "endpoint",
        "message_id",
        "status",
        "attempts",
        "created_at",
        "claimed_at",
        "sent_at",
        "failing_since",
        "failed_at",
        "last_error",
        "reminders_sent",
        "last_reminded_at",
    ]
    change_form_template = "admin/change_form.html"

    @admin.display(description="Last error")
    def error(self, obj: Notification) -> str:
        text = obj.last_error or ""
        return text if len(text) <= 120 else f"{text[:117]}..."

    def get_urls(self) -> list[URLPattern]:
        return untracked_urls(self)


@admin.register(Acknowledgement)
class AcknowledgementAdmin(ClinicWorkAdmin):
    list_display = ["recall", "clinic", "acknowledged_by_name", "via", "acknowledged_at"]
    list_select_related = ["recall", "clinic"]
    list_filter = ["via", ("clinic", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["recall__reference", "clinic__name", "acknowledged_by_name"]
    date_hierarchy = "acknowledged_at"
    fields = [
        "recall",
        "clinic",
        "via",
        "acknowledged_by",
        "acknowledged_by_name",
        "acknowledged_at",
        "audit_trail_link",
    ]
    readonly_fields = ["audit_trail_link"]


@admin.register(StockDisposition)
class StockDispositionAdmin(ClinicWorkAdmin):
    list_display = ["recall", "clinic", "lot", "kind", "quantity", "recorded_by", "recorded_at"]
    list_select_related = ["recall", "clinic", "lot__product", "recorded_by"]
    list_filter = ["kind", ("clinic", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["recall__reference", "clinic__name", "lot__lot_number"]
    date_hierarchy = "recorded_at"
    fields = [
        "recall",
        "clinic",
        "lot",
        "kind",
        "quantity",
        "recorded_by",
        "recorded_at",
        "audit_trail_link",
    ]
    readonly_fields = ["audit_trail_link"]


@admin.register(PatientContactAttempt)
class PatientContactAttemptAdmin(ClinicWorkAdmin):
    """Patients by pseudonymous reference only; their contact details stay on the clinic's
    patient pages."""

    clinic_field = "patient__clinic_id"
    list_display = ["recall", "patient", "clinic", "outcome", "attempted_by", "attempted_at"]
    list_select_related = ["recall", "patient__clinic", "attempted_by"]
    list_filter = ["outcome", ("patient__clinic", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["recall__reference", "patient__reference"]
    date_hierarchy = "attempted_at"
    fields = [
        "recall",
        "patient",
        "outcome",
        "note",
        "attempted_by",
        "attempted_at",
        "audit_trail_link",
    ]
    readonly_fields = ["audit_trail_link"]

    @admin.display(description="Clinic")
    def clinic(self, obj: PatientContactAttempt) -> Clinic:
        return obj.patient.clinic

    def has_module_permission(self, request: HttpRequest) -> bool:
        # In the index for the clinic staff who contact patients (as their contact details);
        # network roles open the list from a recall's page, filtered to that recall.
        return can_view(request) and bool(contact_clinic_ids(request))


@admin.register(ExpiryWarning)
class ExpiryWarningAdmin(ServiceAdmin):
    """Clinic staff see their own clinics' stock warnings and every certificate warning (a
    manufacturer's certificate concerns every clinic)."""

    list_display = ["kind", "clinic", "lot", "certificate", "threshold_days", "claimed_at", "sent"]
    list_select_related = ["clinic", "lot__product", "certificate"]
    list_filter = ["kind", "threshold_days"]
    search_fields = ["lot__lot_number", "certificate__number", "clinic__name"]
    fields = ["kind", "clinic", "lot", "certificate", "threshold_days", "claimed_at", "sent_at"]
    change_form_template = "admin/change_form.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[ExpiryWarning]:
        warnings = ExpiryWarning.objects.select_related("clinic", "lot__product", "certificate")
        clinic_ids = views.request_clinic_ids(request)
        if clinic_ids is not None:
            warnings = warnings.filter(
                Q(clinic_id__in=clinic_ids) | Q(kind=ExpiryWarningKind.CERTIFICATE)
            )
        return warnings

    @admin.display(description="Sent", boolean=True)
    def sent(self, obj: ExpiryWarning) -> bool:
        return obj.sent_at is not None

    def get_urls(self) -> list[URLPattern]:
        return untracked_urls(self)


# ---------------------------------------------------------------------------------------------
# Webhook endpoints


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ServiceAdmin):
    clinic_path = "clinic"
    list_display = ["name", "url", "clinic", "active", "secret_hint"]
    list_select_related = ["clinic"]
    list_filter = ["active"]
    search_fields = ["name", "url"]
    fieldsets = [
        (None, {"fields": ["name", "url", "clinic", "active", "secret_hint"]}),
        ("Deactivation", {"fields": ["deactivated_at", "deactivation_reason"]}),
        ("Record", {"fields": ["audit_trail_link"]}),
    ]
    readonly_fields = [
        "secret_hint",
        "deactivated_at",
        "deactivation_reason",
        "audit_trail_link",
    ]
    add_form = WebhookEndpointForm
    add_fieldsets = [(None, {"fields": ["name", "url", "clinic", "active", "secret"]})]
    update_form = WebhookEndpointForm
    update_fieldsets = [
        (None, {"fields": ["name", "url", "clinic", "active"]}),
        ("Deactivation", {"fields": ["deactivated_at", "deactivation_reason"]}),
        ("Secret", {"fields": ["secret_hint", "secret"]}),
        (None, {"fields": ["reason"]}),
        ("Record", {"fields": ["audit_trail_link"]}),
    ]

    @admin.display(description="Secret")
    def secret_hint(self, obj: WebhookEndpoint) -> str:
        return mask_secret(obj.secret)


# Every audit trail shows the secret masked: the endpoint's own, and with ?related=1 its clinic's.
mask_in_audit_trail(WebhookEndpoint, "secret", lambda value: mask_secret(str(value)))
mask_in_audit_trail(WebhookEndpoint, "previous_secret", lambda value: mask_secret(str(value)))
