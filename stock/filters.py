"""Query-string filters for receipts, stock balances and the movement ledger."""

from __future__ import annotations

import django_filters

from common.api_fields import IdFilter, IsoDateFilter
from stock.models import (
    MovementKind,
    Receipt,
    ReceiptDecision,
    StockBalance,
    StockMovement,
    StockState,
)


class ReceiptFilter(django_filters.FilterSet):
    clinic = IdFilter(field_name="clinic_id", help_text="Clinic id.")
    lot = IdFilter(field_name="lot_id", help_text="Lot id.")
    decision = django_filters.ChoiceFilter(choices=ReceiptDecision.choices)
    received_after = IsoDateFilter(
        field_name="received_at__date", lookup_expr="gte", help_text="Received on or after (UTC)."
    )
    received_before = IsoDateFilter(
        field_name="received_at__date", lookup_expr="lte", help_text="Received on or before (UTC)."
    )

    class Meta:
        model = Receipt
        fields: list[str] = []


class StockBalanceFilter(django_filters.FilterSet):
    clinic = IdFilter(field_name="clinic_id", help_text="Clinic id.")
    lot = IdFilter(field_name="lot_id", help_text="Lot id.")
    product = IdFilter(field_name="lot__product_id", help_text="Product id.")
    state = django_filters.ChoiceFilter(choices=StockState.choices)

    class Meta:
        model = StockBalance
        fields: list[str] = []


class StockMovementFilter(django_filters.FilterSet):
    clinic = IdFilter(field_name="clinic_id", help_text="Clinic id.")
    lot = IdFilter(field_name="lot_id", help_text="Lot id.")
    kind = django_filters.ChoiceFilter(choices=MovementKind.choices)
    state = django_filters.ChoiceFilter(choices=StockState.choices)

    class Meta:
        model = StockMovement
        fields: list[str] = []
