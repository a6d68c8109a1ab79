"""What both traces share: the view (JSON or CSV, errors always JSON), its responses and
parameters."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import ISO_8601, serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings

from common.api_fields import BIGINT_MAX, ErrorSerializer
from common.api_views import Api
from common.csv import CsvRenderer
from common.renderers import TraceJSONRenderer
from lots.sec import SingleEuropeanCode
from providers.permissions import CLINIC_STAFF_PERMISSIONS


class TraceApi(Api):
    permission_classes = CLINIC_STAFF_PERMISSIONS
    renderer_classes = [TraceJSONRenderer, CsvRenderer]

    def handle_exception(self, exc: Exception) -> Response:
        # Errors are always JSON in the one error shape, whatever format the caller asked for.
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return super().handle_exception(exc)

    @staticmethod
    def wants_csv(request: Request) -> bool:
        return getattr(request.accepted_renderer, "format", None) == "csv"


def trace_responses(json_serializer: type[serializers.Serializer[Any]]) -> dict[Any, Any]:
    return {
        (200, "application/json"): json_serializer,
        (200, "text/csv"): OpenApiTypes.STR,
        **{(code, "application/json"): ErrorSerializer for code in (400, 401, 403, 404, 406)},
    }


FORMAT_PARAMETER = OpenApiParameter(
    "format",
    OpenApiTypes.STR,
    OpenApiParameter.QUERY,
    enum=["json", "csv"],
    description="`csv` streams the rows as CSV (as does `Accept: text/csv`).",
)


def query_id(help_text: str, **kwargs: Any) -> serializers.IntegerField:
    return serializers.IntegerField(
        min_value=1, max_value=BIGINT_MAX, help_text=help_text, **kwargs
    )


def plain_ids(texts: Iterable[str]) -> list[int] | None:
    """The ids `texts` give when every one is written plainly, in ASCII digits alone (at most 18,
    so within a bigint) and not zero: what a `query_id` field reads from each. None when any is
    not (spaces too: int() and str.strip() differ on some), for the query's serializer to read
    them and name what is wrong. A trace asked for by id, the commonest, is then read without
    building its query's serializer, a tenth of what a typical lot's trace spends outside its
    SQL."""
    ids = []
    for text in texts:
        if not (text.isascii() and text.isdigit()) or len(text) > 18:
            return None
        value = int(text)
        if not value:
            return None
        ids.append(value)
    return ids


# The traces write their answers straight from rows, as their serializers document them: times and
# dates as DRF writes them. Neither field keeps anything of a request: each reads the format and
# the time zone when it writes.
_DATE = serializers.DateField()
_DATETIME = serializers.DateTimeField()


TimeWriter = Callable[[datetime.datetime | None], str | datetime.datetime | None]


def time_writer() -> TimeWriter:
    """DRF's DateTimeField.to_representation, the time zone it converts to looked up once for
    the many times of a trace (as DRF looks it up, it cost more than the rest of a time). Where
    that zone is UTC, a time read in UTC (as the database connection reads every one) is left
    as it is: TraceJSONRenderer writes it as DRF would, in a tenth of the time."""
    field = _DATETIME
    zone = field.default_timezone()
    output_format = api_settings.DATETIME_FORMAT
    iso = isinstance(output_format, str) and output_format.lower() == ISO_8601
    utc = iso and (zone is datetime.UTC or getattr(zone, "key", None) == "UTC")

    def write(value: datetime.datetime | None) -> str | datetime.datetime | None:
        if value is None:
            return None
        if utc and value.tzinfo is datetime.UTC:
            return value
        if zone is None or not iso or value.tzinfo is None:
            represented: str | None = field.to_representation(value)
            return represented
        text = value.astimezone(zone).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    return write


def date_text(value: datetime.date | None) -> str | None:
    """DRF's DateField.to_representation: with ISO 8601 (the default) the date's isoformat()."""
    if value is None:
        return None
    output_format = api_settings.DATE_FORMAT
    if isinstance(output_format, str) and output_format.lower() == ISO_8601:
        return value.isoformat()
    return _DATE.to_representation(value)


def sec_text(parts: Sequence[str], expires_on: datetime.date) -> str | None:
    """The eye-readable Single European Code of a lot read as a row: its six parts in the order of
    lots.sec.PARTS, and its expiry. As Lot.sec, a lot carries one when it has an issuing
    country."""
    country, establishment, donation, coding_system, product_number, split = parts
    if not country:
        return None
    return SingleEuropeanCode(
        issuing_country=country,
        establishment_code=establishment,
        donation_number=donation,
        coding_system=coding_system,
        product_number=product_number,
        split_number=split,
        expires_on=expires_on,
    ).eye_readable
