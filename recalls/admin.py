"""Admin for recalls: the list (scoped, with the share of clinics that acknowledged), opening a
recall (signed), its page with the scope rounds, live effectiveness and each clinic's progress, and
the pages that follow it up: widen and close (quality manager, signed), acknowledge, record a stock
disposition and a patient contact attempt (clinic staff for their own clinic, or a quality
manager). The evidence (CSV of exposures and of notices, the PDF report) streams from the same
report functions as the API, scoped the same way.

Every write is a service call and every DomainError is a form error (see traceability.admin);
auditors only read; nothing is deleted. Notices, acknowledgements, dispositions, contact attempts
and expiry warnings are read-only here; webhook endpoints are kept by quality managers and their
secret is never shown back.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections import defaultdict
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.admin.widgets import AdminDateWidget, FilteredSelectMultiple
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import F, Func, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from lots.models import Donor, Lot, Product
from providers.models import Clinic, Manufacturer, Role
from providers.selectors import require_role
from recalls.accounting import (
    CONTACTING_ROLES,
    DISPOSING_ROLES,
    recall_contact_attempt_record,
    recall_disposition_record,
)
from recalls.acknowledgements import ACKNOWLEDGING_ROLES, recall_acknowledge
from recalls.closing import recall_close, recall_close_problems
from recalls.models import (
    Acknowledgement,
    AcknowledgementVia,
    ContactOutcome,
    DispositionKind,
    ExpiryWarning,
    ExpiryWarningKind,
    Notification,
    PatientContactAttempt,
    Recall,
    RecallDepth,
    RecallExposure,
    RecallLot,
    RecallStatus,
    RecallStock,
    StockDisposition,
    WebhookEndpoint,
)
from recalls.reports import exposures_csv, notices_csv, recall_report_pdf
from recalls.selectors import (
    log_contact_read,
    notification_list,
    recall_clinic_ids,
    recall_effectiveness,
    recall_list,
    recall_patient_list,
    stock_to_account_for,
)
from recalls.services import RecallScopeRequest, recall_open, recall_widen
from traceability.admin import (
    ServiceAdmin,
    ServiceForm,
    add_problems,
    can_view,
    can_write,
    is_network_user,
    mask_in_audit_trail,
)
from traceability.errors import DomainError, Problem
from traceability.services import history, validate_instance
from treatments.admin import (
    ClinicWorkAdmin,
    contact_clinic_ids,
    holds_any,
    memberships,
    untracked_urls,
)
from treatments.models import Patient
from treatments.selectors import visible_clinic_ids

SIGNATURE_HELP = "Re-enter your password to sign (21 CFR 11.200)."
ACTION_TEMPLATE = "admin/recalls/recall/action.html"
PATIENTS_TEMPLATE = "admin/recalls/recall/patients.html"
# The read-only lists of what a recall left behind, linked from its page filtered to it.
RECORD_LISTS = (
    ("notification", "Notices"),
    ("acknowledgement", "Acknowledgements"),
    ("stockdisposition", "Stock dispositions"),
    ("patientcontactattempt", "Patient contact attempts"),
)
# Records of one clinic's follow-up: clinic staff see none of other clinics' in a recall's trail.
CLINIC_FOLLOW_UP_RECORDS = (Acknowledgement, StockDisposition, PatientContactAttempt)


# ---------------------------------------------------------------------------------------------
# Who may act where


def acting_clinic_ids(request: HttpRequest, roles: tuple[Role, ...]) -> set[int] | None:
    """The clinics at which the user holds one of `roles`: None for every clinic (a network-wide
    holder), otherwise their ids (empty when the user holds none of the roles)."""
    wanted = {role.value for role in roles}
    held = [clinic_id for role, clinic_id in memberships(request) if role in wanted]
    if any(clinic_id is None for clinic_id in held):
        return None
    return {clinic_id for clinic_id in held if clinic_id is not None}


def may_act_at(request: HttpRequest, roles: tuple[Role, ...], clinic_id: int) -> bool:
    clinic_ids = acting_clinic_ids(request, roles)
    return clinic_ids is None or clinic_id in clinic_ids


def clinics_of_recall_where(
    request: HttpRequest, recall: Recall, roles: tuple[Role, ...]
) -> QuerySet[Clinic]:
    """The clinics the recall reached at which the user holds one of `roles`."""
    clinics = recall_clinic_ids(recall)
    clinic_ids = acting_clinic_ids(request, roles)
    if clinic_ids is not None:
        clinics = clinics.filter(pk__in=sorted(clinic_ids))
    return clinics.order_by("name")


def request_clinic_ids(request: HttpRequest) -> list[int] | None:
    """`visible_clinic_ids` once per request: None for network roles, else the user's clinics."""
    if not hasattr(request, "_recall_clinic_ids"):
        request._recall_clinic_ids = visible_clinic_ids(request.user)  # type: ignore[attr-defined]
    clinic_ids: list[int] | None = request._recall_clinic_ids  # type: ignore[attr-defined]
    return clinic_ids


