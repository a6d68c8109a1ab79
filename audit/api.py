"""REST API for the record of reads of patient contact data (DESIGN rule 7): who was shown which
patients' contact details, when, through what. Read-only: the record is written by the reads
themselves (`audit.services.contact_data_read_record`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils.translation import gettext_lazy
from django_filters.utils import translate_validation
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from pghistory.models import Events
from rest_framework import serializers
from rest_framework.permissions import BasePermission
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from audit.event_filters import AuditEventFilter
from audit.filters import ContactDataReadFilter
from audit.models import ContactDataRead
from audit.selectors import (
    audit_event_stream,
    audit_event_views,
    contact_data_reads,
    reader_clinic_ids,
    without_jit,
)
from common.api_fields import LIST_ERRORS, ErrorSerializer
from common.api_views import Api, ListApi
from common.csv import CsvRenderer, csv_response
from providers.access import access_for
from providers.api import ClinicRefSerializer
from providers.permissions import NETWORK_PERMISSIONS, ROLE_PERMISSIONS


class ReadsContactDataRecord(BasePermission):
    """Network quality managers and auditors, and clinic administrators (for their clinics);
    never clinicians."""

    message = gettext_lazy(
        "The record of contact-data reads is for quality managers, auditors and clinic "
        "administrators."
    )
    code = "role_required"

    def has_permission(self, request: Request, view: Any) -> bool:
        return reader_clinic_ids(access_for(request).memberships) != []


class ContactDataReadOutputSerializer(serializers.ModelSerializer[ContactDataRead]):
    clinic = ClinicRefSerializer(read_only=True)
    user = serializers.IntegerField(source="user_id", read_only=True, help_text="Reader's id.")
    patient_ids = serializers.ListField(
        child=serializers.IntegerField(), read_only=True, help_text="Ids of the patients shown."
    )
    # A plain string: a second `via` choice set would collide with the acknowledgements' enum.
    via = serializers.CharField(read_only=True, help_text="`api` or `admin`.")

    class Meta:
        model = ContactDataRead
        fields = [
            "id",
            "at",
            "user",
            "user_name",
            "clinic",
            "patient_ids",
            "patient_count",
            "what",
            "via",
        ]
        read_only_fields = fields


class ContactDataReadsApi(ListApi):
    permission_classes = [*ROLE_PERMISSIONS, ReadsContactDataRecord]
    serializer_class = ContactDataReadOutputSerializer
    filterset_class = ContactDataReadFilter

    def get_queryset(self) -> QuerySet[ContactDataRead]:
        if getattr(self, "swagger_fake_view", False):
            return ContactDataRead.objects.none()  # schema generation: no user to scope by
        return contact_data_reads(user=self.request.user)

    @extend_schema(
        summary="Who read which patients' contact details, newest first",
        description="One row per read (a list page is one row naming every patient it showed). "
        "Network quality managers and auditors see every clinic; clinic administrators their "
        "own clinics; clinicians are refused (403). The record is append-only in the database.",
        responses={200: ContactDataReadOutputSerializer, **LIST_ERRORS},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


# ---------------------------------------------------------------------------------------------
# The audit trail: search and export


class AuditEventOutputSerializer(serializers.Serializer[dict[str, Any]]):
    id = serializers.CharField(help_text="`<event model>:<event id>`, unique across the trail.")
    event_model = serializers.CharField(
        help_text="The pghistory event model, e.g. `lots.LotEvent`."
    )
    event_id = serializers.IntegerField()
    action = serializers.CharField(
        source="label", help_text="What happened: `insert`, `update`, ..."
    )
    at = serializers.DateTimeField(help_text="When (the writing transaction's time, UTC).")
    record_type = serializers.CharField(help_text="The record's model label, e.g. `lots.Lot`.")
    record_id = serializers.CharField(allow_null=True, help_text="The record's id.")
    user = serializers.IntegerField(allow_null=True, help_text="Acting user's id (null: system).")
    user_name = serializers.CharField()
    reason = serializers.CharField(help_text="The reason stated for the change.")
    details = serializers.DictField(
        source="context", help_text="Further context: the request URL, signatures..."
    )
    values = serializers.DictField(source="data", help_text="The record's values after the event.")
    changes = serializers.DictField(
        child=serializers.ListField(allow_null=True),
        help_text="Field -> [old, new] against the record's previous event. Patient contact "
        "details and secrets are masked.",
    )


AUDIT_ACCESS = (
    "Network quality managers and auditors; clinic staff are refused (403): the trail of a lot "
    "or a practitioner is written by every clinic. Patient contact details are masked."
)


class AuditEventsApi(ListApi):
    permission_classes = NETWORK_PERMISSIONS
    serializer_class = AuditEventOutputSerializer
    filterset_class = AuditEventFilter

    def get_queryset(self) -> Any:
        return Events.objects.none()  # the filter set builds the query (audit_event_list)

    def paginate_queryset(self, queryset: Any) -> Any:
        page = super().paginate_queryset(queryset)
        return None if page is None else audit_event_views(page)

    @extend_schema(
        summary="Audit search: who changed which record, when, why and how, newest first",
        description="Every history event of every tracked record: per record "
        "(`record_type` and `record`), per user, per date range. " + AUDIT_ACCESS,
        responses={200: AuditEventOutputSerializer, **LIST_ERRORS},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        with without_jit():
            return super().get(request, *args, **kwargs)


AUDIT_CSV_COLUMNS = [
    "at",
    "record_type",
    "record_id",
    "event",
    "label",
    "user_id",
    "user_name",
    "reason",
    "context",
    "changes",
    "data",
]


def audit_csv_rows(events: Any) -> Iterator[list[Any]]:
    for event in audit_event_stream(events):
        yield [
            event["at"],
            event["record_type"],
            event["record_id"],
            event["id"],
            event["label"],
            event["user"],
            event["user_name"],
            event["reason"],
            _json(event["context"]),
            _json(event["changes"]),
            _json(event["data"]),
        ]


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, cls=DjangoJSONEncoder) if value else ""


class AuditEventsExportApi(Api):
    permission_classes = NETWORK_PERMISSIONS
    renderer_classes = [JSONRenderer, CsvRenderer]

    def _answer_json(self) -> None:
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type

    def handle_exception(self, exc: Exception) -> Response:
        # Errors are JSON in the one error shape, whatever format was asked for.
        self._answer_json()
        return super().handle_exception(exc)

    def options(self, request: Request, *args: Any, **kwargs: Any) -> Response:  # type: ignore[override]
        # Only GET streams CSV: the OPTIONS metadata is JSON whatever format was asked for.
        self._answer_json()
        return super().options(request, *args, **kwargs)

    @extend_schema(
        summary="The audit events of a date range as CSV, oldest first",
        description="Streamed (flat in memory at any length); cells a spreadsheet would run as "
        "formulas are quoted. `at_after` and `at_before` are required; the other filters are "
        "those of the audit search. " + AUDIT_ACCESS,
        parameters=[
            OpenApiParameter(
                "at_after",
                OpenApiTypes.DATETIME,
                required=True,
                description="Changed at or after this ISO 8601 date-time.",
            ),
            OpenApiParameter(
                "at_before",
                OpenApiTypes.DATETIME,
                required=True,
                description="Changed at or before this ISO 8601 date-time.",
            ),
            OpenApiParameter(
                "record_type", str, description="The record's model label, e.g. `lots.Lot`."
            ),
            OpenApiParameter("record", int, description="The record's id (with record_type)."),
            OpenApiParameter("user", int, description="Id of the user who made the change."),
        ],
        responses={
            (200, "text/csv"): OpenApiTypes.STR,
            **{(code, "application/json"): ErrorSerializer for code in (400, 401, 403, 406)},
        },
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        filterset = AuditEventFilter(
            request.query_params, queryset=Events.objects.none(), require_range=True
        )
        if not filterset.is_valid():
            raise translate_validation(filterset.errors)
        data = filterset.form.cleaned_data
        name = f"audit-events-{data['at_after']:%Y%m%dT%H%M%S}-{data['at_before']:%Y%m%dT%H%M%S}"
        response = csv_response(f"{name}.csv", AUDIT_CSV_COLUMNS, audit_csv_rows(filterset.qs))
        response["Cache-Control"] = "no-store"
        return response
