"""Quality control: the QC tests with their default specification, and recording a lot's QC
result."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from common.api_fields import LIST_ERRORS, WRITE_ERRORS, CodeRelatedField, OptionalChoiceField
from common.api_views import Api, ListApi, get_or_404, validated
from lots import services
from lots.api.serializers import LotQcResultOutputSerializer, reason_field
from lots.models import QcOutcome, QcSpecification, QcTest
from lots.selectors import lot_list, qc_specifications_for


class QcSpecificationOutputSerializer(serializers.ModelSerializer[QcSpecification]):
    expected_outcome = OptionalChoiceField(
        choices=QcOutcome.choices,
        read_only=True,
        help_text="For qualitative tests; null for measured ones.",
    )
    description = serializers.CharField(source="describe", read_only=True)

    class Meta:
        model = QcSpecification
        fields = ["required", "min_value", "max_value", "expected_outcome", "description"]
        read_only_fields = fields


class QcTestOutputSerializer(serializers.ModelSerializer[QcTest]):
    default_specification = serializers.SerializerMethodField(
        help_text="The network default; a product may override it."
    )

    class Meta:
        model = QcTest
        fields = ["id", "code", "name", "kind", "unit", "default_specification"]
        read_only_fields = fields

    @extend_schema_field(QcSpecificationOutputSerializer(allow_null=True))
    def get_default_specification(self, test: QcTest) -> dict[str, Any] | None:
        specs = test.default_specifications  # type: ignore[attr-defined]
        return QcSpecificationOutputSerializer(specs[0]).data if specs else None


class QcResultInputSerializer(serializers.Serializer[Any]):
    test = CodeRelatedField(queryset=QcTest.objects.all(), help_text="QC test code.")
    numeric_value = serializers.DecimalField(
        max_digits=20,
        decimal_places=4,
        allow_null=True,
        default=None,
        help_text="For quantitative tests.",
    )
    outcome = OptionalChoiceField(
        choices=QcOutcome.choices,
        default="",
        help_text="For qualitative tests; null or empty for measured ones.",
    )
    tested_on = serializers.DateField()
    laboratory = serializers.CharField(max_length=200)
    method = serializers.CharField(max_length=200, allow_blank=True, default="")
    reason = reason_field("Needed when this corrects an earlier result.", default="")


class QcTestsApi(ListApi):
    serializer_class = QcTestOutputSerializer
    filterset_class = None

    def get_queryset(self) -> QuerySet[QcTest]:
        # No QC test selector exists yet; this read is that one.
        defaults = QcSpecification.objects.filter(product__isnull=True)
        return QcTest.objects.order_by("code").prefetch_related(
            Prefetch("specifications", queryset=defaults, to_attr="default_specifications")
        )

    @extend_schema(
        summary="The lot QC tests with their default specification",
        responses={200: QcTestOutputSerializer, **LIST_ERRORS},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class LotQcResultRecordApi(Api):
    @extend_schema(
        summary="Record (or correct, with a reason) a lot's QC result",
        description="Quantitative tests take `numeric_value`, qualitative ones `outcome`.",
        request=QcResultInputSerializer,
        responses={201: LotQcResultOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, lot_id: int) -> Response:
        lot = get_or_404(lot_list(), lot_id, what="lot")
        data = validated(QcResultInputSerializer, request.data)
        record = services.lot_qc_result_record(actor=request.user, lot=lot, **data)
        context = {"specifications": qc_specifications_for(lot.product)}
        return Response(
            LotQcResultOutputSerializer(record, context=context).data,
            status=status.HTTP_201_CREATED,
        )
