"""Validators for the codes the system stores: GS1 GTIN, ISBT 128 DIN, ISO 3166 jurisdictions."""

from __future__ import annotations

import re

import pycountry
from biip import ParseError
from biip.gtin import Gtin
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from stdnum.iso7064 import mod_37_2

# Used with fullmatch(): with match(), `$` also matches before a trailing newline ("DN-0001\n").
_DIN_BODY = re.compile(r"[A-Z][A-Z0-9]{4}[0-9]{8}")
_JURISDICTION = re.compile(r"[A-Z]{2}(-[A-Z0-9]{1,3})?")
_DONOR_CODE = re.compile(r"[A-Z0-9][A-Z0-9-]{3,31}")


def whole_number(text: str, *, digits: int = 18) -> int | None:
    """The whole number a form's text gives, or None: ASCII digits only, at most `digits` of them
    (18 fit a bigint). str.isdigit() alone also accepts superscripts, which int() refuses, and
    other scripts' digits, which no one types for a count or an id here."""
    value = text.strip()
    if not (value.isascii() and value.isdigit()) or len(value) > digits:
        return None
    return int(value)


def normalise_gtin(value: str) -> str:
    """Return the GTIN as 14 digits; raise ValidationError(code='gtin_invalid') if malformed."""
    raw = (value or "").strip()
    # str.isdigit() also accepts non-ASCII digits (full-width, superscript), which GS1 does not.
    if not (raw.isascii() and raw.isdigit()) or len(raw) not in (8, 12, 13, 14):
        raise ValidationError(
            _("A GTIN is 8, 12, 13 or 14 digits."), code="gtin_invalid", params={"value": raw}
        )
    try:
        gtin = Gtin.parse(raw)
    except ParseError as error:
        raise ValidationError(
            _("GTIN %(gtin)s fails the GS1 check digit: %(error)s") % {"gtin": raw, "error": error},
            code="gtin_check_digit",
        ) from error
    return gtin.as_gtin_14()


def validate_gtin(value: str) -> None:
    if normalise_gtin(value) != value:
        raise ValidationError(_("A GTIN is stored as 14 digits."), code="gtin_invalid")


def isbt_din_check_character(din: str) -> str:
    """The ISO 7064 MOD 37-2 check character of a 13-character ISBT 128 donation number."""
    return str(mod_37_2.calc_check_digit(din))


def validate_isbt_din(value: str) -> None:
    """A DIN is 13 characters (facility 5, year 2, sequence 6) followed by its check character."""
    if len(value) != 14 or not _DIN_BODY.fullmatch(value[:13]):
        raise ValidationError(
            _(
                "An ISBT 128 DIN is 13 characters (facility code of 5, year of 2, sequence of 6) "
                "followed by its ISO 7064 MOD 37-2 check character."
            ),
            code="isbt_din_invalid",
        )
    expected = isbt_din_check_character(value[:13])
    if value[13] != expected:
        raise ValidationError(
            _("ISBT 128 DIN %(din)s has check character %(expected)s, not %(given)s.")
            % {"din": value[:13], "expected": expected, "given": value[13]},
            code="isbt_din_check_character",
        )


def validate_jurisdiction(value: str) -> None:
    """An ISO 3166-1 alpha-2 country (`DE`) or ISO 3166-2 subdivision (`US-TX`)."""
    if not _JURISDICTION.fullmatch(value or ""):
        raise ValidationError(
            _("A jurisdiction is an ISO 3166 code such as DE or US-TX."),
            code="jurisdiction_invalid",
        )
    known = (
        pycountry.subdivisions.get(code=value)  # type: ignore[no-untyped-call]
        if "-" in value
        else pycountry.countries.get(alpha_2=value)
    )
    if known is None:
        raise ValidationError(
            _("%(value)s is not an ISO 3166 code.") % {"value": value},
            code="jurisdiction_unknown",
        )


def jurisdiction_chain(value: str) -> list[str]:
    """The jurisdiction and the country it belongs to, most specific first: US-TX -> [US-TX, US]."""
    return [value, value.split("-")[0]] if "-" in value else [value]


# Where the EU's rules on tissues and cells apply, and with them the Single European Code
# (Directive 2006/86/EC as amended by (EU) 2015/565, carried into the SoHO Regulation (EU)
# 2024/1938): the 27 member states and the EEA states that take EU law on it (Iceland,
# Liechtenstein, Norway).
SEC_JURISDICTIONS = frozenset(
    {
        "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE",
        "IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE",
        "IS", "LI", "NO",
    }
)  # fmt: skip


def sec_required_in(jurisdiction: str) -> bool:
    """Whether the Single European Code is the law where a clinic in `jurisdiction` practises."""
    return jurisdiction_chain(jurisdiction)[-1].upper() in SEC_JURISDICTIONS


def validate_donor_code(value: str) -> None:
    """Donor codes are distinct codes, never a name or record number: upper-case letters, digits
    and hyphens with at least one digit, so a bare name cannot be entered as a code."""
    if not _DONOR_CODE.fullmatch(value or "") or not any(ch.isdigit() for ch in value):
        raise ValidationError(
            _(
                "A donor code is 4-32 upper-case letters, digits and hyphens with at least one "
                "digit; it must never hold a name or medical record number."
            ),
            code="donor_code_invalid",
        )
