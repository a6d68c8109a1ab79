"""The audit trail as a hash chain (DESIGN rule 7: tamper-evident), kept by PostgreSQL itself.

Every row of audit evidence (each pghistory event table, `pghistory_context`, which holds the who
and the why of each event, `audit_contactdataread` and, where installed, the electronic signatures
of `signatures_signature`) is a link of one chain in `audit_chainlink`::

    content digest = sha256(table || "\\n" || primary key || "\\n" || to_jsonb(row)::text)
    link           = sha256(link before || content digest)      (32 zero bytes before the first)

The links are written by a trigger on each of those tables, so no code path (service, admin,
shell, raw SQL) writes evidence without its link. The trigger is a deferred constraint trigger:
it runs at COMMIT, where each transaction takes the chain's head row (`audit_chainhead`) for the
rest of its commit, reads the last link and appends its own. Appends are serialised, so
concurrent writers never fork the chain, but only for the length of a commit, never for a whole
request. Under REPEATABLE READ a writer that lost the race for the head gets a serialization
failure (answered as 503 retry), never a fork. (`SET CONSTRAINTS ALL IMMEDIATE` makes the trigger
run at each insert instead, holding the head from then on; Django's TestCase does so at the end of
each test, which is rolled back.)

A pghistory context is updated while a request adds to it: each version is a link, and the last
version of each context must match the row as it stands. The chain table refuses UPDATE and
DELETE; TRUNCATE only empties it together with every audited table at once (Django's test flush).

New event tables get their trigger from `chain_install`, which the post_migrate handler runs after
every `migrate` (and the migration ran once): it enumerates the tables from the catalogue (every
table with pghistory's pgh_id, pgh_created_at and pgh_label columns), so a model tracked later is
chained without anyone remembering it; rows such a table held before its trigger are appended.

`audit_verify` (the management command) recomputes the chain with `chain_verify`.
"""

from __future__ import annotations

import datetime
import hashlib
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from django.apps import apps
from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper

CHAIN_TABLE = "audit_chainlink"
HEAD_TABLE = "audit_chainhead"
TRIGGER_NAME = "audit_chain"
TRUNCATE_TRIGGER_NAME = "audit_chain_truncate"
GENESIS = bytes(32)

# Audit evidence that is not a pghistory event table: table -> (primary key, time column, chained
# operations).
OTHER_TABLES: dict[str, tuple[str, str, str]] = {
    "pghistory_context": ("id", "created_at", "INSERT OR UPDATE"),
    "audit_contactdataread": ("id", "at", "INSERT"),
    # Electronic signatures, where the signatures app is installed.
    "signatures_signature": ("id", "signed_at", "INSERT"),
    # The columns each audited table had (below): what a link's digest covered is evidence too.
    "audit_chainschema": ("id", "recorded_at", "INSERT"),
}
SCHEMA_TABLE = "audit_chainschema"
EVENT_COLUMNS = ("pgh_id", "pgh_created_at", "pgh_label")
INTEGER_TYPES = ("smallint", "integer", "bigint")

# What audit_row_digest computes, for the verifier to compute inline under VERIFY_SETTINGS (a
# function with SET clauses costs a settings save and restore on every row: half the run).
CANONICAL_DIGEST = (
    "sha256(convert_to(%s || E'\\n' || {key}::text || E'\\n' || to_jsonb({row})::text, 'UTF8'))"
)
VERIFY_SETTINGS = (
    "SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'; "
    "SET LOCAL IntervalStyle = 'iso_8601'; SET LOCAL extra_float_digits = 1; "
    "SET LOCAL bytea_output = 'hex'"
)

