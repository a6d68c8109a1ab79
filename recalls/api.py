"""REST API for recalls: open, widen, follow (effectiveness), acknowledge, account for stock and
patients, close, and the evidence (CSV, PDF). One view per use case.

Network quality managers open, widen and close; clinic staff acknowledge, record dispositions and
patient contact attempts for their own clinic (a quality manager may too); auditors read
everything and never write. Clinic staff see only the recalls that reached their clinics, and in
them only their own clinics' exposures, patients, stock and notices. Patient contact details
appear in one response only, the patient list, and only for the patient's own clinic staff.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db.models import QuerySet
from django.http import HttpResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from audit.models import ReadVia
from audit.services import contact_data_read_record
from common.api_fields import (
    BIGINT_MAX,
    CREATE_ERRORS,
    INTEGER_MAX,
    LIST_ERRORS,
    READ_ERRORS,
    WRITE_ERRORS,
    TextChoiceField,
    id_field,
)
from common.api_views import Api, ListApi, get_or_404, validated
from common.csv import csv_stream
from lots.models import Donor, Lot, Product
from providers.models import Clinic, Manufacturer
from providers.permissions import CLINIC_STAFF_PERMISSIONS
from recalls import services
from recalls.accounting import recall_contact_attempt_record, recall_disposition_record
from recalls.acknowledgements import recall_acknowledge
from recalls.closing import recall_close
from recalls.filters import RecallFilter
from recalls.models import (
    Acknowledgement,
    AcknowledgementVia,
    ContactOutcome,
    DispositionKind,
    PatientContactAttempt,
    Recall,
    RecallClass,
    RecallDepth,
    RecallLot,
    RecallScope,
    StockDisposition,
)
from recalls.reports import exposures_csv, notices_csv, recall_report_pdf
from recalls.selectors import (
    RecallEffectiveness,
    acknowledgement_list,
    disposition_list,
    recall_detail_list,
    recall_effectiveness,
    recall_list,
    recall_patient_list,
    stock_to_account_for,
)
from recalls.services import RecallScopeRequest
from treatments.models import Patient, PatientContact
from treatments.selectors import visible_clinic_ids

logger = logging.getLogger(__name__)

TEXT_MAX_LENGTH = 5000
PASSWORD_MAX_LENGTH = 4096
SCOPE_LOTS_MAX = 500


def _user_name(user: Any) -> str | None:
    if user is None:
        return None
    return str(user.get_full_name() or user.get_username())


# ---------------------------------------------------------------------------------------------
# Output serializers


class RecallClinicRefSerializer(serializers.ModelSerializer[Clinic]):
    class Meta:
        model = Clinic
        fields = ["id", "name"]
        read_only_fields = fields


class RecallLotOutputSerializer(serializers.ModelSerializer[RecallLot]):
    id = serializers.IntegerField(source="lot_id", read_only=True, help_text="The lot's id.")
    lot_number = serializers.CharField(source="lot.lot_number", read_only=True)
    product = serializers.CharField(source="lot.product.name", read_only=True)
    gtin = serializers.CharField(source="lot.product.gtin", read_only=True, allow_null=True)
    status_before = serializers.CharField(
        read_only=True, help_text="The lot's status before the recall."
    )

    class Meta:
        model = RecallLot
        fields = ["id", "lot_number", "product", "gtin", "round", "status_before"]
        read_only_fields = fields


class RecallOutputSerializer(serializers.ModelSerializer[Recall]):
    opened_by = serializers.SerializerMethodField()
    closed_by = serializers.SerializerMethodField()
    lots = RecallLotOutputSerializer(source="recall_lots", many=True, read_only=True)

    class Meta:
        model = Recall
        fields = [
            "id",
            "reference",
            "recall_class",
            "depth",
            "is_drill",
            "status",
            "reason",
            "hazard",
            "instructions",
            "opened_by",
            "opened_at",
            "first_notice_sent_at",
            "fully_acknowledged_at",
            "closed_by",
            "closed_at",
            "close_reason",
            "close_override",
            "lots",
        ]
        read_only_fields = fields

    def get_opened_by(self, recall: Recall) -> str:
        return _user_name(recall.opened_by) or ""

    def get_closed_by(self, recall: Recall) -> str | None:
        return _user_name(recall.closed_by)


class RecallScopeOutputSerializer(serializers.ModelSerializer[RecallScope]):
    lots = serializers.PrimaryKeyRelatedField[Lot](many=True, read_only=True)
    added_by = serializers.SerializerMethodField()

    class Meta:
        model = RecallScope
        fields = [
            "round",
            "lots",
            "donor",
            "product",
            "manufacturer",
            "manufactured_from",
            "manufactured_to",
            "reason",
            "added_by",
            "added_at",
            "signature_digest",
        ]
        read_only_fields = fields

    def get_added_by(self, scope: RecallScope) -> str:
        return _user_name(scope.added_by) or ""


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
        return _user_name(acknowledgement.acknowledged_by)


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
        return _user_name(disposition.recorded_by)


class StockToAccountForOutputSerializer(serializers.Serializer[Any]):
    clinic = RecallClinicRefSerializer()
    lot = serializers.IntegerField(source="lot_id")
    lot_number = serializers.CharField(source="lot.lot_number")
    quantity_held = serializers.IntegerField(help_text="Units held when the recall reached it.")
    quantity_accounted = serializers.IntegerField(help_text="Returned or destroyed since.")
    quantity_outstanding = serializers.IntegerField()


class RecallTimingOutputSerializer(serializers.Serializer[Any]):
    opened_at = serializers.DateTimeField()
    first_notice_sent_at = serializers.DateTimeField(allow_null=True)
    all_notices_sent_at = serializers.DateTimeField(
        allow_null=True, help_text="When the last notice went out; null while any is unsent."
    )
    fully_acknowledged_at = serializers.DateTimeField(allow_null=True)
    closed_at = serializers.DateTimeField(allow_null=True)
    seconds_to_first_notice = serializers.FloatField(allow_null=True)
    seconds_to_all_notices_sent = serializers.FloatField(allow_null=True)
    seconds_to_full_acknowledgement = serializers.FloatField(allow_null=True)
    seconds_to_close = serializers.FloatField(allow_null=True)


class RecallDetailOutputSerializer(RecallOutputSerializer):
    scopes = RecallScopeOutputSerializer(many=True, read_only=True)
    acknowledgements = serializers.SerializerMethodField()
    stock = serializers.SerializerMethodField()
    dispositions = serializers.SerializerMethodField()
    timing = serializers.SerializerMethodField(
        help_text="Open, first and last notice sent, fully acknowledged, closed: a drill's "
        "timing report."
    )

    class Meta(RecallOutputSerializer.Meta):
        fields = [
            *RecallOutputSerializer.Meta.fields,
            "scopes",
            "acknowledgements",
            "stock",
            "dispositions",
            "timing",
        ]
        read_only_fields = fields

    @extend_schema_field(AcknowledgementOutputSerializer(many=True))
    def get_acknowledgements(self, recall: Recall) -> Any:
        return AcknowledgementOutputSerializer(self.context["acknowledgements"], many=True).data

    @extend_schema_field(StockToAccountForOutputSerializer(many=True))
    def get_stock(self, recall: Recall) -> Any:
        return StockToAccountForOutputSerializer(self.context["stock"], many=True).data

    @extend_schema_field(DispositionOutputSerializer(many=True))
    def get_dispositions(self, recall: Recall) -> Any:
        return DispositionOutputSerializer(self.context["dispositions"], many=True).data

    @extend_schema_field(RecallTimingOutputSerializer)
    def get_timing(self, recall: Recall) -> Any:
        return RecallTimingOutputSerializer(self.context["timing"]).data


class ClinicProgressOutputSerializer(serializers.Serializer[Any]):
    clinic_id = serializers.IntegerField()
    clinic_name = serializers.CharField()
    acknowledged = serializers.BooleanField()
    acknowledged_at = serializers.DateTimeField(allow_null=True)
    acknowledged_by_name = serializers.CharField()
    acknowledged_via = serializers.CharField()
    patients_exposed = serializers.IntegerField()
    patients_contacted = serializers.IntegerField()
    patients_attempted = serializers.IntegerField()
    units_held = serializers.IntegerField()
    units_accounted = serializers.IntegerField()


class NoticeCountsOutputSerializer(serializers.Serializer[Any]):
    total = serializers.IntegerField()
    pending = serializers.IntegerField()
    sending = serializers.IntegerField()
    sent = serializers.IntegerField()
    failed = serializers.IntegerField()


class FailedNoticeOutputSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    clinic_id = serializers.IntegerField(allow_null=True)
    channel = serializers.CharField()
    recipient = serializers.CharField()
    attempts = serializers.IntegerField()
    last_error = serializers.CharField()


class EffectivenessOutputSerializer(serializers.Serializer[Any]):
    recall = serializers.IntegerField(source="recall.pk")
    reference = serializers.CharField(source="recall.reference")
    is_drill = serializers.BooleanField(source="recall.is_drill")
    recall_status = serializers.CharField(source="recall.status")
    level = serializers.CharField(
        allow_null=True,
        help_text="A (100 % of consignees acknowledged), B (>= 75 %), C (>= 50 %), D (>= 25 %), "
        "E: a configurable default (RECALL_EFFECTIVENESS_LEVELS), not a legal rule.",
    )
    clinics_total = serializers.IntegerField(
        help_text="Consignees: clinics with exposures or stock."
    )
    clinics_acknowledged = serializers.IntegerField()
    clinics_acknowledged_share = serializers.FloatField(allow_null=True, help_text="0 to 1.")
    patients_exposed = serializers.IntegerField()
    patients_contacted = serializers.IntegerField(help_text="A final outcome: reached or deceased.")
    patients_attempted = serializers.IntegerField(help_text="Any attempt, unreachable included.")
    patients_contacted_share = serializers.FloatField(allow_null=True)
    patients_attempted_share = serializers.FloatField(allow_null=True)
    units_held = serializers.IntegerField()
    units_accounted = serializers.IntegerField()
    units_outstanding = serializers.IntegerField()
    units_accounted_share = serializers.FloatField(allow_null=True)
    notices = NoticeCountsOutputSerializer()
    failed_notices = FailedNoticeOutputSerializer(many=True)
    timing = RecallTimingOutputSerializer()
    clinics = ClinicProgressOutputSerializer(many=True)


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
        return _user_name(attempt.attempted_by) or ""


# ---------------------------------------------------------------------------------------------
# Input serializers


def _text(**kwargs: Any) -> serializers.CharField:
    return serializers.CharField(max_length=TEXT_MAX_LENGTH, **kwargs)


def _password() -> serializers.CharField:
    return serializers.CharField(
        max_length=PASSWORD_MAX_LENGTH,
        allow_blank=True,
        trim_whitespace=False,
        style={"input_type": "password"},
        help_text="Your own password, re-entered to sign (21 CFR 11.200).",
    )


class RecallScopeInputSerializer(serializers.Serializer[Any]):
    lots = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=BIGINT_MAX),
        max_length=SCOPE_LOTS_MAX,
        default=list,
        help_text="Lot ids.",
    )
    donor = id_field(Donor.objects.all(), allow_null=True, default=None, help_text="Donor id.")
    product = id_field(
        Product.objects.all(), allow_null=True, default=None, help_text="Product id."
    )
    manufacturer = id_field(
        Manufacturer.objects.all(), allow_null=True, default=None, help_text="Manufacturer id."
    )
    manufactured_from = serializers.DateField(allow_null=True, default=None)
    manufactured_to = serializers.DateField(allow_null=True, default=None)

    def validate_lots(self, ids: list[int]) -> list[int]:
        # One query for the whole list, rather than one per id.
        found = set(Lot.objects.filter(pk__in=ids).values_list("pk", flat=True))
        missing = sorted({lot_id for lot_id in ids if lot_id not in found})
        if missing:
            raise serializers.ValidationError(
                f"No lot with id {', '.join(map(str, missing))}.", code="does_not_exist"
            )
        return list(dict.fromkeys(ids))

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if not (data["lots"] or data["donor"] or data["product"] or data["manufacturer"]):
            raise serializers.ValidationError(
                "Name the lots, a donor, a product or a manufacturer to recall.",
                code="recall_scope_missing",
            )
        start, end = data["manufactured_from"], data["manufactured_to"]
        if start and end and start > end:
            raise serializers.ValidationError(
                {"manufactured_from": "manufactured_from is after manufactured_to."},
                code="scope_dates_reversed",
            )
        return data


def _scope_request(data: dict[str, Any]) -> RecallScopeRequest:
    return RecallScopeRequest(
        lot_ids=data["lots"],
        donor_id=data["donor"].pk if data["donor"] else None,
        product_id=data["product"].pk if data["product"] else None,
        manufacturer_id=data["manufacturer"].pk if data["manufacturer"] else None,
        manufactured_from=data["manufactured_from"],
        manufactured_to=data["manufactured_to"],
    )


class RecallOpenInputSerializer(serializers.Serializer[Any]):
    recall_class = TextChoiceField(choices=RecallClass.choices, help_text="FDA class: I, II, III.")
    depth = TextChoiceField(choices=RecallDepth.choices)
    reason = _text(help_text="Why the product is recalled.")
    hazard = _text(help_text="The hazard to patients, in plain words.")
    instructions = _text(allow_blank=True, default="")
    is_drill = serializers.BooleanField(
        default=False, help_text="A mock recall: no lot status changes, no stock is blocked."
    )
    password = _password()
    scope = RecallScopeInputSerializer()


class RecallWidenInputSerializer(serializers.Serializer[Any]):
    password = _password()
    reason = _text(allow_blank=True, help_text="Why the recall is widened.")
    scope = RecallScopeInputSerializer()


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
    note = _text(allow_blank=True, default="")


class RecallCloseInputSerializer(serializers.Serializer[Any]):
    password = _password()
    reason = _text(allow_blank=True, help_text="Why the recall is closed (and any override).")
    override = serializers.BooleanField(
        default=False,
        help_text="Close although clinics have not acknowledged or stock is not accounted for; "
        "the reason says why, and the override is recorded.",
    )


class PatientListQuerySerializer(serializers.Serializer[Any]):
    clinic = id_field(Clinic.objects.all(), help_text="The clinic whose patients to list.")


# ---------------------------------------------------------------------------------------------
# Views


def _recall(request: Request, recall_id: int) -> Recall:
    return get_or_404(recall_list(user=request.user), recall_id, what="recall")


def _recall_detail(request: Request, recall_id: int) -> dict[str, Any]:
    recall = get_or_404(recall_detail_list(user=request.user), recall_id, what="recall")
    clinic_ids = visible_clinic_ids(request.user)
    context = {
        "acknowledgements": list(acknowledgement_list(recall=recall, clinic_ids=clinic_ids)),
        "stock": list(stock_to_account_for(recall=recall, clinic_ids=clinic_ids)),
        "dispositions": list(disposition_list(recall=recall, clinic_ids=clinic_ids)),
        "timing": recall_effectiveness(recall=recall, clinic_ids=clinic_ids).timing,
    }
    return RecallDetailOutputSerializer(recall, context=context).data


RECALL_ID = OpenApiParameter("recall_id", OpenApiTypes.INT, OpenApiParameter.PATH)


class RecallsApi(ListApi):
    serializer_class = RecallOutputSerializer
    filterset_class = RecallFilter

    def get_queryset(self) -> QuerySet[Recall]:
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no user
            return Recall.objects.none()
        return recall_list(user=self.request.user)

    @extend_schema(
        summary="List recalls (clinic staff: those that reached their clinics)",
        responses={200: RecallOutputSerializer, **LIST_ERRORS},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Open a recall (signed)",
        description="One transaction: lots marked recalled, every clinic's remaining stock "
        "blocked, exposures frozen, one notice per recipient and channel written; delivery is "
        "queued after commit. A drill (`is_drill`) changes no lot and blocks no stock. Refusals: "
        "400 naming the scope field, 400 `recall_scope_empty`, 409 `lot_in_open_recall`.",
        request=RecallOpenInputSerializer,
        responses={201: RecallDetailOutputSerializer, **CREATE_ERRORS},
    )
    def post(self, request: Request) -> Response:
        data = validated(RecallOpenInputSerializer, request.data)
        recall = services.recall_open(
            actor=request.user,
            password=data["password"],
            recall_class=data["recall_class"],
            depth=data["depth"],
            reason=data["reason"],
            hazard=data["hazard"],
            instructions=data["instructions"],
            is_drill=data["is_drill"],
            scope=_scope_request(data["scope"]),
        )
        return Response(_recall_detail(request, recall.pk), status=status.HTTP_201_CREATED)


class RecallDetailApi(Api):
    @extend_schema(
        summary="One recall with its scope rounds, acknowledgements, stock and timing",
        parameters=[RECALL_ID],
        responses={200: RecallDetailOutputSerializer, **READ_ERRORS},
    )
    def get(self, request: Request, recall_id: int) -> Response:
        return Response(_recall_detail(request, recall_id))


class RecallWidenApi(Api):
    @extend_schema(
        summary="Widen an open recall with further lots (signed)",
        description="Only the new exposures, stock and notices are added.",
        parameters=[RECALL_ID],
        request=RecallWidenInputSerializer,
        responses={200: RecallDetailOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, recall_id: int) -> Response:
        recall = _recall(request, recall_id)
        data = validated(RecallWidenInputSerializer, request.data)
        services.recall_widen(
            actor=request.user,
            password=data["password"],
            recall=recall,
            scope=_scope_request(data["scope"]),
            reason=data["reason"],
        )
        return Response(_recall_detail(request, recall.pk))


class RecallEffectivenessApi(Api):
    @extend_schema(
        summary="Live effectiveness: acknowledgements, patients contacted, stock, notices, timing",
        description="Clinic staff get the figures of their own clinics.",
        parameters=[RECALL_ID],
        responses={200: EffectivenessOutputSerializer, **READ_ERRORS},
    )
    def get(self, request: Request, recall_id: int) -> Response:
        recall = _recall(request, recall_id)
        effectiveness: RecallEffectiveness = recall_effectiveness(
            recall=recall, clinic_ids=visible_clinic_ids(request.user)
        )
        return Response(EffectivenessOutputSerializer(effectiveness).data)


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
        recall = _recall(request, recall_id)
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
        recall = _recall(request, recall_id)
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
        recall = _recall(request, recall_id)
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
        recall = _recall(request, recall_id)
        data = validated(ContactAttemptInputSerializer, request.data)
        clinic_ids = visible_clinic_ids(request.user)
        if clinic_ids is not None and data["patient"].clinic_id not in clinic_ids:
            # Another clinic's patient is not named, not even as existing.
            raise serializers.ValidationError(
                {"patient": [serializers.ErrorDetail("No such patient.", code="does_not_exist")]}
            )
        attempt = recall_contact_attempt_record(recall=recall, actor=request.user, **data)
        return Response(
            ContactAttemptOutputSerializer(attempt).data, status=status.HTTP_201_CREATED
        )


class RecallCloseApi(Api):
    @extend_schema(
        summary="Close a recall (signed)",
        description="Refused (409) listing every clinic that has not acknowledged "
        "(`clinic_not_acknowledged`) and all stock not accounted for (`stock_not_accounted`), "
        "unless `override` is true; the reason is kept either way. The response's `timing` is "
        "the drill timing report.",
        parameters=[RECALL_ID],
        request=RecallCloseInputSerializer,
        responses={200: RecallDetailOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, recall_id: int) -> Response:
        recall = _recall(request, recall_id)
        data = validated(RecallCloseInputSerializer, request.data)
        recall_close(recall=recall, actor=request.user, **data)
        return Response(_recall_detail(request, recall.pk))


class _FileApi(Api):
    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        # The body is always the file; errors are always JSON, whatever Accept asks for.
        return super().perform_content_negotiation(request, force=True)


class RecallExposuresCsvApi(_FileApi):
    @extend_schema(
        summary="The recall's exposures as CSV (streamed; references, never contact details)",
        parameters=[RECALL_ID],
        responses={(200, "text/csv"): OpenApiTypes.STR, **READ_ERRORS},
    )
    def get(self, request: Request, recall_id: int) -> StreamingHttpResponse:
        recall = _recall(request, recall_id)
        rows = exposures_csv(recall=recall, clinic_ids=visible_clinic_ids(request.user))
        return csv_stream(rows, f"{recall.reference}-exposures.csv")


class RecallNoticesCsvApi(_FileApi):
    @extend_schema(
        summary="The recall's notices as CSV (streamed) with delivery status",
        parameters=[RECALL_ID],
        responses={(200, "text/csv"): OpenApiTypes.STR, **READ_ERRORS},
    )
    def get(self, request: Request, recall_id: int) -> StreamingHttpResponse:
        recall = _recall(request, recall_id)
        rows = notices_csv(recall=recall, clinic_ids=visible_clinic_ids(request.user))
        return csv_stream(rows, f"{recall.reference}-notices.csv")


class RecallReportPdfApi(_FileApi):
    @extend_schema(
        summary="The recall report as PDF",
        description="Identity, class, depth, reason and hazard, lots, timeline, effectiveness, "
        "clinics with acknowledgement times, dispositions and notices; a drill's timing report. "
        "Never patient contact details.",
        parameters=[RECALL_ID],
        responses={(200, "application/pdf"): OpenApiTypes.BINARY, **READ_ERRORS},
    )
    def get(self, request: Request, recall_id: int) -> HttpResponse:
        recall = _recall(request, recall_id)
        pdf = recall_report_pdf(recall=recall, clinic_ids=visible_clinic_ids(request.user))
        response = HttpResponse(pdf, content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{recall.reference}.pdf"'
        response["Cache-Control"] = "no-store"
        return response
