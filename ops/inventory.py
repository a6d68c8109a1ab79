"""What a database holds, read the same way from the live database (at backup) and from a
restored copy (at verification): rows per table, the migrations applied, the certificate files
its rows name, and sequences that would hand out a key already taken. Plain SQL over any DB-API
cursor (Django's or psycopg's), since the restored copy is not Django's configured database."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from audit.models import ChainLink
from lots.models import Certificate


class Cursor(Protocol):
    def execute(self, query: str, params: Sequence[Any] = ..., /) -> Any: ...

    def fetchall(self) -> list[Any]: ...


@dataclass(frozen=True)
class CertificateFile:
    """A certificate row's file and the SHA-256 recorded for it in the database."""

    certificate_id: int
    name: str
    sha256: str


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def row_counts(cursor: Cursor) -> dict[str, int]:
    """Exact rows of every table in the schema, counted in one statement (one snapshot)."""
    cursor.execute(
        """
        SELECT c.relname FROM pg_class c
        WHERE c.relkind IN ('r', 'p') AND c.relnamespace = current_schema()::regnamespace
        ORDER BY c.relname
        """
    )
    tables = [name for (name,) in cursor.fetchall()]
    if not tables:
        return {}
    cursor.execute(
        " UNION ALL ".join(
            f"SELECT %s, count(*) FROM {_quote(table)}"  # noqa: S608 - names from the catalogue
            for table in tables
        ),
        tables,
    )
    return {table: int(count) for table, count in cursor.fetchall()}


def migration_state(cursor: Cursor) -> dict[str, str]:
    """The latest migration applied per app (Django numbers them, so the greatest name)."""
    cursor.execute("SELECT app, max(name) FROM django_migrations GROUP BY app ORDER BY app")
    return dict(cursor.fetchall())


def certificate_files(cursor: Cursor) -> list[CertificateFile]:
    sql, params = (
        Certificate.objects.order_by("pk")
        .values_list("pk", "file", "sha256")
        .query.sql_with_params()
    )
    cursor.execute(sql, params)
    return [
        CertificateFile(int(pk), str(name), str(sha256)) for pk, name, sha256 in cursor.fetchall()
    ]


def audit_chain_head(cursor: Cursor) -> str:
    """The last link of the audit chain as `audit_verify --anchor` takes it (POSITION:LINKHEX),
    or "" for an empty chain: the restored chain must hold this very link at this position."""
    sql, params = (
        ChainLink.objects.order_by("-id").values_list("id", "link")[:1].query.sql_with_params()
    )
    cursor.execute(sql, params)
    rows = cursor.fetchall()
    return f"{rows[0][0]}:{bytes(rows[0][1]).hex()}" if rows else ""


def sequences_behind(cursor: Cursor) -> list[str]:
    """Sequences whose next value is already taken in the column they feed: after a restore the
    next insert there would fail on its primary key."""
    cursor.execute(
        """
        SELECT s.relname, t.relname, a.attname
        FROM pg_depend d
        JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
        JOIN pg_class t ON t.oid = d.refobjid
        JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
        WHERE d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
          AND t.relnamespace = current_schema()::regnamespace
        ORDER BY s.relname
        """
    )
    owned = cursor.fetchall()
    if not owned:
        return []
    issued = "(SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM {})"
    cursor.execute(
        " UNION ALL ".join(
            f"SELECT %s, {issued.format(_quote(sequence))}, "  # noqa: S608 - catalogue names
            f"(SELECT max({_quote(column)}) FROM {_quote(table)})"
            for sequence, table, column in owned
        ),
        [f"{table}.{column}" for _, table, column in owned],
    )
    return [
        f"{column}: sequence at {last}, greatest value {greatest}"
        for column, last, greatest in cursor.fetchall()
        if greatest is not None and greatest > last
    ]
