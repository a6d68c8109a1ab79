"""Resolve a scanned GS1 DataMatrix (or its human-readable form) to a lot.

Scanners send either the raw string, starting with the symbology identifier `]d2` and with GS
(ASCII 29) after each variable-length field that is not last, or the human-readable form with
application identifiers in parentheses. biip parses both; nothing here splits by hand.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

import biip
from biip import ParseError
from biip.gs1_messages import GS1Message
from django.utils.translation import gettext as _

from common.errors import DomainError, Problem
from lots.models import Lot, Product

GS = "\x1d"


@dataclass(frozen=True)
class Scan:
    gtin: str
    lot_number: str | None
    expiry: datetime.date | None
    serial: str | None


@dataclass
class ScanResolution:
    scan: Scan
    lot: Lot
    warnings: list[Problem] = field(default_factory=list)


def scan_parse(value: str) -> Scan:
    """Parse a GS1 element string; raise DomainError(400, `scan_malformed`) if it is not one."""
    raw = (value or "").strip()
    if not raw:
        raise DomainError.single(
            "scan_malformed", _("The scan is empty."), field="scan", status=400
        )
    try:
        if raw.startswith("("):
            message: GS1Message | None = GS1Message.parse_hri(raw)
            error_text = ""
        else:
            # Keyboard-wedge scanners may send the GS separator spelled out as "<GS>".
            result = biip.parse(raw.replace("<GS>", GS))
            message, error_text = result.gs1_message, result.gs1_message_error or ""
    except ParseError as error:
        message, error_text = None, str(error)
    if message is None:
        raise DomainError.single(
            "scan_malformed",
            _("The scan is not a GS1 element string: %(error)s") % {"error": error_text},
            field="scan",
            status=400,
        )
    strings = message.element_strings
    gtin = strings.get(ai="01")
    if gtin is None:
        raise DomainError.single(
            "scan_gtin_missing",
            _("The scan holds no GTIN (application identifier 01)."),
            field="scan",
            status=400,
        )
    if gtin.gtin is None:
        raise DomainError.single(
            "scan_gtin_invalid",
            _("The scanned GTIN %(gtin)s fails the GS1 check digit: misread, scan again.")
            % {"gtin": gtin.value},
            field="scan",
            status=400,
        )
    lot = strings.get(ai="10")
    expiry = strings.get(ai="17")
    serial = strings.get(ai="21")
    return Scan(
        gtin=gtin.gtin.as_gtin_14(),
        lot_number=lot.value if lot is not None else None,
        expiry=expiry.date if expiry is not None else None,
        serial=serial.value if serial is not None else None,
    )


def scan_resolve(value: str) -> ScanResolution:
    """GTIN -> product, (10) -> lot of that product's manufacturer; the scanned expiry must agree
    with the lot record."""
    scan = scan_parse(value)
    product = Product.objects.select_related("manufacturer").filter(gtin=scan.gtin).first()
    if product is None:
        raise DomainError.single(
            "scan_gtin_unknown",
            _("No product with GTIN %(gtin)s is registered.") % {"gtin": scan.gtin},
            field="scan",
            status=404,
        )
    if not scan.lot_number:
        raise DomainError.single(
            "scan_lot_missing",
            _("The scan holds no lot number (application identifier 10)."),
            field="scan",
            status=400,
        )
    lot = (
        Lot.objects.select_related("product", "manufacturer")
        .filter(product=product, lot_number=scan.lot_number)
        .first()
    )
    if lot is None:
        raise DomainError.single(
            "scan_lot_unknown",
            _("%(product)s has no lot %(lot)s on record.")
            % {"product": product.name, "lot": scan.lot_number},
            field="scan",
            status=404,
        )
    if scan.expiry is not None and scan.expiry != lot.expires_on:
        raise DomainError.single(
            "scan_expiry_mismatch",
            _(
                "The label says the lot expires %(label_expiry)s, the record says "
                "%(record_expiry)s: do not use it; report the label to quality."
            )
            % {
                "label_expiry": scan.expiry.isoformat(),
                "record_expiry": lot.expires_on.isoformat(),
            },
            field="scan",
            status=409,
        )
    return ScanResolution(scan=scan, lot=lot)
