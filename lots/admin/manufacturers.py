"""The manufacturer page (providers.admin) shows the manufacturer's products and certificates:
lots lies above providers, so lots adds them."""

from __future__ import annotations

from lots.models import Certificate, Product
from providers.admin import ManufacturerAdmin
from providers.admin_base import ReadOnlyInline


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
