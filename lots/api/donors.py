"""Source donors: the marker panel, donors with their marker results, recording a result and
the signed eligibility determination."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from common.api_fields import (
    CREATE_ERRORS,
    LIST_ERRORS,
    READ_ERRORS,
    WRITE_ERRORS,
    CodeRelatedField,
    TextChoiceField,
)
from common.api_views import Api, ListApi, get_or_404, validated
from lots import services
from lots.api.serializers import password_field, reason_field
from lots.filters import DonorFilter
from lots.models import Donor, DonorMarkerResult, Eligibility, Marker, MarkerResultValue, Tissue
from lots.selectors import donor_list


class MarkerOutputSerializer(serializers.ModelSerializer[Marker]):
    required_for_tissues = serializers.ListField(
        child=serializers.ChoiceField(choices=Tissue.choices),
        read_only=True,
        help_text="Donors of these tissues must be tested for this marker.",
    )

    class Meta:
        model = Marker
        fields = ["id", "code", "name", "required_for_tissues", "active"]
        read_only_fields = fields


class DonorMarkerResultOutputSerializer(serializers.ModelSerializer[DonorMarkerResult]):
    marker = serializers.CharField(source="marker.code", read_only=True)
    marker_name = serializers.CharField(source="marker.name", read_only=True)

    class Meta:
        model = DonorMarkerResult
        fields = ["id", "marker", "marker_name", "result", "tested_on", "laboratory", "test_method"]
        read_only_fields = fields


class DonorOutputSerializer(serializers.ModelSerializer[Donor]):
    eligibility_decided_by = serializers.CharField(
        source="eligibility_decided_by.username",
        allow_null=True,
        read_only=True,
        help_text="Username of who signed the eligibility decision.",
    )
    marker_results = DonorMarkerResultOutputSerializer(many=True, read_only=True)

    class Meta:
        model = Donor
        fields = [
            "id",
            "code",
            "isbt_din",
            "tissue",
            "collection_date",
            "specimen_date",
            "birth_mother_tested",
            "testing_laboratory",
            "eligibility",
            "eligibility_decided_by",
            "eligibility_decided_at",
            "marker_results",
            "created_at",
        ]
        read_only_fields = fields


class DonorCreateInputSerializer(serializers.Serializer[Any]):
    code = serializers.CharField(
        max_length=32, help_text="A distinct code; never a name or medical record number."
    )
    tissue = TextChoiceField(choices=Tissue.choices)
    collection_date = serializers.DateField()
    specimen_date = serializers.DateField(help_text="Within 7 days of recovery.")
    testing_laboratory = serializers.CharField(max_length=200)
    isbt_din = serializers.CharField(
        max_length=14, allow_blank=True, allow_null=True, default=None, help_text="ISBT 128 DIN."
    )
    birth_mother_tested = serializers.BooleanField(default=False)


class MarkerResultInputSerializer(serializers.Serializer[Any]):
    marker = CodeRelatedField(queryset=Marker.objects.all(), help_text="Marker code.")
    result = TextChoiceField(choices=MarkerResultValue.choices)
    tested_on = serializers.DateField()
    laboratory = serializers.CharField(max_length=200)
    test_method = serializers.CharField(max_length=200, allow_blank=True, default="")
    reason = reason_field("Needed when this corrects an earlier result.", default="")


class EligibilityInputSerializer(serializers.Serializer[Any]):
    eligibility = TextChoiceField(choices=Eligibility.choices)
    password = password_field()
    reason = reason_field()


class MarkersApi(ListApi):
    serializer_class = MarkerOutputSerializer
    filterset_class = None

    def get_queryset(self) -> QuerySet[Marker]:
        # No marker selector exists yet; this read is that one.
        return Marker.objects.order_by("code")

    @extend_schema(
        summary="The donor infectious-disease marker panel",
        responses={200: MarkerOutputSerializer, **LIST_ERRORS},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class DonorsApi(ListApi):
    serializer_class = DonorOutputSerializer
    filterset_class = DonorFilter

    def get_queryset(self) -> QuerySet[Donor]:
        return donor_list()

    @extend_schema(
        summary="List donors with their marker results",
        responses={200: DonorOutputSerializer, **LIST_ERRORS},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Record a source donor",
        request=DonorCreateInputSerializer,
        responses={201: DonorOutputSerializer, **CREATE_ERRORS},
    )
    def post(self, request: Request) -> Response:
        data = validated(DonorCreateInputSerializer, request.data)
        donor = services.donor_create(actor=request.user, **data)
        donor = donor_list().get(pk=donor.pk)
        return Response(DonorOutputSerializer(donor).data, status=status.HTTP_201_CREATED)


class DonorDetailApi(Api):
    @extend_schema(
        summary="One donor with marker results",
        responses={200: DonorOutputSerializer, **READ_ERRORS},
    )
    def get(self, request: Request, donor_id: int) -> Response:
        donor = get_or_404(donor_list(), donor_id, what="donor")
        return Response(DonorOutputSerializer(donor).data)


class DonorMarkerResultRecordApi(Api):
    @extend_schema(
        summary="Record (or correct, with a reason) a donor's result for a marker",
        request=MarkerResultInputSerializer,
        responses={201: DonorMarkerResultOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, donor_id: int) -> Response:
        donor = get_or_404(donor_list(), donor_id, what="donor")
        data = validated(MarkerResultInputSerializer, request.data)
        record = services.donor_marker_result_record(actor=request.user, donor=donor, **data)
        return Response(
            DonorMarkerResultOutputSerializer(record).data, status=status.HTTP_201_CREATED
        )


class DonorEligibilityDecideApi(Api):
    @extend_schema(
        summary="Sign the donor eligibility determination",
        description="Deciding `eligible` is refused (409) while a required marker is missing or "
        "reactive, listing every one.",
        request=EligibilityInputSerializer,
        responses={200: DonorOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, donor_id: int) -> Response:
        donor = get_or_404(donor_list(), donor_id, what="donor")
        data = validated(EligibilityInputSerializer, request.data)
        services.donor_eligibility_decide(actor=request.user, donor=donor, **data)
        return Response(DonorOutputSerializer(donor_list().get(pk=donor.pk)).data)