# The canonical text of a row: jsonb sorts keys; the settings make its rendering of times, numbers
# and bytes independent of the session that writes or verifies it.
FUNCTIONS_SQL = r"""
CREATE OR REPLACE FUNCTION audit_row_digest(p_table text, p_id text, p_row anyelement)
RETURNS bytea LANGUAGE sql STABLE
SET TimeZone = 'UTC' SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'iso_8601'
SET extra_float_digits = 1 SET bytea_output = 'hex'
AS $$
    SELECT sha256(convert_to(p_table || E'\n' || p_id || E'\n' || to_jsonb(p_row)::text, 'UTF8'))
$$;

-- The last link, found through the primary key whatever the table's statistics say (a plan made
-- when the chain was small would otherwise scan it whole). PL/pgSQL keeps the plan for the
-- session, where a SQL function with a SET clause is planned again at every call.
CREATE OR REPLACE FUNCTION audit_chain_last_link() RETURNS bytea LANGUAGE plpgsql VOLATILE
SET enable_seqscan = off
AS $$
BEGIN
    RETURN (SELECT link FROM audit_chainlink ORDER BY id DESC LIMIT 1);
END;
$$;

CREATE OR REPLACE FUNCTION audit_chain_append(p_table text, p_id text, p_digest bytea)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_xact text := txid_current()::text;
    v_previous bytea;
    v_link bytea;
BEGIN
    -- Take the head row once per transaction and keep it until the transaction ends: appends
    -- are serialised, so the last link read here stays the last but for our own. The head is
    -- updated once per transaction (not once per link: a row updated thousands of times in one
    -- transaction grows a version chain each update must walk). The transaction's last link is
    -- then kept in a transaction-local setting, undone with a rolled-back savepoint like the
    -- links themselves.
    IF current_setting('audit.chain_xact', true) IS DISTINCT FROM v_xact THEN
        UPDATE audit_chainhead SET xact = v_xact::bigint WHERE id = 1;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'audit chain head row is missing';
        END IF;
        v_previous := coalesce(audit_chain_last_link(), decode(repeat('00', 32), 'hex'));
        PERFORM set_config('audit.chain_xact', v_xact, true);
    ELSE
        v_previous := decode(current_setting('audit.chain_last'), 'hex');
    END IF;
    v_link := sha256(v_previous || p_digest);
    INSERT INTO audit_chainlink (table_name, row_id, content_digest, link, recorded_at)
    VALUES (p_table, p_id, p_digest, v_link, clock_timestamp());
    PERFORM set_config('audit.chain_last', encode(v_link, 'hex'), true);
END;
$$;

-- audit_row_digest's text, computed here under the same settings from the row's JSON built once
-- (for its key and its digest): a SQL function with SET clauses is planned again at every call.
CREATE OR REPLACE FUNCTION audit_chain_trigger() RETURNS trigger LANGUAGE plpgsql
SET TimeZone = 'UTC' SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'iso_8601'
SET extra_float_digits = 1 SET bytea_output = 'hex'
AS $$
DECLARE
    v_row jsonb := to_jsonb(NEW);
    v_id text := v_row ->> TG_ARGV[0];
BEGIN
    PERFORM audit_chain_append(
        TG_TABLE_NAME,
        v_id,
        sha256(convert_to(TG_TABLE_NAME::text || E'\n' || v_id || E'\n' || v_row::text, 'UTF8'))
    );
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION audit_chain_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit chain is append-only: % on % refused', TG_OP, TG_TABLE_NAME;
END;
$$;

-- A TRUNCATE of the chain or of an audited table goes through only when, once it is done, the
-- chain and every audited table are all empty: the whole history at once (a test flush), never
-- a part of it.
CREATE OR REPLACE FUNCTION audit_chain_truncate_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_table text;
    v_rows boolean;
BEGIN
    IF EXISTS (SELECT 1 FROM audit_chainlink) THEN
        RAISE EXCEPTION 'TRUNCATE of % refused: the audit chain holds its history', TG_TABLE_NAME;
    END IF;
    FOR v_table IN
        SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        WHERE t.tgname = 'audit_chain'
    LOOP
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I)', v_table) INTO v_rows;
        IF v_rows THEN
            RAISE EXCEPTION 'TRUNCATE of % refused: % still holds audited rows',
                TG_TABLE_NAME, v_table;
        END IF;
    END LOOP;
    RETURN NULL;
END;
$$;
"""

