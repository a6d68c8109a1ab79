"""The stock ledger: receipts with their checks at the door, quarantine, transfers and write-offs.
Balances never go negative, the ledger is append-only in the database, and after every scenario
the maintained balances equal the ledger's sums."""

from __future__ import annotations

import datetime
from decimal import Decimal

import psycopg.errors
import pytest
from django.db import IntegrityError, ProgrammingError, connection, transaction
from django.utils import timezone

from common.errors import DomainError
from lots.models import Lot, LotStatus
from providers.models import Role
from stock.models import (
    MovementKind,
    Receipt,
    ReceiptDecision,
    StockBalance,
    StockMovement,
    StockState,
)
from stock.selectors import stock_balances_disagreeing
from stock.services import (
    stock_quarantine_resolve,
    stock_receive,
    stock_transfer,
    stock_write_off,
)
from tests.factories import MembershipFactory, clinic_ready, receive, released_lot

pytestmark = pytest.mark.django_db

# The factory product keeps between -80 and -60 °C.
IN_RANGE = {"transport_min_celsius": Decimal("-75"), "transport_max_celsius": Decimal("-65")}


@pytest.fixture(autouse=True)
def _ledger_agrees_after_each_scenario(db):
    yield
    assert stock_balances_disagreeing() == []


@pytest.fixture
def ready():
    return clinic_ready()


@pytest.fixture
def lot():
    return released_lot()


def balances(lot) -> dict[tuple[int, str], int]:
    """{(clinic, state): quantity} of the lot, zero rows left out."""
    return {
        (clinic_id, state): quantity
        for clinic_id, state, quantity in StockBalance.objects.filter(lot=lot).values_list(
            "clinic_id", "state", "quantity"
        )
        if quantity
    }


def receipt_of(ready, lot, *, decision="accept", quantity=10, **checks):
    arguments = {
        "actor": ready.administrator,
        "clinic": ready.clinic,
        "lot": lot,
        "quantity": quantity,
        "decision": decision,
        "package_intact": True,
        "label_readable": True,
        "storage_location": " Freezer 2 ",
        **IN_RANGE,
    }
    arguments.update(checks)
    return stock_receive(**arguments)


def refused(call) -> DomainError:
    """Run `call`, expecting a refusal; prove it wrote nothing."""
    before = (
        Receipt.objects.count(),
        StockMovement.objects.count(),
        sorted(StockBalance.objects.values_list("clinic_id", "lot_id", "state", "quantity")),
    )
    with pytest.raises(DomainError) as caught:
        call()
    after = (
        Receipt.objects.count(),
        StockMovement.objects.count(),
        sorted(StockBalance.objects.values_list("clinic_id", "lot_id", "state", "quantity")),
    )
    assert after == before
    return caught.value


# ---------------------------------------------------------------------------------------------
# Receipts


@pytest.mark.parametrize(
    ("decision", "state"),
    [
        (ReceiptDecision.ACCEPT, StockState.ACCEPTED),
        (ReceiptDecision.QUARANTINE, StockState.QUARANTINED),
        (ReceiptDecision.REJECT, StockState.REJECTED),
    ],
)
def test_stock_receive_puts_the_units_in_the_bucket_of_the_decision(ready, lot, decision, state):
    receipt = receipt_of(ready, lot, decision=decision, quantity=12)

    assert balances(lot) == {(ready.clinic.pk, state): 12}
    movement = StockMovement.objects.get()
    assert (movement.kind, movement.state, movement.delta, movement.receipt) == (
        MovementKind.RECEIPT,
        state,
        12,
        receipt,
    )
    assert movement.actor == ready.administrator
    assert receipt.storage_location == "Freezer 2"
    assert receipt.received_by == ready.administrator


def test_receipts_add_up(ready, lot):
    receipt_of(ready, lot, quantity=4)
    receipt_of(ready, lot, quantity=6)

    assert balances(lot) == {(ready.clinic.pk, StockState.ACCEPTED): 10}
    assert stock_balances_disagreeing() == []


