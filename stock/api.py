"""REST API for stock at clinics: receipts, balances, the movement ledger, transfers, write-offs and
quarantine decisions. One view per use case; every list is scoped to the clinics the caller may
see (clinic staff: their own; quality managers and auditors: all)."""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any

from django.db.models import Model, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from common.api_fields import (
    CREATE_ERRORS,
    INTEGER_MAX,
    LIST_ERRORS,
    StorableDateTimeField,
    TextChoiceField,
    id_field,
)
from common.api_views import Api, ListApi, validated
from lots.api import ProductRefSerializer
from lots.models import Lot
from providers.api import ClinicRefSerializer
from providers.models import Clinic
from providers.permissions import CLINIC_STAFF_PERMISSIONS
from stock import services
from stock.filters import ReceiptFilter, StockBalanceFilter, StockMovementFilter
from stock.models import (
    Receipt,
    ReceiptDecision,
    StockBalance,
    StockMovement,
    StockState,
)
from stock.selectors import receipt_list, stock_balance_list, stock_movement_list

TEXT_MAX_LENGTH = 2000

# ---------------------------------------------------------------------------------------------
# Fields the stock and treatment APIs share


class OffsetDateTimeField(StorableDateTimeField):
    """An ISO 8601 date and time that states its UTC offset (`2025-06-01T10:30:00+02:00` or
    `...Z`). A time without one is refused rather than guessed: a clinic's tablet and the server
    need not share a time zone, and a treatment time is evidence."""

    default_error_messages = {
        "offset_required": gettext_lazy(
            "Give the time with its UTC offset, e.g. 2025-06-01T10:30:00+02:00."
        )
    }

    def to_internal_value(self, value: Any) -> datetime.datetime:
        if isinstance(value, str):
            try:
                parsed = parse_datetime(value)
            except ValueError:
                parsed = None  # well formed but impossible: DRF names it below
            if parsed is not None and timezone.is_naive(parsed):
                self.fail("offset_required")
        result: datetime.datetime = super().to_internal_value(value)
        return result


def quantity_field(help_text: str = "Whole units, above zero.") -> serializers.IntegerField:
    return serializers.IntegerField(min_value=1, max_value=INTEGER_MAX, help_text=help_text)


def reason_field(**kwargs: Any) -> serializers.CharField:
    return serializers.CharField(
        max_length=TEXT_MAX_LENGTH,
        allow_blank=True,
        help_text="Why: kept with the ledger.",
        **kwargs,
    )


class LotRefSerializer(serializers.ModelSerializer[Lot]):
    class Meta:
        model = Lot
        fields = ["id", "lot_number"]
        read_only_fields = fields


# ---------------------------------------------------------------------------------------------
# Output serializers


class ReceiptOutputSerializer(serializers.ModelSerializer[Receipt]):
    clinic = ClinicRefSerializer(read_only=True)
    lot_number = serializers.CharField(source="lot.lot_number", read_only=True)
    product = ProductRefSerializer(source="lot.product", read_only=True)
    received_by = serializers.CharField(source="received_by.username", read_only=True)

    class Meta:
        model = Receipt
        fields = [
            "id",
            "clinic",
            "lot",
            "lot_number",
            "product",
            "quantity",
            "decision",
            "package_intact",
            "label_readable",
            "transport_min_celsius",
            "transport_max_celsius",
            "storage_location",
            "received_by",
            "received_at",
            "notes",
        ]
        read_only_fields = fields


class StockBalanceOutputSerializer(serializers.ModelSerializer[StockBalance]):
    clinic = ClinicRefSerializer(read_only=True)
    lot_number = serializers.CharField(source="lot.lot_number", read_only=True)
    lot_status = serializers.CharField(source="lot.status", read_only=True)
    expires_on = serializers.DateField(source="lot.expires_on", read_only=True)
    product = ProductRefSerializer(source="lot.product", read_only=True)

    class Meta:
        model = StockBalance
        fields = [
            "clinic",
            "lot",
            "lot_number",
            "lot_status",
            "expires_on",
            "product",
            "state",
            "quantity",
        ]
        read_only_fields = fields


