"""Certificates: list, detail, upload (multipart PDF) and the stored PDF itself."""

from __future__ import annotations

import base64
import binascii
import logging
from typing import Any

from django.core.files.storage import default_storage
from django.db.models import QuerySet
from django.http import FileResponse, HttpResponse, HttpResponseBase
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from common.api_fields import (
    CREATE_ERRORS,
    LIST_ERRORS,
    READ_ERRORS,
    TextChoiceField,
    error_responses,
    id_field,
)
from common.api_views import Api, ListApi, get_or_404, validated
from lots import services
from lots.api.serializers import ManufacturerRefSerializer, reason_field
from lots.filters import CertificateFilter
from lots.models import Certificate, CertificateKind, Lot
from lots.selectors import certificate_list
from providers.models import Manufacturer

logger = logging.getLogger(__name__)


class CertificateOutputSerializer(serializers.ModelSerializer[Certificate]):
    manufacturer = ManufacturerRefSerializer(read_only=True)
    lot = serializers.SerializerMethodField()
    superseded_by = serializers.SerializerMethodField(help_text="Id of the newer version, if any.")
    current = serializers.SerializerMethodField(help_text="No newer version supersedes it.")
    uploaded_by = serializers.CharField(source="uploaded_by.username", read_only=True)

    class Meta:
        model = Certificate
        fields = [
            "id",
            "kind",
            "manufacturer",
            "lot",
            "issuer",
            "number",
            "valid_from",
            "valid_until",
            "sha256",
            "size_bytes",
            "original_filename",
            "supersedes",
            "superseded_by",
            "current",
            "uploaded_by",
            "uploaded_at",
        ]
        read_only_fields = fields

    @extend_schema_field(
        {
            "type": "object",
            "nullable": True,
            "properties": {"id": {"type": "integer"}, "lot_number": {"type": "string"}},
        }
    )
    def get_lot(self, certificate: Certificate) -> dict[str, Any] | None:
        lot = certificate.lot
        return None if lot is None else {"id": lot.pk, "lot_number": lot.lot_number}

    def get_superseded_by(self, certificate: Certificate) -> int | None:
        newer = getattr(certificate, "superseded_by", None)
        return None if newer is None else newer.pk

    def get_current(self, certificate: Certificate) -> bool:
        return getattr(certificate, "superseded_by", None) is None


class CertificateUploadInputSerializer(serializers.Serializer[Any]):
    kind = TextChoiceField(choices=CertificateKind.choices)
    issuer = serializers.CharField(max_length=200)
    number = serializers.CharField(max_length=100)
    valid_from = serializers.DateField()
    valid_until = serializers.DateField(
        allow_null=True, default=None, help_text="Required for GMP and ISO 13485 certificates."
    )
    manufacturer = id_field(
        Manufacturer.objects.all(),
        allow_null=True,
        default=None,
        help_text="Manufacturer id, for GMP and ISO 13485 certificates.",
    )
    lot = id_field(
        Lot.objects.select_related("manufacturer"),
        allow_null=True,
        default=None,
        help_text="Lot id, for a certificate of analysis.",
    )
    supersedes = id_field(
        Certificate.objects.all(),
        allow_null=True,
        default=None,
        help_text="Id of the certificate this one replaces (a reason is then required).",
    )
    reason = reason_field(default="")
    # Django's multipart parser already drops control characters (NUL included) from the name.
    file = serializers.FileField(allow_empty_file=True, help_text="The certificate as a PDF.")


def _certificates() -> QuerySet[Certificate]:
    # certificate_list() does not join the uploader, which the output names.
    return certificate_list().select_related("uploaded_by")


class CertificatesApi(ListApi):
    serializer_class = CertificateOutputSerializer
    filterset_class = CertificateFilter
    parser_classes = [MultiPartParser]

    def get_queryset(self) -> QuerySet[Certificate]:
        return _certificates()

    @extend_schema(
        summary="List certificates", responses={200: CertificateOutputSerializer, **LIST_ERRORS}
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Upload a certificate (multipart, the PDF in `file`)",
        description="A certificate of analysis names its `lot`; a GMP or ISO 13485 certificate "
        "names its `manufacturer` and `valid_until`. A new version names the one it "
        "`supersedes` and the `reason`. 507 (`storage_full`): the file store has no room; "
        "nothing was saved.",
        request={"multipart/form-data": CertificateUploadInputSerializer},
        responses={201: CertificateOutputSerializer, **CREATE_ERRORS, **error_responses(507)},
    )
    def post(self, request: Request) -> Response:
        data = validated(CertificateUploadInputSerializer, request.data)
        upload = data.pop("file")
        certificate = services.certificate_upload(
            actor=request.user, file=upload, filename=upload.name or "", **data
        )
        certificate = _certificates().get(pk=certificate.pk)
        return Response(
            CertificateOutputSerializer(certificate).data, status=status.HTTP_201_CREATED
        )


class CertificateDetailApi(Api):
    @extend_schema(
        summary="One certificate", responses={200: CertificateOutputSerializer, **READ_ERRORS}
    )
    def get(self, request: Request, certificate_id: int) -> Response:
        certificate = get_or_404(_certificates(), certificate_id, what="certificate")
        return Response(CertificateOutputSerializer(certificate).data)


class CertificateFileApi(Api):
    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        # The file is always a PDF; errors are always JSON, whatever the Accept header asks for.
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        summary="The certificate's PDF",
        description="The stored file as uploaded. `ETag` is its SHA-256 (hex, quoted) and "
        "`Repr-Digest` carries the same digest (RFC 9530), so a client can check what it got.",
        responses={(200, "application/pdf"): OpenApiTypes.BINARY, **READ_ERRORS},
    )
    def get(self, request: Request, certificate_id: int) -> HttpResponseBase:
        certificate = get_or_404(Certificate.objects.all(), certificate_id, what="certificate")
        etag = f'"{certificate.sha256}"'
        if request.headers.get("If-None-Match") == etag:
            not_modified = HttpResponse(status=status.HTTP_304_NOT_MODIFIED)
            not_modified["ETag"] = etag
            return not_modified
        try:
            handle = default_storage.open(certificate.file.name or "", "rb")
        except FileNotFoundError as error:
            logger.error(
                "certificate %s: stored file %s is missing", certificate.pk, certificate.file.name
            )
            raise NotFound(
                _("The certificate's file is missing from storage."),
                code="certificate_file_missing",
            ) from error
        filename = certificate.original_filename or f"certificate-{certificate.pk}.pdf"
        response = FileResponse(handle, content_type="application/pdf", filename=filename)
        response["ETag"] = etag
        digest = base64.b64encode(binascii.unhexlify(certificate.sha256)).decode()
        response["Repr-Digest"] = f"sha-256=:{digest}:"
        return response
