"""Reading an import file: CSV in UTF-8, a header naming the columns, one record a line.

Whatever is wrong with the file itself (its encoding, its header, a cell that is not a number or a
time) is a `RowProblem` naming the line (the header is line 1) and the column, with a stable code:
the import reports it as it reports a broken rule, never as an error of its own.
"""

from __future__ import annotations

import csv
import datetime
import io
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _

from common.api_fields import validate_storable_datetime
from common.errors import Problem

TRUE_WORDS = frozenset({"true", "yes", "1"})
FALSE_WORDS = frozenset({"false", "no", "0"})
# A cell longer than this is not a value of any column: csv's own limit is 128 KiB.
CELL_MAX = 10_000


@dataclass(frozen=True)
class RowProblem:
    """One problem of an import, where it is: `line` of the file (the header is line 1; None for
    the file as a whole) and `column` (None for the line as a whole)."""

    line: int | None
    column: str | None
    code: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "column": self.column,
            "code": self.code,
            "message": self.message,
        }

    @classmethod
    def at(cls, line: int | None, column: str | None, problem: Problem) -> RowProblem:
        return cls(line, column, problem.code, problem.message)


class RowsRefused(Exception):
    """Rows refused while writing (by a service that judges as it writes): the import rolls back
    and reports them."""

    def __init__(self, problems: list[RowProblem]) -> None:
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = problems


@dataclass(frozen=True)
class Columns:
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()

    @property
    def all(self) -> tuple[str, ...]:
        return self.required + self.optional


@dataclass(frozen=True)
class Row:
    line: int
    cells: dict[str, str]


def read_rows(data: bytes, columns: Columns, problems: list[RowProblem]) -> list[Row]:
    """The file's records with their line numbers; problems of the file itself are added to
    `problems` (a file whose header is wrong yields no rows: every line would be misread)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        problems.append(
            RowProblem(
                line,
                None,
                "encoding_invalid",
                _("The file is not UTF-8 text (byte %(offset)s); save it as CSV UTF-8.")
                % {"offset": error.start},
            )
        )
        return []
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None or not any(cell.strip() for cell in header):
            problems.append(RowProblem(1, None, "file_empty", _("The file has no header line.")))
            return []
        names = [cell.strip() for cell in header]
        if not _header_fits(names, columns, problems):
            return []
        return list(_records(reader, names, problems))
    except csv.Error as error:
        problems.append(
            RowProblem(
                reader.line_num,
                None,
                "csv_malformed",
                _("This line is not well-formed CSV: %(error)s.") % {"error": error},
            )
        )
        return []


def _header_fits(names: list[str], columns: Columns, problems: list[RowProblem]) -> bool:
    before = len(problems)
    seen: set[str] = set()
    for name in names:
        if name in seen:
            problems.append(
                RowProblem(
                    1,
                    name,
                    "column_repeated",
                    _("The column %(column)s appears twice.") % {"column": name},
                )
            )
        seen.add(name)
        if name not in columns.all:
            problems.append(
                RowProblem(
                    1,
                    name,
                    "column_unknown",
                    _("%(column)s is not a column of this import; the columns are: %(columns)s.")
                    % {"column": name, "columns": ", ".join(columns.all)},
                )
            )
    for name in columns.required:
        if name not in seen:
            problems.append(
                RowProblem(
                    1,
                    name,
                    "column_missing",
                    _("The column %(column)s is required.") % {"column": name},
                )
            )
    return len(problems) == before


def _records(reader: Any, names: list[str], problems: list[RowProblem]) -> Iterator[Row]:
    line_after_previous = 1
    for cells in reader:
        # A record's line is where it starts; a quoted cell may span lines.
        line = line_after_previous + 1
        line_after_previous = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(names):
            problems.append(
                RowProblem(
                    line,
                    None,
                    "row_length",
                    _("This line has %(cells)s cells; the header names %(columns)s.")
                    % {"cells": len(cells), "columns": len(names)},
                )
            )
            continue
        yield Row(line, {name: cell.strip() for name, cell in zip(names, cells, strict=True)})


class Cells:
    """Typed values of one row's cells; a cell that is not what its column holds adds a problem
    naming the line and column and reads as None."""

    def __init__(self, row: Row, problems: list[RowProblem]) -> None:
        self.row = row
        self.problems = problems

    def fail(self, column: str, code: str, message: str) -> None:
        self.problems.append(RowProblem(self.row.line, column, code, message))

    def text(self, column: str, *, required: bool = True, max_length: int = CELL_MAX) -> str:
        value = self.row.cells.get(column, "")
        if required and not value:
            self.fail(column, "required", _("Fill in %(column)s.") % {"column": column})
        elif len(value) > max_length:
            self.fail(
                column,
                "max_length",
                _("At most %(max)s characters.") % {"max": max_length},
            )
        return value

    def integer(self, column: str, *, required: bool = True) -> int | None:
        value = self.text(column, required=required)
        if not value:
            return None
        try:
            number = int(value)
        except ValueError:
            self.fail(column, "invalid", _("Give a whole number."))
            return None
        if not 0 < number < 2**31:
            self.fail(column, "units_not_positive", _("Give a whole number above zero."))
            return None
        return number

    def decimal(self, column: str) -> Decimal | None:
        value = self.text(column)
        if not value:
            return None
        try:
            number = Decimal(value)
        except InvalidOperation:
            number = None
        if number is None or not number.is_finite() or abs(number) >= 10_000:
            self.fail(column, "invalid", _("Give a number, such as -20.5."))
            return None
        return number.quantize(Decimal("0.1"))

    def boolean(self, column: str) -> bool | None:
        value = self.text(column).lower()
        if value in TRUE_WORDS:
            return True
        if value in FALSE_WORDS:
            return False
        if value:
            self.fail(column, "invalid", _("Give yes or no."))
        return None

    def choice(self, column: str, choices: list[str]) -> str | None:
        value = self.text(column)
        if value and value not in choices:
            self.fail(
                column,
                "invalid_choice",
                _("%(value)s is not one of: %(choices)s.")
                % {"value": value, "choices": ", ".join(choices)},
            )
            return None
        return value or None

    def moment(self, column: str, *, required: bool = True) -> datetime.datetime | None:
        """A date and time with its UTC offset: a chart's time without one is not guessed."""
        value = self.text(column, required=required)
        if not value:
            return None
        try:
            parsed = parse_datetime(value)
        except ValueError:
            parsed = None
        if parsed is None:
            self.fail(
                column,
                "invalid",
                _("Give a date and time such as 2024-03-01T10:30:00+01:00."),
            )
            return None
        if parsed.utcoffset() is None:
            self.fail(
                column,
                "offset_required",
                _("Give the time with its UTC offset, e.g. 2024-03-01T10:30:00+01:00."),
            )
            return None
        try:
            validate_storable_datetime(parsed)
        except ValidationError as error:
            self.fail(column, error.code or "invalid", str(error.messages[0]))
            return None
        return parsed

    def date(self, column: str, *, required: bool = True) -> datetime.date | None:
        value = self.text(column, required=required)
        if not value:
            return None
        try:
            parsed = parse_date(value)
        except ValueError:
            parsed = None
        if parsed is None:
            self.fail(column, "invalid", _("Give a date such as 2024-03-01."))
        return parsed