class StockMovementOutputSerializer(serializers.ModelSerializer[StockMovement]):
    clinic = ClinicRefSerializer(read_only=True)
    lot_number = serializers.CharField(source="lot.lot_number", read_only=True)
    actor = serializers.CharField(source="actor.username", read_only=True)
    counterpart_clinic = ClinicRefSerializer(
        read_only=True, allow_null=True, help_text="The other clinic of a transfer."
    )

    class Meta:
        model = StockMovement
        fields = [
            "id",
            "clinic",
            "lot",
            "lot_number",
            "state",
            "delta",
            "kind",
            "reason",
            "actor",
            "occurred_at",
            "receipt",
            "counterpart_clinic",
        ]
        read_only_fields = fields


class MovementsOutputSerializer(serializers.Serializer[Any]):
    movements = StockMovementOutputSerializer(many=True, help_text="The ledger lines written.")


# ---------------------------------------------------------------------------------------------
# Input serializers


class ReceiptInputSerializer(serializers.Serializer[Any]):
    clinic = id_field(Clinic.objects.all(), help_text="Clinic id.")
    lot = id_field(Lot.objects.all(), help_text="Lot id.")
    quantity = quantity_field()
    decision = TextChoiceField(
        choices=ReceiptDecision.choices,
        help_text="`accept` only when every check at the door passed.",
    )
    package_intact = serializers.BooleanField()
    label_readable = serializers.BooleanField()
    transport_min_celsius = serializers.DecimalField(max_digits=5, decimal_places=1)
    transport_max_celsius = serializers.DecimalField(max_digits=5, decimal_places=1)
    storage_location = serializers.CharField(max_length=200)
    received_at = OffsetDateTimeField(
        allow_null=True, default=None, help_text="When it arrived; now when left out."
    )
    notes = serializers.CharField(max_length=TEXT_MAX_LENGTH, allow_blank=True, default="")


class TransferInputSerializer(serializers.Serializer[Any]):
    from_clinic = id_field(Clinic.objects.all(), help_text="Clinic id the units leave.")
    to_clinic = id_field(Clinic.objects.all(), help_text="Clinic id; the units arrive quarantined.")
    lot = id_field(Lot.objects.all(), help_text="Lot id.")
    quantity = quantity_field("Accepted units to send.")
    reason = reason_field()


class WriteOffInputSerializer(serializers.Serializer[Any]):
    clinic = id_field(Clinic.objects.all(), help_text="Clinic id.")
    lot = id_field(Lot.objects.all(), help_text="Lot id.")
    quantity = quantity_field()
    kind = TextChoiceField(
        choices=[(kind.value, kind.label) for kind in services.WRITE_OFF_KINDS],
        help_text="Wastage, return to the manufacturer, or destruction.",
    )
    state = TextChoiceField(
        choices=StockState.choices,
        default=StockState.ACCEPTED,
        help_text="The stock the units leave (blocked stock after a recall, for instance).",
    )
    reason = reason_field()


class QuarantineResolutionInputSerializer(serializers.Serializer[Any]):
    clinic = id_field(Clinic.objects.all(), help_text="Clinic id.")
    lot = id_field(Lot.objects.all(), help_text="Lot id.")
    quantity = quantity_field("Quarantined units decided on.")
    accept = serializers.BooleanField(help_text="true: into accepted stock; false: rejected.")
    reason = reason_field()


# ---------------------------------------------------------------------------------------------
# Views


def _movements(movements: Iterable[StockMovement]) -> dict[str, Any]:
    # The writer sees every line it wrote, the other clinic's side of a transfer included.
    written = StockMovement.objects.select_related(
        "clinic", "lot", "actor", "counterpart_clinic"
    ).filter(pk__in=[movement.pk for movement in movements])
    return MovementsOutputSerializer({"movements": list(written.order_by("pk"))}).data