@pytest.mark.parametrize(
    ("checks", "code", "field"),
    [
        ({"package_intact": False}, "receipt_package_damaged", "package_intact"),
        ({"label_readable": False}, "receipt_label_unreadable", "label_readable"),
        (
            {"transport_max_celsius": Decimal("-20")},
            "receipt_temperature_excursion",
            "transport_max_celsius",
        ),
        (
            {"transport_min_celsius": Decimal("-90")},
            "receipt_temperature_excursion",
            "transport_max_celsius",
        ),
    ],
)
def test_stock_receive_refuses_to_accept_units_that_failed_a_check(ready, lot, checks, code, field):
    error = refused(lambda: receipt_of(ready, lot, **checks))

    assert error.codes == [code]
    assert error.problems[0].field == field
    assert error.status == 409


def test_a_refused_acceptance_lists_every_failed_check(ready, lot):
    error = refused(
        lambda: receipt_of(
            ready,
            lot,
            package_intact=False,
            label_readable=False,
            transport_min_celsius=Decimal("-70"),
            transport_max_celsius=Decimal("4"),
        )
    )

    assert error.codes == [
        "receipt_package_damaged",
        "receipt_label_unreadable",
        "receipt_temperature_excursion",
    ]
    assert "-70 to 4 °C" in error.problems[2].message


def test_transport_at_the_storage_limits_is_within_range(ready, lot):
    receipt_of(
        ready,
        lot,
        transport_min_celsius=lot.product.storage_min_celsius,
        transport_max_celsius=lot.product.storage_max_celsius,
    )

    assert balances(lot) == {(ready.clinic.pk, StockState.ACCEPTED): 10}


@pytest.mark.parametrize(
    ("decision", "state"),
    [
        (ReceiptDecision.QUARANTINE, StockState.QUARANTINED),
        (ReceiptDecision.REJECT, StockState.REJECTED),
    ],
)
def test_units_that_failed_the_checks_may_be_quarantined_or_rejected(ready, lot, decision, state):
    receipt = receipt_of(
        ready,
        lot,
        decision=decision,
        package_intact=False,
        label_readable=False,
        transport_max_celsius=Decimal("8"),
    )

    assert balances(lot) == {(ready.clinic.pk, state): 10}
    assert (receipt.package_intact, receipt.label_readable) == (False, False)


@pytest.mark.parametrize("status", [LotStatus.REJECTED, LotStatus.RECALLED])
def test_a_rejected_or_recalled_lot_can_only_be_received_as_rejected(ready, lot, status):
    Lot.objects.filter(pk=lot.pk).update(status=status)

    for decision in (ReceiptDecision.ACCEPT, ReceiptDecision.QUARANTINE):
        error = refused(lambda decision=decision: receipt_of(ready, lot, decision=decision))
        assert error.codes == ["lot_not_receivable"]
        assert error.problems[0].field == "lot"

    receipt_of(ready, lot, decision=ReceiptDecision.REJECT)
    assert balances(lot) == {(ready.clinic.pk, StockState.REJECTED): 10}


@pytest.mark.parametrize("status", [LotStatus.QUARANTINED, LotStatus.ON_HOLD])
def test_a_lot_not_yet_released_may_be_received(ready, lot, status):
    Lot.objects.filter(pk=lot.pk).update(status=status)

    receipt_of(ready, lot)

    assert balances(lot) == {(ready.clinic.pk, StockState.ACCEPTED): 10}


@pytest.mark.parametrize("quantity", [0, -3])
def test_stock_receive_refuses_a_quantity_that_is_not_positive(ready, lot, quantity):
    error = refused(lambda: receipt_of(ready, lot, quantity=quantity))

    assert error.codes == ["quantity_not_positive"]
    assert error.status == 400


def test_stock_receive_refuses_an_unknown_decision(ready, lot):
    assert refused(lambda: receipt_of(ready, lot, decision="maybe")).codes == ["invalid_choice"]


