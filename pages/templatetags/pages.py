"""Numbers, dates and times as a clinic reads them: in the active language and time zone, with
the zone named, and large quantities in scientific notation ("4.8 x 10⁹ particles/mL", printed
with a real multiplication sign)."""

from __future__ import annotations

import datetime
import math
from decimal import Decimal
from typing import Any

from django import template
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

register = template.Library()

# What a filter is handed for a value that is not there: None, or the empty string that the
# template engine passes in place of a lookup that failed (a patient without contact details has
# no `patient.contact`, so `patient.contact.date_of_birth` reaches the filter as "").
MISSING = (None, "")

TIMES = "\u00d7"  # the multiplication sign
SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


@register.filter
def when(value: datetime.datetime | None) -> str:
    """A moment in the active time zone, formatted for the locale, with the zone's name."""
    if value in MISSING:
        return "—"
    local = timezone.localtime(value)
    return f"{formats.date_format(local, 'DATETIME_FORMAT')} {local.tzname()}"


@register.filter
def day(value: datetime.date | datetime.datetime | None) -> str:
    """A calendar day formatted for the locale (a moment is first put in the active zone)."""
    if value in MISSING:
        return "—"
    if isinstance(value, datetime.datetime):
        value = timezone.localtime(value).date()
    return formats.date_format(value, "DATE_FORMAT")


@register.filter
def quantity(value: Decimal | float | int | None, digits: int = 2) -> str:
    """A measured quantity: plain below 10⁴, else mantissa times 10 to the n ("4.8 x 10⁹")."""
    if value in MISSING:
        return "—"
    number = float(value)
    if number == 0 or abs(number) < 1e4:
        return _plain(number, digits)
    exponent = math.floor(math.log10(abs(number)))
    mantissa = round(number / 10**exponent, digits)
    if abs(mantissa) >= 10:
        mantissa, exponent = mantissa / 10, exponent + 1
    return f"{_plain(mantissa, digits)} {TIMES} 10{str(exponent).translate(SUPERSCRIPT)}"


def _plain(number: float, digits: int) -> str:
    """Rounded to `digits`, without trailing zeros, with the locale's separators."""
    shown = Decimal(str(round(number, digits))).normalize()
    return formats.number_format(shown, use_l10n=True)


@register.simple_tag
def status_badge(code: str, label: str) -> SafeString:
    """A status as a coloured label that also reads as text (never colour alone)."""
    return format_html('<span class="badge badge-{}">{}</span>', code, label)


@register.filter
def get_item(mapping: dict[Any, Any], key: Any) -> Any:
    return mapping.get(key)
