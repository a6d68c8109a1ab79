"""The history the database itself would have written: a pghistory event per row of every
tracked table, and a link of the audit chain per row of audit evidence.

Each event is the row as pghistory's insert trigger copies it (every tracked column, label
`insert`, the transaction's time, the row's id as `pgh_obj_id`), attached to one history
context that names the run, as `common.services.history` attaches a service's. The chain links
are what `audit_chain_trigger` appends at commit, computed set-based: the content digest of
each row under the chain's canonical settings, and the links folded over them in order by a
window aggregate starting from the chain's last link. The chain's head row is taken first, as
the trigger takes it, so concurrent writers queue behind the run instead of forking the chain.
"""

from __future__ import annotations

import json
import uuid

import pghistory.models
from django.apps import apps

from audit.chain import GENESIS, VERIFY_SETTINGS
from demo.scale.base import Load
from demo.scale.providers import QUALITY_MANAGER

CONTEXT_TABLE = "pghistory_context"

# sha256(link before || digest), as audit_chain_append computes it, as a running aggregate.
CHAIN_FOLD_SQL = """
CREATE OR REPLACE FUNCTION pg_temp.scale_chain_step(link bytea, digest bytea, start bytea)
RETURNS bytea
LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN RETURN sha256(coalesce(link, start) || digest); END $$;
CREATE OR REPLACE AGGREGATE pg_temp.scale_chain(bytea, bytea) (
    sfunc = pg_temp.scale_chain_step, stype = bytea
)
"""


def tracked_tables() -> dict[str, str]:
    """Tracked table -> its pghistory event table, from the event models."""
    tables = {}
    for model in apps.get_models():
        tracked = getattr(model, "pgh_tracked_model", None)
        if issubclass(model, pghistory.models.Event) and tracked is not None:
            tables[tracked._meta.db_table] = model._meta.db_table
    return tables


def events_create(load: Load) -> list[str]:
    """Write the context and the events; return the event tables written, in order."""
    events = tracked_tables()
    written = [table for table in list(load.first_ids) if table in events]
    context = uuid.uuid4()
    with load.phase("history", len(written) + 1):
        load.execute(
            f"""
            INSERT INTO {CONTEXT_TABLE} (id, created_at, updated_at, metadata)
            VALUES (%(context)s, now(), now(), %(metadata)s::jsonb)
            """,  # noqa: S608 - the SQL is ours
            context=context,
            metadata=json.dumps(
                {
                    "user": load.first_ids["auth_user"] + QUALITY_MANAGER,
                    "reason": f"scale_generate run {load.run}",
                }
            ),
        )
        load.progress.advance()
        for table in written:
            _events(load, table, events[table], context)
            load.progress.advance()
    load.context = context
    return [events[table] for table in written]


def _events(load: Load, table: str, event_table: str, context: uuid.UUID) -> None:
    load.cursor.execute(
        """
        SELECT column_name FROM information_schema.columns
        WHERE table_schema = current_schema() AND table_name = %s
          AND column_name NOT LIKE 'pgh\\_%%'
        ORDER BY ordinal_position
        """,
        [event_table],
    )
    columns = ", ".join(f'"{name}"' for (name,) in load.cursor.fetchall())
    first = load.first_ids[table]
    count = int(load.value(f"SELECT count(*) FROM {table} WHERE id >= %(first)s", first=first))  # noqa: S608
    first_event = load.reserve(event_table, count, key="pgh_id")
    load.execute(
        f"""
        INSERT INTO {event_table} (pgh_id, pgh_created_at, pgh_label, pgh_obj_id, pgh_context_id,
                                   {columns})
        SELECT %(first_event)s + row_number() OVER (ORDER BY id) - 1, now(), 'insert', id,
               %(context)s, {columns}
        FROM {table} WHERE id >= %(first)s ORDER BY id
        """,  # noqa: S608 - identifiers come from the models
        first=first,
        first_event=first_event,
        context=context,
    )


def chain_append(load: Load, tables: list[tuple[str, str]]) -> None:
    """Append a link for the run's context and for each row of `tables` ((table, key)) from
    the run's first id on, table by table.

    Within a table the links follow the row id as text, the order of the chain's own index
    (table, row id): each link then lands at the end of that index instead of at a random
    place in it, which at 10^7 links is most of the time. The order among one transaction's
    links carries no meaning (they are committed at once); `chain_verify` walks whatever order
    the links were appended in."""
    load.execute(VERIFY_SETTINGS)
    load.execute(CHAIN_FOLD_SQL)
    load.execute("UPDATE audit_chainhead SET xact = txid_current() WHERE id = 1")
    previous = bytes(load.value("SELECT audit_chain_last_link()") or GENESIS)
    with load.phase("audit chain", len(tables) + 1):
        previous = _links(load, CONTEXT_TABLE, "id", "t.id = %(context)s", 1, previous)
        load.progress.advance()
        for table, key in tables:
            first = load.first_ids[table]
            count = int(
                load.value(f"SELECT count(*) FROM {table} WHERE {key} >= %(first)s", first=first)  # noqa: S608
            )
            if count:
                previous = _links(load, table, key, f"t.{key} >= {first}", count, previous)
            load.progress.advance()
    # As audit_chain_append leaves them: a later append in this transaction continues here.
    load.execute(
        """
        SELECT set_config('audit.chain_xact', txid_current()::text, true),
               set_config('audit.chain_last', encode(%(previous)s, 'hex'), true)
        """,
        previous=previous,
    )


def _links(load: Load, table: str, key: str, rows: str, count: int, previous: bytes) -> bytes:
    first_link = load.reserve("audit_chainlink", count)
    load.execute(
        f"""
        INSERT INTO audit_chainlink (id, table_name, row_id, content_digest, link, recorded_at)
        SELECT %(first_link)s + n, %(table)s, row_id, digest,
               pg_temp.scale_chain(digest, %(previous)s)
                   OVER (ORDER BY n ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW),
               clock_timestamp()
        FROM (
            SELECT row_number() OVER (ORDER BY t.{key}::text) - 1 AS n, t.{key}::text AS row_id,
                   sha256(convert_to(%(table)s || E'\\n' || t.{key}::text || E'\\n'
                                     || to_jsonb(t)::text, 'UTF8')) AS digest
            FROM {table} t WHERE {rows}
        ) evidence
        ORDER BY n
        """,  # noqa: S608 - identifiers come from the catalogue and the models
        first_link=first_link,
        table=table,
        previous=previous,
        context=load.context,
    )
    return bytes(
        load.value(
            "SELECT link FROM audit_chainlink WHERE id = %(last)s", last=first_link + count - 1
        )
    )
