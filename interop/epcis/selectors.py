"""The movements the EPCIS interface exports: the stock ledger as the caller may see it (their own
clinics' movements; every clinic's for a network quality manager or auditor), one line per event,
in the order they were recorded, a page at a time in one query."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet

from interop.epcis.vocabulary import STATE_CHANGES
from stock.models import StockMovement
from stock.selectors import stock_movement_list


@dataclass(frozen=True)
class EventFilter:
    lot_id: int | None = None
    clinic_id: int | None = None
    since: datetime.datetime | None = None
    until: datetime.datetime | None = None


@dataclass(frozen=True)
class EventPage:
    movements: list[StockMovement]
    has_next: bool


def movements_for_epcis(*, user: Any, where: EventFilter) -> QuerySet[StockMovement]:
    """Ordered by id: the ledger is append-only, so a movement recorded while a client pages
    lands after the pages already read, never shifts them (event time would: a receipt may be
    recorded after the fact)."""
    movements = (
        stock_movement_list(user=user)
        .select_related(None)
        .select_related("clinic", "lot__product")
        .exclude(Q(kind__in=STATE_CHANGES) & Q(delta__lt=0))
        .order_by("pk")
    )
    if where.lot_id is not None:
        movements = movements.filter(lot_id=where.lot_id)
    if where.clinic_id is not None:
        movements = movements.filter(clinic_id=where.clinic_id)
    if where.since is not None:
        movements = movements.filter(occurred_at__gte=where.since)
    if where.until is not None:
        movements = movements.filter(occurred_at__lt=where.until)
    return movements


def event_page(*, user: Any, where: EventFilter, offset: int, limit: int) -> EventPage:
    """One query: the page and one row past it, which says whether another page follows."""
    rows = list(movements_for_epcis(user=user, where=where)[offset : offset + limit + 1])
    return EventPage(movements=rows[:limit], has_next=len(rows) > limit)
