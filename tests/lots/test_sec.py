"""The Single European Code on a lot: each part's length, characters and country, the coding
systems, the expiry, rendering, the database's own checks, the API and the search."""

from __future__ import annotations

import datetime

import pytest
from django.db import IntegrityError, transaction

from common.errors import DomainError
from lots.models import Lot, SourceKind
from lots.sec import SingleEuropeanCode, search_parts
from lots.selectors import lot_use_problems, lots_matching_sec
from lots.services import lot_create
from tests.api_helpers import API, error_codes, error_fields
from tests.factories import ClinicFactory, LotFactory, ProductFactory
from tests.openapi_helpers import assert_matches_schema

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]

EXPIRES = datetime.date(2031, 6, 30)
VALID = {
    "issuing_country": "DE",
    "establishment_code": "000123",
    "donation_number": "A99992112345X",
    "coding_system": "E",
    "product_number": "00T0001",
    "split_number": "000",
    "expiry_date": "20310630",
}
CODE = "DE000123A99992112345XE00T000100020310630"
EYE_READABLE = "SEC DE000123A99992112345X E00T000100020310630"


def create(actor, *, product=None, sec=None, lot_number="EXO-SEC-1", **fields) -> Lot:
    return lot_create(
        actor=actor,
        product=product or ProductFactory(),
        lot_number=lot_number,
        manufactured_on=datetime.date(2030, 6, 30),
        expires_on=EXPIRES,
        quantity=10,
        unit="vial",
        regulatory_basis="ind",
        regulatory_number="IND 1",
        sec=sec,
        **fields,
    )


def refused(actor, **sec_overrides) -> DomainError:
    with pytest.raises(DomainError) as raised:
        create(actor, sec={**VALID, **sec_overrides})
    return raised.value


def problems(error: DomainError) -> list[tuple[str, str | None]]:
    return [(problem.code, problem.field) for problem in error.problems]


def test_a_valid_code_is_stored_and_rendered(quality_manager):
    lot = create(quality_manager, sec=VALID)

    lot = Lot.objects.get(pk=lot.pk)
    assert lot.sec is not None
    assert lot.sec.code == CODE
    assert len(lot.sec.code) == 40
    assert lot.sec.eye_readable == EYE_READABLE
    assert lot.sec.donation_sequence == "DE000123A99992112345X"
    assert lot.sec.product_sequence == "E00T000100020310630"


def test_parts_are_read_in_either_case_and_without_blanks(quality_manager):
    lot = create(
        quality_manager, sec={**VALID, "issuing_country": " de ", "product_number": "00t0001"}
    )

    assert lot.sec is not None
    assert lot.sec.code == CODE


@pytest.mark.parametrize("system", ["E", "A", "B"])
def test_each_coding_system_is_accepted(quality_manager, system):
    lot = create(quality_manager, sec={**VALID, "coding_system": system})

    assert lot.sec is not None
    assert lot.sec.coding_system == system


@pytest.mark.parametrize(
    ("part", "value", "code"),
    [
        ("issuing_country", "D", "sec_issuing_country_length"),
        ("issuing_country", "DEU", "sec_issuing_country_length"),
        ("issuing_country", "D1", "sec_issuing_country_invalid"),
        ("issuing_country", "XX", "sec_issuing_country_unknown"),
        ("issuing_country", "EU", "sec_issuing_country_unknown"),
        ("establishment_code", "00012", "sec_establishment_code_length"),
        ("establishment_code", "0001234", "sec_establishment_code_length"),
        ("establishment_code", "000-12", "sec_establishment_code_invalid"),
        ("establishment_code", "0001É3", "sec_establishment_code_invalid"),
        ("donation_number", "A9999211234", "sec_donation_number_length"),
        ("donation_number", "A99992112345XY", "sec_donation_number_length"),
        ("donation_number", "A9999 112345X", "sec_donation_number_invalid"),
        ("coding_system", "C", "sec_coding_system_invalid"),
        ("coding_system", "1", "sec_coding_system_invalid"),
        ("coding_system", "EA", "sec_coding_system_length"),
        ("product_number", "00T001", "sec_product_number_length"),
        ("product_number", "00T_001", "sec_product_number_invalid"),
        ("split_number", "00", "sec_split_number_length"),
        ("split_number", "0001", "sec_split_number_length"),
        ("split_number", "0.1", "sec_split_number_invalid"),
        ("expiry_date", "2031063", "sec_expiry_date_invalid"),
        ("expiry_date", "2031-06-30", "sec_expiry_date_invalid"),
        ("expiry_date", "20310231", "sec_expiry_date_invalid"),
        ("expiry_date", "20310701", "sec_expiry_date_mismatch"),
        ("expiry_date", "00000000", "sec_expiry_date_invalid"),
    ],
)
def test_a_malformed_part_is_refused_naming_it(quality_manager, part, value, code):
    error = refused(quality_manager, **{part: value})

    assert error.status == 400
    assert problems(error) == [(code, f"sec.{part}")]
    assert not Lot.objects.exists()


