"""Adverse events: report one after a treatment, and list them at the clinics the caller sees."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from common.api_fields import LIST_ERRORS, WRITE_ERRORS, id_field
from common.api_views import Api, ListApi, get_or_404, validated
from lots.models import Lot
from providers.api import ClinicRefSerializer
from providers.permissions import CLINIC_STAFF_PERMISSIONS
from stock.api import LotRefSerializer
from treatments import services
from treatments.api.base import TEXT_MAX_LENGTH, treatments_for
from treatments.filters import SERIOUS, AdverseEventFilter
from treatments.models import AdverseEvent
from treatments.selectors import visible_clinic_ids


class AdverseEventOutputSerializer(serializers.ModelSerializer[AdverseEvent]):
    lot = LotRefSerializer(read_only=True, allow_null=True, help_text="The suspected lot.")
    serious = serializers.BooleanField(source="is_serious", read_only=True)
    reported_by = serializers.CharField(source="reported_by.username", read_only=True)

    class Meta:
        model = AdverseEvent
        fields = [
            "id",
            "treatment",
            "lot",
            "onset_on",
            "description",
            "serious",
            *SERIOUS,
            "reported_by",
            "reported_at",
        ]
        read_only_fields = fields


class AdverseEventListOutputSerializer(AdverseEventOutputSerializer):
    clinic = ClinicRefSerializer(source="treatment.clinic", read_only=True)
    patient_reference = serializers.CharField(source="treatment.patient.reference", read_only=True)
    performed_at = serializers.DateTimeField(source="treatment.performed_at", read_only=True)

    class Meta(AdverseEventOutputSerializer.Meta):
        fields = [
            "id",
            "treatment",
            "performed_at",
            "clinic",
            "patient_reference",
            *AdverseEventOutputSerializer.Meta.fields[2:],
        ]
        read_only_fields = fields


class AdverseEventInputSerializer(serializers.Serializer[Any]):
    onset_on = serializers.DateField()
    description = serializers.CharField(max_length=TEXT_MAX_LENGTH)
    lot = id_field(
        Lot.objects.all(),
        allow_null=True,
        default=None,
        help_text="Lot id of the suspected lot, one of the treatment's.",
    )
    results_in_death = serializers.BooleanField(default=False)
    life_threatening = serializers.BooleanField(default=False)
    hospitalisation = serializers.BooleanField(default=False)
    disability = serializers.BooleanField(default=False)
    intervention_required = serializers.BooleanField(
        default=False, help_text="Medical or surgical intervention to prevent permanent harm."
    )


def _adverse_events(request: Request) -> QuerySet[AdverseEvent]:
    # No adverse-event selector exists yet; this read is that one, scoped like every other.
    events = AdverseEvent.objects.select_related(
        "treatment__clinic", "treatment__patient", "lot", "reported_by"
    ).order_by("-reported_at", "-pk")
    clinic_ids = visible_clinic_ids(request.user)
    return events if clinic_ids is None else events.filter(treatment__clinic_id__in=clinic_ids)


class TreatmentAdverseEventRecordApi(Api):
    permission_classes = CLINIC_STAFF_PERMISSIONS

    @extend_schema(
        summary="Report an adverse event after a treatment",
        description="Needs the clinician or clinic administrator role at the treatment's clinic. "
        "The suspected `lot` must be one the treatment used.",
        request=AdverseEventInputSerializer,
        responses={201: AdverseEventOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, treatment_id: int) -> Response:
        treatment = get_or_404(treatments_for(request), treatment_id, what="treatment")
        data = validated(AdverseEventInputSerializer, request.data)
        event = services.adverse_event_record(actor=request.user, treatment=treatment, **data)
        event = AdverseEvent.objects.select_related("lot", "reported_by").get(pk=event.pk)
        return Response(AdverseEventOutputSerializer(event).data, status=status.HTTP_201_CREATED)


class AdverseEventsApi(ListApi):
    permission_classes = CLINIC_STAFF_PERMISSIONS
    serializer_class = AdverseEventListOutputSerializer
    filterset_class = AdverseEventFilter

    def get_queryset(self) -> QuerySet[AdverseEvent]:
        if getattr(self, "swagger_fake_view", False):
            return AdverseEvent.objects.none()  # schema generation: no user to scope by
        return _adverse_events(self.request)

    @extend_schema(
        summary="List adverse events at the clinics you may see, newest report first",
        responses={200: AdverseEventListOutputSerializer, **LIST_ERRORS},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)
