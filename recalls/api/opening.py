"""Opening and widening a recall (signed), listing recalls and reading one."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from common.api_fields import (
    BIGINT_MAX,
    CREATE_ERRORS,
    LIST_ERRORS,
    READ_ERRORS,
    WRITE_ERRORS,
    DayOrInstantField,
    TextChoiceField,
    id_field,
)
from common.api_views import Api, ListApi, get_or_404, validated
from lots.models import Donor, Lot, Product
from providers.models import Manufacturer
from recalls import services
from recalls.api.accounting import (
    AcknowledgementOutputSerializer,
    DispositionOutputSerializer,
    StockToAccountForOutputSerializer,
)
from recalls.api.common import RECALL_ID, password_field, recall_or_404, text_field, user_name
from recalls.api.effectiveness import RecallTimingOutputSerializer
from recalls.filters import RecallFilter
from recalls.models import Recall, RecallClass, RecallDepth, RecallLot, RecallScope
from recalls.selectors import (
    acknowledgement_list,
    disposition_list,
    recall_detail_list,
    recall_effectiveness,
    recall_list,
    stock_to_account_for,
)
from recalls.services import RecallScopeRequest
from treatments.selectors import visible_clinic_ids

SCOPE_LOTS_MAX = 500


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
    withdrawn_at = serializers.DateTimeField(
        read_only=True,
        help_text="When the lots were really withdrawn: opened_at, or earlier for a recall "
        "entered after the fact.",
    )
    retrospective = serializers.BooleanField(
        source="is_retrospective",
        read_only=True,
        help_text="Entered after the fact: withdrawn_at is before opened_at.",
    )
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
            "withdrawn_at",
            "retrospective",
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
        return user_name(recall.opened_by) or ""

    def get_closed_by(self, recall: Recall) -> str | None:
        return user_name(recall.closed_by)


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
        return user_name(scope.added_by) or ""


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
                _("No lot with id %(ids)s.") % {"ids": ", ".join(map(str, missing))},
                code="does_not_exist",
            )
        return list(dict.fromkeys(ids))

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if not (data["lots"] or data["donor"] or data["product"] or data["manufacturer"]):
            raise serializers.ValidationError(
                _("Name the lots, a donor, a product or a manufacturer to recall."),
                code="recall_scope_missing",
            )
        start, end = data["manufactured_from"], data["manufactured_to"]
        if start and end and start > end:
            raise serializers.ValidationError(
                {"manufactured_from": _("manufactured_from is after manufactured_to.")},
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
    reason = text_field(help_text="Why the product is recalled.")
    hazard = text_field(help_text="The hazard to patients, in plain words.")
    instructions = text_field(allow_blank=True, default="")
    is_drill = serializers.BooleanField(
        default=False, help_text="A mock recall: no lot status changes, no stock is blocked."
    )
    password = password_field()
    scope = RecallScopeInputSerializer()
    withdrawn_at = DayOrInstantField(
        required=False,
        help_text="For a recall entered after the fact: when its lots were really withdrawn "
        "(a past date or date and time). Its timings count from there; everything else, the "
        "signature included, happens now. Not for a drill.",
    )


class RecallWidenInputSerializer(serializers.Serializer[Any]):
    password = password_field()
    reason = text_field(allow_blank=True, help_text="Why the recall is widened.")
    scope = RecallScopeInputSerializer()


def recall_detail_data(request: Request, recall_id: int) -> dict[str, Any]:
    recall = get_or_404(recall_detail_list(user=request.user), recall_id, what="recall")
    clinic_ids = visible_clinic_ids(request.user)
    context = {
        "acknowledgements": list(acknowledgement_list(recall=recall, clinic_ids=clinic_ids)),
        "stock": list(stock_to_account_for(recall=recall, clinic_ids=clinic_ids)),
        "dispositions": list(disposition_list(recall=recall, clinic_ids=clinic_ids)),
        "timing": recall_effectiveness(recall=recall, clinic_ids=clinic_ids).timing,
    }
    return RecallDetailOutputSerializer(recall, context=context).data


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
            withdrawn_at=data.get("withdrawn_at"),
        )
        return Response(recall_detail_data(request, recall.pk), status=status.HTTP_201_CREATED)


class RecallDetailApi(Api):
    @extend_schema(
        summary="One recall with its scope rounds, acknowledgements, stock and timing",
        parameters=[RECALL_ID],
        responses={200: RecallDetailOutputSerializer, **READ_ERRORS},
    )
    def get(self, request: Request, recall_id: int) -> Response:
        return Response(recall_detail_data(request, recall_id))


class RecallWidenApi(Api):
    @extend_schema(
        summary="Widen an open recall with further lots (signed)",
        description="Only the new exposures, stock and notices are added.",
        parameters=[RECALL_ID],
        request=RecallWidenInputSerializer,
        responses={200: RecallDetailOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, recall_id: int) -> Response:
        recall = recall_or_404(request, recall_id)
        data = validated(RecallWidenInputSerializer, request.data)
        services.recall_widen(
            actor=request.user,
            password=data["password"],
            recall=recall,
            scope=_scope_request(data["scope"]),
            reason=data["reason"],
        )
        return Response(recall_detail_data(request, recall.pk))
