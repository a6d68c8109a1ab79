"""Importing past receipts of stock: each row one delivery of a lot at the clinic, judged by the
live receiving rules (stock.services) on its own date, then written set-based with its ledger
lines. The check reads the lots and the network's received units of them: two statements."""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _

from common.errors import Problem
from history.lookups import LotIndex
from history.reading import Cells, Columns, Row, RowProblem
from history.writing import insert_rows
from lots.models import Lot
from providers.models import Clinic
from stock.models import DECISION_STATE, MovementKind, Receipt, ReceiptDecision, StockMovement
from stock.services import (
    Change,
    balances_move,
    network_received,
    receipt_check_problems,
    receipt_lot_problem,
    receipt_room_problem,
    receipt_time_problem,
)

COLUMNS = Columns(
    required=(
        "lot_number",
        "quantity",
        "decision",
        "received_at",
        "package_intact",
        "label_readable",
        "transport_min_celsius",
        "transport_max_celsius",
        "storage_location",
    ),
    optional=("gtin", "delivery_note"),
)

Progress = Callable[[int], None]
BATCH = 2000


@dataclass(frozen=True)
class Planned:
    line: int
    lot: Lot
    quantity: int
    decision: str
    received_at: datetime.datetime
    package_intact: bool
    label_readable: bool
    transport_min_celsius: Decimal
    transport_max_celsius: Decimal
    storage_location: str
    delivery_note: str


@dataclass(frozen=True)
class _Parsed:
    lot_number: str
    gtin: str
    values: dict[str, Any]


def _parse(row: Row, problems: list[RowProblem]) -> _Parsed | None:
    """The row's lot and the receipt's values, or None with the row's problems added."""
    cells = Cells(row, problems)
    before = len(problems)
    lot_number = cells.text("lot_number", max_length=20)
    gtin = cells.text("gtin", required=False, max_length=14)
    values: dict[str, Any] = {
        "quantity": cells.integer("quantity"),
        "decision": cells.choice("decision", ReceiptDecision.values),
        "received_at": cells.moment("received_at"),
        "package_intact": cells.boolean("package_intact"),
        "label_readable": cells.boolean("label_readable"),
        "transport_min_celsius": cells.decimal("transport_min_celsius"),
        "transport_max_celsius": cells.decimal("transport_max_celsius"),
        "storage_location": cells.text("storage_location", max_length=200),
        "delivery_note": cells.text("delivery_note", required=False),
    }
    if len(problems) > before:
        return None
    if values["transport_max_celsius"] < values["transport_min_celsius"]:
        cells.fail(
            "transport_max_celsius",
            "transport_range_reversed",
            _("The highest transport temperature is below the lowest."),
        )
        return None
    return _Parsed(lot_number, gtin, values)


def check(
    *, clinic: Clinic, actor: Any, rows: list[Row], problems: list[RowProblem], progress: Progress
) -> list[Planned]:
    """Every row judged as `stock_receive` judges a receipt, on the row's own date; rows in time
    order, each adding to the network's received units of its lot."""
    parsed = [(row.line, cells) for row in rows if (cells := _parse(row, problems)) is not None]
    lots = LotIndex(cells.lot_number for _line, cells in parsed)
    received: dict[int, int] = defaultdict(int)
    planned: list[Planned] = []
    found: list[Planned] = []
    for line, cells in parsed:
        lot = lots.find(cells.lot_number, cells.gtin)
        if isinstance(lot, Problem):
            problems.append(RowProblem.at(line, lot.field, lot))
            continue
        found.append(Planned(line=line, lot=lot, **cells.values))
    lot_ids = sorted({item.lot.pk for item in found})
    # As stock_receive does: the lots' row locks serialise receipts of them until this import
    # commits, so a concurrent receipt cannot slip past the made-quantity check.
    list(
        Lot.objects.select_for_update(of=("self",), no_key=True)
        .filter(pk__in=lot_ids)
        .values_list("pk", flat=True)
    )
    received.update(network_received(lot_ids))
    now = timezone.now()
    for done, item in enumerate(sorted(found, key=lambda item: item.received_at), start=1):
        if done % BATCH == 0:
            progress(done)
        row_problems = [
            problem
            for problem in (
                receipt_time_problem(
                    clinic=clinic, lot=item.lot, received_at=item.received_at, now=now
                ),
                receipt_lot_problem(lot=item.lot, decision=item.decision),
                receipt_room_problem(
                    lot=item.lot, quantity=item.quantity, received=received[item.lot.pk]
                ),
            )
            if problem is not None
        ]
        if item.decision == ReceiptDecision.ACCEPT:
            row_problems += receipt_check_problems(
                lot=item.lot,
                package_intact=item.package_intact,
                label_readable=item.label_readable,
                transport_min_celsius=item.transport_min_celsius,
                transport_max_celsius=item.transport_max_celsius,
            )
        problems.extend(
            RowProblem.at(item.line, problem.field, problem) for problem in row_problems
        )
        received[item.lot.pk] += item.quantity
        planned.append(item)
    progress(len(found))
    return planned


RECEIPT_FIELDS = (
    "clinic",
    "lot",
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
)


def write(*, clinic: Clinic, actor: Any, planned: list[Planned], progress: Progress) -> int:
    """Write the receipts and their ledger lines in batches, then each balance once. The caller
    holds the transaction."""
    done = 0
    for start in range(0, len(planned), BATCH):
        batch = planned[start : start + BATCH]
        receipt_ids = insert_rows(
            Receipt,
            RECEIPT_FIELDS,
            [
                (
                    clinic.pk,
                    item.lot.pk,
                    item.quantity,
                    item.decision,
                    item.package_intact,
                    item.label_readable,
                    item.transport_min_celsius,
                    item.transport_max_celsius,
                    item.storage_location,
                    actor.pk,
                    item.received_at,
                    item.delivery_note,
                )
                for item in batch
            ],
        )
        insert_rows(
            StockMovement,
            (
                "clinic",
                "lot",
                "state",
                "delta",
                "kind",
                "reason",
                "actor",
                "occurred_at",
                "receipt",
            ),
            [
                (
                    clinic.pk,
                    item.lot.pk,
                    DECISION_STATE[ReceiptDecision(item.decision)].value,
                    item.quantity,
                    MovementKind.RECEIPT.value,
                    item.delivery_note,
                    actor.pk,
                    item.received_at,
                    receipt_id,
                )
                for item, receipt_id in zip(batch, receipt_ids, strict=True)
            ],
        )
        done += len(batch)
        progress(done)
    units: dict[tuple[int, str], int] = defaultdict(int)
    for item in planned:
        units[(item.lot.pk, DECISION_STATE[ReceiptDecision(item.decision)])] += item.quantity
    balances_move(
        [
            Change(clinic.pk, lot_id, state, total, MovementKind.RECEIPT)
            for (lot_id, state), total in units.items()
        ]
    )
    return done
