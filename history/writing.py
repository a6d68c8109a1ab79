"""Set-based writes: many rows of one table in one INSERT ... SELECT FROM unnest(arrays), their
ids taken from the table's sequence beforehand. Django's bulk_create builds a model instance and
a parameter per cell; for 10^5 treatments that alone took longer than the database's work. The
database's triggers (history events, the audit chain) and constraints fire as for any insert."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection, models


def insert_rows(
    model: type[models.Model], fields: Sequence[str], rows: Sequence[Sequence[Any]]
) -> list[int]:
    """Insert `rows` (values in the order of `fields`, by field name; a foreign key by its id)
    and return their new ids in the order of `rows`. The caller holds the transaction."""
    if not rows:
        return []
    meta = model._meta
    table = meta.db_table
    columns = [field for name in fields if isinstance(field := meta.get_field(name), models.Field)]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [table, len(rows)],
        )
        ids = [row[0] for row in cursor.fetchall()]
        names = ", ".join(connection.ops.quote_name(str(field.column)) for field in columns)
        arrays = ", ".join(f"%s::{field.db_type(connection)}[]" for field in [meta.pk, *columns])
        cursor.execute(
            f"INSERT INTO {connection.ops.quote_name(table)} (id, {names}) "  # noqa: S608 - names are ours
            f"SELECT * FROM unnest({arrays})",
            [ids, *([row[index] for row in rows] for index in range(len(columns)))],
        )
    return ids