HEAD_SQL = """
CREATE TABLE IF NOT EXISTS audit_chainhead (
    id smallint PRIMARY KEY CHECK (id = 1),
    xact bigint NOT NULL
);
INSERT INTO audit_chainhead (id, xact) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;
DROP TRIGGER IF EXISTS audit_chainhead_no_delete ON audit_chainhead;
CREATE TRIGGER audit_chainhead_no_delete BEFORE DELETE OR TRUNCATE ON audit_chainhead
    FOR EACH STATEMENT EXECUTE FUNCTION audit_chain_refuse();
DROP TRIGGER IF EXISTS audit_chainlink_no_change ON audit_chainlink;
CREATE TRIGGER audit_chainlink_no_change BEFORE UPDATE OR DELETE ON audit_chainlink
    FOR EACH STATEMENT EXECUTE FUNCTION audit_chain_refuse();
DROP TRIGGER IF EXISTS audit_chain_truncate ON audit_chainlink;
CREATE TRIGGER audit_chain_truncate AFTER TRUNCATE ON audit_chainlink
    FOR EACH STATEMENT EXECUTE FUNCTION audit_chain_truncate_check();
"""

UNINSTALL_SQL = """
DO $$
DECLARE v_table text;
BEGIN
    FOR v_table IN
        SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        WHERE t.tgname = 'audit_chain'
    LOOP
        EXECUTE format('DROP TRIGGER audit_chain ON %I', v_table);
        EXECUTE format('DROP TRIGGER IF EXISTS audit_chain_truncate ON %I', v_table);
    END LOOP;
END $$;
DROP TABLE IF EXISTS audit_chainhead;
DROP FUNCTION IF EXISTS audit_chain_trigger();
DROP FUNCTION IF EXISTS audit_chain_append(text, text, bytea);
DROP FUNCTION IF EXISTS audit_chain_last_link();
DROP FUNCTION IF EXISTS audit_row_digest(text, text, anyelement);
"""


@dataclass(frozen=True)
class AuditedTable:
    name: str
    primary_key: str
    primary_key_type: str
    time_column: str
    operations: str = "INSERT"
    columns: tuple[str, ...] = ()


def _quote(name: str) -> str:
    return connection.ops.quote_name(name)


def audited_tables(cursor: CursorWrapper) -> list[AuditedTable]:
    """Every table whose rows are audit evidence, read from the catalogue: pghistory's event tables
    (whatever model they track, including ones added after this code) and `OTHER_TABLES`."""
    cursor.execute(
        """
        SELECT c.relname
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND NOT a.attisdropped
        WHERE c.relkind IN ('r', 'p') AND n.nspname = current_schema()
          AND a.attname = ANY(%s)
        GROUP BY c.relname HAVING count(*) = %s
        ORDER BY c.relname
        """,
        [list(EVENT_COLUMNS), len(EVENT_COLUMNS)],
    )
    specs = {name: ("pgh_id", "pgh_created_at", "INSERT") for (name,) in cursor.fetchall()}
    specs.update(OTHER_TABLES)
    cursor.execute(
        """
        SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        WHERE n.nspname = current_schema() AND c.relname = ANY(%s)
        """,
        [list(specs)],
    )
    columns: dict[str, dict[str, str]] = defaultdict(dict)
    for table_name, column, column_type in cursor.fetchall():
        columns[table_name][column] = column_type
    return [
        # A table whose time column is gone is chained in key order.
        AuditedTable(
            name,
            key,
            columns[name][key],
            time_column if time_column in columns[name] else key,
            operations,
            tuple(sorted(columns[name])),
        )
        for name, (key, time_column, operations) in sorted(specs.items())
        if key in columns.get(name, {})
    ]


def chain_triggers(cursor: CursorWrapper) -> dict[str, bool]:
    """Tables with the chain trigger -> whether it is enabled."""
    cursor.execute(
        """
        SELECT c.relname, t.tgenabled <> 'D'
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        WHERE t.tgname = %s
        """,
        [TRIGGER_NAME],
    )
    return dict(cursor.fetchall())


