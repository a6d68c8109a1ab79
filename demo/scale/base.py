"""What every phase of the load shares: the sizes, the run, the reserved ids and the progress."""

from __future__ import annotations

import datetime
import functools
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TextIO

from django.core.management.base import OutputWrapper
from django.db.backends.utils import CursorWrapper

# Lot popularity follows a power law: the lot of popularity rank r gets a share of the
# treatments proportional to r ** -POPULARITY_EXPONENT. At the default sizes (10^7 treatments
# over 10^5 lots) this gives the heaviest lot about 50,000 lines and a typical one about 60-100.
POPULARITY_EXPONENT = 0.625
# A lot goes to one clinic per this many of its treatment lines (the heaviest to every clinic).
LINES_PER_CLINIC_OF_A_LOT = 20
TREATMENTS_PER_CHUNK = 500_000

DEFAULT_TREATMENTS = 10_000_000
# Per treatment at the default sizes, to scale the others when only --treatments is given.
TREATMENTS_PER_LOT = 100
TREATMENTS_PER_PATIENT = 5
TREATMENTS_PER_CLINIC = 20_000
TREATMENTS_PER_PRACTITIONER = 2_000


@dataclass(frozen=True)
class Sizes:
    treatments: int
    lots: int
    patients: int
    clinics: int
    practitioners: int

    @classmethod
    def scaled(
        cls,
        treatments: int = DEFAULT_TREATMENTS,
        *,
        lots: int | None = None,
        patients: int | None = None,
        clinics: int | None = None,
        practitioners: int | None = None,
    ) -> Sizes:
        """The default proportions (10^7 treatments, 10^5 lots, 2*10^6 patients, 500 clinics,
        5,000 practitioners) at `treatments`, each overridable (a size given as 0 is kept, for
        `problems` to refuse, rather than taken for one not given)."""

        def given_or(value: int | None, default: int) -> int:
            return default if value is None else value

        clinics = given_or(clinics, max(1, round(treatments / TREATMENTS_PER_CLINIC)))
        return cls(
            treatments=treatments,
            lots=given_or(lots, max(1, round(treatments / TREATMENTS_PER_LOT))),
            patients=given_or(patients, max(clinics, round(treatments / TREATMENTS_PER_PATIENT))),
            clinics=clinics,
            practitioners=given_or(
                practitioners, max(1, round(treatments / TREATMENTS_PER_PRACTITIONER))
            ),
        )

    def problems(self) -> list[str]:
        found = [
            f"--{name} must be at least 1."
            for name in ("treatments", "lots", "patients", "clinics", "practitioners")
            if getattr(self, name) < 1
        ]
        if self.patients < self.clinics:
            found.append("--patients must be at least --clinics (every clinic has patients).")
        return found


