"""The forward trace's CSV is written by PostgreSQL (COPY) with its cells formatted in SQL: the same
bytes as csv.writer and csv_cell write, the formula guard for every start a spreadsheet would run,
and times as ISO 8601 in UTC."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from common.csv import (
    FORMULA_STARTS,
    STREAM_IN_INDEX_ORDER,
    csv_cells,
    csv_copy_lines,
    csv_lines,
)
from lots.models import Lot
from providers.models import Clinic
from tests.api_helpers import API
from tests.factories import SEC_FIELDS, ClinicFactory
from tests.treatments.test_api import client_for, make_site, released_lot
from treatments.models import TreatmentLine
from treatments.trace_api.forward import FORWARD_CSV_COLUMNS, forward_csv_source

pytestmark = pytest.mark.django_db

HEADER = ("id", "name", "address", "consent_required", "created_at")
FIELDS = ("pk", "name", "address", "consent_required", "created_at")

AWKWARD_TEXTS = [
    *(f"{start}1+2" for start in FORMULA_STARTS),
    "Zürich Königstraße 5, Étage 2 — 東京",
    "Smith, Jones and Partners",
    'The "Clinic"',
    "two\nlines",
    "carriage\rreturn inside",
    "a'quote",
    " =leading space",
    "",
]


def copied(queryset, fields=FIELDS, header=HEADER) -> bytes:
    return b"".join(csv_copy_lines(header, csv_cells(queryset, fields)))


def written_by_python(queryset, fields=FIELDS, header=HEADER) -> bytes:
    return "".join(csv_lines(header, queryset.values_list(*fields))).encode()


def clinics_named(*names: str) -> list[Clinic]:
    return [ClinicFactory(name=name or "unnamed", address=name) for name in names]


@pytest.mark.parametrize("start", FORMULA_STARTS)
def test_a_cell_a_spreadsheet_would_run_is_prefixed_with_a_quote(start):
    clinic = ClinicFactory(name=f"{start}HYPERLINK(1)", address="ok")
    line = copied(Clinic.objects.filter(pk=clinic.pk)).split(b"\r\n")[1]
    assert f"'{start}HYPERLINK(1)".encode() in line
    assert copied(Clinic.objects.filter(pk=clinic.pk)) == written_by_python(
        Clinic.objects.filter(pk=clinic.pk)
    )


def test_awkward_cells_are_written_byte_for_byte_as_csv_writer_writes_them():
    clinics = clinics_named(*AWKWARD_TEXTS)
    queryset = Clinic.objects.filter(pk__in=[c.pk for c in clinics]).order_by("pk")
    content = copied(queryset)
    assert content == written_by_python(queryset)
    assert b'"Smith, Jones and Partners"' in content
    assert b'"The ""Clinic"""' in content
    assert b'"two\nlines"' in content
    assert "Zürich Königstraße 5, Étage 2 — 東京".encode() in content
    assert content.endswith(b"\r\n")
    assert content.count(b"\r\n") == 1 + len(AWKWARD_TEXTS)  # the header, then a line per row


@pytest.mark.parametrize(
    ("at", "written"),
    [
        (
            datetime.datetime(2026, 3, 29, 0, 30, 5, 120, tzinfo=datetime.UTC),
            "2026-03-29T00:30:05.000120+00:00",
        ),
        (
            datetime.datetime(
                2026, 3, 29, 2, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
            ),
            "2026-03-29T00:30:00+00:00",
        ),
    ],
)
def test_times_are_iso_8601_in_utc_as_python_writes_them(at, written):
    clinic = ClinicFactory()
    Clinic.objects.filter(pk=clinic.pk).update(created_at=at)
    queryset = Clinic.objects.filter(pk=clinic.pk)
    content = copied(queryset)
    assert content.split(b"\r\n")[1].endswith(f",{written}".encode())
    assert content == written_by_python(queryset)


def test_times_are_in_utc_whatever_the_sessions_time_zone():
    clinic = ClinicFactory()
    at = datetime.datetime(2026, 3, 29, 0, 30, tzinfo=datetime.UTC)
    Clinic.objects.filter(pk=clinic.pk).update(created_at=at)
    with connection.cursor() as cursor:
        cursor.execute("SET TIME ZONE 'America/New_York'")
    content = copied(Clinic.objects.filter(pk=clinic.pk))
    assert content.split(b"\r\n")[1].endswith(b",2026-03-29T00:30:00+00:00")