class _ScopedListApi(ListApi):
    """A list scoped to the caller's clinics. Schema generation has no caller: an empty queryset."""

    permission_classes = CLINIC_STAFF_PERMISSIONS
    model: type[Model]

    def scoped_queryset(self, user: Any) -> QuerySet[Any]:
        raise NotImplementedError

    def get_queryset(self) -> QuerySet[Any]:
        if getattr(self, "swagger_fake_view", False):
            return self.model._default_manager.none()
        return self.scoped_queryset(self.request.user)


class ReceiptsApi(_ScopedListApi):
    model = Receipt
    serializer_class = ReceiptOutputSerializer
    filterset_class = ReceiptFilter

    def scoped_queryset(self, user: Any) -> QuerySet[Receipt]:
        return receipt_list(user=user)

    @extend_schema(
        summary="List receipts at the clinics you may see",
        responses={200: ReceiptOutputSerializer, **LIST_ERRORS},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Receive units of a lot at a clinic",
        description="Accepting is refused (409) unless the package is intact, the label readable "
        "and transport stayed within the product's storage range, listing every failed check. "
        "Needs the clinic administrator (or quality manager) role at that clinic.",
        request=ReceiptInputSerializer,
        responses={201: ReceiptOutputSerializer, **CREATE_ERRORS},
    )
    def post(self, request: Request) -> Response:
        data = validated(ReceiptInputSerializer, request.data)
        receipt = services.stock_receive(actor=request.user, **data)
        receipt = Receipt.objects.select_related("clinic", "lot__product", "received_by").get(
            pk=receipt.pk
        )
        return Response(ReceiptOutputSerializer(receipt).data, status=status.HTTP_201_CREATED)


class StockBalancesApi(_ScopedListApi):
    model = StockBalance
    serializer_class = StockBalanceOutputSerializer
    filterset_class = StockBalanceFilter

    def scoped_queryset(self, user: Any) -> QuerySet[StockBalance]:
        return stock_balance_list(user=user)

    @extend_schema(
        summary="Stock on hand: units per clinic, lot and state (above zero only)",
        responses={200: StockBalanceOutputSerializer, **LIST_ERRORS},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class StockMovementsApi(_ScopedListApi):
    model = StockMovement
    serializer_class = StockMovementOutputSerializer
    filterset_class = StockMovementFilter

    def scoped_queryset(self, user: Any) -> QuerySet[StockMovement]:
        return stock_movement_list(user=user)

    @extend_schema(
        summary="The stock ledger, newest first",
        responses={200: StockMovementOutputSerializer, **LIST_ERRORS},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class StockTransferApi(Api):
    permission_classes = CLINIC_STAFF_PERMISSIONS

    @extend_schema(
        summary="Send accepted units to another clinic (they arrive quarantined)",
        request=TransferInputSerializer,
        responses={201: MovementsOutputSerializer, **CREATE_ERRORS},
    )
    def post(self, request: Request) -> Response:
        data = validated(TransferInputSerializer, request.data)
        movements = services.stock_transfer(actor=request.user, **data)
        return Response(_movements(movements), status=status.HTTP_201_CREATED)


class StockWriteOffApi(Api):
    permission_classes = CLINIC_STAFF_PERMISSIONS

    @extend_schema(
        summary="Write units off: wastage, return to the manufacturer or destruction",
        request=WriteOffInputSerializer,
        responses={201: MovementsOutputSerializer, **CREATE_ERRORS},
    )
    def post(self, request: Request) -> Response:
        data = validated(WriteOffInputSerializer, request.data)
        movement = services.stock_write_off(actor=request.user, **data)
        return Response(_movements([movement]), status=status.HTTP_201_CREATED)


class StockQuarantineResolutionApi(Api):
    permission_classes = CLINIC_STAFF_PERMISSIONS

    @extend_schema(
        summary="Accept or reject quarantined units after checking them",
        request=QuarantineResolutionInputSerializer,
        responses={201: MovementsOutputSerializer, **CREATE_ERRORS},
    )
    def post(self, request: Request) -> Response:
        data = validated(QuarantineResolutionInputSerializer, request.data)
        movements = services.stock_quarantine_resolve(actor=request.user, **data)
        return Response(_movements(movements), status=status.HTTP_201_CREATED)