def test_a_missing_part_is_refused_as_too_short(quality_manager):
    sec = dict(VALID)
    del sec["split_number"]

    with pytest.raises(DomainError) as raised:
        create(quality_manager, sec=sec)

    assert problems(raised.value) == [("sec_split_number_length", "sec.split_number")]


def test_every_bad_part_is_named_at_once(quality_manager):
    error = refused(quality_manager, issuing_country="ZZ", split_number="1", coding_system="X")

    assert problems(error) == [
        ("sec_issuing_country_unknown", "sec.issuing_country"),
        ("sec_coding_system_invalid", "sec.coding_system"),
        ("sec_split_number_length", "sec.split_number"),
    ]


def test_a_product_not_of_human_origin_takes_no_sec(quality_manager):
    product = ProductFactory(source_kind=SourceKind.SYNTHETIC, tissue="")

    with pytest.raises(DomainError) as raised:
        create(quality_manager, product=product, sec=VALID)

    assert problems(raised.value) == [("sec_not_applicable", "sec")]


def test_two_lots_cannot_carry_the_same_code(quality_manager):
    create(quality_manager, sec=VALID)

    with pytest.raises(DomainError) as raised:
        create(quality_manager, sec=VALID, lot_number="EXO-SEC-2")

    assert problems(raised.value) == [("sec_taken", "sec")]


def test_another_split_of_the_same_donation_is_another_code(quality_manager):
    create(quality_manager, sec=VALID)

    lot = create(quality_manager, sec={**VALID, "split_number": "001"}, lot_number="EXO-SEC-2")

    assert lot.sec is not None
    assert lot.sec.split_number == "001"


def test_the_database_refuses_a_partial_or_malformed_code():
    lot = LotFactory()
    for fields in ({"sec_issuing_country": "DE"}, {**_columns(), "sec_coding_system": "Z"}):
        with pytest.raises(IntegrityError), transaction.atomic():
            Lot.objects.filter(pk=lot.pk).update(**fields)


def _columns() -> dict[str, str]:
    return {f"sec_{name}": value for name, value in VALID.items() if name != "expiry_date"}


def test_search_reads_full_partial_and_eye_readable_codes(quality_manager):
    lot = create(quality_manager, sec=VALID)
    create(
        quality_manager,
        sec={**VALID, "donation_number": "B00001000000A"},
        lot_number="EXO-SEC-2",
    )
    lots = Lot.objects.all()

    for query in (CODE, EYE_READABLE, "DE000123A99992112345X", "de000123 a9999", "SEC" + CODE):
        assert list(lots_matching_sec(lots, query)) == [lot], query
    assert lots_matching_sec(lots, "DE000123").count() == 2
    assert not lots_matching_sec(lots, CODE[:-8] + "20310701").exists()
    assert not lots_matching_sec(lots, "DE-000123").exists()
    assert search_parts("x" * 41) is None


