"""The figures every benchmark section reports, and the ways they are taken.

A path's figure means little alone on a shared two-core machine, so each is set beside its floor:
the same work done by PostgreSQL (or the bare framework) alone, measured in the same run and
interleaved repetition by repetition, so that whatever else the machine does weighs on both alike.
The ratio says how many times slower the project is than its floor; 1.0 is the floor itself.
"""

from __future__ import annotations

import json
import statistics
import time
import tracemalloc
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from django.db import connection
from django.test.utils import CaptureQueriesContext


@dataclass(frozen=True)
class Row:
    """One path's figure beside its floor.

    `unit` is what both numbers are in ("ms", "s", "rows/s", "req/s", "notices/s", "MiB");
    for rates `higher_is_better` is true and the ratio is floor / figure, for times figure / floor.
    """

    path: str
    figure: float
    unit: str
    floor: float | None = None
    floor_label: str = ""
    higher_is_better: bool = False
    statements: int | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.floor is None or self.figure <= 0 or self.floor <= 0:
            return None
        if self.higher_is_better:
            return self.floor / self.figure
        return self.figure / self.floor


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples)


def interleaved(
    work: Callable[[], object],
    floor: Callable[[], object],
    repetitions: int,
    *,
    seconds: float = 1.0,
) -> tuple[list[float], list[float]]:
    """Seconds per call of `work` and of `floor`, alternating, after one warm-up call of each:
    `repetitions` pairs at least, and more until each side has run for `seconds`, so that a path
    of a few milliseconds is the median of hundreds of calls rather than of a few (fifteen calls
    of a 3 ms trace moved its ratio by a quarter from one run to the next)."""
    work()
    floor()
    work_times: list[float] = []
    floor_times: list[float] = []
    while len(work_times) < repetitions or min(sum(work_times), sum(floor_times)) < seconds:
        work_times.append(_seconds(work))
        floor_times.append(_seconds(floor))
    return work_times, floor_times


def _seconds(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def captured_statements(call: Callable[[], object]) -> list[str]:
    """The SQL `call` sends, with its parameters bound, in order."""
    with CaptureQueriesContext(connection) as captured:
        call()
    return [query["sql"] for query in captured.captured_queries]


def replay_bare(statements: Sequence[str]) -> Callable[[], None]:
    """A call that sends `statements` again through a raw cursor and fetches every row: the floor
    of a path is its own SQL without the Python around it."""
    replayable = [sql for sql in statements if not _is_transaction_control(sql)]

    def replay() -> None:
        with connection.cursor() as cursor:
            for sql in replayable:
                cursor.execute(sql)
                if cursor.description is not None:
                    cursor.fetchall()

    return replay


def _is_transaction_control(sql: str) -> bool:
    head = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
    return head in {"SAVEPOINT", "RELEASE", "ROLLBACK", "BEGIN", "COMMIT"}


def executed_in_database_ms(statements: Iterable[str]) -> float:
    """What PostgreSQL reports spending on `statements` (EXPLAIN ANALYZE's planning and execution
    time), without the round trips and the client: the lowest floor there is. Only reads are
    explained; a write would be carried out."""
    total = 0.0
    with connection.cursor() as cursor:
        for sql in statements:
            if not sql.lstrip().upper().startswith(("SELECT", "WITH")):
                continue
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql)
            plan = cursor.fetchone()[0]
            document = json.loads(plan) if isinstance(plan, str) else plan
            total += document[0]["Planning Time"] + document[0]["Execution Time"]
    return total


def peak_python_memory_mib(call: Callable[[], object]) -> float:
    """The most memory Python held at once while `call` ran (tracemalloc), in MiB."""
    tracemalloc.start()
    try:
        call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / (1024 * 1024)


def table(rows: Sequence[Row]) -> str:
    """The rows as a Markdown table, as docs/performance.md shows them."""
    lines = [
        "| path | figure | floor, same run | ratio | statements | note |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        floor = (
            f"{_number(row.floor)} {row.unit} ({row.floor_label})" if row.floor is not None else ""
        )
        ratio = f"{row.ratio:.2f}x" if row.ratio is not None else ""
        statements = "" if row.statements is None else str(row.statements)
        lines.append(
            f"| {row.path} | {_number(row.figure)} {row.unit} | {floor} | {ratio} "
            f"| {statements} | {row.note} |"
        )
    return "\n".join(lines)


def _number(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"
