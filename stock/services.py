"""Writes to the stock ledger. Every movement and its balance change happen in one transaction;
a balance is decremented only by a conditional UPDATE that checks the units are there, so
concurrent requests can neither drive it negative nor lose an update (DESIGN rule 3)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NoReturn

from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from common.errors import DomainError, Problem
from common.services import history, require_reason, validate_instance
from lots.models import Lot, LotStatus
from providers.models import Clinic, Role
from providers.selectors import require_any_role
from stock.models import (
    DECISION_STATE,
    MovementKind,
    Receipt,
    ReceiptDecision,
    StockBalance,
    StockMovement,
    StockState,
)

STOCK_ROLES = (Role.CLINIC_ADMINISTRATOR, Role.QUALITY_MANAGER)


@dataclass(frozen=True)
class Change:
    clinic_id: int
    lot_id: int
    state: str
    delta: int
    kind: str


def apply_changes(
    changes: list[Change],
    *,
    actor: Any,
    reason: str = "",
    at: datetime.datetime | None = None,
    receipt: Receipt | None = None,
    counterpart: Clinic | None = None,
) -> list[StockMovement]:
    """Write the movements and move the balances, and return the movements in the order of
    `changes` (a treatment line then points at its own). The caller holds the transaction.

    Balance rows are touched in (clinic, lot, state) order so two transactions never wait on each
    other in opposite orders (no deadlock).
    """
    balances_move(changes)
    movements = movements_for(
        changes,
        actor=actor,
        reason=reason,
        at=at or timezone.now(),
        receipt=receipt,
        counterpart=counterpart,
    )
    return StockMovement.objects.bulk_create(movements)


def movements_for(
    changes: list[Change],
    *,
    actor: Any,
    reason: str,
    at: datetime.datetime,
    receipt: Receipt | None = None,
    counterpart: Clinic | None = None,
) -> list[StockMovement]:
    """The ledger's movements for `changes`, unsaved, in their order: for a caller that writes
    them itself and moves the balances in its transaction (a treatment writes them with its lines
    and its `balances_take` in one statement)."""
    return [
        StockMovement(
            clinic_id=change.clinic_id,
            lot_id=change.lot_id,
            state=change.state,
            delta=change.delta,
            kind=change.kind,
            reason=reason,
            actor=actor,
            occurred_at=at,
            receipt=receipt,
            counterpart_clinic=counterpart,
        )
        for change in changes
    ]


def balances_move(changes: list[Change]) -> None:
    """Move the balances by `changes`, none below zero (a take that finds too few units is
    refused with `stock_insufficient`); the ledger's movements are the caller's to write. The
    caller holds the transaction."""
    if not changes:
        return
    if all(change.delta < 0 for change in changes):
        balances_take(changes).run()
        return
    for change in sorted(changes, key=_balance_order):
        if change.delta > 0:
            _balance_add(change)
        else:
            balances_take([change]).run()


def _balance_add(change: Change) -> None:
    table = StockBalance._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {table} (clinic_id, lot_id, state, quantity) VALUES (%s, %s, %s, %s)
            ON CONFLICT (clinic_id, lot_id, state)
            DO UPDATE SET quantity = {table}.quantity + EXCLUDED.quantity
            """,  # noqa: S608 - the table name is ours; values are parameters
            [change.clinic_id, change.lot_id, change.state, change.delta],
        )


@dataclass(frozen=True)
class Take:
    """Units taken from balances, as queries of a WITH clause (`sql`, with `params`) whose last,
    `taken`, answers the ordinal in `changes` of each balance it decremented. A caller runs it
    alone (`run`) or inside a statement of its own that writes the rest of its transaction (a
    treatment's lines and movements: one round trip), and then `check`s what was taken.

    The row lock taken by the UPDATE makes a concurrent request wait and then re-check the
    condition against the committed quantity: no lost update, never below zero. Several balances
    are locked first, in the order of `changes` ((clinic, lot, state), as apply_changes touches
    them one at a time), so two such statements never wait on each other in opposite orders.
    Written in SQL: every treatment sends it, and composing it with the ORM cost more than the
    database's work on it."""

    sql: str
    params: list[Any]
    changes: list[Change]

    def run(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"WITH {self.sql} SELECT ordinal FROM taken", self.params)  # noqa: S608
            self.check([ordinal for (ordinal,) in cursor.fetchall()])

    def check(self, taken: list[int]) -> None:
        """Refuse the first change whose balance was not decremented (`stock_insufficient`)."""
        found = set(taken)
        for ordinal, change in enumerate(self.changes):
            if ordinal not in found:
                _refuse_take(change)


