"""CSV for every export: one streamer and one guard against formula cells.

A spreadsheet runs a cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return as a
formula (CSV injection). Patient references, names, lot numbers and reasons are free text, so such
cells are prefixed with a quote. Times are written as ISO 8601 in UTC.

Rows formatted in Python (`csv_response`) cost microseconds each; an export that can run to tens
of thousands of rows (a lot's forward trace) is instead written by PostgreSQL with COPY
(`csv_copy_response`), its cells formatted in SQL as `csv_cell` and csv.writer write them, so
both give the same bytes.
"""

from __future__ import annotations

import csv
import datetime
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any, cast

from django.core.exceptions import EmptyResultSet
from django.db import connections, models, transaction
from django.db.backends.postgresql.operations import DatabaseOperations as PostgresOperations
from django.db.backends.utils import CursorDebugWrapper
from django.db.models import F, Func, QuerySet, Subquery
from django.http import StreamingHttpResponse
from rest_framework.renderers import BaseRenderer

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_STARTS_SQL = ", ".join(f"chr({ord(start)})" for start in FORMULA_STARTS)
# COPY sends a message per row; they are gathered into chunks of about this size, so a long
# export is neither a write per row nor held whole in memory.
COPY_CHUNK_BYTES = 64 * 1024


def csv_cell(value: Any) -> Any:
    """One cell: empty for None, ISO 8601 (UTC) for times, quoted when it would be a formula."""
    if value is None:
        return ""
    if isinstance(value, datetime.datetime):
        return value.astimezone(datetime.UTC).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class _Echo:
    """A file-like object whose write() hands the line back, for csv.writer (Django's recipe)."""

    def write(self, value: str) -> str:
        return value