def test_a_sec_clinic_refuses_a_human_lot_without_a_code():
    clinic = ClinicFactory(requires_sec=True)
    without = LotFactory()
    day = datetime.date(2030, 7, 1)

    found = lot_use_problems(lot=without, clinic=clinic, day=day, where="lines[0].lot")
    elsewhere = lot_use_problems(lot=without, clinic=ClinicFactory(), day=day, where="lines[0].lot")

    assert [(p.code, p.field) for p in found] == [("lot_sec_missing", "lines[0].lot")]
    assert elsewhere == []


def test_a_sec_clinic_accepts_a_coded_lot_and_a_synthetic_one(quality_manager):
    clinic = ClinicFactory(requires_sec=True)
    coded = create(quality_manager, sec=VALID)
    synthetic = LotFactory(product=ProductFactory(source_kind=SourceKind.SYNTHETIC, tissue=""))
    day = datetime.date(2030, 7, 1)

    assert lot_use_problems(lot=coded, clinic=clinic, day=day, where="x") == []
    assert lot_use_problems(lot=synthetic, clinic=clinic, day=day, where="x") == []


def test_the_code_type_renders_the_directives_layout():
    sec = SingleEuropeanCode(
        issuing_country="BE",
        establishment_code="ABC123",
        donation_number="0000000000001",
        coding_system="A",
        product_number="V0000A1",
        split_number="002",
        expires_on=datetime.date(2027, 8, 7),
    )

    assert sec.eye_readable == "SEC BEABC1230000000000001 AV0000A100220270807"


# ---------------------------------------------------------------------------------------------
# API


def lot_body(product, **overrides):
    return {
        "product": product.pk,
        "lot_number": "EXO-SEC-API",
        "manufactured_on": "2030-06-30",
        "expires_on": EXPIRES.isoformat(),
        "quantity": 20,
        "unit": "vial",
        "regulatory_basis": "ind",
        "regulatory_number": "IND 012345",
        **overrides,
    }


def test_api_records_and_shows_the_code(qm_client):
    response = qm_client.post(f"{API}/lots/", lot_body(ProductFactory(), sec=VALID), format="json")

    assert response.status_code == 201, response.json()
    sec = response.json()["sec"]
    assert sec == {**VALID, "code": CODE, "eye_readable": EYE_READABLE}
    assert_matches_schema(response, "post", "/api/v1/lots/")


def test_api_lot_without_code_shows_null(qm_client):
    response = qm_client.post(f"{API}/lots/", lot_body(ProductFactory()), format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["sec"] is None


def test_api_refuses_a_bad_part_naming_it(qm_client):
    response = qm_client.post(
        f"{API}/lots/",
        lot_body(ProductFactory(), sec={**VALID, "issuing_country": "QQ", "expiry_date": "2031"}),
        format="json",
    )

    assert response.status_code == 400
    assert error_codes(response) == ["sec_issuing_country_unknown", "sec_expiry_date_invalid"]
    assert error_fields(response) == ["sec.issuing_country", "sec.expiry_date"]


def test_api_refuses_a_missing_part_naming_it(qm_client):
    sec = dict(VALID)
    del sec["donation_number"]

    response = qm_client.post(f"{API}/lots/", lot_body(ProductFactory(), sec=sec), format="json")

    assert response.status_code == 400
    assert error_fields(response) == ["sec.donation_number"]


def test_api_list_filters_by_sec(qm_client, quality_manager):
    lot = create(quality_manager, sec=VALID)
    LotFactory()

    full = qm_client.get(f"{API}/lots/", {"sec": EYE_READABLE})
    donation = qm_client.get(f"{API}/lots/", {"sec": "DE000123A99992112345X"})
    bad = qm_client.get(f"{API}/lots/", {"sec": "DE-000123"})

    assert [row["id"] for row in full.json()["results"]] == [lot.pk]
    assert [row["id"] for row in donation.json()["results"]] == [lot.pk]
    assert bad.status_code == 400
    assert error_codes(bad) == ["sec_search_invalid"]
    assert error_fields(bad) == ["sec"]
