"""stock.services.balances_take: units taken from one or several balances in one statement, run
alone or as WITH queries of a caller's own statement (a treatment's lines and movements). For
every combination of what is asked and what is there, every balance is decremented by what was
asked, or the take is refused with `stock_insufficient` at the first short balance in the order
the rows are locked, and the caller's transaction, rolled back, leaves every balance as it was."""

from __future__ import annotations

import itertools

import pytest
from django.db import connection, transaction

from common.errors import DomainError
from stock.models import MovementKind, StockBalance, StockState
from stock.services import Change, balances_move, balances_take
from tests.factories import clinic_ready, receive, released_lot

pytestmark = pytest.mark.django_db

HELD = 5


class Kept(Exception):
    """Raised to roll a take back once its outcome has been read."""


@pytest.fixture
def stocked():
    """A clinic holding HELD accepted units of each of three lots."""
    ready = clinic_ready()
    lots = [released_lot() for _ in range(3)]
    for lot in lots:
        receive(ready, lot, HELD)
    return ready.clinic.pk, [lot.pk for lot in lots]


def _changes(clinic_id: int, lot_ids: list[int], asked: tuple[int, ...]) -> list[Change]:
    # Given in the reverse of the lock order, as a caller may list them.
    return [
        Change(clinic_id, lot_id, StockState.ACCEPTED, -units, MovementKind.TREATMENT)
        for lot_id, units in reversed(list(zip(lot_ids, asked, strict=True)))
    ]


def _accepted(clinic_id: int, lot_ids: list[int]) -> list[int]:
    quantities = dict(
        StockBalance.objects.filter(
            clinic_id=clinic_id, lot_id__in=lot_ids, state=StockState.ACCEPTED
        ).values_list("lot_id", "quantity")
    )
    return [quantities.get(lot_id, 0) for lot_id in lot_ids]


def _outcome(
    take_it, clinic_id: int, lot_ids: list[int]
) -> tuple[list[int] | None, DomainError | None]:
    """Run `take_it` in a transaction of its own, read the balances it left, roll it back."""
    seen: list[int] | None = None
    refused: DomainError | None = None
    try:
        with transaction.atomic():
            take_it()
            seen = _accepted(clinic_id, lot_ids)
            raise Kept
    except Kept:
        pass
    except DomainError as error:
        refused = error
    return seen, refused


def _expect(asked: tuple[int, ...], lot_ids: list[int], seen, refused) -> None:
    short = [
        (lot_id, units)
        for lot_id, units in sorted(zip(lot_ids, asked, strict=True))
        if units > HELD
    ]
    if not short:
        assert refused is None
        assert seen == [HELD - units for units in asked]
        return
    assert seen is None
    assert refused is not None
    assert refused.codes == ["stock_insufficient"]
    assert refused.problems[0].field == "quantity"
    # The first short balance in lock order (clinic, lot, state) is the one named.
    assert f"{short[0][1]} needed" in refused.problems[0].message


# Per lot: one unit, exactly what is held, or more than held by an amount of its own, so that a
# refusal shows which short balance it names.
ASKED = list(itertools.product(*([1, HELD, HELD + 1 + position] for position in range(3))))


@pytest.mark.parametrize("asked", ASKED)
def test_a_take_run_alone_takes_every_balance_or_none(stocked, asked):
    clinic_id, lot_ids = stocked
    seen, refused = _outcome(
        lambda: balances_take(_changes(clinic_id, lot_ids, asked)).run(), clinic_id, lot_ids
    )
    _expect(asked, lot_ids, seen, refused)
    assert _accepted(clinic_id, lot_ids) == [HELD] * 3


@pytest.mark.parametrize("asked", ASKED)
def test_a_take_inside_a_callers_statement_takes_every_balance_or_none(stocked, asked):
    clinic_id, lot_ids = stocked

    def take_it() -> None:
        take = balances_take(_changes(clinic_id, lot_ids, asked))
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH {take.sql}, other AS (SELECT 1 AS one) "  # noqa: S608 - our SQL
                "SELECT ARRAY(SELECT ordinal FROM taken), (SELECT one FROM other)",
                take.params,
            )
            (taken, _one) = cursor.fetchone()
        take.check(taken)

    seen, refused = _outcome(take_it, clinic_id, lot_ids)
    _expect(asked, lot_ids, seen, refused)
    assert _accepted(clinic_id, lot_ids) == [HELD] * 3


@pytest.mark.parametrize("units", [1, HELD, HELD + 1])
def test_balances_move_takes_a_single_balance_as_a_take_of_one(stocked, units):
    clinic_id, lot_ids = stocked
    seen, refused = _outcome(
        lambda: balances_move(_changes(clinic_id, lot_ids[:1], (units,))), clinic_id, lot_ids
    )
    _expect((units, 0, 0), lot_ids, seen, refused)


def test_a_take_of_a_balance_the_clinic_never_held_is_refused(stocked):
    _clinic_id, lot_ids = stocked
    elsewhere = clinic_ready().clinic.pk
    seen, refused = _outcome(
        lambda: balances_take(_changes(elsewhere, lot_ids[:1], (1,))).run(), elsewhere, lot_ids
    )
    assert seen is None
    assert refused is not None
    assert refused.codes == ["stock_insufficient"]
    assert "Only 0 " in refused.problems[0].message


@pytest.mark.parametrize(
    "deltas", [[], [1], [-1, 0], [-1, 2]], ids=["none", "positive", "zero", "mixed"]
)
def test_a_take_is_only_of_units_taken(stocked, deltas):
    clinic_id, lot_ids = stocked
    changes = [
        Change(clinic_id, lot_id, StockState.ACCEPTED, delta, MovementKind.TREATMENT)
        for lot_id, delta in zip(lot_ids, deltas, strict=False)
    ]
    with pytest.raises(ValueError, match="each negative"):
        balances_take(changes)
