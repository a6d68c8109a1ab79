"""DESIGN rule 3, proved with real threads: stock never goes negative under concurrent requests
and no update is lost.

Each thread has its own database connection (Django keeps one per thread) and its own
transaction; a barrier releases them together so the requests really overlap. These tests commit
for real, hence `transaction=True` and the `reference_data` fixture (the flush between
transactional tests empties the seeded tables)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import connection, transaction

from common.errors import DomainError
from stock.models import MovementKind, StockBalance, StockMovement, StockState
from stock.selectors import stock_balances_disagreeing
from stock.services import (
    stock_quarantine_resolve,
    stock_receive,
    stock_transfer,
    stock_write_off,
)
from tests.factories import clinic_ready, receive, released_lot, treat
from treatments.models import Treatment, TreatmentLine

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("reference_data"),
]

TIMEOUT = 20  # seconds; far above what the tests take, so a hang fails instead of blocking


@dataclass
class Outcome:
    result: Any = None
    refused: DomainError | None = None
    error: BaseException | None = None


def run_together(calls: list[Callable[[], Any]], *, released: Callable[[], None] | None = None):
    """Run every call in its own thread, all started at once by a barrier. `released`, when
    given, runs in the calling thread once every call has been let go (see the gated test)."""
    barrier = threading.Barrier(len(calls) + 1)
    outcomes = [Outcome() for _ in calls]

    def work(index: int, call: Callable[[], Any]) -> None:
        try:
            connection.ensure_connection()  # connect before the barrier: overlap the work itself
            barrier.wait(timeout=TIMEOUT)
            outcomes[index].result = call()
        except DomainError as refusal:
            outcomes[index].refused = refusal
        except BaseException as error:
            outcomes[index].error = error
        finally:
            connection.close()

    threads = [
        threading.Thread(target=work, args=(index, call), daemon=True)
        for index, call in enumerate(calls)
    ]
    for thread in threads:
        thread.start()
    barrier.wait(timeout=TIMEOUT)
    if released is not None:
        released()
    for thread in threads:
        thread.join(timeout=TIMEOUT)
    assert not any(thread.is_alive() for thread in threads), "a request hung"
    errors = [outcome.error for outcome in outcomes if outcome.error is not None]
    assert errors == [], errors
    return outcomes


def accepted(ready, lot) -> int:
    return StockBalance.objects.get(
        clinic=ready.clinic, lot=lot, state=StockState.ACCEPTED
    ).quantity


def backends_waiting_for_a_lock() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def test_forty_concurrent_treatments_draw_exactly_the_twenty_units_in_stock():
    # given 20 accepted units of a released lot at a clinic
    ready = clinic_ready()
    lot = released_lot()
    receive(ready, lot, 20)

    # and a gate: another transaction holds the balance row locked, so that every request
    # passes the up-front checks (which all read 20 units) and then queues at the conditional
    # UPDATE; only that UPDATE can keep the count right
    locked, opened = threading.Event(), threading.Event()

    def hold_the_balance_row() -> None:
        try:
            with transaction.atomic():
                StockBalance.objects.select_for_update().get(clinic=ready.clinic, lot=lot)
                locked.set()
                opened.wait(timeout=TIMEOUT)
        finally:
            connection.close()

    gate = threading.Thread(target=hold_the_balance_row, daemon=True)
    gate.start()
    assert locked.wait(timeout=TIMEOUT)
    waiting: list[int] = []

    def open_when_all_are_waiting() -> None:
        deadline = time.monotonic() + TIMEOUT
        while backends_waiting_for_a_lock() < 40 and time.monotonic() < deadline:
            time.sleep(0.02)
        waiting.append(backends_waiting_for_a_lock())
        opened.set()

    # when 40 treatments of one unit each are recorded at the same moment
    outcomes = run_together(
        [lambda: treat(ready, lot, 1) for _ in range(40)], released=open_when_all_are_waiting
    )
    gate.join(timeout=TIMEOUT)

    # then all 40 overlapped, 20 were recorded and 20 refused as out of stock by the
    # conditional UPDATE, and nothing else went wrong (no deadlock, no other error)
    assert waiting == [40]
    recorded = [outcome.result for outcome in outcomes if outcome.result is not None]
    refusals = [outcome.refused for outcome in outcomes if outcome.refused is not None]
    assert len(recorded) == 20
    assert [refusal.codes for refusal in refusals] == [["stock_insufficient"]] * 20
    assert all(refusal.problems[0].message.endswith("1 needed.") for refusal in refusals)
    # the balance reached zero and not below, and the ledger agrees with it
    assert accepted(ready, lot) == 0
    assert stock_balances_disagreeing() == []
    # a refused treatment left nothing behind
    assert Treatment.objects.count() == 20
    assert TreatmentLine.objects.count() == 20
    assert StockMovement.objects.filter(kind=MovementKind.TREATMENT).count() == 20


def test_forty_concurrent_write_offs_never_take_more_than_is_there():
    # given 20 accepted units
    ready = clinic_ready()
    lot = released_lot()
    receive(ready, lot, 20)

    # when 40 write-offs of one unit each run at once
    outcomes = run_together(
        [
            lambda: stock_write_off(
                actor=ready.administrator,
                clinic=ready.clinic,
                lot=lot,
                quantity=1,
                kind=MovementKind.WASTAGE,
                reason="Vial dropped",
            )
            for _ in range(40)
        ]
    )

    # then exactly 20 succeeded, 20 were refused, and the ledger still adds up to zero
    assert sum(outcome.result is not None for outcome in outcomes) == 20
    assert Counter(
        tuple(outcome.refused.codes) for outcome in outcomes if outcome.refused is not None
    ) == {("stock_insufficient",): 20}
    assert accepted(ready, lot) == 0
    assert StockMovement.objects.filter(kind=MovementKind.WASTAGE).count() == 20
    assert stock_balances_disagreeing() == []


def test_concurrent_receipts_transfers_write_offs_and_treatments_lose_no_update():
    # given a lot of 300 with 100 accepted units at clinic A, and 50 accepted and 20 quarantined
    # at B
    a, b = clinic_ready(), clinic_ready()
    lot = released_lot(quantity=300)
    receive(a, lot, 100)
    receive(b, lot, 50)
    receive(b, lot, 20, decision="quarantine")

    def receipt_at_a():
        product = lot.product
        return stock_receive(
            actor=a.administrator,
            clinic=a.clinic,
            lot=lot,
            quantity=5,
            decision="accept",
            package_intact=True,
            label_readable=True,
            transport_min_celsius=product.storage_min_celsius,
            transport_max_celsius=product.storage_max_celsius,
            storage_location="Freezer 1",
        )

    def transfer(source, destination, quantity):
        return lambda: stock_transfer(
            actor=source.administrator,
            from_clinic=source.clinic,
            to_clinic=destination.clinic,
            lot=lot,
            quantity=quantity,
            reason="Stock balancing",
        )

    def write_off_at_a():
        return stock_write_off(
            actor=a.administrator,
            clinic=a.clinic,
            lot=lot,
            quantity=2,
            kind=MovementKind.WASTAGE,
            reason="Vial dropped",
        )

    def accept_quarantine_at_b():
        return stock_quarantine_resolve(
            actor=b.administrator,
            clinic=b.clinic,
            lot=lot,
            quantity=2,
            accept=True,
            reason="Logger data within range",
        )

    # when, all at once and 8 times each: A receives 5, A sends 3 to B, B sends 1 to A, A writes
    # off 2, B accepts 2 out of quarantine, and A treats with 1 (every order leaves enough stock
    # for each request, so each must succeed)
    kinds = [
        receipt_at_a,
        transfer(a, b, 3),
        transfer(b, a, 1),
        write_off_at_a,
        accept_quarantine_at_b,
        lambda: treat(a, lot, 1),
    ]
    calls = [kind for kind in kinds for _ in range(8)]
    outcomes = run_together(calls)

    # then every request succeeded, and each balance is exactly the arithmetic of them all
    assert [outcome.refused for outcome in outcomes if outcome.refused] == []
    balances = {
        (row.clinic_id, row.state): row.quantity for row in StockBalance.objects.filter(lot=lot)
    }
    assert balances == {
        (a.clinic.pk, StockState.ACCEPTED): 100 + 8 * 5 - 8 * 3 - 8 * 2 - 8 * 1,
        (a.clinic.pk, StockState.QUARANTINED): 8 * 1,
        (b.clinic.pk, StockState.ACCEPTED): 50 - 8 * 1 + 8 * 2,
        (b.clinic.pk, StockState.QUARANTINED): 20 + 8 * 3 - 8 * 2,
    }
    assert stock_balances_disagreeing() == []


def test_twenty_clinics_receiving_the_last_ten_units_at_once_receive_exactly_ten():
    lot = released_lot(quantity=10)
    clinics = [clinic_ready() for _ in range(20)]

    outcomes = run_together([lambda ready=ready: receive(ready, lot, 1) for ready in clinics])

    received = [outcome for outcome in outcomes if outcome.result is not None]
    refused = [outcome.refused for outcome in outcomes if outcome.refused is not None]
    assert len(received) == 10 and len(refused) == 10
    assert {code for refusal in refused for code in refusal.codes} == {
        "receipt_exceeds_lot_quantity"
    }
    assert sum(StockBalance.objects.filter(lot=lot).values_list("quantity", flat=True)) == 10
    assert stock_balances_disagreeing() == []
