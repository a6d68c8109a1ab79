"""DESIGN rule 4 under load: a recall opened while treatments with its lot are being recorded.
Every treatment either happened before the recall, and is then among its frozen exposures, or is
refused; none slips through, nothing deadlocks, and the ledger agrees. Real threads, each with its
own connection and transaction, released together by a barrier."""

from __future__ import annotations

from collections import Counter

import pytest

from recalls.models import Recall, RecallExposure
from stock.models import StockBalance, StockState
from stock.selectors import stock_balances_disagreeing
from tests.factories import clinic_ready, receive, released_lot, treat
from tests.recalls.conftest import open_recall
from tests.stock.test_concurrency import run_together
from treatments.models import TreatmentLine

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("reference_data"),
]


@pytest.mark.parametrize("attempt", range(3))
def test_a_recall_opened_amid_treatments_freezes_every_one_that_happened(quality_manager, attempt):
    lot = released_lot()
    a, b = clinic_ready(), clinic_ready()
    receive(a, lot, 30)
    receive(b, lot, 30)
    calls = [lambda ready=ready: treat(ready, lot, 1) for ready in (a, b) * 12]
    calls.insert(len(calls) // 2, lambda: open_recall(quality_manager, lot))

    outcomes = run_together(calls)

    recall = Recall.objects.get()
    treated = set(TreatmentLine.objects.filter(lot=lot).values_list("pk", flat=True))
    frozen = set(
        RecallExposure.objects.filter(recall=recall).values_list("treatment_line_id", flat=True)
    )
    assert treated == frozen  # no treatment with the lot escapes the recall
    refusals = Counter(
        code for outcome in outcomes if outcome.refused for code in outcome.refused.codes
    )
    assert set(refusals) <= {"lot_recalled", "stock_insufficient"}
    assert len(treated) + sum(1 for outcome in outcomes if outcome.refused) == 24
    balances = {
        (row.clinic_id, row.state): row.quantity
        for row in StockBalance.objects.filter(lot=lot, quantity__gt=0)
    }
    assert {state for _, state in balances} <= {StockState.BLOCKED}
    assert sum(balances.values()) == 60 - len(treated)
    assert stock_balances_disagreeing() == []
