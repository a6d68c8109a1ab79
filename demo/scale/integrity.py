"""Every foreign key of the rows this run wrote, proved by anti-joins before commit.

The load ran with foreign-key checks off (`session_replication_role = replica`); this is the
check PostgreSQL would have made at commit, done set-based, one statement per key, for the
run's rows only. A single orphan stops the run, and the transaction rolls back.
"""

from __future__ import annotations

from dataclasses import dataclass

from demo.scale.base import Load


@dataclass(frozen=True)
class ForeignKey:
    name: str
    table: str
    columns: tuple[str, ...]
    target: str
    target_columns: tuple[str, ...]


class OrphanRows(RuntimeError):
    """Rows of the run that point at nothing: the generator has a bug."""


def foreign_keys(load: Load, tables: list[str]) -> list[ForeignKey]:
    load.cursor.execute(
        """
        SELECT con.conname, child.relname,
               array(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(attnum, n)
                     JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
                     ORDER BY k.n),
               parent.relname,
               array(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(attnum, n)
                     JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
                     ORDER BY k.n)
        FROM pg_constraint con
        JOIN pg_class child ON child.oid = con.conrelid
        JOIN pg_class parent ON parent.oid = con.confrelid
        WHERE con.contype = 'f' AND child.relname = ANY(%s)
        ORDER BY child.relname, con.conname
        """,
        [tables],
    )
    return [
        ForeignKey(name, table, tuple(columns), target, tuple(target_columns))
        for name, table, columns, target, target_columns in load.cursor.fetchall()
    ]


def integrity_check(load: Load, keys: dict[str, str]) -> int:
    """Check every foreign key of the tables in `keys` (table -> its key column) over the rows
    from the run's first id on; return how many keys were checked."""
    checked = foreign_keys(load, sorted(keys))
    with load.phase("foreign keys", len(checked)):
        for key in checked:
            orphans = _orphans(load, key, keys[key.table])
            if orphans:
                raise OrphanRows(
                    f"{orphans} row(s) of {key.table} break {key.name} "
                    f"({', '.join(key.columns)} -> {key.target})"
                )
            load.progress.advance()
    return len(checked)


def _orphans(load: Load, key: ForeignKey, row_key: str) -> int:
    present = " AND ".join(f"c.{column} IS NOT NULL" for column in key.columns)
    joined = " AND ".join(
        f"p.{target} = c.{column}"
        for column, target in zip(key.columns, key.target_columns, strict=True)
    )
    return int(
        load.value(
            f"""
            SELECT count(*) FROM {key.table} c
            WHERE c.{row_key} >= %(first)s AND {present}
              AND NOT EXISTS (SELECT 1 FROM {key.target} p WHERE {joined})
            """,  # noqa: S608 - identifiers come from the catalogue
            first=load.first_ids[key.table],
        )
    )