def test_a_yes_no_cell_reads_as_python_writes_it():
    clinic = ClinicFactory(consent_required=True)
    other = ClinicFactory(consent_required=False)
    queryset = Clinic.objects.filter(pk__in=[clinic.pk, other.pk]).order_by("pk")
    assert copied(queryset) == written_by_python(queryset)


def test_rows_that_cannot_match_give_the_header_alone_without_a_query(
    django_assert_num_queries,
):
    with django_assert_num_queries(0):
        content = copied(Clinic.objects.filter(pk__in=[]))
    assert content == b"id,name,address,consent_required,created_at\r\n"


def test_a_kind_of_cell_that_would_read_differently_is_refused():
    with pytest.raises(TypeError, match="ArrayField"):
        csv_cells(TreatmentLine.objects.all(), ["lot__product__permitted_routes"])


def test_forward_trace_csv_is_what_the_python_writer_wrote(quality_manager):
    lot = released_lot(quality_manager, lot_number="=LOT-1")
    Lot.objects.filter(pk=lot.pk).update(**SEC_FIELDS)
    here = make_site(quality_manager, clinic=ClinicFactory(name='-Praxis "Mitte", Zürich'), lot=lot)
    there = make_site(quality_manager, clinic=ClinicFactory(name="@Clinic\nNorth"), lot=lot)
    here.record(units=2)
    here.record(practitioner=_practitioner_named(here, "+Dr. Quote's"), units=1)
    there.record(units=4)

    response = client_for(quality_manager).get(
        f"{API}/traces/forward/", {"lot": lot.pk, "format": "csv"}
    )

    lines = TreatmentLine.objects.filter(lot=lot).order_by(
        "lot_id", "treatment__performed_at", "treatment_id"
    )
    expected = "".join(
        csv_lines(
            [name for name, _ in FORWARD_CSV_COLUMNS],
            forward_csv_source(lines).values_list(*(field for _, field in FORWARD_CSV_COLUMNS)),
        )
    ).encode()
    content = b"".join(response.streaming_content)
    assert content == expected
    assert b"'=LOT-1" in content
    assert b"'+Dr. Quote's" in content
    assert content.count(b",SEC DE000123A99992112345X E00T0001000") == 3
    assert content.count(b"\r\n") == 4  # the header and three rows; the name keeps its LF


def _practitioner_named(site, name: str):
    from tests.treatments.test_api import practitioner_at

    practitioner = practitioner_at(site.clinic)
    practitioner.name = name
    practitioner.save(update_fields=["name"])
    return practitioner


def _setting(name: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SHOW {name}")
        return cursor.fetchone()[0]


def _enable_sort() -> str:
    return _setting("enable_sort")


@pytest.mark.django_db(transaction=True)
def test_the_copy_is_planned_for_its_first_row_and_the_setting_ends_with_the_stream():
    clinics_named("Alpha", "Beta", "Gamma")
    jit_before = _setting("jit")

    with CaptureQueriesContext(connection) as statements:
        written = copied(Clinic.objects.order_by("pk"))

    assert written.count(b"\r\n") == 4
    sent = [query["sql"] for query in statements.captured_queries]
    assert sent[0] == "BEGIN"
    assert sent[1] == STREAM_IN_INDEX_ORDER == "SET LOCAL enable_sort = off; SET LOCAL jit = off"
    assert sent[2].startswith("COPY (SELECT")
    assert sent[3] == "COMMIT"
    assert len(sent) == 4
    assert _enable_sort() == "on"
    assert _setting("jit") == jit_before
    assert not connection.in_atomic_block


@pytest.mark.django_db(transaction=True)
def test_a_client_that_goes_away_mid_stream_leaves_the_connection_as_it_found_it():
    clinics_named(*(f"Clinic {n}" for n in range(3)))
    stream = csv_copy_lines(HEADER, csv_cells(Clinic.objects.order_by("pk"), FIELDS))

    assert next(stream).startswith(b"id,name")
    assert b"Clinic" in next(stream)
    stream.close()  # what the server does when the client disconnects

    assert not connection.in_atomic_block
    assert _enable_sort() == "on"
    assert Clinic.objects.count() == 3