def csv_lines(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Iterator[str]:
    """The CSV text of `header` and `rows`, line by line, every cell through `csv_cell`."""
    writer = csv.writer(_Echo())
    yield writer.writerow(header)
    for row in rows:
        yield writer.writerow([csv_cell(value) for value in row])


def csv_stream(lines: Iterable[str | bytes], filename: str) -> StreamingHttpResponse:
    """A streamed CSV download of `lines` (flat in memory), never cached."""
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


def csv_response(
    filename: str, header: Sequence[str], rows: Iterable[Sequence[Any]]
) -> StreamingHttpResponse:
    return csv_stream(csv_lines(header, rows), filename)


class _CellFunc(Func):
    """A cell's template names its value several times: a value computed with parameters (a
    literal in an annotation) passes them once for each mention."""

    def as_sql(  # type: ignore[override]
        self, compiler: Any, connection: Any, **extra_context: Any
    ) -> tuple[str, tuple[Any, ...]]:
        sql, params = compiler.compile(self.source_expressions[0])
        mentions = self.template.count("%(expressions)s")
        return self.template % {"expressions": sql}, tuple(params) * mentions


class CsvText(_CellFunc):
    """A text cell as `csv_cell` writes it, in SQL: a formula start prefixed with a quote, and an
    empty text as NULL (COPY writes NULL as an empty cell but an empty text as `""`, which
    csv.writer does not)."""

    template = (
        "CASE WHEN %(expressions)s = '' THEN NULL"
        f" WHEN left(%(expressions)s, 1) IN ({_FORMULA_STARTS_SQL})"
        " THEN '''' || %(expressions)s ELSE %(expressions)s END"
    )
    output_field = models.TextField()


class CsvTime(_CellFunc):
    """A time cell as `csv_cell` writes it, in SQL: `isoformat()` in UTC, which leaves out the
    fraction of a second when it is zero."""

    template = (
        "to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS')"
        " || CASE WHEN to_char(%(expressions)s, 'US') = '000000' THEN ''"
        " ELSE to_char(%(expressions)s, '.US') END || '+00:00'"
    )
    output_field = models.TextField()


class CsvDate(_CellFunc):
    """A date cell as `isoformat()` writes it, whatever the session's DateStyle."""

    template = "to_char(%(expressions)s, 'YYYY-MM-DD')"
    output_field = models.TextField()


class CsvBoolean(_CellFunc):
    """A yes/no cell as csv.writer writes a Python bool."""

    template = "CASE WHEN %(expressions)s THEN 'True' WHEN NOT %(expressions)s THEN 'False' END"
    output_field = models.TextField()


class CsvFormatted(Subquery):
    """A subquery whose one value is already a cell, formatted inside it (say CsvText over an
    aggregate, which PostgreSQL computes once however often the cell names it): `csv_cells` takes
    it as it is, where wrapping it again would run the subquery once for each mention."""

    output_field = models.TextField()


_TEXT_FIELDS = {"CharField", "TextField", "EmailField", "SlugField", "URLField"}
# Written alike by PostgreSQL and by Python's str().
_PLAIN_FIELDS = {
    "AutoField",
    "BigAutoField",
    "SmallAutoField",
    "IntegerField",
    "BigIntegerField",
    "SmallIntegerField",
    "PositiveIntegerField",
    "PositiveBigIntegerField",
    "PositiveSmallIntegerField",
    "DecimalField",
    "UUIDField",
    "ForeignKey",
}


def _cell(field: str, output_field: models.Field[Any, Any]) -> F | Func:
    kind = output_field.get_internal_type()
    if kind in _TEXT_FIELDS:
        return CsvText(F(field))
    if kind == "DateTimeField":
        return CsvTime(F(field))
    if kind == "DateField":
        return CsvDate(F(field))
    if kind == "BooleanField":
        return CsvBoolean(F(field))
    if kind in _PLAIN_FIELDS:
        return F(field)
    raise TypeError(f"no CSV cell is written alike for a {kind} ({field})")


def csv_cells(queryset: QuerySet[Any], fields: Sequence[str]) -> QuerySet[Any]:
    """`queryset.values_list(*fields)` with every cell formatted by PostgreSQL as `csv_cell`
    formats it, for `csv_copy_response`. A kind of field it cannot write alike is refused. A field
    may be an annotation of `queryset`."""
    query = queryset.values_list(*fields).query
    columns = iter(query.select)
    kinds = [
        query.annotations[field].output_field
        if field in query.annotations
        else next(columns).output_field
        for field in fields
    ]
    cells = {
        f"csv_cell_{index}": F(field)
        if isinstance(query.annotations.get(field), CsvFormatted)
        else _cell(field, kind)
        for index, (field, kind) in enumerate(zip(fields, kinds, strict=True))
    }
    formatted: QuerySet[Any] = queryset.annotate(**cells).values_list(*cells)
    return formatted


STREAM_IN_INDEX_ORDER = "SET LOCAL enable_sort = off; SET LOCAL jit = off"


def csv_copy_lines(header: Sequence[str], cells: QuerySet[Any]) -> Iterator[bytes]:
    """The CSV of `header` and the rows of `cells` (from `csv_cells`) as PostgreSQL's COPY writes
    them, sent on in chunks as they arrive: the first rows as soon as the database has them, and
    memory flat however many there are. Lines end in CRLF like csv.writer's."""
    yield "".join(csv_lines(header, ())).encode()
    # The database the queryset reads from (a replica, where the router sends reads).
    database = connections[cells.db]
    try:
        query, params = cells.query.get_compiler(using=cells.db).as_sql()
    except EmptyResultSet:
        return  # The filter matches nothing (say, `in` an empty list): no query to run.
    bound = cast(PostgresOperations, database.ops).compose_sql(query, params)
    statement = f"COPY ({bound}) TO STDOUT WITH (FORMAT csv)"
    # Planned for the first row, not the last: PostgreSQL plans COPY for its total time, and would
    # rather sort every row in bulk (in parallel, over hash joins) than read them in the order an
    # index already holds, which keeps the client waiting for the whole result before the first
    # line. A sort stays possible where no index gives the order. Nor is it compiled (JIT): that
    # cost half a second before the first row of a lot with 10^5 lines, and pays off only on
    # rows a stream this size never reads twice. SET LOCAL ends with the transaction, which ends
    # with the stream (a client that goes away rolls it back).
    with transaction.atomic(using=cells.db), database.cursor() as cursor:
        cursor.execute(STREAM_IN_INDEX_ORDER)
        with _logged(cursor, statement), cursor.cursor.copy(statement) as copy:
            chunk = bytearray()
            for row in copy:
                # One message per row, ending in LF; an LF inside a quoted cell is kept as is.
                chunk += row[:-1]
                chunk += b"\r\n"
                if len(chunk) >= COPY_CHUNK_BYTES:
                    yield bytes(chunk)
                    chunk.clear()
            if chunk:
                yield bytes(chunk)


def _logged(cursor: Any, statement: str) -> AbstractContextManager[None]:
    """Counted like every other statement where Django counts them (tests, debug)."""
    if isinstance(cursor, CursorDebugWrapper):
        return cursor.debug_sql(statement)
    return nullcontext()


def csv_copy_response(
    filename: str, header: Sequence[str], cells: QuerySet[Any]
) -> StreamingHttpResponse:
    return csv_stream(csv_copy_lines(header, cells), filename)


class CsvRenderer(BaseRenderer):
    """Announces text/csv to content negotiation (`?format=csv`, `Accept: text/csv`). The trace
    views stream the CSV themselves, and everything else they answer is JSON (errors here, the
    OPTIONS metadata by common.api_views.ContentNegotiation), so nothing is rendered here."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        raise NotImplementedError("trace views stream their CSV; see csv_response()")
