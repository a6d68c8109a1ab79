"""Admin for products, donors, lots, QC results, certificates and signed lot decisions. Every write
is a service call (common.admin); signed decisions go through an intermediate page that
asks for the password, the meaning and the reason."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join

from common.admin import signature_form_data
from lots import forms as lot_forms
from lots import services
from lots.models import (
    Certificate,
    Donor,
    DonorMarkerResult,
    Lot,
    LotAction,
    LotDonor,
    LotQcResult,
    LotStatus,
    LotStatusChange,
    Marker,
    Product,
    ProductAuthorisation,
    QcSpecification,
    QcTest,
    SourceRestriction,
)
from lots.selectors import RELEASABLE_FROM, lot_release_check
from providers.admin import ManufacturerAdmin
from providers.admin_base import (
    ReadOnlyInline,
    ServiceAdmin,
    can_write,
    is_network_user,
    signature_page,
)

RECORD: Any = ("Record", {"fields": ["audit_trail_link"]})
SIGNATURE_TEMPLATE = "admin/lots/signature.html"


# ---------------------------------------------------------------------------------------------
# Products


class ProductAuthorisationInline(ReadOnlyInline):
    model = ProductAuthorisation
    fields = ["jurisdiction", "status", "note"]


class ProductSpecificationInline(ReadOnlyInline):
    model = QcSpecification
    verbose_name_plural = "QC specifications specific to this product"
    select_related = ("test", "product")
    fields = ["test", "required", "min_value", "max_value", "expected_outcome"]


# Pages about one lot that the apps above lots provide, by name (treatments: "trace_forward").
LOT_PAGES: dict[str, Callable[..., HttpResponse]] = {}


@admin.register(Product)
class ProductAdmin(ServiceAdmin):
    list_display = ["name", "manufacturer", "gtin", "source_kind", "tissue", "created_at"]
    list_select_related = ["manufacturer"]
    search_fields = ["name", "gtin", "manufacturer__legal_name"]
    list_filter = ["source_kind", "tissue", "manufacturer"]
    fieldsets = [
        (None, {"fields": ["manufacturer", "name", "gtin", "source_kind", "tissue"]}),
        ("Use", {"fields": ["permitted_routes", "storage_min_celsius", "storage_max_celsius"]}),
        ("Record", {"fields": ["created_at", "audit_trail_link"]}),
    ]
    readonly_fields = ["created_at", "audit_trail_link"]
    add_form = lot_forms.ProductAddForm
    add_fieldsets = [
        (None, {"fields": ["manufacturer", "name", "gtin", "source_kind", "tissue"]}),
        ("Use", {"fields": ["permitted_routes", "storage_min_celsius", "storage_max_celsius"]}),
    ]
    inlines = [ProductAuthorisationInline, ProductSpecificationInline]


@admin.register(ProductAuthorisation)
class ProductAuthorisationAdmin(ServiceAdmin):
    list_display = ["product", "jurisdiction", "status"]
    list_select_related = ["product"]
    search_fields = ["product__name", "jurisdiction", "note"]
    list_filter = ["status", "jurisdiction"]
    fieldsets = [(None, {"fields": ["product", "jurisdiction", "status", "note"]}), RECORD]
    readonly_fields = ["audit_trail_link"]
    add_form = lot_forms.ProductAuthorisationForm
    add_fieldsets = [(None, {"fields": ["product", "jurisdiction", "status", "note", "reason"]})]
    # product_authorisation_set replaces the decision, so a changed decision goes through it too.
    update_form = lot_forms.ProductAuthorisationForm
    update_fieldsets = [
        (None, {"fields": ["product", "jurisdiction", "status", "note", "reason"]}),
        RECORD,
    ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ()
        return ["product", "jurisdiction", *super().get_readonly_fields(request, obj)]


# ---------------------------------------------------------------------------------------------
# Reference data: the donor marker panel, the QC specification and jurisdictions' source
# restrictions. No service writes them yet, so they are read-only here (migrations seed them).


@admin.register(Marker)
class MarkerAdmin(ServiceAdmin):
    list_display = ["code", "name", "required_for_tissues", "active"]
    search_fields = ["code", "name"]
    list_filter = ["active"]
    fields = ["code", "name", "required_for_tissues", "active", "audit_trail_link"]
    readonly_fields = ["audit_trail_link"]


@admin.register(SourceRestriction)
class SourceRestrictionAdmin(ServiceAdmin):
    list_display = ["jurisdiction", "source_kind", "scope"]
    search_fields = ["jurisdiction", "note"]
    list_filter = ["source_kind", "scope", "jurisdiction"]
    fields = ["jurisdiction", "source_kind", "scope", "note", "audit_trail_link"]
    readonly_fields = ["audit_trail_link"]


class QcSpecificationInline(ReadOnlyInline):
    model = QcSpecification
    select_related = ("product", "test")
    fields = ["product", "required", "min_value", "max_value", "expected_outcome"]


@admin.register(QcTest)
class QcTestAdmin(ServiceAdmin):
    list_display = ["code", "name", "kind", "unit"]
    search_fields = ["code", "name"]
    list_filter = ["kind"]
    fields = ["code", "name", "kind", "unit", "audit_trail_link"]
    readonly_fields = ["audit_trail_link"]
    inlines = [QcSpecificationInline]


@admin.register(QcSpecification)
class QcSpecificationAdmin(ServiceAdmin):
    list_display = ["test", "product", "required", "criterion"]
    list_select_related = ["test", "product"]
    search_fields = ["test__code", "test__name", "product__name"]
    list_filter = ["required", "test"]
    fields = [
        "test",
        "product",
        "required",
        "min_value",
        "max_value",
        "expected_outcome",
        "audit_trail_link",
    ]
    readonly_fields = ["audit_trail_link"]

    @admin.display(description="Passes when")
    def criterion(self, obj: QcSpecification) -> str:
        return obj.describe()


# ---------------------------------------------------------------------------------------------
# Donors


class DonorMarkerResultInline(ReadOnlyInline):
    model = DonorMarkerResult
    select_related = ("marker", "donor")
    fields = ["marker", "result", "tested_on", "laboratory", "test_method"]


class DonorLotInline(ReadOnlyInline):
    model = LotDonor
    verbose_name_plural = "lots made from this donation"
    select_related = ("lot__product", "donor")
    fields = ["lot"]


@admin.register(Donor)
class DonorAdmin(ServiceAdmin):
    list_display = ["code", "isbt_din", "tissue", "collection_date", "eligibility"]
    search_fields = ["code", "isbt_din", "testing_laboratory"]
    list_filter = ["eligibility", "tissue", "birth_mother_tested"]
    date_hierarchy = "collection_date"
    fieldsets = [
        (None, {"fields": ["code", "isbt_din", "tissue", "collection_date", "specimen_date"]}),
        ("Testing", {"fields": ["birth_mother_tested", "testing_laboratory"]}),
        (
            "Eligibility",
            {"fields": ["eligibility", "eligibility_decided_by", "eligibility_decided_at"]},
        ),
        ("Record", {"fields": ["created_at", "audit_trail_link"]}),
    ]
    readonly_fields = ["created_at", "audit_trail_link"]
    add_form = lot_forms.DonorAddForm
    add_fieldsets = [
        (None, {"fields": ["code", "isbt_din", "tissue", "collection_date", "specimen_date"]}),
        ("Testing", {"fields": ["birth_mother_tested", "testing_laboratory"]}),
    ]
    inlines = [DonorMarkerResultInline, DonorLotInline]
    actions = ["decide_eligibility"]

    def has_sign_permission(self, request: HttpRequest) -> bool:
        return can_write(request)

    @admin.action(
        description="Decide eligibility of selected donors (signed)", permissions=["sign"]
    )
    def decide_eligibility(self, request: HttpRequest, queryset: Any) -> HttpResponse | None:
        def sign_one(donor: Donor, data: dict[str, Any]) -> str:
            donor = services.donor_eligibility_decide(actor=request.user, donor=donor, **data)
            return f"Donor {donor.code} is now {donor.get_eligibility_display().lower()}."

        return signature_page(
            self,
            request,
            list(queryset),
            form=lot_forms.EligibilityForm(signature_form_data(request)),
            title="Sign a donor eligibility determination",
            sign_one=sign_one,
            template=SIGNATURE_TEMPLATE,
            action_name="decide_eligibility",
        )


@admin.register(DonorMarkerResult)
class DonorMarkerResultAdmin(ServiceAdmin):
    list_display = ["donor", "marker", "result", "tested_on", "laboratory"]
    list_select_related = ["donor", "marker"]
    search_fields = ["donor__code", "marker__code", "marker__name", "laboratory"]
    list_filter = ["result", "marker"]
    fields = [
        "donor",
        "marker",
        "result",
        "tested_on",
        "laboratory",
        "test_method",
        "audit_trail_link",
    ]
    readonly_fields = ["audit_trail_link"]
    add_form = lot_forms.DonorMarkerResultForm
    add_fieldsets = [
        (
            None,
            {
                "fields": [
                    "donor",
                    "marker",
                    "result",
                    "tested_on",
                    "laboratory",
                    "test_method",
                    "reason",
                ]
            },
        )
    ]


# ---------------------------------------------------------------------------------------------
# Lots


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
    fields = ["signed_at", "action", "from_status", "to_status", "signer_name", "meaning", "reason"]


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
    search_fields = ["lot_number", "product__name", "manufacturer__legal_name", "donors__code"]
    list_filter = ["status", "manufacturer", "regulatory_basis", "product__source_kind"]
    date_hierarchy = "manufactured_on"
    fieldsets = [
        (
            None,
            {"fields": ["lot_number", "product", "manufacturer", "status", "status_changed_at"]},
        ),
        ("Release", {"fields": ["release_check"]}),
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
    readonly_fields = ["created_at", "release_check", "audit_trail_link"]
    add_form = lot_forms.LotAddForm
    add_fieldsets = [
        (None, {"fields": ["product", "lot_number", "donors"]}),
        ("Lot", {"fields": ["manufactured_on", "expires_on", "quantity", "unit"]}),
        ("Regulatory", {"fields": ["regulatory_basis", "regulatory_number"]}),
    ]
    inlines = [LotDonorInline, LotQcResultInline, LotCertificateInline, LotStatusChangeInline]
    actions = ["release_lots", "reject_lots", "hold_lots"]
    change_form_template = "admin/lots/lot/change_form.html"

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
            summary = f"The lot cannot be released: {len(check.problems)} unmet requirement(s)."
        else:
            # Evaluated again today, so a released lot whose certificate has since lapsed shows it.
            summary = f"The lot is {obj.get_status_display().lower()}; checked again today:"
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


# ---------------------------------------------------------------------------------------------
# Certificates and signed decisions: immutable once stored


@admin.register(Certificate)
class CertificateAdmin(ServiceAdmin):
    list_display = [
        "number",
        "kind",
        "manufacturer",
        "lot",
        "valid_from",
        "valid_until",
        "is_current",
        "uploaded_at",
    ]
    list_select_related = ["manufacturer", "lot__product", "superseded_by"]
    search_fields = ["number", "issuer", "sha256", "manufacturer__legal_name", "lot__lot_number"]
    list_filter = ["kind", "manufacturer"]
    fieldsets = [
        (None, {"fields": ["kind", "manufacturer", "lot", "issuer", "number"]}),
        ("Validity", {"fields": ["valid_from", "valid_until", "supersedes", "superseded"]}),
        ("File", {"fields": ["pdf", "sha256", "size_bytes", "original_filename"]}),
        ("Record", {"fields": ["uploaded_by", "uploaded_at", "audit_trail_link"]}),
    ]
    readonly_fields = ["pdf", "superseded", "audit_trail_link"]
    add_form = lot_forms.CertificateUploadForm
    add_fieldsets = [
        (None, {"fields": ["kind", "manufacturer", "lot", "issuer", "number"]}),
        ("Validity", {"fields": ["valid_from", "valid_until"]}),
        ("File", {"fields": ["file"]}),
        (
            "New version",
            {
                "fields": ["supersedes", "reason"],
                "description": "Certificates are never changed: upload the corrected or renewed "
                "certificate as a new version of the old one.",
            },
        ),
    ]

    @admin.display(description="Current", boolean=True)
    def is_current(self, obj: Certificate) -> bool:
        return not hasattr(obj, "superseded_by")

    @admin.display(description="Superseded by")
    def superseded(self, obj: Certificate) -> Any:
        return getattr(obj, "superseded_by", None) or "-"

    @admin.display(description="PDF")
    def pdf(self, obj: Certificate) -> str:
        url = reverse("admin:lots_certificate_pdf", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, obj.original_filename or "certificate.pdf")

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<path:object_id>/pdf/",
                self.admin_site.admin_view(self.pdf_view),
                name="lots_certificate_pdf",
            ),
            *super().get_urls(),
        ]

    def pdf_view(self, request: HttpRequest, object_id: str) -> HttpResponseBase:
        certificate = self.get_object(request, unquote(object_id))
        if certificate is None:
            raise Http404
        if not self.has_view_permission(request, certificate):
            raise PermissionDenied
        try:
            stream = certificate.file.open("rb")
        except FileNotFoundError as error:
            raise Http404("The certificate's file is missing from storage.") from error
        return FileResponse(
            stream,
            content_type="application/pdf",
            filename=certificate.original_filename or f"{certificate.sha256}.pdf",
        )


@admin.register(LotStatusChange)
class LotStatusChangeAdmin(ServiceAdmin):
    list_display = ["lot", "action", "from_status", "to_status", "signer_name", "signed_at"]
    list_select_related = ["lot__product"]
    search_fields = ["lot__lot_number", "signer_name", "reason", "record_digest"]
    list_filter = ["action", "to_status", "meaning"]
    date_hierarchy = "signed_at"
    fields = [
        "lot",
        "action",
        "from_status",
        "to_status",
        "signed_by",
        "signer_name",
        "signed_at",
        "meaning",
        "reason",
        "record_digest",
        "audit_trail_link",
    ]
    readonly_fields = ["audit_trail_link"]


class ProductInline(ReadOnlyInline):
    model = Product
    select_related = ("manufacturer",)
    fields = ["name", "gtin", "source_kind", "tissue", "permitted_routes"]


class ManufacturerCertificateInline(ReadOnlyInline):
    model = Certificate
    fk_name = "manufacturer"
    verbose_name_plural = "certificates (manufacturer and lot)"
    select_related = ("lot__product", "superseded_by", "manufacturer")
    fields = ["kind", "number", "lot", "issuer", "valid_from", "valid_until", "superseded_by"]


ManufacturerAdmin.inlines = [
    *ManufacturerAdmin.inlines,
    ProductInline,
    ManufacturerCertificateInline,
]
