"""Admin for lots, their donors, QC results and signed status changes. Release, rejection and hold
are signed on an intermediate page that asks for the password, the meaning and the reason."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _

from common.admin import signature_form_data
from lots import forms as lot_forms
from lots import services
from lots.admin.shared import SIGNATURE_TEMPLATE
from lots.models import (
    Certificate,
    Lot,
    LotAction,
    LotDonor,
    LotQcResult,
    LotStatus,
    LotStatusChange,
)
from lots.selectors import RELEASABLE_FROM, lot_release_check
from providers.admin_base import (
    ReadOnlyInline,
    ServiceAdmin,
    can_write,
    is_network_user,
    signature_page,
)

# Pages about one lot that the apps above lots provide, by name (treatments: "trace_forward").
LOT_PAGES: dict[str, Callable[..., HttpResponse]] = {}


class LotDonorInline(ReadOnlyInline):
    model = LotDonor
    verbose_name_plural = "donors"
    select_related = ("donor", "lot")
    fields = ["donor", "eligibility"]

    @admin.display(description="Eligibility")
    def eligibility(self, obj: LotDonor) -> str:
        return obj.donor.get_eligibility_display()


class LotQcResultInline(ReadOnlyInline):
    model = LotQcResult
    select_related = ("test", "lot")
    fields = ["test", "numeric_value", "outcome", "tested_on", "laboratory"]


class LotCertificateInline(ReadOnlyInline):
    model = Certificate
    fk_name = "lot"
    fields = ["kind", "number", "issuer", "valid_from", "valid_until", "sha256"]


class LotStatusChangeInline(ReadOnlyInline):
    model = LotStatusChange
    verbose_name_plural = "signed status changes"
    fields = [
        "signed_at",
        "effective_at",
        "retrospective",
        "action",
        "from_status",
        "to_status",
        "signer_name",
        "meaning",
        "reason",
    ]


SIGNED_LOT_ACTIONS: dict[LotAction, tuple[Callable[..., LotStatusChange], str]] = {
    LotAction.RELEASE: (services.lot_release, "released"),
    LotAction.REJECT: (services.lot_reject, "rejected"),
    LotAction.HOLD: (services.lot_hold, "put on hold"),
}


@admin.register(Lot)
class LotAdmin(ServiceAdmin):
    list_display = [
        "lot_number",
        "product",
        "manufacturer",
        "status",
        "manufactured_on",
        "expires_on",
        "quantity",
        "unit",
    ]
    list_select_related = ["product", "manufacturer"]
    search_fields = [
        "lot_number",
        "product__name",
        "manufacturer__legal_name",
        "donors__code",
        "sec_donation_number",
    ]
    list_filter = ["status", "manufacturer", "regulatory_basis", "product__source_kind"]
    date_hierarchy = "manufactured_on"
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "lot_number",
                    "product",
                    "manufacturer",
                    "status",
                    "status_changed_at",
                    "release_effective_at",
                ]
            },
        ),
        ("Release", {"fields": ["release_check"]}),
        ("Single European Code", {"fields": ["sec_eye_readable"]}),
        (
            "Lot",
            {
                "fields": [
                    "manufactured_on",
                    "expires_on",
                    "quantity",
                    "unit",
                    "regulatory_basis",
                    "regulatory_number",
                ]
            },
        ),
        ("Record", {"fields": ["created_by", "created_at", "audit_trail_link"]}),
    ]
    readonly_fields = [
        "created_at",
        "release_effective_at",
        "release_check",
        "sec_eye_readable",
        "audit_trail_link",
    ]
    add_form = lot_forms.LotAddForm
    add_fieldsets = [
        (None, {"fields": ["product", "lot_number", "donors"]}),
        ("Lot", {"fields": ["manufactured_on", "expires_on", "quantity", "unit"]}),
        ("Regulatory", {"fields": ["regulatory_basis", "regulatory_number"]}),
    ]
    inlines = [LotDonorInline, LotQcResultInline, LotCertificateInline, LotStatusChangeInline]
    actions = ["release_lots", "reject_lots", "hold_lots"]
    change_form_template = "admin/lots/lot/change_form.html"

    @admin.display(description="SEC (eye-readable)")
    def sec_eye_readable(self, obj: Lot) -> str:
        sec = obj.sec
        return sec.eye_readable if sec else "-"

    @admin.display(description="Check release")
    def release_check(self, obj: Lot) -> str:
        check = lot_release_check(lot=obj)
        warnings = format_html_join(
            "",
            "<li>Warning <code>{}</code>: {}</li>",
            ((w.code, w.message) for w in check.warnings),
        )
        if check.releasable:
            return format_html(
                '<p class="release-ok">Every release requirement is met.</p><ul>{}</ul>', warnings
            )
        problems = format_html_join(
            "", "<li><code>{}</code>: {}</li>", ((p.code, p.message) for p in check.problems)
        )
        if obj.status in RELEASABLE_FROM:
            summary = _("The lot cannot be released: %(count)s unmet requirement(s).") % {
                "count": len(check.problems)
            }
        else:
            # Evaluated again today, so a released lot whose certificate has since lapsed shows it.
            summary = _("The lot is %(status)s; checked again today:") % {
                "status": obj.get_status_display().lower()
            }
        return format_html(
            '<p class="errornote">{}</p><ul class="release-problems">{}{}</ul>',
            summary,
            problems,
            warnings,
        )

    def has_sign_permission(self, request: HttpRequest) -> bool:
        return can_write(request)

    @admin.action(description="Release selected lots (signed)", permissions=["sign"])
    def release_lots(self, request: HttpRequest, queryset: Any) -> HttpResponse | None:
        return self._sign(request, list(queryset), LotAction.RELEASE, "release_lots")

    @admin.action(description="Reject selected lots (signed)", permissions=["sign"])
    def reject_lots(self, request: HttpRequest, queryset: Any) -> HttpResponse | None:
        return self._sign(request, list(queryset), LotAction.REJECT, "reject_lots")

    @admin.action(description="Put selected lots on hold (signed)", permissions=["sign"])
    def hold_lots(self, request: HttpRequest, queryset: Any) -> HttpResponse | None:
        return self._sign(request, list(queryset), LotAction.HOLD, "hold_lots")

    def _sign(
        self, request: HttpRequest, lots: list[Lot], action: LotAction, action_name: str = ""
    ) -> HttpResponse | None:
        service, done = SIGNED_LOT_ACTIONS[action]

        def sign_one(lot: Lot, data: dict[str, Any]) -> str:
            service(actor=request.user, lot_id=lot.pk, **data)
            return f"Lot {lot.lot_number} {done}."

        return signature_page(
            self,
            request,
            lots,
            form=lot_forms.SignatureForm(signature_form_data(request), action=action),
            title=f"Sign: {action.label.lower()}",
            sign_one=sign_one,
            template=SIGNATURE_TEMPLATE,
            action_name=action_name,
        )

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<path:object_id>/sign/<str:action>/",
                self.admin_site.admin_view(self.sign_view),
                name="lots_lot_sign",
            ),
            path(
                "<path:object_id>/trace-forward/",
                self.admin_site.admin_view(self.trace_forward_view),
                name="lots_lot_trace_forward",
            ),
            *super().get_urls(),
        ]

    def trace_forward_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Every treatment, patient reference, practitioner and clinic the lot reached, and the
        stock still on hand (treatments.admin renders it from the trace_forward selector)."""
        lot = self.get_object(request, unquote(object_id))
        if lot is None:
            raise Http404
        page = LOT_PAGES.get("trace_forward")
        if page is None:
            raise Http404
        return page(self, request, lot=lot)

    def sign_view(self, request: HttpRequest, object_id: str, action: str) -> HttpResponse:
        """The same signature page for one lot, from its change page."""
        if not self.has_sign_permission(request):
            raise PermissionDenied
        lot = self.get_object(request, unquote(object_id))
        if lot is None or action not in LotAction.values:
            raise Http404
        response = self._sign(request, [lot], LotAction(action))
        return response or HttpResponseRedirect(reverse("admin:lots_lot_change", args=[lot.pk]))

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        extra_context = dict(extra_context or {})
        lot = self.get_object(request, unquote(object_id))
        if lot is not None and self.has_sign_permission(request):
            allowed = []
            if lot.status in RELEASABLE_FROM:
                allowed += [LotAction.RELEASE, LotAction.REJECT]
            if lot.status == LotStatus.RELEASED:
                allowed.append(LotAction.HOLD)
            extra_context["sign_links"] = [
                (action.label, reverse("admin:lots_lot_sign", args=[lot.pk, action.value]))
                for action in allowed
            ]
        if lot is not None and is_network_user(request):
            # The dossier covers every clinic the lot reached: quality managers and auditors only
            # (the API answers clinic staff 403; the admin session signs the download in).
            extra_context["evidence_links"] = [
                ("Dossier (PDF)", reverse("lot-dossier-pdf", args=[lot.pk])),
                ("Treatments (CSV)", reverse("lot-treatments-csv", args=[lot.pk])),
            ]
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(LotDonor)
class LotDonorAdmin(ServiceAdmin):
    list_display = ["lot", "donor"]
    list_select_related = ["lot__product", "donor"]
    search_fields = ["lot__lot_number", "donor__code"]
    fields = ["lot", "donor", "audit_trail_link"]
    readonly_fields = ["audit_trail_link"]
    add_form = lot_forms.LotDonorAddForm
    add_fieldsets = [(None, {"fields": ["lot", "donor", "reason"]})]