class Progress:
    """A one-line text progress bar on a stream (stderr): the phase, a bar, done of total and
    the seconds the phase has taken. Redrawn at most a few times a second."""

    WIDTH = 30

    def __init__(self, stream: TextIO | OutputWrapper | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.write: Callable[[str], object] = self.stream.write
        if isinstance(stream, OutputWrapper):
            # A command's OutputWrapper ends every write with a newline unless told otherwise.
            self.write = functools.partial(stream.write, ending="")
        self.phase = ""
        self.total = 1
        self.done = 0
        self.started = time.monotonic()
        self.drawn = 0.0

    def start(self, phase: str, total: int) -> None:
        self.phase, self.total, self.done = phase, max(1, total), 0
        self.started = time.monotonic()
        self.draw(force=True)

    def advance(self, count: int = 1) -> None:
        self.done = min(self.total, self.done + count)
        self.draw(force=self.done == self.total)

    def finish(self) -> float:
        self.done = self.total
        self.draw(force=True)
        self.write("\n")
        self.stream.flush()
        return time.monotonic() - self.started

    def draw(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.drawn < 0.25:
            return
        self.drawn = now
        filled = self.WIDTH * self.done // self.total
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        self.write(
            f"\r{self.phase:<12} [{bar}] {100 * self.done // self.total:3d}% "
            f"{self.done:,}/{self.total:,} {now - self.started:6.1f} s"
        )
        self.stream.flush()


@dataclass
class Load:
    """One run of the generator inside its transaction.

    `first_ids` holds, for each table written, the first id of this run's rows: every row from
    there on is this run's (the tables are locked against other writers until commit), which
    is how the history and integrity phases find them. `now` is whole seconds, so the times in
    signed content read the same in PostgreSQL and in Python."""

    run: str
    seed: int
    sizes: Sizes
    cursor: CursorWrapper
    progress: Progress
    now: datetime.datetime
    first_ids: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    context: uuid.UUID | None = None  # the history context the run's events are attached to

    @property
    def today(self) -> datetime.date:
        return self.now.date()

    def params(self, **extra: Any) -> dict[str, Any]:
        """The parameters every statement may use, plus `extra`."""
        return {
            "run": self.run,
            "seed": self.seed,
            "now": self.now,
            "today": self.today,
            "treatments": self.sizes.treatments,
            "lots": self.sizes.lots,
            "patients": self.sizes.patients,
            "clinics": self.sizes.clinics,
            "practitioners": self.sizes.practitioners,
            **{f"{table}_first": first for table, first in self.first_ids.items()},
            **extra,
        }

    def execute(self, sql: str, **extra: Any) -> int:
        self.cursor.execute(sql, self.params(**extra))
        return int(self.cursor.rowcount)

    def value(self, sql: str, **extra: Any) -> Any:
        self.cursor.execute(sql, self.params(**extra))
        row = self.cursor.fetchone()
        return None if row is None else row[0]

    def reserve(self, table: str, count: int, key: str = "id") -> int:
        """Reserve `count` consecutive ids of `table` for this run and return the first. The
        table is locked (`lock`), so no other writer takes an id in between; the sequence is
        moved past the block at once."""
        first = int(
            self.value(
                f"""
                SELECT greatest(
                    nextval(pg_get_serial_sequence(%(table)s, %(key)s)),
                    (SELECT coalesce(max({key}), 0) + 1 FROM {table})
                )
                """,  # noqa: S608 - identifiers are ours
                table=table,
                key=key,
            )
        )
        if count > 0:
            self.execute(
                "SELECT setval(pg_get_serial_sequence(%(table)s, %(key)s), %(last)s)",
                table=table,
                key=key,
                last=first + count - 1,
            )
        self.first_ids.setdefault(table, first)
        return first

    def mark(self, table: str, key: str = "id") -> int:
        """Note where this run's rows of `table` begin when they take ids from its sequence."""
        first = int(
            self.value(f"SELECT coalesce(max({key}), 0) + 1 FROM {table}")  # noqa: S608
        )
        self.first_ids.setdefault(table, first)
        return first

    @contextmanager
    def phase(self, name: str, total: int) -> Iterator[None]:
        self.progress.start(name, total)
        yield
        self.seconds[name] = self.seconds.get(name, 0.0) + self.progress.finish()


def lock(cursor: CursorWrapper, tables: Sequence[str]) -> None:
    """Keep other writers out of the tables this run writes until it commits (readers go on):
    the run's ids are reserved blocks, and its rows are found as everything past them."""
    cursor.execute(f"LOCK TABLE {', '.join(sorted(tables))} IN SHARE ROW EXCLUSIVE MODE")


# Deterministic pseudo-random numbers in [0, 2^31) from a number and a salt: the same seed gives
# the same data set. Inlined by the planner (an immutable one-expression SQL function).
HASH_FUNCTION_SQL = """
CREATE OR REPLACE FUNCTION pg_temp.scale_hash(x bigint, salt bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT hashint8extended(x, salt) & 2147483647 $$
"""