def test_stock_receive_refuses_a_reversed_transport_range(ready, lot):
    error = refused(
        lambda: receipt_of(
            ready,
            lot,
            decision=ReceiptDecision.QUARANTINE,
            transport_min_celsius=Decimal("-60"),
            transport_max_celsius=Decimal("-70"),
        )
    )

    assert error.codes == ["transport_range_reversed"]


def test_stock_receive_refuses_an_arrival_in_the_future(ready, lot):
    error = refused(
        lambda: receipt_of(ready, lot, received_at=timezone.now() + datetime.timedelta(hours=1))
    )

    assert error.codes == ["receipt_in_future"]
    assert (error.status, error.problems[0].field) == (400, "received_at")
    # a clock a few minutes fast is tolerated
    receipt_of(ready, lot, received_at=timezone.now() + datetime.timedelta(minutes=5))


def test_stock_receive_refuses_an_arrival_before_the_lot_was_made(ready, lot):
    made = datetime.datetime.combine(lot.manufactured_on, datetime.time(9), tzinfo=datetime.UTC)

    error = refused(lambda: receipt_of(ready, lot, received_at=made - datetime.timedelta(days=1)))

    assert error.codes == ["receipt_before_lot_made"]
    assert (error.status, error.problems[0].field) == (400, "received_at")
    receipt = receipt_of(ready, lot, received_at=made)  # the day it was made is possible
    assert receipt.received_at == made


# ---------------------------------------------------------------------------------------------
# Quarantine


def test_quarantined_units_are_accepted_or_rejected_after_review(ready, lot):
    # given 10 units received into quarantine
    receipt_of(ready, lot, decision=ReceiptDecision.QUARANTINE)

    # when 6 are accepted and 4 rejected
    stock_quarantine_resolve(
        actor=ready.administrator,
        clinic=ready.clinic,
        lot=lot,
        quantity=6,
        accept=True,
        reason="Logger data within range",
    )
    stock_quarantine_resolve(
        actor=ready.administrator,
        clinic=ready.clinic,
        lot=lot,
        quantity=4,
        accept=False,
        reason="Vials cracked",
    )

    # then the quarantine is empty and the ledger shows both decisions
    clinic = ready.clinic.pk
    assert balances(lot) == {(clinic, StockState.ACCEPTED): 6, (clinic, StockState.REJECTED): 4}
    assert sorted(
        StockMovement.objects.exclude(kind=MovementKind.RECEIPT).values_list(
            "kind", "state", "delta"
        )
    ) == sorted(
        [
            (MovementKind.QUARANTINE_ACCEPT, StockState.QUARANTINED, -6),
            (MovementKind.QUARANTINE_ACCEPT, StockState.ACCEPTED, 6),
            (MovementKind.QUARANTINE_REJECT, StockState.QUARANTINED, -4),
            (MovementKind.QUARANTINE_REJECT, StockState.REJECTED, 4),
        ]
    )


def test_quarantine_resolve_cannot_take_more_than_is_quarantined(ready, lot):
    receipt_of(ready, lot, decision=ReceiptDecision.QUARANTINE, quantity=3)
    receipt_of(ready, lot, decision=ReceiptDecision.ACCEPT, quantity=10)

    error = refused(
        lambda: stock_quarantine_resolve(
            actor=ready.administrator,
            clinic=ready.clinic,
            lot=lot,
            quantity=4,
            accept=True,
            reason="Reviewed",
        )
    )

    assert error.codes == ["stock_insufficient"]
    assert "Only 3 quarantined" in error.problems[0].message


def test_quarantine_resolve_needs_a_reason(ready, lot):
    receipt_of(ready, lot, decision=ReceiptDecision.QUARANTINE)

    error = refused(
        lambda: stock_quarantine_resolve(
            actor=ready.administrator,
            clinic=ready.clinic,
            lot=lot,
            quantity=1,
            accept=True,
            reason="  ",
        )
    )

    assert error.codes == ["reason_required"]


