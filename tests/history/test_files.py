"""A file that is not what an import reads is reported line by line and column by column, with a
stable code, and nothing is written: never an error of the import itself."""

from __future__ import annotations

import pytest

from history.services import history_import
from tests.history.conftest import csv_bytes, days_ago, treatment_row
from treatments.models import Treatment

pytestmark = pytest.mark.django_db


def problems(ready, data: bytes):
    outcome = history_import(
        actor=ready.administrator, clinic=ready.clinic, kind="treatments", data=data
    )
    found = [(p.line, p.column, p.code) for p in outcome.problems]
    assert Treatment.objects.count() == (0 if found else outcome.rows)
    return found


def test_a_file_that_is_not_utf8_names_the_line_of_the_first_bad_byte(ready, lot):
    data = csv_bytes([treatment_row(ready, lot), treatment_row(ready, lot, notes="Müller")])
    latin1 = data.decode().encode("latin-1")
    assert problems(ready, latin1) == [(3, None, "encoding_invalid")]


def test_a_byte_order_mark_is_read_as_excel_writes_it(ready, lot):
    data = b"\xef\xbb\xbf" + csv_bytes([treatment_row(ready, lot)])
    assert problems(ready, data) == []


def test_an_empty_file_is_refused(ready):
    assert problems(ready, b"") == [(1, None, "file_empty")]


def test_missing_unknown_and_repeated_columns_are_named_in_the_header(ready, lot):
    row = treatment_row(ready, lot)
    del row["units"]
    row["dose"] = 1
    header = [*row, "route"]
    data = csv_bytes([row], header=header)
    assert problems(ready, data) == [
        (1, "dose", "column_unknown"),
        (1, "route", "column_repeated"),
        (1, "units", "column_missing"),
    ]


def test_a_line_with_too_many_or_too_few_cells_is_named(ready, lot):
    good = csv_bytes([treatment_row(ready, lot)]).decode()
    header, line = good.splitlines()
    data = "\n".join([header, line + ",extra", line, ",".join(line.split(",")[:3])]).encode()
    assert problems(ready, data) == [(2, None, "row_length"), (4, None, "row_length")]


def test_blank_lines_are_skipped_and_line_numbers_count_them(ready, lot):
    good = csv_bytes([treatment_row(ready, lot)]).decode()
    header, line = good.splitlines()
    bad = line.replace(",1,topical", ",many,topical")
    data = "\n".join([header, "", line, bad]).encode()
    assert problems(ready, data) == [(4, "units", "invalid")]


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        ({"units": "two"}, ("units", "invalid")),
        ({"units": "0"}, ("units", "units_not_positive")),
        ({"units": "99999999999"}, ("units", "units_not_positive")),
        ({"practitioner": "x"}, ("practitioner", "invalid")),
        ({"performed_at": "2024-13-45T10:00:00+01:00"}, ("performed_at", "invalid")),
        ({"performed_at": "yesterday"}, ("performed_at", "invalid")),
        ({"performed_at": "2024-03-01T10:00:00"}, ("performed_at", "offset_required")),
        (
            {"performed_at": "2024-03-01T10:00:00+16:00"},
            ("performed_at", "datetime_offset_out_of_range"),
        ),
        ({"route": "oral"}, ("route", "invalid_choice")),
        ({"indication": ""}, ("indication", "required")),
        ({"patient": ""}, ("patient", "required")),
        ({"patient": "P" * 41}, ("patient", "max_length")),
        ({"lot_number": ""}, ("lot_number", "required")),
        ({"anatomical_site": "x" * 201}, ("anatomical_site", "max_length")),
        ({"consent_text": "1", "consent_taken_at": ""}, ("consent_taken_at", "required")),
    ],
)
def test_a_cell_that_is_not_what_its_column_holds_is_named(ready, lot, cells, expected):
    assert problems(ready, csv_bytes([treatment_row(ready, lot, **cells)])) == [(2, *expected)]


def test_a_quoted_cell_across_lines_keeps_the_next_records_line_number(ready, lot):
    rows = [
        treatment_row(ready, lot, notes="first line\nsecond line"),
        treatment_row(ready, lot, performed_at=days_ago(5).isoformat()),
    ]
    found = problems(ready, csv_bytes(rows))
    assert {line for line, _column, _code in found} == {4}


def test_a_broken_quote_is_named(ready, lot):
    good = csv_bytes([treatment_row(ready, lot)]).decode()
    assert problems(ready, (good + 'EMR-2,1,"2024-01-01\n').encode()) == [
        (3, None, "csv_malformed")
    ]
    assert problems(ready, (good + 'EMR-2,"1"x,3\n').encode()) == [(3, None, "csv_malformed")]


def test_an_unknown_kind_is_refused(ready):
    from common.errors import DomainError

    with pytest.raises(DomainError) as error:
        history_import(actor=ready.administrator, clinic=ready.clinic, kind="donors", data=b"")
    assert error.value.codes == ["invalid_choice"]