def _balance_order(change: Change) -> tuple[int, int, str]:
    return (change.clinic_id, change.lot_id, change.state)


def balances_take(changes: list[Change]) -> Take:
    """The take of `changes` (at least one, each negative) as a Take, its changes in the order
    their balances are locked."""
    if not changes or any(change.delta >= 0 for change in changes):
        raise ValueError("a take needs at least one change, each negative")
    ordered = sorted(changes, key=_balance_order)
    table = StockBalance._meta.db_table
    params: list[Any] = []
    if len(ordered) == 1:
        (change,) = ordered
        units = -change.delta
        sql = f"""
            taken AS (
                UPDATE {table} SET quantity = quantity - %s
                WHERE clinic_id = %s AND lot_id = %s AND state = %s AND quantity >= %s
                RETURNING 0 AS ordinal
            )
        """  # noqa: S608 - the table name is ours; values are parameters
        params = [units, change.clinic_id, change.lot_id, change.state, units]
        return Take(sql, params, ordered)
    wanted = ", ".join(
        ["(%s::integer, %s::bigint, %s::bigint, %s::text, %s::integer)"] * len(ordered)
    )
    sql = f"""
        take_wanted (ordinal, clinic_id, lot_id, state, units) AS (VALUES {wanted}),
        take_locked AS MATERIALIZED (
            SELECT balance.id, take_wanted.ordinal, take_wanted.units
            FROM {table} balance JOIN take_wanted USING (clinic_id, lot_id, state)
            ORDER BY balance.clinic_id, balance.lot_id, balance.state COLLATE "C"
            FOR UPDATE OF balance
        ),
        taken AS (
            UPDATE {table} balance SET quantity = balance.quantity - take_locked.units
            FROM take_locked
            WHERE balance.id = take_locked.id AND balance.quantity >= take_locked.units
            RETURNING take_locked.ordinal
        )
    """  # noqa: S608 - the table name is ours; values are parameters
    for ordinal, change in enumerate(ordered):
        params += [ordinal, change.clinic_id, change.lot_id, change.state, -change.delta]
    return Take(sql, params, ordered)


def _refuse_take(change: Change) -> NoReturn:
    """The units of `change` are not there: say how many are."""
    units = -change.delta
    available = (
        StockBalance.objects.filter(
            clinic_id=change.clinic_id, lot_id=change.lot_id, state=change.state
        )
        .values_list("quantity", flat=True)
        .first()
        or 0
    )
    raise DomainError(
        Problem(
            "stock_insufficient",
            _(
                "Only %(available)s %(state)s unit(s) of this lot are at the clinic; "
                "%(needed)s needed."
            )
            % {
                "available": available,
                "state": StockState(change.state).label.lower(),
                "needed": units,
            },
            "quantity",
        ),
        status=409,
    )


def _positive(quantity: int, field: str = "quantity") -> int:
    if not isinstance(quantity, int) or quantity <= 0:
        raise DomainError.single(
            "quantity_not_positive",
            _("Give a whole number of units above zero."),
            field=field,
            status=400,
        )
    return quantity


RECEIVABLE = (LotStatus.QUARANTINED, LotStatus.RELEASED, LotStatus.ON_HOLD)