# ---------------------------------------------------------------------------------------------
# Transfers


def test_a_transfer_arrives_quarantined_and_is_then_accepted(ready, lot):
    # given 10 accepted units at clinic A
    receipt_of(ready, lot)
    destination = clinic_ready()

    # when 4 are sent to clinic B
    movements = stock_transfer(
        actor=ready.administrator,
        from_clinic=ready.clinic,
        to_clinic=destination.clinic,
        lot=lot,
        quantity=4,
        reason="Stock balancing",
    )

    # then A's accepted stock went down and B holds them in quarantine
    a, b = ready.clinic.pk, destination.clinic.pk
    assert balances(lot) == {(a, StockState.ACCEPTED): 6, (b, StockState.QUARANTINED): 4}
    assert [(m.kind, m.clinic_id, m.counterpart_clinic_id, m.delta) for m in movements] == [
        (MovementKind.TRANSFER_OUT, a, b, -4),
        (MovementKind.TRANSFER_IN, b, a, 4),
    ]
    assert stock_balances_disagreeing() == []

    # and once B accepts them after its checks, B can use them
    stock_quarantine_resolve(
        actor=destination.administrator,
        clinic=destination.clinic,
        lot=lot,
        quantity=4,
        accept=True,
        reason="Arrived frozen, labels intact",
    )
    assert balances(lot) == {(a, StockState.ACCEPTED): 6, (b, StockState.ACCEPTED): 4}


def test_a_transfer_cannot_send_more_than_the_accepted_stock(ready, lot):
    # given 5 accepted and 5 quarantined units: quarantined units cannot be sent on
    receipt_of(ready, lot, quantity=5)
    receipt_of(ready, lot, quantity=5, decision=ReceiptDecision.QUARANTINE)
    destination = clinic_ready()

    error = refused(
        lambda: stock_transfer(
            actor=ready.administrator,
            from_clinic=ready.clinic,
            to_clinic=destination.clinic,
            lot=lot,
            quantity=6,
            reason="Stock balancing",
        )
    )

    assert error.codes == ["stock_insufficient"]
    assert error.status == 409


def test_a_transfer_goes_to_another_clinic(ready, lot):
    receipt_of(ready, lot)

    error = refused(
        lambda: stock_transfer(
            actor=ready.administrator,
            from_clinic=ready.clinic,
            to_clinic=ready.clinic,
            lot=lot,
            quantity=1,
            reason="Nowhere",
        )
    )

    assert error.codes == ["transfer_same_clinic"]


# ---------------------------------------------------------------------------------------------
# Write-offs


@pytest.mark.parametrize(
    "kind", [MovementKind.WASTAGE, MovementKind.RETURN, MovementKind.DESTRUCTION]
)
def test_a_write_off_takes_units_out_of_the_clinic(ready, lot, kind):
    receipt_of(ready, lot)

    movement = stock_write_off(
        actor=ready.administrator,
        clinic=ready.clinic,
        lot=lot,
        quantity=3,
        kind=kind,
        reason=" Dropped vial ",
    )

    assert (movement.kind, movement.state, movement.delta, movement.reason) == (
        kind,
        StockState.ACCEPTED,
        -3,
        "Dropped vial",
    )
    assert balances(lot) == {(ready.clinic.pk, StockState.ACCEPTED): 7}


def test_rejected_units_can_be_returned_to_the_manufacturer(ready, lot):
    receipt_of(ready, lot, decision=ReceiptDecision.REJECT, quantity=4)

    stock_write_off(
        actor=ready.administrator,
        clinic=ready.clinic,
        lot=lot,
        quantity=4,
        kind=MovementKind.RETURN,
        reason="Returned under RMA 77",
        state=StockState.REJECTED,
    )

    assert balances(lot) == {}