def _chain_rows_sql(tables: list[AuditedTable]) -> str:
    """The rows of `tables` not yet in the chain, oldest first (then by table and key), with
    their content digests."""
    branches = []
    for table in tables:
        key = f"t.{_quote(table.primary_key)}"
        at = (
            f"t.{_quote(table.time_column)}::timestamptz"
            if table.time_column != table.primary_key
            else "NULL::timestamptz"
        )
        number = f"{key}::bigint" if table.primary_key_type in INTEGER_TYPES else "NULL::bigint"
        branches.append(
            f"""
            SELECT {at} AS at, '{table.name}'::text AS table_name, {number} AS key_number,
                   {key}::text AS row_id,
                   audit_row_digest('{table.name}', {key}::text, t) AS digest
            FROM {_quote(table.name)} t
            WHERE NOT EXISTS (
                SELECT 1 FROM audit_chainlink c
                WHERE c.table_name = '{table.name}' AND c.row_id = {key}::text
            )
            """  # noqa: S608 - identifiers come from the catalogue, quoted
        )
    return " UNION ALL ".join(branches) + " ORDER BY at NULLS FIRST, table_name, key_number, row_id"


def chain_install() -> list[str]:
    """Put the chain trigger on every audited table that lacks it, and append the rows those
    tables already hold (oldest first). Idempotent: run by the migration and after every
    `migrate`. Returns the tables it installed on."""
    with transaction.atomic(), connection.cursor() as cursor:
        if CHAIN_TABLE not in connection.introspection.table_names(cursor):
            return []  # the audit app's migrations have not run yet
        cursor.execute(FUNCTIONS_SQL)
        cursor.execute(HEAD_SQL)
        installed = chain_triggers(cursor)
        tables = audited_tables(cursor)
        missing = [table for table in tables if table.name not in installed]
        for table in missing:
            name = _quote(table.name)
            cursor.execute(
                f"CREATE CONSTRAINT TRIGGER {TRIGGER_NAME} AFTER {table.operations} ON {name} "
                "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
                f"EXECUTE FUNCTION audit_chain_trigger('{table.primary_key}')"
            )
            cursor.execute(f"DROP TRIGGER IF EXISTS {TRUNCATE_TRIGGER_NAME} ON {name}")
            cursor.execute(
                f"CREATE TRIGGER {TRUNCATE_TRIGGER_NAME} AFTER TRUNCATE ON {name} "
                "FOR EACH STATEMENT EXECUTE FUNCTION audit_chain_truncate_check()"
            )
        # Rows written before their table had a trigger, appended in time order (the
        # migration's run: every event already in the database).
        if missing:
            cursor.execute(
                f"""
                DO $$
                DECLARE r record;
                BEGIN
                    FOR r IN {_chain_rows_sql(missing)} LOOP
                        PERFORM audit_chain_append(r.table_name, r.row_id, r.digest);
                    END LOOP;
                END $$;
                """
            )
        _record_columns(cursor, tables)
        return [table.name for table in missing]


def _record_columns(cursor: CursorWrapper, tables: list[AuditedTable]) -> None:
    """Record the columns of each audited table whose set differs from the last one recorded (a
    new table, or a migration added or removed a column), as of the chain's last link."""
    if not any(table.name == SCHEMA_TABLE for table in tables):
        return  # the audit app's migration that creates it has not run yet
    cursor.execute(f"DROP TRIGGER IF EXISTS audit_chainschema_no_change ON {SCHEMA_TABLE}")
    cursor.execute(
        f"""
        CREATE TRIGGER audit_chainschema_no_change BEFORE UPDATE OR DELETE ON {SCHEMA_TABLE}
            FOR EACH STATEMENT EXECUTE FUNCTION audit_chain_refuse()
        """
    )
    cursor.execute(
        f"""
        SELECT DISTINCT ON (table_name) table_name, columns FROM {SCHEMA_TABLE}
        ORDER BY table_name, id DESC
        """  # noqa: S608 - a constant table name
    )
    recorded = {name: tuple(columns) for name, columns in cursor.fetchall()}
    changed = [table for table in tables if recorded.get(table.name) != table.columns]
    if not changed:
        return
    cursor.execute(f"SELECT coalesce(max(id), 0) FROM {CHAIN_TABLE}")  # noqa: S608
    (last_link,) = cursor.fetchone()
    cursor.executemany(
        f"""
        INSERT INTO {SCHEMA_TABLE} (table_name, columns, from_link, recorded_at)
        VALUES (%s, %s, %s, now())
        """,  # noqa: S608 - a constant table name
        [(table.name, list(table.columns), last_link) for table in changed],
    )


