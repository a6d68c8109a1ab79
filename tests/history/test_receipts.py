"""Importing past receipts: the live receiving rules on each row's own date, then treatments that
draw on them (history is imported receipts first, then treatments)."""

from __future__ import annotations

import pytest

from history.services import history_import
from lots.models import LotStatus
from stock.models import MovementKind, Receipt, StockBalance, StockMovement, StockState
from stock.selectors import stock_balances_disagreeing
from tests.factories import released_lot
from tests.history.conftest import DAY, check_statements, csv_bytes, days_ago, treatment_row
from treatments.models import Treatment

pytestmark = pytest.mark.django_db


def receipt_row(lot, **cells):
    row = {
        "lot_number": lot.lot_number,
        "quantity": 10,
        "decision": "accept",
        "received_at": days_ago(300).isoformat(),
        "package_intact": "yes",
        "label_readable": "yes",
        "transport_min_celsius": "-75",
        "transport_max_celsius": "-65",
        "storage_location": "Freezer 2",
        "delivery_note": "DN-4711",
    }
    row.update(cells)
    return row


def run(ready, kind, rows, **options):
    return history_import(
        actor=ready.administrator,
        clinic=ready.clinic,
        kind=kind,
        data=csv_bytes(rows),
        **options,
    )


def places(outcome):
    return [(p.line, p.column, p.code) for p in outcome.problems]


@pytest.fixture
def old_lot(ready):
    """Made two years ago, expired last month, released, none of it received yet."""
    from django.utils import timezone

    today = timezone.now().date()
    return released_lot(manufactured_on=today - 730 * DAY, expires_on=today - 30 * DAY)


def test_receipts_are_written_with_their_ledger_lines_and_balances(ready, old_lot):
    rows = [
        receipt_row(old_lot, quantity=10),
        receipt_row(old_lot, quantity=4, decision="quarantine", package_intact="no"),
        receipt_row(old_lot, quantity=2, decision="reject", transport_max_celsius="5"),
    ]
    outcome = run(ready, "receipts", rows)
    assert outcome.problems == [] and outcome.written == 3
    receipt = Receipt.objects.get(decision="accept")
    assert receipt.received_by == ready.administrator and receipt.notes == "DN-4711"
    movement = receipt.movements.get()
    assert (movement.kind, movement.delta, movement.occurred_at) == (
        MovementKind.RECEIPT,
        10,
        receipt.received_at,
    )
    balances = dict(
        StockBalance.objects.filter(clinic=ready.clinic, lot=old_lot).values_list(
            "state", "quantity"
        )
    )
    assert balances == {
        StockState.ACCEPTED: 10,
        StockState.QUARANTINED: 4,
        StockState.REJECTED: 2,
    }
    assert stock_balances_disagreeing() == []


def test_an_accepted_receipt_must_pass_every_check_at_the_door(ready, old_lot):
    outcome = run(
        ready,
        "receipts",
        [receipt_row(old_lot, package_intact="no", label_readable="no", transport_max_celsius="4")],
    )
    assert places(outcome) == [
        (2, "label_readable", "receipt_label_unreadable"),
        (2, "package_intact", "receipt_package_damaged"),
        (2, "transport_max_celsius", "receipt_temperature_excursion"),
    ]


def test_a_receipt_before_the_lot_was_made_or_ahead_of_time_is_refused(ready, old_lot):
    outcome = run(
        ready,
        "receipts",
        [
            receipt_row(old_lot, received_at=days_ago(800).isoformat()),
            receipt_row(old_lot, received_at=days_ago(-2).isoformat()),
        ],
    )
    assert places(outcome) == [
        (2, "received_at", "receipt_before_lot_made"),
        (3, "received_at", "receipt_in_future"),
    ]


def test_the_file_may_not_receive_more_than_was_made_counting_its_own_rows(ready, old_lot):
    old_lot.quantity = 25
    old_lot.save()
    rows = [receipt_row(old_lot, quantity=10) for _n in range(3)]
    assert places(run(ready, "receipts", rows)) == [(4, "quantity", "receipt_exceeds_lot_quantity")]


def test_a_rejected_or_recalled_lot_is_received_only_as_rejected(ready, old_lot):
    old_lot.status = LotStatus.RECALLED
    old_lot.save()
    rows = [receipt_row(old_lot), receipt_row(old_lot, decision="reject")]
    assert places(run(ready, "receipts", rows)) == [(2, "lot", "lot_not_receivable")]


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        ({"package_intact": "maybe"}, ("package_intact", "invalid")),
        ({"transport_min_celsius": "cold"}, ("transport_min_celsius", "invalid")),
        ({"transport_min_celsius": "NaN"}, ("transport_min_celsius", "invalid")),
        (
            {"transport_min_celsius": "-60", "transport_max_celsius": "-70"},
            ("transport_max_celsius", "transport_range_reversed"),
        ),
        ({"decision": "keep"}, ("decision", "invalid_choice")),
        ({"quantity": "-3"}, ("quantity", "units_not_positive")),
        ({"storage_location": ""}, ("storage_location", "required")),
    ],
)
def test_a_receipt_cell_that_is_not_what_its_column_holds_is_named(ready, old_lot, cells, expected):
    assert places(run(ready, "receipts", [receipt_row(old_lot, **cells)])) == [(2, *expected)]


def test_treatments_draw_on_the_receipts_imported_before_them(ready, old_lot):
    assert run(ready, "receipts", [receipt_row(old_lot, quantity=5)]).problems == []
    treatments = [
        treatment_row(ready, old_lot, patient=f"EMR-{n}", performed_at=days_ago(250).isoformat())
        for n in range(6)
    ]
    outcome = run(ready, "treatments", treatments)
    assert places(outcome) == [(7, "units", "stock_insufficient")]
    assert run(ready, "treatments", treatments[:5]).problems == []
    assert Treatment.objects.count() == 5
    assert StockMovement.objects.filter(lot=old_lot, kind=MovementKind.TREATMENT).count() == 5
    assert stock_balances_disagreeing() == []


def test_the_check_reads_a_fixed_number_of_statements_whatever_the_files_length(ready):
    """Whatever its rows and lots; the write is a few statements per 2,000 rows and per lot."""
    from django.utils import timezone

    today = timezone.now().date()
    lots = [
        released_lot(manufactured_on=today - 730 * DAY, expires_on=today - 30 * DAY)
        for _n in range(8)
    ]

    def statements(count: int) -> int:
        rows = [receipt_row(lots[n % count], quantity=1) for n in range(count * 3)]
        return check_statements(
            lambda progress: history_import(
                actor=ready.administrator,
                clinic=ready.clinic,
                kind="receipts",
                data=csv_bytes(rows),
                dry_run=True,
                progress=progress,
            )
        )

    assert statements(2) == statements(8)
