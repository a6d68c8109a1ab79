"""Admin for products and their jurisdiction authorisations, and for the reference data: the donor
marker panel, the QC tests and specifications and jurisdictions' source restrictions. No service
writes the reference data yet, so it is read-only here (migrations seed it)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from lots import forms as lot_forms
from lots.models import (
    Marker,
    Product,
    ProductAuthorisation,
    QcSpecification,
    QcTest,
    SourceRestriction,
)
from providers.admin_base import ReadOnlyInline, ServiceAdmin

RECORD: Any = ("Record", {"fields": ["audit_trail_link"]})


class ProductAuthorisationInline(ReadOnlyInline):
    model = ProductAuthorisation
    fields = ["jurisdiction", "status", "note"]


class ProductSpecificationInline(ReadOnlyInline):
    model = QcSpecification
    verbose_name_plural = "QC specifications specific to this product"
    select_related = ("test", "product")
    fields = ["test", "required", "min_value", "max_value", "expected_outcome"]


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
