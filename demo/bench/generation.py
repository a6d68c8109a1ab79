"""Building data with `scale_generate`, beside PostgreSQL copying the very same rows.

The generator runs at the size asked (its rows stay: run it against a database kept for
benchmarks). The floor is what PostgreSQL needs to write the rows the run wrote, every table
included (history events and audit chain links too): each table's new rows copied by one
INSERT ... SELECT into a temporary table with the same columns, defaults, constraints and indexes,
in a transaction rolled back afterwards. The copies carry no triggers and no foreign keys, as the
generator's load runs with them off and proves the keys itself, so the ratio is the generator's
own work: the SQL that makes the rows up, the history and chain it computes, the key checks.
"""

from __future__ import annotations

import resource
import time

from django.db import connection, transaction

from demo.bench.report import Row
from demo.scale.base import Sizes
from demo.scale.generate import generate, row_key


class _Rollback(Exception):
    pass


def measure(*, treatments: int) -> list[Row]:
    sizes = Sizes.scaled(treatments)
    started = time.perf_counter()
    summary = generate(sizes=sizes, seed=treatments)
    seconds = time.perf_counter() - started
    rows = sum(summary.rows.values())
    floor = _copy_seconds(summary.first_ids)
    resident_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    label = f"build {sizes.treatments:,} treatments ({rows:,} rows in {len(summary.rows)} tables)"
    return [
        Row(
            label,
            seconds,
            "s",
            floor=floor,
            floor_label="the same rows copied by INSERT ... SELECT, same indexes, no triggers",
            note=f"{rows / seconds:,.0f} rows/s; peak resident memory {resident_mib:,.0f} MiB",
        )
    ]


def _copy_seconds(first_ids: dict[str, int]) -> float:
    """Seconds PostgreSQL takes to write again every row the run wrote, table by table."""
    elapsed = 0.0
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            for number, (table, first) in enumerate(first_ids.items()):
                copy = f"bench_copy_{number}"
                cursor.execute(
                    f"CREATE TEMP TABLE {copy} (LIKE {table} INCLUDING DEFAULTS "
                    "INCLUDING CONSTRAINTS INCLUDING INDEXES)"
                )
                started = time.perf_counter()
                cursor.execute(
                    f"INSERT INTO {copy} SELECT * FROM {table} WHERE {row_key(table)} >= %s",  # noqa: S608 - names are the generator's
                    [first],
                )
                elapsed += time.perf_counter() - started
            raise _Rollback
    except _Rollback:
        pass
    return elapsed
