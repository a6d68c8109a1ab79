"""The Single European Code in the traces: searched by, shown on each lot, and carried in each
CSV row, so that a member state's record of every use (tissue establishment, product identifier,
recipient, date, SEC) is one trace away."""

from __future__ import annotations

import datetime

import pytest

from lots.models import Lot, SourceKind
from lots.selectors import sec_eye_readable
from tests.api_helpers import error_codes, error_fields
from tests.factories import SEC_FIELDS, ProductFactory
from tests.openapi_helpers import assert_matches_schema
from tests.treatments.test_api import client_for, make_site, released_lot
from tests.treatments.test_trace_api import backward, csv_rows, forward

pytestmark = pytest.mark.django_db

EYE_READABLE_START = "SEC DE000123A99992112345X E00T0001000"


@pytest.fixture
def coded(quality_manager):
    """A human-derived lot with a SEC, used twice at one clinic, beside an uncoded lot."""
    lot = released_lot(quality_manager)
    Lot.objects.filter(pk=lot.pk).update(**SEC_FIELDS)
    lot.refresh_from_db()
    site = make_site(quality_manager, lot=lot)
    site.record(units=1)
    site.record(units=2)
    uncoded = released_lot(quality_manager)
    make_site(quality_manager, lot=uncoded).record(units=1)
    return {"lot": lot, "uncoded": uncoded, "site": site}


def test_the_database_writes_the_code_as_the_lot_prints_it(coded):
    written = dict(
        Lot.objects.filter(pk__in=[coded["lot"].pk, coded["uncoded"].pk])
        .annotate(printed=sec_eye_readable())
        .values_list("pk", "printed")
    )

    assert written[coded["lot"].pk] == coded["lot"].sec.eye_readable
    assert written[coded["lot"].pk].startswith(EYE_READABLE_START)
    assert written[coded["uncoded"].pk] is None


@pytest.mark.parametrize("system", ["E", "A", "B"])
@pytest.mark.parametrize("expires_on", [datetime.date(2031, 1, 2), datetime.date(2099, 12, 31)])
def test_every_coding_system_and_expiry_is_written_alike_by_both(system, expires_on):
    lot = Lot.objects.get(pk=released_lot_with(sec_coding_system=system, expires_on=expires_on).pk)

    written = Lot.objects.annotate(printed=sec_eye_readable()).get(pk=lot.pk).printed

    assert written == lot.sec.eye_readable
    assert written.endswith(expires_on.strftime("%Y%m%d"))


def released_lot_with(**fields) -> Lot:
    from tests.factories import LotFactory

    return LotFactory(**{**SEC_FIELDS, **fields})


@pytest.mark.parametrize(
    "search",
    [
        EYE_READABLE_START,
        "DE000123A99992112345X",
        "de000123a99992112345x",
        "SEC DE000123",
        "DE000123A999",
        "DE 000123 A99992112345X",
    ],
)
def test_the_forward_trace_finds_the_lot_by_its_code_whole_or_leading_part(coded, auditor, search):
    response = forward(client_for(auditor), sec=search)

    assert response.status_code == 200, response.content
    assert_matches_schema(response, "get", "/api/v1/traces/forward/")
    body = response.json()
    assert [lot["id"] for lot in body["lots"]] == [coded["lot"].pk]
    assert body["lots"][0]["sec"] == coded["lot"].sec.eye_readable
    assert body["counts"]["treatments"] == 2


@pytest.mark.parametrize("search", ["FR000123", "DE000124", "DE000123B", "!!!", "SEC"])
def test_a_code_no_lot_starts_with_finds_nothing(coded, auditor, search):
    response = forward(client_for(auditor), sec=search)

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["lots"], body["treatments"], body["counts"]["lots"]) == ([], [], 0)


def test_a_code_too_long_to_be_one_is_refused_naming_the_parameter(coded, auditor):
    response = forward(client_for(auditor), sec="D" * 61)

    assert response.status_code == 400
    assert error_codes(response) == ["max_length"]
    assert error_fields(response) == ["sec"]


def test_the_code_narrows_the_other_choices(coded, auditor):
    lot = coded["lot"]

    same = forward(client_for(auditor), product=lot.product_id, sec="DE000123").json()
    other = forward(client_for(auditor), product=coded["uncoded"].product_id, sec="DE000123")

    assert [row["id"] for row in same["lots"]] == [lot.pk]
    assert other.json()["lots"] == []


def test_a_lot_without_a_code_shows_null(coded, auditor):
    body = forward(client_for(auditor), lot=coded["uncoded"].pk).json()

    assert body["lots"][0]["sec"] is None


def test_the_forward_csv_carries_the_code_on_every_row(coded, auditor):
    response = forward(
        client_for(auditor), lot=[coded["lot"].pk, coded["uncoded"].pk], format="csv"
    )

    rows = csv_rows(response)
    column = rows[0].index("lot_sec")
    by_lot = {(row[rows[0].index("lot")], row[column]) for row in rows[1:]}
    assert by_lot == {
        (str(coded["lot"].pk), coded["lot"].sec.eye_readable),
        (str(coded["uncoded"].pk), ""),
    }
    assert len(rows) == 4


def test_the_backward_trace_shows_the_code_of_each_lot_the_patient_received(coded, auditor):
    patient = coded["site"].patient

    response = backward(client_for(auditor), patient=patient.pk)

    assert response.status_code == 200
    assert_matches_schema(response, "get", "/api/v1/traces/backward/")
    lots = response.json()["lots"]
    assert [entry["lot"]["sec"] for entry in lots] == [coded["lot"].sec.eye_readable]


def test_the_backward_csv_is_the_member_states_use_record(coded, auditor):
    site = coded["site"]

    rows = csv_rows(backward(client_for(auditor), patient=site.patient.pk, format="csv"))

    header = rows[0]
    for row in rows[1:]:
        record = dict(zip(header, row, strict=True))
        assert record["lot_sec"] == coded["lot"].sec.eye_readable
        assert record["patient_reference"] == site.patient.reference
        assert record["clinic"] == site.clinic.name
        assert record["performed_at"]
    assert len(rows) == 3


def test_a_synthetic_lot_never_carries_a_code(quality_manager, auditor):
    synthetic = released_lot(
        quality_manager, product=ProductFactory(source_kind=SourceKind.SYNTHETIC, tissue="")
    )
    make_site(quality_manager, lot=synthetic).record(units=1)

    body = forward(client_for(auditor), lot=synthetic.pk).json()

    assert body["lots"][0]["sec"] is None