def test_stock_never_goes_negative(ready, lot):
    # given 3 accepted units
    receipt_of(ready, lot, quantity=3)

    # when 4 are written off, it is refused with what is there
    error = refused(
        lambda: stock_write_off(
            actor=ready.administrator,
            clinic=ready.clinic,
            lot=lot,
            quantity=4,
            kind=MovementKind.WASTAGE,
            reason="Expired in fridge",
        )
    )
    assert error.codes == ["stock_insufficient"]
    assert "Only 3 accepted (usable) unit(s)" in error.problems[0].message

    # the 3 can go, and then nothing more
    stock_write_off(
        actor=ready.administrator,
        clinic=ready.clinic,
        lot=lot,
        quantity=3,
        kind=MovementKind.WASTAGE,
        reason="Expired in fridge",
    )
    assert StockBalance.objects.get(lot=lot).quantity == 0
    error = refused(
        lambda: stock_write_off(
            actor=ready.administrator,
            clinic=ready.clinic,
            lot=lot,
            quantity=1,
            kind=MovementKind.WASTAGE,
            reason="Again",
        )
    )
    assert error.codes == ["stock_insufficient"]


def test_a_write_off_of_a_lot_never_received_is_refused(ready, lot):
    error = refused(
        lambda: stock_write_off(
            actor=ready.administrator,
            clinic=ready.clinic,
            lot=lot,
            quantity=1,
            kind=MovementKind.DESTRUCTION,
            reason="Broken",
        )
    )

    assert error.codes == ["stock_insufficient"]
    assert "Only 0" in error.problems[0].message


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"kind": MovementKind.TREATMENT}, "invalid_choice"),
        ({"kind": MovementKind.RECEIPT}, "invalid_choice"),
        ({"state": "lost"}, "invalid_choice"),
        ({"reason": ""}, "reason_required"),
        ({"quantity": 0}, "quantity_not_positive"),
    ],
)
def test_stock_write_off_refuses_bad_input(ready, lot, fields, code):
    receipt_of(ready, lot)
    arguments = {
        "actor": ready.administrator,
        "clinic": ready.clinic,
        "lot": lot,
        "quantity": 1,
        "kind": MovementKind.WASTAGE,
        "reason": "Dropped",
        **fields,
    }

    error = refused(lambda: stock_write_off(**arguments))

    assert error.codes == [code]
    assert error.status == 400


# ---------------------------------------------------------------------------------------------
# Who may move stock


@pytest.fixture
def outsiders(ready, auditor):
    """An auditor, an administrator of another clinic, and this clinic's clinician: none of them
    keeps this clinic's stock."""
    other_administrator = MembershipFactory(role=Role.CLINIC_ADMINISTRATOR).user
    return [auditor, other_administrator, ready.clinician]


def test_only_the_clinics_administrator_or_quality_may_receive(ready, lot, outsiders):
    for actor in outsiders:
        error = refused(lambda actor=actor: receipt_of(ready, lot, actor=actor))
        assert error.codes == ["role_required"]
        assert error.status == 403


def test_a_network_quality_manager_may_receive_at_any_clinic(ready, lot, quality_manager):
    receipt_of(ready, lot, actor=quality_manager)

    assert balances(lot) == {(ready.clinic.pk, StockState.ACCEPTED): 10}


def test_only_the_clinics_administrator_or_quality_may_move_stock(ready, lot, outsiders):
    receipt_of(ready, lot)
    receipt_of(ready, lot, decision=ReceiptDecision.QUARANTINE)
    destination = clinic_ready()
    for actor in outsiders:
        calls = [
            lambda actor=actor: stock_transfer(
                actor=actor,
                from_clinic=ready.clinic,
                to_clinic=destination.clinic,
                lot=lot,
                quantity=1,
                reason="x",
            ),
            lambda actor=actor: stock_write_off(
                actor=actor,
                clinic=ready.clinic,
                lot=lot,
                quantity=1,
                kind=MovementKind.WASTAGE,
                reason="x",
            ),
            lambda actor=actor: stock_quarantine_resolve(
                actor=actor, clinic=ready.clinic, lot=lot, quantity=1, accept=True, reason="x"
            ),
        ]
        for call in calls:
            assert refused(call).codes == ["role_required"]


