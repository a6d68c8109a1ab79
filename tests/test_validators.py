"""The code formats the system stores, checked against their published examples (REGULATORY.md,
"Code formats, with published examples")."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from common.validators import (
    isbt_din_check_character,
    jurisdiction_chain,
    normalise_gtin,
    validate_donor_code,
    validate_gtin,
    validate_isbt_din,
    validate_jurisdiction,
    whole_number,
)

MOD37_2_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ*"
# GS1's example GTIN typed in full-width digits (U+FF10..U+FF19), which str.isdigit() accepts.
FULL_WIDTH_GTIN = "".join(chr(ord(digit) + 0xFEE0) for digit in "09506000134352")


def error_code(validator, value) -> str:
    with pytest.raises(ValidationError) as caught:
        validator(value)
    return caught.value.code


def gs1_check_digit(payload: str) -> str:
    """GS1 mod 10, computed independently of the code under test: weights 3 and 1 from the right."""
    total = sum(
        int(digit) * (3 if index % 2 == 0 else 1) for index, digit in enumerate(payload[::-1])
    )
    return str((10 - total % 10) % 10)


# ---------------------------------------------------------------------------------------------
# GTIN


def test_gs1_example_gtin_is_valid():
    # GS1's own calculator example: 0950600013435 gets check digit 2.
    assert gs1_check_digit("0950600013435") == "2"
    assert normalise_gtin("09506000134352") == "09506000134352"
    validate_gtin("09506000134352")


@pytest.mark.parametrize("check_digit", "013456789")
def test_gtin_with_a_wrong_check_digit_is_refused(check_digit):
    assert error_code(normalise_gtin, f"0950600013435{check_digit}") == "gtin_check_digit"


@pytest.mark.parametrize(
    ("given_gtin", "stored"),
    [
        ("9506000134352", "09506000134352"),  # GTIN-13
        ("4006381333931", "04006381333931"),  # GTIN-13 (EAN)
        ("036000291452", "00036000291452"),  # GTIN-12 (UPC-A)
        ("96385074", "00000096385074"),  # GTIN-8
        (" 09506000134352 ", "09506000134352"),  # surrounding blanks from a scanner
    ],
)
def test_shorter_gtins_are_normalised_to_fourteen_digits(given_gtin, stored):
    assert normalise_gtin(given_gtin) == stored


def test_stored_gtin_must_already_be_fourteen_digits():
    assert error_code(validate_gtin, "9506000134352") == "gtin_invalid"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "0950600013435X",
        "O9506000134352",  # letter O for zero
        "123456789",  # 9 digits
        "0000000000000000",  # 16 digits
        "09506-000134352",
        FULL_WIDTH_GTIN,  # full-width digits
        "0950600013435²",  # superscript two
    ],
)
def test_gtin_that_is_not_8_12_13_or_14_ascii_digits_is_refused(value):
    assert error_code(normalise_gtin, value) == "gtin_invalid"


@given(st.text(alphabet="0123456789", min_size=13, max_size=13))
def test_every_13_digit_payload_with_its_check_digit_is_a_valid_gtin(payload):
    gtin = payload + gs1_check_digit(payload)

    assert normalise_gtin(gtin) == gtin
    validate_gtin(gtin)


@given(st.text(alphabet="0123456789", min_size=13, max_size=13), st.integers(1, 9))
def test_every_other_final_digit_is_refused(payload, offset):
    wrong = str((int(gs1_check_digit(payload)) + offset) % 10)

    assert error_code(normalise_gtin, payload + wrong) == "gtin_check_digit"


# ---------------------------------------------------------------------------------------------
# ISBT 128 donation identification number


def test_published_isbt_128_example_has_check_character_h():
    assert isbt_din_check_character("G123498654321") == "H"
    validate_isbt_din("G123498654321H")


@pytest.mark.parametrize("check", [c for c in MOD37_2_ALPHABET if c != "H"])
def test_isbt_din_with_any_other_check_character_is_refused(check):
    assert error_code(validate_isbt_din, f"G123498654321{check}") == "isbt_din_check_character"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "G123498654321",  # no check character
        "G123498654321HH",  # one too many
        "G12349865432H",  # one too few
        "g123498654321H",  # lower case facility code
        "1123498654321H",  # facility code must start with a letter
        "G12349865432XH",  # sequence number must be digits
        "G1234-8654321H",
    ],
)
def test_isbt_din_of_the_wrong_shape_is_refused(value):
    assert error_code(validate_isbt_din, value) == "isbt_din_invalid"


@given(
    st.text(alphabet="ABCDEFGHIJKLMNPQRSTUVWXYZ", min_size=1, max_size=1),
    st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=4, max_size=4),
    st.text(alphabet="0123456789", min_size=8, max_size=8),
)
def test_every_din_with_its_computed_check_character_is_valid(letter, facility, year_and_sequence):
    body = letter + facility + year_and_sequence
    validate_isbt_din(body + isbt_din_check_character(body))


# ---------------------------------------------------------------------------------------------
# Jurisdictions


@pytest.mark.parametrize("value", ["DE", "US", "US-TX", "US-CA", "GB-ENG", "FR"])
def test_iso_3166_countries_and_subdivisions_are_valid(value):
    validate_jurisdiction(value)


@pytest.mark.parametrize("value", ["XX", "US-ZZ", "DE-XX"])
def test_unknown_iso_3166_codes_are_refused(value):
    assert error_code(validate_jurisdiction, value) == "jurisdiction_unknown"


@pytest.mark.parametrize(
    "value", ["de", "us-tx", "US-tx", "", "DEU", "US_TX", "US-TEXAS", "D", "DE\n", "US-TX\n"]
)
def test_malformed_jurisdictions_are_refused(value):
    assert error_code(validate_jurisdiction, value) == "jurisdiction_invalid"


def test_jurisdiction_chain_goes_from_subdivision_to_country():
    assert jurisdiction_chain("US-TX") == ["US-TX", "US"]
    assert jurisdiction_chain("DE") == ["DE"]


# ---------------------------------------------------------------------------------------------
# Donor codes


@pytest.mark.parametrize("value", ["DN-000001", "W1234", "2024-0001", "A" * 31 + "1"])
def test_donor_codes_of_letters_digits_and_hyphens_are_valid(value):
    validate_donor_code(value)


@pytest.mark.parametrize(
    "value",
    [
        "JANEDOE",  # a name: no digit
        "JANE-DOE",
        "dn-000001",  # lower case
        "Jane Doe 1",
        "DN1",  # too short
        "A" * 32 + "1",  # too long
        "-DN0001",  # starts with a hyphen
        "DN_0001",
        "",
        "DN-0001\n",  # a trailing newline must not slip through
    ],
)
def test_donor_codes_that_could_hold_a_name_or_are_malformed_are_refused(value):
    assert error_code(validate_donor_code, value) == "donor_code_invalid"


@pytest.mark.parametrize(
    ("text", "number"),
    [("0", 0), ("7", 7), (" 42 ", 42), ("007", 7), ("9" * 18, int("9" * 18))],
)
def test_whole_numbers_are_ascii_digits(text, number):
    assert whole_number(text) == number


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "-1",
        "+1",
        "1.0",
        "1e3",
        "1_000",
        "0x1F",
        "²",  # a superscript: str.isdigit() says yes, int() refuses
        "1²",
        "\uff11\uff12",  # full-width
        "١٢",  # Arabic-Indic
        "9" * 19,  # past a bigint
        "9" * 5000,  # past int()'s own limit on digits
    ],
)
def test_anything_else_is_no_whole_number(text):
    assert whole_number(text) is None


def test_the_number_of_digits_is_the_callers_to_bound():
    assert whole_number("1234", digits=3) is None
    assert whole_number("123", digits=3) == 123


@given(st.integers(min_value=0, max_value=10**18 - 1))
def test_every_bigint_sized_count_reads_back(number):
    assert whole_number(str(number)) == number
