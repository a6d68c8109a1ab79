"""REST API for history imports: upload a file (multipart) to queue an import, then watch it.

An import runs in a worker; the upload answers 202 with the job, whose `status`, `rows_done` of
`rows_total` and, once finished, `report` (every problem, by line and column) the caller reads
from its URL. Another clinic's import is a 404.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from common.api_fields import CREATE_ERRORS, LIST_ERRORS, READ_ERRORS, TextChoiceField, id_field
from common.api_views import Api, ListApi, get_or_404, validated
from common.errors import DomainError
from history import services
from history.filters import HistoryImportFilter
from history.models import HistoryImport, ImportKind
from history.selectors import history_import_list
from providers.api import ClinicRefSerializer
from providers.models import Clinic
from providers.permissions import CLINIC_STAFF_PERMISSIONS

# A file of 10^5 treatments is about 15 MB.
MAX_FILE_BYTES = 64 * 1024 * 1024


class ImportProblemSerializer(serializers.Serializer[Any]):
    line = serializers.IntegerField(
        allow_null=True, help_text="Line of the file (the header is line 1); null: the file."
    )
    column = serializers.CharField(allow_null=True, help_text="Column; null: the whole line.")
    code = serializers.CharField(help_text="Stable machine code of the rule.")
    message = serializers.CharField(help_text="The rule, in words.")


class HistoryImportOutputSerializer(serializers.ModelSerializer[HistoryImport]):
    clinic = ClinicRefSerializer(read_only=True, allow_null=True, help_text="None for lots.")
    uploaded_by = serializers.CharField(source="uploaded_by.username", read_only=True)

    class Meta:
        model = HistoryImport
        fields = [
            "id",
            "kind",
            "clinic",
            "uploaded_by",
            "file_name",
            "file_sha256",
            "dry_run",
            "status",
            "rows_total",
            "rows_done",
            "rows_written",
            "created_at",
            "finished_at",
        ]
        read_only_fields = fields


class HistoryImportDetailSerializer(HistoryImportOutputSerializer):
    report = ImportProblemSerializer(
        many=True, read_only=True, help_text="Every problem found; empty when none."
    )

    class Meta(HistoryImportOutputSerializer.Meta):
        fields = [*HistoryImportOutputSerializer.Meta.fields, "report"]
        read_only_fields = fields


class HistoryImportInputSerializer(serializers.Serializer[Any]):
    kind = TextChoiceField(choices=ImportKind.choices)
    clinic = id_field(
        Clinic.objects.all(),
        allow_null=True,
        default=None,
        help_text="Clinic id, for treatments and receipts (the clinic's records); none for lots.",
    )
    dry_run = serializers.BooleanField(
        default=False, help_text="Check everything and write nothing."
    )
    file = serializers.FileField(
        allow_empty_file=True, help_text="The records as CSV (UTF-8, a header line)."
    )


def _imports(request: Request) -> QuerySet[HistoryImport]:
    return history_import_list(user=request.user)


class HistoryImportsApi(ListApi):
    serializer_class = HistoryImportOutputSerializer
    filterset_class = HistoryImportFilter
    parser_classes = [MultiPartParser]
    permission_classes = CLINIC_STAFF_PERMISSIONS

    def get_queryset(self) -> QuerySet[HistoryImport]:
        return _imports(self.request).defer("report")

    @extend_schema(
        summary="List the history imports of the clinics you may see",
        responses={200: HistoryImportOutputSerializer, **LIST_ERRORS},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Queue an import of past records (multipart, the CSV in `file`)",
        description="Treatments and receipts of a clinic, by an administrator of that clinic; "
        "lots (the network's, no clinic), by a quality manager. "
        "The import runs in a worker: follow it at its URL. A file is all or nothing: any "
        "problem and nothing is written (`status` refused, with the `report`). See "
        "docs/history-import.md for the columns.",
        request={"multipart/form-data": HistoryImportInputSerializer},
        responses={202: HistoryImportOutputSerializer, **CREATE_ERRORS},
    )
    def post(self, request: Request) -> Response:
        data = validated(HistoryImportInputSerializer, request.data)
        upload = data["file"]
        if upload.size > MAX_FILE_BYTES:
            raise DomainError.single(
                "file_too_large",
                _("An import file holds at most %(megabytes)s MB; split it.")
                % {"megabytes": MAX_FILE_BYTES // (1024 * 1024)},
                field="file",
                status=400,
            )
        job = services.history_import_queue(
            actor=request.user,
            clinic=data["clinic"],
            kind=data["kind"],
            data=upload.read(),
            file_name=upload.name or "",
            dry_run=data["dry_run"],
        )
        job = _imports(request).get(pk=job.pk)
        return Response(HistoryImportOutputSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class HistoryImportDetailApi(Api):
    @extend_schema(
        summary="One history import: its progress and, once finished, its report",
        responses={200: HistoryImportDetailSerializer, **READ_ERRORS},
    )
    def get(self, request: Request, import_id: int) -> Response:
        job = get_or_404(_imports(request), import_id, what="history import")
        return Response(HistoryImportDetailSerializer(job).data)
