"""REST API for the record of reads of patient contact data (DESIGN rule 7): who was shown which
patients' contact details, when, through what. Read-only: the record is written by the reads
themselves (`audit.services.contact_data_read_record`)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from audit.filters import ContactDataReadFilter
from audit.models import ContactDataRead
from audit.selectors import contact_data_reads, reader_clinic_ids
from stock.api import ClinicRefSerializer
from traceability.api_fields import LIST_ERRORS
from traceability.api_views import ListApi
from traceability.permissions import ROLE_PERMISSIONS, request_memberships


class ReadsContactDataRecord(BasePermission):
    """Network quality managers and auditors, and clinic administrators (for their clinics);
    never clinicians."""

    message = (
        "The record of contact-data reads is for quality managers, auditors and clinic "
        "administrators."
    )
    code = "role_required"

    def has_permission(self, request: Request, view: Any) -> bool:
        return reader_clinic_ids(request_memberships(request)) != []


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
