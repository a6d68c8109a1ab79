"""Scanning a vial's GS1 DataMatrix (REGULATORY.md, "Code formats"): the published example in its
raw and human-readable forms, day 00 in an expiry, and a code of its own for each way a scan
fails to name a lot."""

from __future__ import annotations

import datetime

import pytest

from common.errors import DomainError
from lots.scan import GS, Scan, scan_parse, scan_resolve
from tests.factories import LotFactory, ProductFactory

# The published example: ]d2 01 09506000134352 17 270630 10 EXO-LOT-0001 GS 21 SN000123
RAW = "]d2" + "0109506000134352" + "17270630" + "10EXO-LOT-0001" + GS + "21SN000123"
HUMAN_READABLE = "(01)09506000134352(17)270630(10)EXO-LOT-0001(21)SN000123"
EXAMPLE = Scan(
    gtin="09506000134352",
    lot_number="EXO-LOT-0001",
    expiry=datetime.date(2027, 6, 30),
    serial="SN000123",
)


@pytest.mark.parametrize(
    "value",
    [
        RAW,
        HUMAN_READABLE,
        RAW.removeprefix("]d2"),  # a scanner set to leave out the symbology identifier
        RAW.replace(GS, "<GS>"),  # a keyboard-wedge scanner spelling out the separator
        f"  {HUMAN_READABLE}\n",
    ],
    ids=["raw", "human-readable", "no-symbology-identifier", "spelled-out-gs", "whitespace"],
)
def test_scan_parse_reads_the_published_example(value):
    assert scan_parse(value) == EXAMPLE


@pytest.mark.parametrize(
    ("expiry", "day"),
    [
        ("270600", datetime.date(2027, 6, 30)),
        ("280200", datetime.date(2028, 2, 29)),  # a leap year
        ("270200", datetime.date(2027, 2, 28)),
        ("271200", datetime.date(2027, 12, 31)),
        ("270615", datetime.date(2027, 6, 15)),
    ],
)
def test_an_expiry_on_day_00_means_the_last_day_of_the_month(expiry, day):
    assert scan_parse(f"(01)09506000134352(17){expiry}(10)A1").expiry == day
    assert scan_parse(f"]d2010950600013435217{expiry}10A1").expiry == day


def test_scan_parse_leaves_out_what_the_scan_does_not_hold():
    assert scan_parse("(01)09506000134352") == Scan(
        gtin="09506000134352", lot_number=None, expiry=None, serial=None
    )


def test_scan_parse_gives_a_shorter_gtin_as_14_digits():
    # GTIN-13 0950600013435 + check digit 2, as GS1's calculator example; AI 01 holds 14 digits
    assert scan_parse("(01)09506000134352(10)A1").gtin == "09506000134352"


def parse_error(value: str) -> DomainError:
    with pytest.raises(DomainError) as caught:
        scan_parse(value)
    return caught.value


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "hello",
        "(01)0950600013435",  # 13 digits where AI 01 wants 14
        "(01)09506000134352(17)271399",  # month 13
        "(01)09506000134352(17)270631",  # 31 June
        "(01)",
    ],
)
def test_scan_parse_refuses_a_string_that_is_not_a_gs1_element_string(value):
    error = parse_error(value)

    assert error.codes == ["scan_malformed"]
    assert error.status == 400
    assert error.problems[0].field == "scan"


@pytest.mark.parametrize("value", ["(10)EXO-LOT-0001(17)270630", "]d210EXO-LOT-0001"])
def test_scan_parse_refuses_a_scan_without_a_gtin(value):
    assert parse_error(value).codes == ["scan_gtin_missing"]


@pytest.mark.parametrize(
    "value", ["(01)09506000134353(10)EXO-LOT-0001", "]d2010950600013435810EXO-LOT-0001"]
)
def test_scan_parse_refuses_a_gtin_with_a_wrong_check_digit(value):
    error = parse_error(value)

    assert error.codes == ["scan_gtin_invalid"]
    assert "check digit" in error.problems[0].message


# ---------------------------------------------------------------------------------------------
# Resolving a scan to a lot on record


@pytest.fixture
def lot(db):
    product = ProductFactory(gtin="09506000134352")
    return LotFactory(
        product=product,
        lot_number="EXO-LOT-0001",
        manufactured_on=datetime.date(2025, 6, 30),
        expires_on=datetime.date(2027, 6, 30),
    )


def resolve_error(value: str) -> DomainError:
    with pytest.raises(DomainError) as caught:
        scan_resolve(value)
    return caught.value


@pytest.mark.parametrize("value", [RAW, HUMAN_READABLE])
def test_scan_resolve_finds_the_lot(lot, value):
    resolution = scan_resolve(value)

    assert resolution.lot == lot
    assert resolution.scan == EXAMPLE
    assert resolution.warnings == []


def test_scan_resolve_picks_the_lot_of_the_scanned_product(lot):
    # given the same lot number under another product of another manufacturer
    LotFactory(lot_number="EXO-LOT-0001", expires_on=datetime.date(2027, 6, 30))

    assert scan_resolve(RAW).lot == lot


def test_scan_resolve_accepts_day_00_for_a_lot_expiring_at_the_end_of_the_month(lot):
    assert scan_resolve("(01)09506000134352(17)270600(10)EXO-LOT-0001").lot == lot


def test_scan_resolve_accepts_a_scan_without_an_expiry(lot):
    assert scan_resolve("(01)09506000134352(10)EXO-LOT-0001").lot == lot


def test_scan_resolve_refuses_a_malformed_scan(lot):
    assert resolve_error("not a barcode").codes == ["scan_malformed"]


def test_scan_resolve_refuses_a_scan_without_a_gtin(lot):
    assert resolve_error("(10)EXO-LOT-0001").codes == ["scan_gtin_missing"]


def test_scan_resolve_refuses_a_gtin_with_a_wrong_check_digit(lot):
    assert resolve_error("(01)09506000134353(10)EXO-LOT-0001").codes == ["scan_gtin_invalid"]


def test_scan_resolve_refuses_a_gtin_no_product_has(lot):
    # 0950600013436 + its check digit 9: a valid GTIN, but not on record
    error = resolve_error("(01)09506000134369(10)EXO-LOT-0001")

    assert error.codes == ["scan_gtin_unknown"]
    assert error.status == 404
    assert "09506000134369" in error.problems[0].message


def test_scan_resolve_refuses_a_scan_without_a_lot_number(lot):
    error = resolve_error("(01)09506000134352(17)270630")

    assert error.codes == ["scan_lot_missing"]
    assert error.status == 400


def test_scan_resolve_refuses_a_lot_number_not_on_record(lot):
    error = resolve_error("(01)09506000134352(10)EXO-LOT-9999")

    assert error.codes == ["scan_lot_unknown"]
    assert error.status == 404
    assert "EXO-LOT-9999" in error.problems[0].message


def test_scan_resolve_does_not_find_another_products_lot(lot):
    # the lot number exists, but under a product with another GTIN
    other = ProductFactory(gtin="09506000134369")

    assert resolve_error(f"(01){other.gtin}(10)EXO-LOT-0001").codes == ["scan_lot_unknown"]


def test_scan_resolve_refuses_an_expiry_that_disagrees_with_the_lot_record(lot):
    error = resolve_error("(01)09506000134352(17)270629(10)EXO-LOT-0001")

    assert error.codes == ["scan_expiry_mismatch"]
    assert error.status == 409
    assert "2027-06-29" in error.problems[0].message
    assert "2027-06-30" in error.problems[0].message