@transaction.atomic
def stock_receive(
    *,
    actor: Any,
    clinic: Clinic,
    lot: Lot,
    quantity: int,
    decision: str,
    package_intact: bool,
    label_readable: bool,
    transport_min_celsius: Decimal,
    transport_max_celsius: Decimal,
    storage_location: str,
    received_at: datetime.datetime | None = None,
    notes: str = "",
) -> Receipt:
    """Receive units at a clinic. `accept` is refused unless every check at the door passed; the
    units go to the accepted, quarantined or rejected stock of the clinic. The network never
    receives more of a lot than was made (net of units returned to the manufacturer)."""
    require_any_role(actor, STOCK_ROLES, clinic=clinic)
    _positive(quantity)
    if decision not in ReceiptDecision.values:
        raise DomainError.single(
            "invalid_choice",
            _("%(decision)s is not a receipt decision.") % {"decision": decision},
            field="decision",
            status=400,
        )
    # The lot's row lock serialises receipts of one lot, so two clinics receiving the last units
    # at once cannot both pass the quantity check. NO KEY UPDATE: rows that merely reference the
    # lot (movements, treatment lines) take KEY SHARE locks, which this does not block.
    lot = (
        Lot.objects.select_for_update(of=("self",), no_key=True)
        .select_related("product")
        .get(pk=lot.pk)
    )
    received_at = received_at or timezone.now()
    when = receipt_time_problem(clinic=clinic, lot=lot, received_at=received_at, now=timezone.now())
    if when is not None:
        raise DomainError(when, status=400)
    receivable = receipt_lot_problem(lot=lot, decision=decision)
    if receivable is not None:
        raise DomainError(receivable, status=409)
    if decision == ReceiptDecision.ACCEPT:
        problems = receipt_check_problems(
            lot=lot,
            package_intact=package_intact,
            label_readable=label_readable,
            transport_min_celsius=transport_min_celsius,
            transport_max_celsius=transport_max_celsius,
        )
        if problems:
            raise DomainError(problems, status=409)
    _refuse_more_than_made(lot, quantity)
    receipt = Receipt(
        clinic=clinic,
        lot=lot,
        quantity=quantity,
        decision=decision,
        package_intact=package_intact,
        label_readable=label_readable,
        transport_min_celsius=transport_min_celsius,
        transport_max_celsius=transport_max_celsius,
        storage_location=storage_location.strip(),
        received_by=actor,
        received_at=received_at,
        notes=notes,
    )
    validate_instance(receipt, exclude=["received_by"])
    with history(actor, f"received: {decision}"):
        receipt.save()
        apply_changes(
            [
                Change(
                    clinic.pk,
                    lot.pk,
                    DECISION_STATE[ReceiptDecision(decision)],
                    quantity,
                    MovementKind.RECEIPT,
                )
            ],
            actor=actor,
            reason=notes,
            at=receipt.received_at,
            receipt=receipt,
        )
    return receipt


def receipt_time_problem(
    *, clinic: Clinic, lot: Lot, received_at: datetime.datetime, now: datetime.datetime
) -> Problem | None:
    """A receipt dated ahead of `now`, or before its lot was made (on the clinic's calendar)."""
    if received_at > now + datetime.timedelta(minutes=10):
        return Problem(
            "receipt_in_future", _("A receipt cannot be recorded ahead of time."), "received_at"
        )
    # The receipt's day is the receiving clinic's calendar day; a lot made "today" in Berlin may
    # arrive at 00:30 local time, still yesterday in UTC.
    if clinic.local_date(received_at) < lot.manufactured_on:
        return Problem(
            "receipt_before_lot_made",
            _("Lot %(lot)s was made on %(date)s, after this receipt's date.")
            % {"lot": lot.lot_number, "date": lot.manufactured_on.isoformat()},
            "received_at",
        )
    return None


def receipt_lot_problem(*, lot: Lot, decision: str) -> Problem | None:
    """A lot that is neither quarantined, released nor on hold is only received as rejected."""
    if lot.status not in RECEIVABLE and decision != ReceiptDecision.REJECT:
        return Problem(
            "lot_not_receivable",
            _("Lot %(lot)s is %(status)s; it can only be received as rejected.")
            % {"lot": lot.lot_number, "status": lot.get_status_display().lower()},
            "lot",
        )
    return None


def network_received(lot_ids: list[int]) -> dict[int, int]:
    """Units of each lot received anywhere in the network, less those returned to the
    manufacturer, by lot id (lots with none are absent): one statement."""
    rows = (
        StockMovement.objects.filter(
            lot_id__in=lot_ids, kind__in=(MovementKind.RECEIPT, MovementKind.RETURN)
        )
        .values("lot_id")
        .annotate(total=Sum("delta"))
    )
    return {row["lot_id"]: row["total"] or 0 for row in rows}


def _refuse_more_than_made(lot: Lot, quantity: int) -> None:
    """Units of the lot received anywhere, less those returned to the manufacturer, must stay
    within what the manufacturer made: more would mean a mistyped quantity or a counterfeit."""
    received = network_received([lot.pk]).get(lot.pk, 0)
    problem = receipt_room_problem(lot=lot, quantity=quantity, received=received)
    if problem is not None:
        raise DomainError(problem, status=409)


def receipt_room_problem(*, lot: Lot, quantity: int, received: int) -> Problem | None:
    """More units received than the manufacturer made, `received` being the network's units of
    the lot so far (net of returns): a mistyped quantity or a counterfeit."""
    room = lot.quantity - received
    if quantity > room:
        return Problem(
            "receipt_exceeds_lot_quantity",
            _(
                "Lot %(lot)s was made with %(quantity)s %(unit)s(s) and %(received)s are already "
                "received in the network: at most %(room)s more can be received."
            )
            % {
                "lot": lot.lot_number,
                "quantity": lot.quantity,
                "unit": lot.get_unit_display().lower(),
                "received": received,
                "room": max(room, 0),
            },
            "quantity",
        )
    return None


