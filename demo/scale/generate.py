"""The load, phase by phase, in one transaction; then ANALYZE."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone

from demo.scale.base import HASH_FUNCTION_SQL, Load, Progress, Sizes, lock
from demo.scale.history import CONTEXT_TABLE, chain_append, events_create
from demo.scale.integrity import integrity_check
from demo.scale.lots import lots_create, lots_plan
from demo.scale.providers import providers_create
from demo.scale.signing import signatures_create
from demo.scale.stock import stock_create
from demo.scale.treatments import patients_create, treatments_create

# Every table the run writes rows to (locked against other writers until it commits).
WRITTEN = (
    "auth_user",
    "providers_manufacturer",
    "providers_clinic",
    "providers_practitioner",
    "providers_membership",
    "providers_clinicpractitioner",
    "providers_licence",
    "lots_product",
    "lots_donor",
    "lots_donormarkerresult",
    "lots_lot",
    "lots_lotdonor",
    "lots_lotqcresult",
    "lots_certificate",
    "lots_lotstatuschange",
    "treatments_patient",
    "treatments_treatment",
    "treatments_treatmentline",
    "treatments_adverseevent",
    "stock_receipt",
    "stock_stockmovement",
    "stock_stockbalance",
    "signatures_signature",
)


class NotAllowed(RuntimeError):
    """The database user may not switch triggers and foreign-key checks off."""


@dataclass(frozen=True)
class LotFigure:
    id: int
    lot_number: str
    lines: int


@dataclass(frozen=True)
class Summary:
    run: str
    sizes: Sizes
    rows: dict[str, int]
    heaviest: LotFigure
    typical: LotFigure
    seconds: dict[str, float]
    first_ids: dict[str, int]  # per table written, the first id (or pgh_id) of the run's rows
    analysed: list[str]  # the tables ANALYZE read again after the run


def new_run() -> str:
    """A tag for the run's names (upper case: donor codes allow no other letters)."""
    return f"{timezone.now():%Y%m%d%H%M%S}-{secrets.token_hex(2).upper()}"


def generate(*, sizes: Sizes, seed: int, progress: Progress | None = None) -> Summary:
    """Build the data set; refuse (`NotAllowed`) unless the user may set
    `session_replication_role` (a superuser, or one granted SET on it)."""
    progress = progress or Progress()
    with connection.cursor() as cursor:
        cursor.execute("SELECT has_parameter_privilege('session_replication_role', 'SET')")
        if not cursor.fetchone()[0]:
            raise NotAllowed(
                "scale_generate loads with triggers and foreign-key checks off "
                "(session_replication_role = replica), which only a PostgreSQL superuser or a "
                "user granted SET on that parameter may do; connect as one."
            )
    started = time.monotonic()
    with transaction.atomic(), connection.cursor() as cursor:
        load = Load(
            run=new_run(),
            seed=seed,
            sizes=sizes,
            cursor=cursor,
            progress=progress,
            now=timezone.now().replace(microsecond=0),
        )
        _load(load)
        heaviest, typical = _figures(load)
        rows = _rows(load)
    load.seconds["in total, before ANALYZE"] = time.monotonic() - started
    analysed = _analyze(load, rows)
    return Summary(
        load.run, sizes, rows, heaviest, typical, load.seconds, dict(load.first_ids), analysed
    )


def _load(load: Load) -> None:
    load.execute(
        """
        SET LOCAL session_replication_role = replica;
        SET LOCAL synchronous_commit = off;
        SET LOCAL work_mem = '256MB'
        """
    )
    lock(load.cursor, WRITTEN)
    load.execute(HASH_FUNCTION_SQL)
    providers_create(load)
    lots_plan(load)
    lots_create(load)
    patients_create(load)
    treatments_create(load)
    stock_create(load)
    signatures_create(load)
    event_tables = events_create(load)
    keys = {table: "id" for table in WRITTEN} | {table: "pgh_id" for table in event_tables}
    integrity_check(load, keys)
    chain_append(
        load,
        [("signatures_signature", "id"), *((table, "pgh_id") for table in event_tables)],
    )
    # The rest of an enclosing transaction (a test's) runs with triggers and checks on again.
    load.execute("SET LOCAL session_replication_role = origin")


def _figures(load: Load) -> tuple[LotFigure, LotFigure]:
    """The heaviest lot (rank 0) and a typical one (the median rank)."""
    figures = []
    for rank in (0, load.sizes.lots // 2):
        load.cursor.execute("SELECT lot_id, lot_number, n FROM scale_lot WHERE i = %s", [rank])
        lot_id, lot_number, lines = load.cursor.fetchone()
        figures.append(LotFigure(lot_id, lot_number, lines))
    return figures[0], figures[1]


def row_key(table: str) -> str:
    """The key a run's rows of `table` are counted from: history event tables number theirs
    `pgh_id`."""
    return "pgh_id" if table not in WRITTEN and table != "audit_chainlink" else "id"


def _rows(load: Load) -> dict[str, int]:
    rows = {}
    for table, first in load.first_ids.items():
        key = row_key(table)
        rows[table] = int(
            load.value(f"SELECT count(*) FROM {table} WHERE {key} >= %(first)s", first=first)  # noqa: S608
        )
    rows[CONTEXT_TABLE] = 1
    return rows


# PostgreSQL's own default for autovacuum_analyze_scale_factor.
ANALYZE_SHARE = 0.1


def _analyze(load: Load, rows: dict[str, int]) -> list[str]:
    """ANALYZE every table this run grew by a tenth or more, autovacuum's own threshold: a first
    load gets its statistics at once, and a small run into a large database does not read a
    sample of every large table again for statistics it barely moves (autovacuum keeps those)."""
    tables = [*load.first_ids, CONTEXT_TABLE]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, reltuples FROM pg_class WHERE relname = ANY(%s) AND relkind = 'r'",
            [tables],
        )
        # reltuples counts this run's rows too, once autovacuum has seen them; -1: never analysed.
        estimated = dict(cursor.fetchall())
    grown = [
        table
        for table in tables
        if estimated.get(table, -1) <= 0
        or rows.get(table, 0) >= ANALYZE_SHARE * (estimated[table] - rows.get(table, 0))
    ]
    with load.phase("analyze", len(grown)), connection.cursor() as cursor:
        for table in grown:
            cursor.execute(f"ANALYZE {table}")
            load.progress.advance()
    return grown
