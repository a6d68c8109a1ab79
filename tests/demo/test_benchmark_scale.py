"""`benchmark_scale` at a tiny size, every section: a smoke run that keeps the one benchmark
command from rotting. Its figures are printed and never asserted; what is asserted is that each
path is measured beside a floor, that statement counts are equal at two sizes, and that the load
lost no update."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from lots.models import Lot

pytestmark = [pytest.mark.django_db(transaction=True)]

PATHS = (
    "OPTIONS of the forward trace",
    "forward trace, typical lot",
    "backward trace, one patient",
    "full CSV stream",
    "POST /api/v1/treatments/, saturated",
    "recall_open over",
    "notice delivery",
    "build ",
)


def test_every_path_is_printed_beside_its_floor_with_equal_statement_counts(tmp_path):
    call_command(
        "scale_generate",
        treatments=3000,
        lots=30,
        patients=400,
        clinics=4,
        practitioners=12,
        stdout=io.StringIO(),
        stderr=io.StringIO(),
    )
    out = io.StringIO()
    written = tmp_path / "table.md"
    call_command(
        "benchmark_scale",
        repetitions=1,
        requests=30,
        workers=2,
        exposures=200,
        notices=10,
        generate=2000,
        out=str(written),
        stdout=out,
        stderr=io.StringIO(),
    )

    report = out.getvalue()
    assert written.read_text() == report
    rows = [line for line in report.splitlines() if line.startswith("| ") and "---" not in line]
    for path in PATHS:
        matching = [row for row in rows if path in row]
        assert matching, f"{path!r} is missing from the table"
        assert any(re.search(r"\| [\d.,]+ \S+ \(", row) for row in matching), (
            f"{path!r} is printed without a floor"
        )
    # The password check stands alone: it is what a sign-in pays, not a path with a floor.
    assert any(row.startswith("| one password check") for row in rows)
    counts = [row for row in rows if "statements:" in row]
    assert len(counts) == 3
    assert all(row.rstrip().endswith("| equal |") for row in counts), counts
    ledger = [row for row in rows if row.startswith("| after the load")]
    assert ledger and all("| 0.00 " in row for row in ledger), ledger


@pytest.mark.parametrize(
    "option", ["repetitions", "requests", "workers", "exposures", "notices", "generate"]
)
@pytest.mark.parametrize("value", [0, -1])
def test_a_size_below_one_is_refused_naming_it_before_anything_runs(option, value):
    with pytest.raises(CommandError, match=f"--{option} must be at least 1"):
        call_command("benchmark_scale", f"--{option}={value}", stdout=io.StringIO())
    assert not Lot.objects.exists()