def receipt_check_problems(
    *,
    lot: Lot,
    package_intact: bool,
    label_readable: bool,
    transport_min_celsius: Decimal,
    transport_max_celsius: Decimal,
) -> list[Problem]:
    product = lot.product
    problems = []
    if not package_intact:
        problems.append(
            Problem("receipt_package_damaged", _("The package is not intact."), "package_intact")
        )
    if not label_readable:
        problems.append(
            Problem("receipt_label_unreadable", _("The label cannot be read."), "label_readable")
        )
    if (
        transport_min_celsius < product.storage_min_celsius
        or transport_max_celsius > product.storage_max_celsius
    ):
        problems.append(
            Problem(
                "receipt_temperature_excursion",
                _(
                    "Transport ran %(transport_min)s to %(transport_max)s °C; the product must "
                    "stay within %(storage_min)s to %(storage_max)s °C."
                )
                % {
                    "transport_min": transport_min_celsius,
                    "transport_max": transport_max_celsius,
                    "storage_min": product.storage_min_celsius,
                    "storage_max": product.storage_max_celsius,
                },
                "transport_max_celsius",
            )
        )
    return problems


@transaction.atomic
def stock_quarantine_resolve(
    *, actor: Any, clinic: Clinic, lot: Lot, quantity: int, accept: bool, reason: str
) -> list[StockMovement]:
    """Move units out of the clinic's quarantine into accepted or rejected stock."""
    require_any_role(actor, STOCK_ROLES, clinic=clinic)
    _positive(quantity)
    reason = require_reason(reason)
    kind = MovementKind.QUARANTINE_ACCEPT if accept else MovementKind.QUARANTINE_REJECT
    target = StockState.ACCEPTED if accept else StockState.REJECTED
    with history(actor, reason):
        return apply_changes(
            [
                Change(clinic.pk, lot.pk, StockState.QUARANTINED, -quantity, kind),
                Change(clinic.pk, lot.pk, target, quantity, kind),
            ],
            actor=actor,
            reason=reason,
        )


@transaction.atomic
def stock_transfer(
    *, actor: Any, from_clinic: Clinic, to_clinic: Clinic, lot: Lot, quantity: int, reason: str
) -> list[StockMovement]:
    """Send accepted units to another clinic. They arrive quarantined: the receiving clinic checks
    them (stock_quarantine_resolve) before use."""
    require_any_role(actor, STOCK_ROLES, clinic=from_clinic)
    _positive(quantity)
    reason = require_reason(reason)
    if from_clinic.pk == to_clinic.pk:
        raise DomainError.single(
            "transfer_same_clinic",
            _("A transfer goes to another clinic."),
            field="to_clinic",
            status=400,
        )
    with history(actor, reason):
        out = apply_changes(
            [
                Change(
                    from_clinic.pk,
                    lot.pk,
                    StockState.ACCEPTED,
                    -quantity,
                    MovementKind.TRANSFER_OUT,
                )
            ],
            actor=actor,
            reason=reason,
            counterpart=to_clinic,
        )
        arrived = apply_changes(
            [
                Change(
                    to_clinic.pk, lot.pk, StockState.QUARANTINED, quantity, MovementKind.TRANSFER_IN
                )
            ],
            actor=actor,
            reason=reason,
            counterpart=from_clinic,
        )
    return out + arrived


WRITE_OFF_KINDS = (MovementKind.WASTAGE, MovementKind.RETURN, MovementKind.DESTRUCTION)


@transaction.atomic
def stock_write_off(
    *,
    actor: Any,
    clinic: Clinic,
    lot: Lot,
    quantity: int,
    kind: str,
    reason: str,
    state: str = StockState.ACCEPTED,
) -> StockMovement:
    """Units leave the clinic for good: wasted, returned to the manufacturer, or destroyed."""
    require_any_role(actor, STOCK_ROLES, clinic=clinic)
    _positive(quantity)
    reason = require_reason(reason)
    if kind not in WRITE_OFF_KINDS:
        raise DomainError.single(
            "invalid_choice",
            _("A write-off is wastage, return or destruction."),
            field="kind",
            status=400,
        )
    if state not in StockState.values:
        raise DomainError.single(
            "invalid_choice",
            _("%(state)s is not a stock state.") % {"state": state},
            field="state",
            status=400,
        )
    with history(actor, reason):
        (movement,) = apply_changes(
            [Change(clinic.pk, lot.pk, state, -quantity, kind)], actor=actor, reason=reason
        )
    return movement