def chain_uninstall() -> None:
    with connection.cursor() as cursor:
        cursor.execute(UNINSTALL_SQL)


# ---------------------------------------------------------------------------------------------
# Verification


@dataclass(frozen=True)
class Break:
    """One thing wrong with the audit trail. `position` is the chain link's id (None for what
    has no link: an event written with the trigger disabled)."""

    code: str
    message: str
    table: str = ""
    row_id: str = ""
    position: int | None = None
    at: datetime.datetime | None = None

    def describe(self) -> str:
        where = f"link #{self.position}" if self.position is not None else "no link"
        row = f"{self.table} #{self.row_id}" if self.table else "-"
        when = f", written {self.at.isoformat()}" if self.at is not None else ""
        return f"[{self.code}] {where}, {row}{when}: {self.message}"


@dataclass
class Verification:
    links: int = 0
    seconds: float = 0.0
    head_position: int | None = None
    head_link: str = ""
    breaks: list[Break] = field(default_factory=list)
    more_breaks: int = 0
    column_changes: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.breaks

    def add(self, problem: Break, *, keep: int) -> None:
        if len(self.breaks) < keep:
            self.breaks.append(problem)
        else:
            self.more_breaks += 1


# A check an app offers for its stored electronic signatures: it yields a Break for each
# signature that no longer matches the record it signed. Apps below audit cannot import it, so
# `audit_verify` finds their checks on their AppConfig (`audit_signature_checks`, an iterable of
# such callables), e.g. lots' release signatures once `lots.services.lot_record_digest` is final.
SignatureCheck = Callable[[], Iterable[Break]]


def signature_checks() -> list[SignatureCheck]:
    checks: list[SignatureCheck] = []
    for config in apps.get_app_configs():
        checks.extend(getattr(config, "audit_signature_checks", ()))
    return checks


def _links(cursor: CursorWrapper, *, chunk: int) -> Iterator[list[tuple[Any, ...]]]:
    """The chain in order, `chunk` links at a time (keyset pages: flat memory at any length)."""
    last = 0
    while True:
        cursor.execute(
            f"""
            SELECT id, table_name, row_id, content_digest, link
            FROM {CHAIN_TABLE} WHERE id > %s ORDER BY id LIMIT %s
            """,  # noqa: S608 - identifiers come from the catalogue, quoted
            [last, chunk],
        )
        rows = cursor.fetchall()
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def _current_digests(
    cursor: CursorWrapper, tables: dict[str, AuditedTable], wanted: dict[str, set[str]]
) -> dict[tuple[str, str], bytes]:
    """(table, row id) -> the digest of the row as it stands, for the rows still there."""
    digests: dict[tuple[str, str], bytes] = {}
    for name, row_ids in wanted.items():
        table = tables.get(name)
        if table is None:
            continue
        key = _quote(table.primary_key)
        cursor.execute(
            f"""
            SELECT t.{key}::text, {CANONICAL_DIGEST.format(row="t", key=f"t.{key}")}
            FROM {_quote(name)} t WHERE t.{key} = ANY(%s::{table.primary_key_type}[])
            """,  # noqa: S608 - identifiers come from the catalogue, quoted
            [name, sorted(row_ids)],
        )
        digests.update(((name, row_id), bytes(digest)) for row_id, digest in cursor.fetchall())
    return digests


def _last_versions(cursor: CursorWrapper, table: str, row_ids: set[str]) -> dict[str, int]:
    """For rows chained once per version (contexts): row id -> the position of its last link."""
    cursor.execute(
        f"""
        SELECT row_id, max(id) FROM {CHAIN_TABLE}
        WHERE table_name = %s AND row_id = ANY(%s) GROUP BY row_id
        """,  # noqa: S608 - identifiers come from the catalogue, quoted
        [table, sorted(row_ids)],
    )
    return dict(cursor.fetchall())