# ---------------------------------------------------------------------------------------------
# Forms: the scope of a recall


def _text(*, required: bool = True, rows: int = 3, help_text: str = "") -> forms.CharField:
    return forms.CharField(
        required=required,
        widget=forms.Textarea(attrs={"rows": rows}),
        help_text=help_text,
        max_length=5000,
    )


def _password() -> forms.CharField:
    return forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        strip=False,
        help_text=SIGNATURE_HELP,
    )


def _lots_field() -> forms.ModelMultipleChoiceField[Lot]:
    return forms.ModelMultipleChoiceField(
        queryset=Lot.objects.select_related("product").order_by("lot_number"),
        required=False,
        widget=FilteredSelectMultiple("lots", is_stacked=False),
        help_text="The lots to recall; or leave empty and recall by donor, product or "
        "manufacturer below.",
    )


def _optional(queryset: QuerySet[Any], help_text: str) -> forms.ModelChoiceField[Any]:
    return forms.ModelChoiceField(queryset=queryset, required=False, help_text=help_text)


def _date(help_text: str) -> forms.DateField:
    return forms.DateField(required=False, widget=AdminDateWidget, help_text=help_text)


SCOPE_FIELDS = (
    "lots",
    "donor",
    "product",
    "manufacturer",
    "manufactured_from",
    "manufactured_to",
)
SCOPE_DESCRIPTION = (
    "Name the lots, or a donor, a product or a manufacturer (optionally only lots made between "
    "two dates); every lot the scope matches is recalled."
)


def scope_request(data: dict[str, Any]) -> RecallScopeRequest:
    def pk(value: Any) -> int | None:
        return value.pk if value is not None else None

    return RecallScopeRequest(
        lot_ids=[lot.pk for lot in data.get("lots") or []],
        donor_id=pk(data.get("donor")),
        product_id=pk(data.get("product")),
        manufacturer_id=pk(data.get("manufacturer")),
        manufactured_from=data.get("manufactured_from"),
        manufactured_to=data.get("manufactured_to"),
    )


def scope_problem_field(field: str | None) -> str | None:
    """Where a scope problem shows: `scope` (nothing matches, nothing named) and
    `scope.lots.<id>` (already in an open recall) on the lots, `scope.<name>` on that field."""
    if field is None:
        return None
    if field == "scope" or field.startswith("scope.lots"):
        return "lots"
    return field.removeprefix("scope.")


class RecallOpenForm(ServiceForm):
    """Opening a recall: `recall_open` in one transaction; nothing is written when it refuses."""

    lots = _lots_field()
    donor = _optional(Donor.objects.order_by("code"), "Every lot made from this donation.")
    product = _optional(Product.objects.order_by("name"), "Every lot of this product.")
    manufacturer = _optional(
        Manufacturer.objects.order_by("legal_name"), "Every lot of this manufacturer."
    )
    manufactured_from = _date("Only lots made on or after this day.")
    manufactured_to = _date("Only lots made on or before this day.")
    password = _password()

    class Meta:
        model = Recall
        fields = ["recall_class", "depth", "reason", "hazard", "instructions", "is_drill"]
        labels = {"is_drill": "Drill (mock recall)"}

    def problem_field(self, field: str | None) -> str | None:
        return scope_problem_field(field)

    def call_service(self, data: dict[str, Any]) -> Recall:
        return recall_open(
            actor=self.actor,
            password=data["password"],
            recall_class=data["recall_class"],
            depth=data["depth"],
            reason=data["reason"],
            hazard=data["hazard"],
            instructions=data.get("instructions") or "",
            is_drill=bool(data.get("is_drill")),
            scope=scope_request(data),
        )


