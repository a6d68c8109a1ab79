"""Patients: register and list them (pseudonymous references only), and read one patient's
contact details, open only to the patient's own clinic staff and recorded on every read; no other
response carries them (DESIGN: auditors see pseudonymous references only)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from audit.models import ReadVia
from audit.services import contact_data_read_record
from common.api_fields import CREATE_ERRORS, LIST_ERRORS, READ_ERRORS, id_field
from common.api_views import Api, ListApi, get_or_404, validated
from common.errors import DomainError
from providers.access import access_for
from providers.api import ClinicRefSerializer
from providers.models import Clinic, Role
from providers.permissions import CLINIC_STAFF_PERMISSIONS
from treatments import services
from treatments.api.base import TEXT_MAX_LENGTH
from treatments.filters import PatientFilter
from treatments.models import Patient, PatientContact
from treatments.selectors import patient_list

# Who may read a patient's contact details: clinic roles at the patient's own clinic.
CONTACT_READERS = (Role.CLINIC_ADMINISTRATOR.value, Role.CLINICIAN.value)


class PatientOutputSerializer(serializers.ModelSerializer[Patient]):
    clinic = ClinicRefSerializer(read_only=True)

    class Meta:
        model = Patient
        fields = ["id", "reference", "clinic", "created_at"]
        read_only_fields = fields


class PatientRefSerializer(serializers.ModelSerializer[Patient]):
    class Meta:
        model = Patient
        fields = ["id", "reference"]
        read_only_fields = fields


class PatientContactOutputSerializer(serializers.ModelSerializer[PatientContact]):
    class Meta:
        model = PatientContact
        fields = ["patient", "full_name", "date_of_birth", "phone", "email", "postal_address"]
        read_only_fields = fields


class PatientContactInputSerializer(serializers.Serializer[Any]):
    full_name = serializers.CharField(max_length=200)
    date_of_birth = serializers.DateField(allow_null=True, default=None)
    phone = serializers.CharField(max_length=40, allow_blank=True, default="")
    email = serializers.EmailField(max_length=254, allow_blank=True, default="")
    postal_address = serializers.CharField(max_length=TEXT_MAX_LENGTH, allow_blank=True, default="")


class PatientCreateInputSerializer(serializers.Serializer[Any]):
    clinic = id_field(Clinic.objects.all(), help_text="Clinic id.")
    reference = serializers.CharField(
        max_length=40,
        help_text="Pseudonymous, unique within the clinic; never a name or record number.",
    )
    contact = PatientContactInputSerializer(
        allow_null=True,
        default=None,
        help_text="Identifying details, kept apart and shown only to the clinic's staff.",
    )


def _patients(request: Request) -> QuerySet[Patient]:
    return patient_list(user=request.user)


class PatientsApi(ListApi):
    permission_classes = CLINIC_STAFF_PERMISSIONS
    serializer_class = PatientOutputSerializer
    filterset_class = PatientFilter

    def get_queryset(self) -> QuerySet[Patient]:
        if getattr(self, "swagger_fake_view", False):
            return Patient.objects.none()  # schema generation: no user to scope by
        return _patients(self.request)

    @extend_schema(
        summary="List the patients of the clinics you may see (references only)",
        responses={200: PatientOutputSerializer, **LIST_ERRORS},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Register a patient, optionally with contact details",
        description="Needs the clinician or clinic administrator role at the clinic.",
        request=PatientCreateInputSerializer,
        responses={201: PatientOutputSerializer, **CREATE_ERRORS},
    )
    def post(self, request: Request) -> Response:
        data = validated(PatientCreateInputSerializer, request.data)
        patient = services.patient_create(actor=request.user, **data)
        return Response(
            PatientOutputSerializer(_patients(request).get(pk=patient.pk)).data,
            status=status.HTTP_201_CREATED,
        )


class PatientDetailApi(Api):
    permission_classes = CLINIC_STAFF_PERMISSIONS

    @extend_schema(
        summary="One patient (reference and clinic, never contact details)",
        responses={200: PatientOutputSerializer, **READ_ERRORS},
    )
    def get(self, request: Request, patient_id: int) -> Response:
        patient = get_or_404(_patients(request), patient_id, what="patient")
        return Response(PatientOutputSerializer(patient).data)


class PatientContactApi(Api):
    permission_classes = CLINIC_STAFF_PERMISSIONS

    @extend_schema(
        summary="A patient's contact details, for the patient's own clinic staff only",
        description="Only a clinic administrator or clinician of the patient's clinic may read "
        "them; quality managers and auditors are refused (403). Every read is recorded (see "
        "/api/v1/audit/contact-reads/).",
        responses={200: PatientContactOutputSerializer, **READ_ERRORS},
    )
    def get(self, request: Request, patient_id: int) -> Response:
        patient = get_or_404(_patients(request), patient_id, what="patient")
        if not any(
            role in CONTACT_READERS and clinic_id == patient.clinic_id
            for role, clinic_id in access_for(request).memberships
        ):
            raise DomainError.single(
                "role_required",
                _(
                    "Contact details are shown only to the clinic administrators and clinicians "
                    "of the patient's clinic."
                ),
                status=403,
            )
        contact = PatientContact.objects.filter(patient=patient).first()
        if contact is None:
            raise DomainError.single(
                "patient_contact_missing",
                _("No contact details are on record for this patient."),
                status=404,
            )
        # DESIGN rule 7: recorded before the details leave, with who read whose.
        contact_data_read_record(
            user=request.user,
            patients=[patient],
            what=f"patient {patient.reference} contact",
            via=ReadVia.API,
        )
        response = Response(PatientContactOutputSerializer(contact).data)
        response["Cache-Control"] = "no-store"
        return response