def chain_verify(
    *,
    chunk: int = 5000,
    keep: int = 20,
    anchor: tuple[int, str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> Verification:
    """Recompute the chain link by link and check each against the row it stands for, then look
    for audited rows without a link and for tables whose trigger is missing or disabled.

    Runs in one REPEATABLE READ, read-only transaction (a consistent view while writers go on),
    reading `chunk` links at a time: memory stays flat over millions of events. `anchor` is a
    (position, link hex) pair noted earlier, for instance from a previous run's summary: it
    proves that the chain up to there was not rewritten wholesale."""
    result = Verification()
    started = time.monotonic()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        cursor.execute(VERIFY_SETTINGS)
        tables = {table.name: table for table in audited_tables(cursor)}
        triggers = chain_triggers(cursor)
        for name in sorted(tables):
            if name not in triggers:
                result.add(
                    Break("trigger_missing", "the table has no chain trigger", name), keep=keep
                )
            elif not triggers[name]:
                result.add(
                    Break("trigger_disabled", "the chain trigger is disabled", name), keep=keep
                )
        earlier = _earlier_columns(cursor, tables)
        result.column_changes = _column_changes(cursor, tables)
        previous = GENESIS
        previous_position: int | None = None
        for rows in _links(cursor, chunk=chunk):
            wanted: dict[str, set[str]] = defaultdict(set)
            for _, table_name, row_id, *_ in rows:
                wanted[table_name].add(row_id)
            current = _current_digests(cursor, tables, wanted)
            last_versions = {
                name: _last_versions(cursor, name, wanted[name])
                for name, (_, _, operations) in OTHER_TABLES.items()
                if "UPDATE" in operations and wanted.get(name)
            }
            for position, table_name, row_id, digest, link in rows:
                digest, link = bytes(digest), bytes(link)
                where = {"table": table_name, "row_id": row_id, "position": position}
                if hashlib.sha256(previous + digest).digest() != link:
                    before = f"#{previous_position}" if previous_position else "the start"
                    result.add(
                        Break(
                            "broken_link",
                            f"the link does not follow from the one before it ({before}): a "
                            "link was altered, removed or inserted here, or the chain reordered",
                            **where,
                        ),
                        keep=keep,
                    )
                versions = last_versions.get(table_name)
                if versions is None or versions.get(row_id) == position:
                    now = current.get((table_name, row_id))
                    if table_name not in tables:
                        result.add(
                            Break("unknown_table", "the link names no audited table", **where),
                            keep=keep,
                        )
                    elif now is None:
                        result.add(
                            Break(
                                "missing_event",
                                "the row this link stands for is gone (deleted)",
                                **where,
                            ),
                            keep=keep,
                        )
                    elif now != digest and not _written_with_earlier_columns(
                        cursor, tables[table_name], row_id, digest, position, earlier
                    ):
                        result.add(
                            Break(
                                "altered_content",
                                "the row no longer has the content it was chained with",
                                **where,
                            ),
                            keep=keep,
                        )
                if anchor is not None and anchor[0] == position and link.hex() != anchor[1]:
                    result.add(
                        Break("anchor_mismatch", "the link differs from the anchor", **where),
                        keep=keep,
                    )
                previous, previous_position = link, position
                result.links += 1
            if progress is not None:
                progress(result.links)
        if anchor is not None and (previous_position is None or previous_position < anchor[0]):
            result.add(
                Break("anchor_missing", "the chain ends before the anchor", position=anchor[0]),
                keep=keep,
            )
        for table in tables.values():
            for row_id, at in _unchained(cursor, table, limit=keep):
                result.add(
                    Break(
                        "unchained_event",
                        "the row has no link: it was written with the chain trigger off",
                        table.name,
                        row_id,
                        at=at,
                    ),
                    keep=keep,
                )
        result.breaks = _with_link_times(cursor, result.breaks)
        result.head_position = previous_position
        result.head_link = previous.hex() if previous_position else ""
    for check in signature_checks():
        for problem in check():
            result.add(problem, keep=keep)
    result.seconds = time.monotonic() - started
    return result


def _earlier_columns(
    cursor: CursorWrapper, tables: dict[str, AuditedTable]
) -> dict[str, list[tuple[int, tuple[str, ...]]]]:
    """Table -> each column set it had before its present one, with the last link that may have
    been written with it (the link after which the next set was recorded)."""
    if SCHEMA_TABLE not in tables:
        return {}
    cursor.execute(
        f"SELECT table_name, columns FROM {SCHEMA_TABLE} ORDER BY id"  # noqa: S608
    )
    sets: dict[str, list[tuple[str, ...]]] = defaultdict(list)
    for name, columns in cursor.fetchall():
        sets[name].append(tuple(columns))
    cursor.execute(
        f"SELECT table_name, from_link FROM {SCHEMA_TABLE} ORDER BY id"  # noqa: S608
    )
    starts: dict[str, list[int]] = defaultdict(list)
    for name, from_link in cursor.fetchall():
        starts[name].append(from_link)
    return {
        name: [(starts[name][index + 1], columns) for index, columns in enumerate(found[:-1])]
        for name, found in sets.items()
        if len(found) > 1
    }


def _written_with_earlier_columns(
    cursor: CursorWrapper,
    table: AuditedTable,
    row_id: str,
    digest: bytes,
    position: int,
    earlier: dict[str, list[tuple[int, tuple[str, ...]]]],
) -> bool:
    """Whether the row, read with only the columns its table had when the link was written,
    has the digest it was chained with: a column added since is no part of an older event.
    Only column sets in force at the link's position are tried; a column removed since cannot
    be read back, and such a row stays altered (its evidence is gone)."""
    candidates = [columns for until, columns in earlier.get(table.name, []) if until >= position]
    key = _quote(table.primary_key)
    for columns in candidates:
        if not set(columns) <= set(table.columns):
            continue
        projected = (
            "(SELECT jsonb_object_agg(e.key, e.value) FROM jsonb_each(to_jsonb(t)) e "
            "WHERE e.key = ANY(%s))::text"
        )
        cursor.execute(
            f"""
            SELECT sha256(convert_to(%s || E'\\n' || t.{key}::text || E'\\n' || {projected},
                                     'UTF8'))
            FROM {_quote(table.name)} t WHERE t.{key} = %s::{table.primary_key_type}
            """,  # noqa: S608 - identifiers come from the catalogue, quoted
            [table.name, list(columns), row_id],
        )
        found = cursor.fetchone()
        if found is not None and bytes(found[0]) == digest:
            return True
    return False


def _column_changes(cursor: CursorWrapper, tables: dict[str, AuditedTable]) -> list[str]:
    """What changed in the audited tables' columns after events were first chained, for the
    summary: `table: +added -removed (from link #N)`."""
    if SCHEMA_TABLE not in tables:
        return []
    cursor.execute(
        f"SELECT table_name, columns, from_link FROM {SCHEMA_TABLE} ORDER BY id"  # noqa: S608
    )
    changes: list[str] = []
    before: dict[str, list[str]] = {}
    for name, columns, from_link in cursor.fetchall():
        if name in before:
            added = sorted(set(columns) - set(before[name]))
            removed = sorted(set(before[name]) - set(columns))
            what = " ".join([*(f"+{c}" for c in added), *(f"-{c}" for c in removed)])
            changes.append(f"{name}: {what} (after link #{from_link})")
        before[name] = columns
    return changes


def _with_link_times(cursor: CursorWrapper, breaks: list[Break]) -> list[Break]:
    """The breaks with the time their link was written (read for the few reported only)."""
    positions = [problem.position for problem in breaks if problem.position is not None]
    if not positions:
        return breaks
    cursor.execute(
        f"SELECT id, recorded_at FROM {CHAIN_TABLE} WHERE id = ANY(%s)",  # noqa: S608
        [positions],
    )
    times = dict(cursor.fetchall())
    return [
        replace(problem, at=times.get(problem.position, problem.at))
        if problem.position is not None and problem.at is None
        else problem
        for problem in breaks
    ]


def _unchained(
    cursor: CursorWrapper, table: AuditedTable, *, limit: int
) -> list[tuple[str, datetime.datetime]]:
    key = _quote(table.primary_key)
    cursor.execute(
        f"""
        SELECT t.{key}::text, t.{_quote(table.time_column)} FROM {_quote(table.name)} t
        WHERE NOT EXISTS (
            SELECT 1 FROM {CHAIN_TABLE} c WHERE c.table_name = %s AND c.row_id = t.{key}::text
        )
        ORDER BY t.{key} LIMIT %s
        """,  # noqa: S608 - identifiers come from the catalogue, quoted
        [table.name, limit],
    )
    return list(cursor.fetchall())
