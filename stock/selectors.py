"""Reads of stock: balances and movements scoped to the clinics a user may see, and the proof
that the maintained balances equal the ledger."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.db.models import QuerySet

from providers.access import access_for
from stock.models import Receipt, StockBalance, StockMovement


def _scoped(queryset: QuerySet[Any], user: Any) -> QuerySet[Any]:
    clinic_ids = access_for(user).visible_clinic_ids
    return queryset if clinic_ids is None else queryset.filter(clinic_id__in=clinic_ids)


def stock_balance_list(*, user: Any) -> QuerySet[StockBalance]:
    return _scoped(
        StockBalance.objects.filter(quantity__gt=0).select_related("clinic", "lot__product"), user
    )


def stock_movement_list(*, user: Any) -> QuerySet[StockMovement]:
    return _scoped(
        StockMovement.objects.select_related("clinic", "lot", "actor", "counterpart_clinic"), user
    )


def receipt_list(*, user: Any) -> QuerySet[Receipt]:
    return _scoped(Receipt.objects.select_related("clinic", "lot__product", "received_by"), user)


def stock_balances_disagreeing() -> list[tuple[int, int, str, int, int]]:
    """Rows where the maintained balance differs from the ledger's sum: (clinic, lot, state,
    balance, ledger). Empty when the two agree, which they always must."""
    balance = StockBalance._meta.db_table
    movement = StockMovement._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT COALESCE(b.clinic_id, m.clinic_id), COALESCE(b.lot_id, m.lot_id),
                   COALESCE(b.state, m.state), COALESCE(b.quantity, 0), COALESCE(m.total, 0)
            FROM {balance} b
            FULL OUTER JOIN (
                SELECT clinic_id, lot_id, state, SUM(delta) AS total
                FROM {movement} GROUP BY clinic_id, lot_id, state
            ) m ON m.clinic_id = b.clinic_id AND m.lot_id = b.lot_id AND m.state = b.state
            WHERE COALESCE(b.quantity, 0) <> COALESCE(m.total, 0)
            """  # noqa: S608 - table names are ours
        )
        return [tuple(row) for row in cursor.fetchall()]