# ---------------------------------------------------------------------------------------------
# Forms: follow-up pages of one recall


class RecallActionForm(forms.Form):
    """A form on a page of one recall whose `submit` calls one service and says what it did."""

    title = ""
    intro = ""
    submit_label = "Record"

    def __init__(self, *args: Any, recall: Recall, actor: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.recall, self.actor = recall, actor

    def submit(self) -> str:
        raise NotImplementedError


class RecallWidenForm(RecallActionForm):
    title = "Widen the recall (signed)"
    intro = (
        "Adds every lot the scope matches that is not in the recall yet: their lots are marked "
        "recalled, the stock blocked, the exposures frozen and new notices written."
    )
    submit_label = "Sign and widen"
    lots = _lots_field()
    donor = _optional(Donor.objects.order_by("code"), "Every lot made from this donation.")
    product = _optional(Product.objects.order_by("name"), "Every lot of this product.")
    manufacturer = _optional(
        Manufacturer.objects.order_by("legal_name"), "Every lot of this manufacturer."
    )
    manufactured_from = _date("Only lots made on or after this day.")
    manufactured_to = _date("Only lots made on or before this day.")
    reason = _text(help_text="Why the recall is widened; kept with your signature.")
    password = _password()

    def problem_field(self, field: str | None) -> str | None:
        return scope_problem_field(field)

    def submit(self) -> str:
        data = self.cleaned_data
        recall_widen(
            actor=self.actor,
            password=data["password"],
            recall=self.recall,
            scope=scope_request(data),
            reason=data["reason"],
        )
        rows = RecallLot.objects.filter(recall=self.recall)
        newest = rows.order_by("-round").values_list("round", flat=True).first()
        added = rows.filter(round=newest).count()
        return f"{self.recall.reference} widened: {added} lot(s) added in round {newest}."


class RecallAcknowledgeForm(RecallActionForm):
    title = "Acknowledge for a clinic"
    intro = (
        "Records that the clinic has received the recall and acts on it (once per clinic). "
        "A clinic administrator acknowledges for the own clinic; a quality manager for any."
    )
    submit_label = "Acknowledge"
    clinic = forms.ModelChoiceField(queryset=Clinic.objects.none())
    name = forms.CharField(
        required=False,
        max_length=200,
        help_text="Who at the clinic acknowledges; empty for your own name.",
    )

    def __init__(self, *args: Any, clinics: QuerySet[Clinic], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["clinic"].queryset = clinics  # type: ignore[attr-defined]

    def submit(self) -> str:
        acknowledgement = recall_acknowledge(
            recall=self.recall,
            clinic=self.cleaned_data["clinic"],
            via=AcknowledgementVia.ADMIN,
            actor=self.actor,
            name=self.cleaned_data["name"],
        )
        return (
            f"{acknowledgement.clinic.name} acknowledged {self.recall.reference} "
            f"({acknowledgement.acknowledged_by_name})."
        )


class RecallDispositionForm(RecallActionForm):
    title = "Record stock returned or destroyed"
    intro = (
        "Units of a recalled lot a clinic returned to the manufacturer or destroyed; they leave "
        "the clinic's blocked stock through the ledger (a drill moves no stock)."
    )
    clinic = forms.ModelChoiceField(queryset=Clinic.objects.none())
    lot = forms.ModelChoiceField(queryset=Lot.objects.none())
    kind = forms.ChoiceField(choices=DispositionKind.choices)
    quantity = forms.IntegerField(help_text="Whole units.")

    def __init__(self, *args: Any, clinics: QuerySet[Clinic], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["clinic"].queryset = clinics  # type: ignore[attr-defined]
        self.fields["lot"].queryset = (  # type: ignore[attr-defined]
            Lot.objects.filter(recall_lots__recall=self.recall)
            .select_related("product")
            .order_by("lot_number")
        )

    def submit(self) -> str:
        data = self.cleaned_data
        disposition = recall_disposition_record(
            recall=self.recall,
            clinic=data["clinic"],
            lot=data["lot"],
            kind=data["kind"],
            quantity=data["quantity"],
            actor=self.actor,
        )
        return (
            f"{disposition.clinic.name}: {disposition.quantity} unit(s) of lot "
            f"{disposition.lot.lot_number} {disposition.get_kind_display().lower()}."
        )


class RecallContactAttemptForm(RecallActionForm):
    title = "Record a patient contact attempt"
    submit_label = "Record the attempt"
    patient = forms.ModelChoiceField(queryset=Patient.objects.none())
    outcome = forms.ChoiceField(choices=ContactOutcome.choices)
    note = _text(
        required=False,
        help_text="What was said or agreed. Quality managers and auditors read this note: keep "
        "contact details out of it.",
    )

    def __init__(self, *args: Any, clinic: Clinic, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        exposed = RecallExposure.objects.filter(recall=self.recall, clinic=clinic)
        self.fields["patient"].queryset = Patient.objects.filter(  # type: ignore[attr-defined]
            clinic=clinic, pk__in=exposed.values("patient_id")
        ).order_by("reference")

    def submit(self) -> str:
        data = self.cleaned_data
        attempt = recall_contact_attempt_record(
            recall=self.recall,
            patient=data["patient"],
            outcome=data["outcome"],
            note=data["note"],
            actor=self.actor,
        )
        return f"Patient {attempt.patient.reference}: {attempt.get_outcome_display().lower()}."


class RecallCloseForm(RecallActionForm):
    title = "Close the recall (signed)"
    intro = (
        "A recall closes once every clinic it reached has acknowledged and every unit they held "
        "is returned or destroyed; otherwise only by an override, which is recorded."
    )
    submit_label = "Sign and close"
    reason = _text(help_text="Why the recall is closed (and why any open item is set aside).")
    override = forms.BooleanField(
        required=False,
        label="Close despite open items",
        help_text="Sets the open items listed above aside; the override is kept on the record.",
    )
    password = _password()

    def submit(self) -> str:
        data = self.cleaned_data
        recall = recall_close(
            recall=self.recall,
            actor=self.actor,
            password=data["password"],
            reason=data["reason"],
            override=data["override"],
        )
        override = " by override" if recall.close_override else ""
        return f"{recall.reference} closed{override}."


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
        ("Signature", {"fields": ["password"]}),
    ]
    change_form_template = "admin/recalls/recall/change_form.html"

    # -- list ------------------------------------------------------------------------------------

    def get_queryset(self, request: HttpRequest) -> QuerySet[Recall]:
        # Clinic staff see the recalls that reached their clinics (the selector's scoping).
        recalls = with_acknowledgement_share(
            recall_list(user=request.user), request_clinic_ids(request)
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
            extra_context.update(self.detail_context(request, recall))
        return super().change_view(request, object_id, form_url, extra_context)

    def detail_context(self, request: HttpRequest, recall: Recall) -> dict[str, Any]:
        """The panels of the recall's page, each read through the scoped selectors."""
        clinic_ids = request_clinic_ids(request)
        effectiveness = recall_effectiveness(recall=recall, clinic_ids=clinic_ids)
        notices: dict[int | None, list[Notification]] = defaultdict(list)
        for notice in notification_list(recall=recall, clinic_ids=clinic_ids):
            notices[notice.clinic_id].append(notice)
        is_open = recall.status == RecallStatus.OPEN
        clinics = [
            {
                "progress": progress,
                "notices": notices.get(progress.clinic_id, []),
                "patients_url": reverse(
                    "admin:recalls_recall_patients", args=[recall.pk, progress.clinic_id]
                ),
                "acknowledge_url": (
                    f"{reverse('admin:recalls_recall_acknowledge', args=[recall.pk])}"
                    f"?clinic={progress.clinic_id}"
                    if is_open
                    and not progress.acknowledged
                    and may_act_at(request, ACKNOWLEDGING_ROLES, progress.clinic_id)
                    else ""
                ),
            }
            for progress in effectiveness.clinics
        ]
        stock = [
            {
                "row": row,
                "disposition_url": (
                    f"{reverse('admin:recalls_recall_disposition', args=[recall.pk])}"
                    f"?clinic={row.clinic_id}&lot={row.lot_id}"
                    if is_open
                    and row.quantity_outstanding > 0
                    and may_act_at(request, DISPOSING_ROLES, row.clinic_id)
                    else ""
                ),
            }
            for row in stock_to_account_for(recall=recall, clinic_ids=clinic_ids)
        ]
        exposures = RecallExposure.objects.filter(recall=recall)
        if clinic_ids is not None:
            exposures = exposures.filter(clinic_id__in=clinic_ids)
        return {
            "panels": True,
            "recall": recall,
            "scoped": clinic_ids is not None,
            "effectiveness": effectiveness,
            "percent": {
                "clinics": _percent(effectiveness.clinics_acknowledged_share),
                "contacted": _percent(effectiveness.patients_contacted_share),
                "attempted": _percent(effectiveness.patients_attempted_share),
                "units": _percent(effectiveness.units_accounted_share),
            },
            "clinics": clinics,
            "integration_notices": notices.get(None, []),
            "stock": stock,
            "scopes": list(
                recall.scopes.select_related("donor", "product", "manufacturer", "added_by")
                .prefetch_related("lots")
                .order_by("round")
            ),
            "recall_lots": list(
                RecallLot.objects.filter(recall=recall)
                .select_related("lot__product", "lot__manufacturer")
                .order_by("round", "lot__lot_number")
            ),
            "exposure_count": exposures.count(),
            "evidence_links": [
                ("exposures-csv", "Exposures (CSV)", _url("exposures_csv", recall)),
                ("notices-csv", "Notices (CSV)", _url("notices_csv", recall)),
                ("report-pdf", "Recall report (PDF)", _url("report_pdf", recall)),
            ],
            "record_links": [
                (
                    label,
                    f"{reverse(f'admin:recalls_{model}_changelist')}?recall__id__exact={recall.pk}",
                )
                for model, label in RECORD_LISTS
                if model != "patientcontactattempt" or recall.depth == RecallDepth.PATIENT
            ],
            "recall_links": self.action_links(request, recall),
        }

    def action_links(self, request: HttpRequest, recall: Recall) -> list[tuple[str, str]]:
        """The follow-up pages this user may open for this recall."""
        if recall.status != RecallStatus.OPEN:
            return []
        links = []
        if can_write(request):
            links.append(("Widen", _url("widen", recall)))
        if holds_any(request, ACKNOWLEDGING_ROLES):
            links.append(("Acknowledge", _url("acknowledge", recall)))
        if holds_any(request, DISPOSING_ROLES):
            links.append(("Record disposition", _url("disposition", recall)))
        if can_write(request):
            links.append(("Close", _url("close", recall)))
        return links

    def audit_trail_events(self, request: HttpRequest, obj: Any, *, related: bool) -> Any:
        events = super().audit_trail_events(request, obj, related=related)
        if related and not is_network_user(request):
            # Each clinic's follow-up is its own (DESIGN rule 8): clinic staff read theirs on the
            # acknowledgement, disposition and contact attempt pages, which are scoped.
            for model in CLINIC_FOLLOW_UP_RECORDS:
                events = events.exclude(pgh_obj_model=model._meta.label)
        return events

    # -- pages of one recall ---------------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        def page(route: str, view: Any, name: str) -> URLPattern:
            pattern: URLPattern = path(
                f"<path:object_id>/{route}",
                self.admin_site.admin_view(view),
                name=f"recalls_recall_{name}",
            )
            return pattern

        return [
            page("widen/", self.widen_view, "widen"),
            page("acknowledge/", self.acknowledge_view, "acknowledge"),
            page("disposition/", self.disposition_view, "disposition"),
            page("patients/<int:clinic_id>/", self.patients_view, "patients"),
            page("close/", self.close_view, "close"),
            page("exposures.csv", self.exposures_csv_view, "exposures_csv"),
            page("notices.csv", self.notices_csv_view, "notices_csv"),
            page("report.pdf", self.report_pdf_view, "report_pdf"),
            *super().get_urls(),
        ]

    def recall_or_404(self, request: HttpRequest, object_id: str) -> Recall:
        """The recall if this user may see it: 403 without a role, 404 when it did not reach the
        user's clinics (as if it did not exist)."""
        if not can_view(request):
            raise PermissionDenied
        recall: Recall | None = self.get_object(request, unquote(object_id))
        if recall is None:
            raise Http404("No such recall.")
        return recall

    def widen_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        recall = self.recall_or_404(request, object_id)
        if not can_write(request):
            raise PermissionDenied
        form = RecallWidenForm(_posted(request), recall=recall, actor=request.user)
        return self.action_page(request, recall, form)

    def acknowledge_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        recall = self.recall_or_404(request, object_id)
        if not holds_any(request, ACKNOWLEDGING_ROLES):
            raise PermissionDenied
        form = RecallAcknowledgeForm(
            _posted(request),
            recall=recall,
            actor=request.user,
            clinics=clinics_of_recall_where(request, recall, ACKNOWLEDGING_ROLES),
            initial={"clinic": request.GET.get("clinic")},
        )
        return self.action_page(request, recall, form)

    def disposition_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        recall = self.recall_or_404(request, object_id)
        if not holds_any(request, DISPOSING_ROLES):
            raise PermissionDenied
        form = RecallDispositionForm(
            _posted(request),
            recall=recall,
            actor=request.user,
            clinics=clinics_of_recall_where(request, recall, DISPOSING_ROLES),
            initial={"clinic": request.GET.get("clinic"), "lot": request.GET.get("lot")},
        )
        return self.action_page(request, recall, form)

    def close_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        recall = self.recall_or_404(request, object_id)
        if not can_write(request):
            raise PermissionDenied
        form = RecallCloseForm(_posted(request), recall=recall, actor=request.user)
        response = self.action_page(request, recall, form, with_open_items=True)
        return response

    def action_page(
        self,
        request: HttpRequest,
        recall: Recall,
        form: RecallActionForm,
        *,
        with_open_items: bool = False,
    ) -> HttpResponse:
        """Show the form; once it is posted and valid, call the service through `form.submit`
        and go back to the recall, or show each refusal on the form."""
        if form.is_bound and form.is_valid():
            try:
                message = form.submit()
            except DomainError as error:
                add_problems(form, error)
            else:
                self.message_user(request, message)
                return HttpResponseRedirect(
                    reverse("admin:recalls_recall_change", args=[recall.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": recall,
            "title": f"{form.title}: {recall.reference}",
            "form": form,
            "open_items": recall_close_problems(recall) if with_open_items else None,
            "media": self.media + form.media,
        }
        return TemplateResponse(request, ACTION_TEMPLATE, context)

    def patients_view(self, request: HttpRequest, object_id: str, clinic_id: int) -> HttpResponse:
        """A clinic's patients exposed to the recall, with their contact details for the clinic's
        own staff (a patient-level recall), and the contact attempt form for those who record."""
        recall = self.recall_or_404(request, object_id)
        clinic_ids = request_clinic_ids(request)
        if clinic_ids is not None and clinic_id not in clinic_ids:
            # Before looking the clinic up: whether another clinic was reached is not theirs.
            raise PermissionDenied("You see only the patients of your own clinic.")
        clinic = get_object_or_404(recall_clinic_ids(recall), pk=clinic_id)
        try:
            listing = recall_patient_list(recall=recall, clinic=clinic, user=request.user)
        except DomainError as error:
            raise PermissionDenied(error.problems[0].message) from error
        may_record = (
            recall.depth == RecallDepth.PATIENT
            and recall.status == RecallStatus.OPEN
            and may_act_at(request, CONTACTING_ROLES, clinic.pk)
        )
        form = None
        if request.method == "POST":
            if not may_record:
                raise PermissionDenied
            form = RecallContactAttemptForm(
                request.POST, recall=recall, actor=request.user, clinic=clinic
            )
            if form.is_valid():
                try:
                    message = form.submit()
                except DomainError as error:
                    add_problems(form, error)
                else:
                    self.message_user(request, message)
                    return HttpResponseRedirect(request.path)
        elif may_record:
            form = RecallContactAttemptForm(
                recall=recall,
                actor=request.user,
                clinic=clinic,
                initial={"patient": request.GET.get("patient")},
            )
        patients = list(listing.patients)
        if listing.with_contacts:
            log_contact_read(
                user=request.user,
                recall=recall,
                clinic=clinic,
                patient_ids=[patient.pk for patient in patients],
            )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": recall,
            "clinic": clinic,
            "title": f"{recall.reference}: patients of {clinic.name}",
            "patients": patients,
            "with_contacts": listing.with_contacts,
            "patient_level": recall.depth == RecallDepth.PATIENT,
            "form": form,
            "media": self.media + (form.media if form is not None else forms.Media()),
        }
        # admin_view marks every admin page never_cache (no-store), this one included.
        return TemplateResponse(request, PATIENTS_TEMPLATE, context)

    # -- evidence --------------------------------------------------------------------------------

    def exposures_csv_view(self, request: HttpRequest, object_id: str) -> StreamingHttpResponse:
        recall = self.recall_or_404(request, object_id)
        rows = exposures_csv(recall=recall, clinic_ids=request_clinic_ids(request))
        return _csv_response(rows, f"{recall.reference}-exposures.csv")

    def notices_csv_view(self, request: HttpRequest, object_id: str) -> StreamingHttpResponse:
        recall = self.recall_or_404(request, object_id)
        rows = notices_csv(recall=recall, clinic_ids=request_clinic_ids(request))
        return _csv_response(rows, f"{recall.reference}-notices.csv")

    def report_pdf_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        recall = self.recall_or_404(request, object_id)
        pdf = recall_report_pdf(recall=recall, clinic_ids=request_clinic_ids(request))
        response = HttpResponse(pdf, content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{recall.reference}.pdf"'
        response["Cache-Control"] = "no-store"
        return response


def _posted(request: HttpRequest) -> Any:
    return request.POST if request.method == "POST" else None


def _url(name: str, recall: Recall) -> str:
    return reverse(f"admin:recalls_recall_{name}", args=[recall.pk])


def _user_name(user: Any) -> str:
    if user is None:
        return ""
    return str(user.get_full_name() or user.get_username())


def _percent(share: float | None) -> str:
    return "n/a" if share is None else f"{share * 100:.0f} %"


def _csv_response(rows: Iterator[str], filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(rows, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


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
        clinic_ids = request_clinic_ids(request)
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

KEY_PREFIX = "whsec_"
SECRET_BYTES = (24, 64)  # the Standard Webhooks recommendation for the key's length
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
SECRET_RULE = (
    f"A Standard Webhooks secret is {KEY_PREFIX} followed by the base64 of "
    f"{SECRET_BYTES[0]} to {SECRET_BYTES[1]} random bytes (such as 32 bytes from os.urandom)."
)


def webhook_secret_problem(secret: str) -> str | None:
    """What is wrong with a webhook secret, or None when it is a Standard Webhooks secret."""
    if not secret.startswith(KEY_PREFIX):
        return f"The secret does not start with {KEY_PREFIX}."
    body = secret.removeprefix(KEY_PREFIX)
    if not _BASE64.fullmatch(body):
        return f"The part after {KEY_PREFIX} is not base64."
    try:
        key = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError):
        return f"The part after {KEY_PREFIX} is not base64."
    if not SECRET_BYTES[0] <= len(key) <= SECRET_BYTES[1]:
        return f"The key is {len(key)} bytes long."
    return None


def mask_secret(secret: str) -> str:
    """Enough to tell two secrets apart, never the secret."""
    if not secret:
        return "-"
    if len(secret) < len(KEY_PREFIX) + 16:
        return f"{KEY_PREFIX}… (hidden)"
    return f"{KEY_PREFIX}…{secret[-4:]} (hidden)"


@transaction.atomic
def webhook_endpoint_save(
    *,
    actor: Any,
    endpoint: WebhookEndpoint | None,
    name: str,
    url: str,
    clinic: Clinic | None,
    active: bool,
    secret: str,
    reason: str,
) -> WebhookEndpoint:
    """Add an endpoint (a secret is required) or change one (a reason is required; an empty
    secret keeps the stored one). Quality managers only.

    Kept here because no recalls service writes endpoints yet; it is a service all the same
    (role, validation, history context, one transaction) and moves to recalls.services as is."""
    require_role(actor, Role.QUALITY_MANAGER)
    secret = (secret or "").strip()
    problems = []
    if endpoint is None:
        reason = (reason or "").strip() or "webhook endpoint added"
        if not secret:
            problems.append(Problem("webhook_secret_required", SECRET_RULE, "secret"))
    elif not (reason or "").strip():
        problems.append(Problem("reason_required", "State the reason for this change.", "reason"))
    if secret and (problem := webhook_secret_problem(secret)) is not None:
        problems.append(Problem("webhook_secret_invalid", f"{problem} {SECRET_RULE}", "secret"))
    if urlsplit(url).scheme not in ("http", "https"):
        problems.append(
            Problem("webhook_url_scheme", "A webhook URL starts with https:// or http://.", "url")
        )
    if problems:
        raise DomainError(problems, status=400)
    if endpoint is None:
        endpoint = WebhookEndpoint()
    else:
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    if secret:
        endpoint.secret = secret
    endpoint.name, endpoint.url, endpoint.clinic, endpoint.active = name, url, clinic, active
    validate_instance(endpoint)
    with history(actor, reason):
        endpoint.save()
    return endpoint


class WebhookEndpointForm(ServiceForm):
    url = forms.URLField(max_length=500, assume_scheme="https")
    secret = forms.CharField(
        required=False,
        max_length=100,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=f"{SECRET_RULE} Never shown again once saved; leave empty when changing an "
        "endpoint to keep its secret.",
    )
    reason = _text(
        required=False,
        rows=2,
        help_text="Why the endpoint changes (required for a change); kept in the audit trail.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["name", "url", "clinic", "active"]

    def call_service(self, data: dict[str, Any]) -> WebhookEndpoint:
        return webhook_endpoint_save(
            actor=self.actor,
            endpoint=self.instance if self.instance.pk else None,
            name=data["name"],
            url=data["url"],
            clinic=data.get("clinic"),
            active=bool(data.get("active")),
            secret=data.get("secret") or "",
            reason=data.get("reason") or "",
        )


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ServiceAdmin):
    clinic_path = "clinic"
    list_display = ["name", "url", "clinic", "active", "secret_hint"]
    list_select_related = ["clinic"]
    list_filter = ["active"]
    search_fields = ["name", "url"]
    fieldsets = [
        (None, {"fields": ["name", "url", "clinic", "active", "secret_hint"]}),
        ("Record", {"fields": ["audit_trail_link"]}),
    ]
    readonly_fields = ["secret_hint", "audit_trail_link"]
    add_form = WebhookEndpointForm
    add_fieldsets = [(None, {"fields": ["name", "url", "clinic", "active", "secret"]})]
    update_form = WebhookEndpointForm
    update_fieldsets = [
        (None, {"fields": ["name", "url", "clinic", "active"]}),
        ("Secret", {"fields": ["secret_hint", "secret"]}),
        (None, {"fields": ["reason"]}),
        ("Record", {"fields": ["audit_trail_link"]}),
    ]

    @admin.display(description="Secret")
    def secret_hint(self, obj: WebhookEndpoint) -> str:
        return mask_secret(obj.secret)


# Every audit trail shows the secret masked: the endpoint's own, and with ?related=1 its clinic's.
mask_in_audit_trail(WebhookEndpoint, "secret", lambda value: mask_secret(str(value)))
