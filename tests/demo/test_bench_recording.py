"""The treatment recording benchmark section at a tiny size: a smoke run that keeps it from
rotting and checks the ledger after concurrent POSTs. Its figures are printed by
`manage.py benchmark_scale`, never asserted here."""

from __future__ import annotations

import pytest

from demo.bench import recording


@pytest.mark.django_db(transaction=True)
def test_recording_section_serves_concurrent_posts_and_loses_no_update():
    rows = recording.measure(requests=40, workers=2)

    saturated, paced, password, balance, treatments = rows
    assert saturated.unit == "req/s"
    assert saturated.higher_is_better
    assert saturated.floor is not None and saturated.ratio is not None
    assert saturated.statements is not None and saturated.statements > 0
    assert "answers other than 201: 0" in saturated.note
    assert paced.unit == "ms"
    assert paced.floor is not None and paced.ratio is not None
    assert password.unit == "ms"
    assert password.figure > 0
    # After the load the ledger agrees: what was received less what the treatments drew is what
    # the balance holds, and every 201 answer is one treatment recorded.
    assert balance.figure == 0, balance.note
    assert treatments.figure == 0, treatments.note
