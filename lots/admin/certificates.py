"""Admin for certificates: immutable once stored; a new version supersedes the old one. The PDF is
served from the certificate's page."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest
from django.http.response import HttpResponseBase
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _

from lots import forms as lot_forms
from lots.models import Certificate
from providers.admin_base import ServiceAdmin


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
            raise Http404(_("The certificate's file is missing from storage.")) from error
        return FileResponse(
            stream,
            content_type="application/pdf",
            filename=certificate.original_filename or f"{certificate.sha256}.pdf",
        )
