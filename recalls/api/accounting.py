"""What a clinic does once a recall reached it: acknowledge, account for its stock (returned or
destroyed), and in a patient-level recall list its exposed patients and record each contact
attempt."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from audit.models import ReadVia
from audit.services import contact_data_read_record
from common.api_fields import (
    INTEGER_MAX,
    LIST_ERRORS,
    READ_ERRORS,
    WRITE_ERRORS,
    TextChoiceField,
    id_field,
)
from common.api_views import Api, ListApi, validated
from lots.models import Lot
from providers.models import Clinic
from providers.permissions import CLINIC_STAFF_PERMISSIONS
from recalls.api.common import (
    RECALL_ID,
    RecallClinicRefSerializer,
    recall_or_404,
    text_field,
    user_name,
)
from recalls.models import (
    Acknowledgement,
    AcknowledgementVia,
    ContactOutcome,
    DispositionKind,
    PatientContactAttempt,
    StockDisposition,
)
from recalls.selectors import recall_patient_list
from recalls.services import (
    recall_acknowledge,
    recall_contact_attempt_record,
    recall_disposition_record,
)
from treatments.models import Patient, PatientContact
from treatments.selectors import visible_clinic_ids


class AcknowledgementOutputSerializer(serializers.ModelSerializer[Acknowledgement]):
    clinic = RecallClinicRefSerializer(read_only=True)
    acknowledged_by = serializers.SerializerMethodField(
        help_text="The signed-in user, when not acknowledged by the e-mail link."
    )

    class Meta:
        model = Acknowledgement
        fields = [
            "id",
            "recall",
            "clinic",
            "via",
            "acknowledged_by",
            "acknowledged_by_name",
            "acknowledged_at",
        ]
        read_only_fields = fields

    def get_acknowledged_by(self, acknowledgement: Acknowledgement) -> str | None:
        return user_name(acknowledgement.acknowledged_by)


class DispositionOutputSerializer(serializers.ModelSerializer[StockDisposition]):
    clinic = RecallClinicRefSerializer(read_only=True)
    lot_number = serializers.CharField(source="lot.lot_number", read_only=True)
    recorded_by = serializers.SerializerMethodField()

    class Meta:
        model = StockDisposition
        fields = [
            "id",
            "recall",
            "clinic",
            "lot",
            "lot_number",
            "kind",
            "quantity",
            "recorded_by",
            "recorded_at",
        ]
        read_only_fields = fields

    def get_recorded_by(self, disposition: StockDisposition) -> str | None:
        return user_name(disposition.recorded_by)


class StockToAccountForOutputSerializer(serializers.Serializer[Any]):
    clinic = RecallClinicRefSerializer()
    lot = serializers.IntegerField(source="lot_id")
    lot_number = serializers.CharField(source="lot.lot_number")
    quantity_held = serializers.IntegerField(help_text="Units held when the recall reached it.")
    quantity_accounted = serializers.IntegerField(help_text="Returned or destroyed since.")
    quantity_outstanding = serializers.IntegerField()


class PatientContactDetailsOutputSerializer(serializers.ModelSerializer[PatientContact]):
    class Meta:
        model = PatientContact
        fields = ["full_name", "date_of_birth", "phone", "email", "postal_address"]
        read_only_fields = fields


class RecallPatientOutputSerializer(serializers.ModelSerializer[Patient]):
    exposure_count = serializers.IntegerField(read_only=True)
    first_treated_at = serializers.DateTimeField(read_only=True)
    last_treated_at = serializers.DateTimeField(read_only=True)
    lot_numbers = serializers.ListField(child=serializers.CharField(), read_only=True)
    attempt_count = serializers.IntegerField(read_only=True)
    last_outcome = serializers.CharField(read_only=True, allow_null=True)
    last_attempted_at = serializers.DateTimeField(read_only=True, allow_null=True)
    contacted = serializers.BooleanField(
        read_only=True, help_text="A final outcome (reached or deceased) is recorded."
    )
    contact = serializers.SerializerMethodField(
        help_text="Only for the patient's own clinic staff, in a patient-level recall; otherwise "
        "null."
    )

    class Meta:
        model = Patient
        fields = [
            "id",
            "reference",
            "exposure_count",
            "first_treated_at",
            "last_treated_at",
            "lot_numbers",
            "attempt_count",
            "last_outcome",
            "last_attempted_at",
            "contacted",
            "contact",
        ]
        read_only_fields = fields

    @extend_schema_field(PatientContactDetailsOutputSerializer(allow_null=True))
    def get_contact(self, patient: Patient) -> Any:
        if not self.context.get("with_contacts"):
            return None
        contact = getattr(patient, "contact", None)
        return None if contact is None else PatientContactDetailsOutputSerializer(contact).data


class ContactAttemptOutputSerializer(serializers.ModelSerializer[PatientContactAttempt]):
    patient_reference = serializers.CharField(source="patient.reference", read_only=True)
    attempted_by = serializers.SerializerMethodField()

    class Meta:
        model = PatientContactAttempt
        fields = [
            "id",
            "recall",
            "patient",
            "patient_reference",
            "outcome",
            "note",
            "attempted_by",
            "attempted_at",
        ]
        read_only_fields = fields

    def get_attempted_by(self, attempt: PatientContactAttempt) -> str:
        return user_name(attempt.attempted_by) or ""


class AcknowledgementInputSerializer(serializers.Serializer[Any]):
    clinic = id_field(Clinic.objects.all(), help_text="The acknowledging clinic's id.")
    name = serializers.CharField(
        max_length=200,
        allow_blank=True,
        default="",
        help_text="Who acknowledges; defaults to your own name.",
    )


class DispositionInputSerializer(serializers.Serializer[Any]):
    clinic = id_field(Clinic.objects.all(), help_text="Clinic id.")
    lot = id_field(Lot.objects.all(), help_text="Lot id.")
    kind = TextChoiceField(choices=DispositionKind.choices)
    quantity = serializers.IntegerField(min_value=1, max_value=INTEGER_MAX)


class ContactAttemptInputSerializer(serializers.Serializer[Any]):
    patient = id_field(Patient.objects.select_related("clinic"), help_text="Patient id.")
    outcome = TextChoiceField(choices=ContactOutcome.choices)
    note = text_field(allow_blank=True, default="")


class PatientListQuerySerializer(serializers.Serializer[Any]):
    clinic = id_field(Clinic.objects.all(), help_text="The clinic whose patients to list.")


class RecallAcknowledgeApi(Api):
    permission_classes = CLINIC_STAFF_PERMISSIONS

    @extend_schema(
        summary="Acknowledge a recall for a clinic",
        description="A clinic administrator of that clinic, or a quality manager. Once per "
        "recall and clinic: a second is 409 `recall_already_acknowledged`.",
        parameters=[RECALL_ID],
        request=AcknowledgementInputSerializer,
        responses={201: AcknowledgementOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, recall_id: int) -> Response:
        recall = recall_or_404(request, recall_id)
        data = validated(AcknowledgementInputSerializer, request.data)
        acknowledgement = recall_acknowledge(
            recall=recall,
            clinic=data["clinic"],
            via=AcknowledgementVia.API,
            actor=request.user,
            name=data["name"],
        )
        return Response(
            AcknowledgementOutputSerializer(acknowledgement).data, status=status.HTTP_201_CREATED
        )


class RecallDispositionRecordApi(Api):
    permission_classes = CLINIC_STAFF_PERMISSIONS

    @extend_schema(
        summary="Record recalled units returned or destroyed by a clinic",
        description="Refused beyond what the clinic has left to account for (409 "
        "`disposition_exceeds_held`). A drill records it and moves no stock.",
        parameters=[RECALL_ID],
        request=DispositionInputSerializer,
        responses={201: DispositionOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, recall_id: int) -> Response:
        recall = recall_or_404(request, recall_id)
        data = validated(DispositionInputSerializer, request.data)
        disposition = recall_disposition_record(recall=recall, actor=request.user, **data)
        return Response(
            DispositionOutputSerializer(disposition).data, status=status.HTTP_201_CREATED
        )


class RecallPatientsApi(ListApi):
    serializer_class = RecallPatientOutputSerializer
    filterset_class = None
    queryset = Patient.objects.none()  # for the schema; `get` reads through the selector

    @extend_schema(
        summary="A clinic's patients exposed to the recall",
        description="Contact details only for the clinic's own administrators and clinicians, "
        "and only in a patient-level recall (every such read is recorded); quality managers and "
        "auditors get pseudonymous references. Other clinics' staff: 403.",
        parameters=[
            RECALL_ID,
            OpenApiParameter("clinic", OpenApiTypes.INT, OpenApiParameter.QUERY, required=True),
        ],
        responses={200: RecallPatientOutputSerializer, **LIST_ERRORS, **READ_ERRORS},
    )
    def get(self, request: Request, recall_id: int) -> Response:
        recall = recall_or_404(request, recall_id)
        clinic = validated(PatientListQuerySerializer, request.query_params)["clinic"]
        listing = recall_patient_list(recall=recall, clinic=clinic, user=request.user)
        page = self.paginate_queryset(listing.patients)
        patients = list(page if page is not None else listing.patients)
        data = RecallPatientOutputSerializer(
            patients, many=True, context={"with_contacts": listing.with_contacts}
        ).data
        if listing.with_contacts:
            contact_data_read_record(
                user=request.user,
                patients=patients,
                what=f"recall {recall.reference} patient list",
                via=ReadVia.API,
            )
        response = self.get_paginated_response(data)
        response["Cache-Control"] = "no-store"
        return response


class RecallContactAttemptRecordApi(Api):
    permission_classes = CLINIC_STAFF_PERMISSIONS

    @extend_schema(
        summary="Record an attempt to contact an exposed patient, and its outcome",
        description="Patient-level recalls only; the patient must be among the recall's "
        "exposures at the patient's clinic.",
        parameters=[RECALL_ID],
        request=ContactAttemptInputSerializer,
        responses={201: ContactAttemptOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, recall_id: int) -> Response:
        recall = recall_or_404(request, recall_id)
        data = validated(ContactAttemptInputSerializer, request.data)
        clinic_ids = visible_clinic_ids(request.user)
        if clinic_ids is not None and data["patient"].clinic_id not in clinic_ids:
            # Another clinic's patient is not named, not even as existing.
            raise serializers.ValidationError(
                {"patient": [serializers.ErrorDetail(_("No such patient."), code="does_not_exist")]}
            )
        attempt = recall_contact_attempt_record(recall=recall, actor=request.user, **data)
        return Response(
            ContactAttemptOutputSerializer(attempt).data, status=status.HTTP_201_CREATED
        )
