"""The Single European Code for tissues and cells (Directive 2006/86/EC Annex VII as amended by
Directive (EU) 2015/565, carried into Regulation (EU) 2024/1938).

A SEC is 40 characters in two sequences. The donation identification sequence names the tissue
establishment (ISO 3166-1 alpha-2 country, 6-character establishment number from the EU Tissue
Establishment Compendium) and the donation (13 characters, assigned by the establishment or an
ISBT 128 DIN). The product identification sequence names the product (coding system E for EUTC,
A for ISBT 128, B for Eurocode, and a 7-character product number), the split (3 characters) and
the expiry date (YYYYMMDD). It is printed eye-readable after the acronym SEC, the two sequences
separated by a single space.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

import pycountry
from django.db import models
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from common.errors import Problem


class SecCodingSystem(models.TextChoices):
    EUTC = "E", gettext_lazy("E: EU Tissue and Cell product coding (EUTC)")
    ISBT_128 = "A", gettext_lazy("A: ISBT 128")
    EUROCODE = "B", gettext_lazy("B: Eurocode")


# Annex VII: the alphanumeric parts are upper-case letters and digits; the expiry is 8 digits.
ALPHANUMERIC = r"[A-Z0-9]"
PARTS: dict[str, tuple[int, str]] = {
    "issuing_country": (2, r"[A-Z]{2}"),
    "establishment_code": (6, ALPHANUMERIC + "{6}"),
    "donation_number": (13, ALPHANUMERIC + "{13}"),
    "coding_system": (1, "[EAB]"),
    "product_number": (7, ALPHANUMERIC + "{7}"),
    "split_number": (3, ALPHANUMERIC + "{3}"),
}
PART_LABELS = {
    "issuing_country": gettext_lazy("issuing country"),
    "establishment_code": gettext_lazy("tissue establishment code"),
    "donation_number": gettext_lazy("unique donation number"),
    "coding_system": gettext_lazy("product coding system"),
    "product_number": gettext_lazy("product number"),
    "split_number": gettext_lazy("split number"),
}
DONATION_SEQUENCE_LENGTH = 21
CODE_LENGTH = 40
_EXPIRY = re.compile(r"[0-9]{8}")


@dataclass(frozen=True)
class SingleEuropeanCode:
    issuing_country: str
    establishment_code: str
    donation_number: str
    coding_system: str
    product_number: str
    split_number: str
    expires_on: datetime.date

    @property
    def donation_sequence(self) -> str:
        return f"{self.issuing_country}{self.establishment_code}{self.donation_number}"

    @property
    def product_sequence(self) -> str:
        expiry = self.expires_on.strftime("%Y%m%d")
        return f"{self.coding_system}{self.product_number}{self.split_number}{expiry}"

    @property
    def code(self) -> str:
        """The 40 characters as a barcode or a search carries them."""
        return self.donation_sequence + self.product_sequence

    @property
    def eye_readable(self) -> str:
        """As Article 10a asks it printed: after "SEC", the two sequences separated by a space."""
        return f"SEC {self.donation_sequence} {self.product_sequence}"


def normalise_part(value: str | None) -> str:
    """Upper case without surrounding blanks: codes are read off labels in either case."""
    return (value or "").strip().upper()


def part_problems(name: str, value: str, where: str) -> list[Problem]:
    """Why one part of a SEC is malformed: its length, its characters, or an unknown country."""
    length, pattern = PARTS[name]
    if len(value) != length:
        return [
            Problem(
                f"sec_{name}_length",
                _("The SEC's %(part)s is %(length)s characters; %(given)s given.")
                % {"part": PART_LABELS[name], "length": length, "given": len(value)},
                where,
            )
        ]
    if not re.fullmatch(pattern, value):
        if name == "coding_system":
            message = _(
                "The SEC's product coding system is E (EUTC), A (ISBT 128) or B (Eurocode)."
            )
        elif name == "issuing_country":
            message = _("The SEC's issuing country is two letters (ISO 3166-1 alpha-2).")
        else:
            message = _("The SEC's %(part)s holds upper-case letters A-Z and digits only.") % {
                "part": PART_LABELS[name]
            }
        return [Problem(f"sec_{name}_invalid", message, where)]
    if name == "issuing_country" and pycountry.countries.get(alpha_2=value) is None:
        return [
            Problem(
                "sec_issuing_country_unknown",
                _("%(value)s is not an ISO 3166-1 country code.") % {"value": value},
                where,
            )
        ]
    return []


def expiry_problems(value: str, expires_on: datetime.date, where: str) -> list[Problem]:
    """The SEC's expiry date is 8 digits, a real date, and the lot's own expiry date."""
    if not _EXPIRY.fullmatch(value):
        return [
            Problem(
                "sec_expiry_date_invalid",
                _("The SEC's expiry date is 8 digits, YYYYMMDD."),
                where,
            )
        ]
    try:
        stated = datetime.date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        return [
            Problem(
                "sec_expiry_date_invalid",
                _("%(value)s is not a calendar date (YYYYMMDD).") % {"value": value},
                where,
            )
        ]
    if stated != expires_on:
        return [
            Problem(
                "sec_expiry_date_mismatch",
                _("The SEC's expiry date %(stated)s is not the lot's expiry date %(expires_on)s.")
                % {"stated": stated.isoformat(), "expires_on": expires_on.isoformat()},
                where,
            )
        ]
    return []


def search_parts(value: str) -> dict[str, str] | None:
    """The parts a search string names, read left to right: a full SEC, its donation
    identification sequence, or any leading part of it, eye-readable ("SEC DE..." with spaces) or
    not. None when the string cannot be the start of a SEC."""
    normal = normalise_part(value)
    # "SEC" then a space is the printed prefix, whatever follows; without the space it is the
    # prefix only where the rest is a whole sequence (else "SEC..." may be Sweden's "SE" and an
    # establishment code starting with "C").
    if re.match(r"SEC\s", normal):
        normal = normal[3:]
    compact = re.sub(r"\s+", "", normal)
    if (
        compact.startswith("SEC")
        and len(compact) > 3
        and len(compact) - 3
        in (
            DONATION_SEQUENCE_LENGTH,
            CODE_LENGTH,
        )
    ):
        compact = compact[3:]
    if not compact or len(compact) > CODE_LENGTH or not re.fullmatch(r"[A-Z0-9]+", compact):
        return None
    parts: dict[str, str] = {}
    start = 0
    for name, (length, _pattern) in PARTS.items():
        piece = compact[start : start + length]
        if piece:
            parts[name] = piece
        start += length
    if len(compact) > start:
        parts["expiry"] = compact[start:]
    return parts
