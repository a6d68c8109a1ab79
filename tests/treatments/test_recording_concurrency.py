"""Treatments of several lines drawn at once, their lots named in opposite orders: the balances'
rows are locked in one order by one statement, so no two requests deadlock, and the stock is
drawn exactly (DESIGN rule 3)."""

from __future__ import annotations

import pytest

from stock.models import StockBalance, StockState
from stock.selectors import stock_balances_disagreeing
from tests.factories import clinic_ready, receive, released_lot, treat
from tests.stock.test_concurrency import run_together
from treatments.models import Treatment, TreatmentLine

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("reference_data"),
]


def test_twenty_concurrent_two_lot_treatments_in_opposite_orders_draw_exactly_the_stock():
    # given 10 accepted units of each of two lots at a clinic
    ready = clinic_ready()
    first, second = released_lot(), released_lot()
    receive(ready, first, 10)
    receive(ready, second, 10)

    # when 20 treatments of one unit of each lot are recorded at once, half naming the lots in
    # one order and half in the other
    outcomes = run_together(
        [
            lambda lots=lots: treat(ready, lots, 1)
            for lots in [[first, second], [second, first]] * 10
        ]
    )

    # then 10 were recorded, the other 10 refused for want of stock, none deadlocked (an error
    # would have failed run_together)
    recorded = [outcome.result for outcome in outcomes if outcome.result is not None]
    refusals = [outcome.refused for outcome in outcomes if outcome.refused is not None]
    assert len(recorded) == 10
    assert len(refusals) == 10
    assert all(set(refusal.codes) == {"stock_insufficient"} for refusal in refusals)
    # and both balances reached zero, not below, agreeing with the ledger
    balances = StockBalance.objects.filter(clinic=ready.clinic, state=StockState.ACCEPTED)
    assert sorted(balances.values_list("quantity", flat=True)) == [0, 0]
    assert stock_balances_disagreeing() == []
    assert Treatment.objects.count() == 10
    assert TreatmentLine.objects.count() == 20