@admin.register(LotQcResult)
class LotQcResultAdmin(ServiceAdmin):
    list_display = ["lot", "test", "numeric_value", "outcome", "tested_on", "laboratory"]
    list_select_related = ["lot__product", "test"]
    search_fields = ["lot__lot_number", "test__code", "laboratory"]
    list_filter = ["test", "outcome"]
    fields = [
        "lot",
        "test",
        "numeric_value",
        "outcome",
        "tested_on",
        "laboratory",
        "method",
        "audit_trail_link",
    ]
    readonly_fields = ["audit_trail_link"]
    add_form = lot_forms.LotQcResultForm
    add_fieldsets = [
        (None, {"fields": ["lot", "test", "numeric_value", "outcome"]}),
        ("Test", {"fields": ["tested_on", "laboratory", "method", "reason"]}),
    ]


@admin.register(LotStatusChange)
class LotStatusChangeAdmin(ServiceAdmin):
    list_display = [
        "lot",
        "action",
        "from_status",
        "to_status",
        "signer_name",
        "signed_at",
        "effective_at",
        "retrospective",
    ]
    list_select_related = ["lot__product"]
    search_fields = ["lot__lot_number", "signer_name", "reason", "record_digest"]
    list_filter = ["action", "to_status", "meaning", "retrospective"]
    date_hierarchy = "signed_at"
    fields = [
        "lot",
        "action",
        "from_status",
        "to_status",
        "signed_by",
        "signer_name",
        "signed_at",
        "effective_at",
        "retrospective",
        "meaning",
        "reason",
        "record_digest",
        "audit_trail_link",
    ]
    readonly_fields = ["audit_trail_link"]