def test_the_receiving_clinic_cannot_pull_a_transfer(ready, lot):
    receipt_of(ready, lot)
    destination = clinic_ready()

    error = refused(
        lambda: stock_transfer(
            actor=destination.administrator,
            from_clinic=ready.clinic,
            to_clinic=destination.clinic,
            lot=lot,
            quantity=1,
            reason="Helping ourselves",
        )
    )

    assert error.codes == ["role_required"]


# ---------------------------------------------------------------------------------------------
# What the database itself holds


def refused_by_trigger(write) -> None:
    with pytest.raises(ProgrammingError) as caught, transaction.atomic():
        write()
    # pgtrigger's Protect raises a PL/pgSQL exception (SQLSTATE P0001).
    assert isinstance(caught.value.__cause__, psycopg.errors.RaiseException)


def raw_delete(model, pk: int) -> None:
    # Around Django's own on_delete=PROTECT check, straight to the database.
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {model._meta.db_table} WHERE id = %s", [pk])  # noqa: S608


def test_the_ledger_is_append_only_in_the_database(ready, lot):
    receipt = receipt_of(ready, lot)
    movement = StockMovement.objects.get()

    refused_by_trigger(lambda: StockMovement.objects.filter(pk=movement.pk).update(delta=1000))
    refused_by_trigger(lambda: raw_delete(StockMovement, movement.pk))
    refused_by_trigger(lambda: Receipt.objects.filter(pk=receipt.pk).update(quantity=1))
    refused_by_trigger(lambda: raw_delete(Receipt, receipt.pk))

    assert StockMovement.objects.get().delta == 10


def test_the_database_refuses_a_negative_balance(ready, lot):
    receipt_of(ready, lot, quantity=2)

    with pytest.raises(IntegrityError) as caught, transaction.atomic():
        StockBalance.objects.filter(lot=lot).update(quantity=-1)

    assert caught.value.__cause__.diag.constraint_name == "balance_never_negative"


def test_the_ledger_check_finds_a_balance_that_disagrees(ready, lot):
    # given a balance changed around the services (which never happens through them)
    receive(ready, lot, 5)
    StockBalance.objects.filter(lot=lot).update(quantity=7)

    # then the proof names the row, the balance and the ledger's sum
    assert stock_balances_disagreeing() == [(ready.clinic.pk, lot.pk, StockState.ACCEPTED, 7, 5)]

    StockBalance.objects.filter(lot=lot).update(quantity=5)  # let the autouse check pass


# ---------------------------------------------------------------------------------------------
# Never more than was made


def test_the_network_never_receives_more_of_a_lot_than_was_made(ready, lot):
    other = clinic_ready()
    receipt_of(ready, lot, quantity=60)
    receipt_of(other, lot, quantity=30, decision="reject")  # rejected units were still shipped

    error = refused(lambda: receipt_of(other, lot, quantity=11))

    assert error.codes == ["receipt_exceeds_lot_quantity"]
    assert error.problems[0].field == "quantity"
    assert "at most 10 more" in error.problems[0].message
    receipt_of(other, lot, quantity=10)  # exactly what is left


def test_units_returned_to_the_manufacturer_can_be_shipped_again(ready, lot):
    receipt_of(ready, lot, quantity=lot.quantity)
    refused(lambda: receipt_of(ready, lot, quantity=1))
    stock_write_off(
        actor=ready.administrator,
        clinic=ready.clinic,
        lot=lot,
        quantity=5,
        kind=MovementKind.RETURN,
        reason="Wrong delivery",
    )

    receipt_of(clinic_ready(), lot, quantity=5)

    assert sum(Receipt.objects.filter(lot=lot).values_list("quantity", flat=True)) == 105
