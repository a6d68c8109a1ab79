"""JSON written by orjson, byte for byte as DRF's JSONRenderer writes it.

For answers of hundreds of kilobytes (a patient's whole backward trace with every lot's evidence)
the standard library's encoder took longer than PostgreSQL took to read them; orjson writes the
same bytes in a tenth of the time. Anything orjson does not write itself as DRF would (datetimes,
decimals, lazy translations, ...) goes to DRF's own encoder; what orjson refuses (an integer
beyond 64 bits) and a request for indented JSON (the `indent` media type parameter) are left to
DRF altogether. One difference remains: orjson writes a float that is not a number as null where
DRF refuses it, so this renderer serves answers that hold no floats (the traces).

`TraceJSONRenderer` also writes dates and datetimes itself, which makes the same bytes as DRF's
encoder for every date, and every datetime whose UTC offset is a whole number of minutes (every
zone's today: only local mean times of the last century and before had seconds, which orjson
rounds). It is for answers that hold no other kind: the traces hand it their datetimes in UTC or
as text already (treatments.trace_api.base.time_writer), and no time of day (orjson 3.13 writes
00:00:00.010000 as 00:00:00.10000). Sixty times of a trace's page took 95 µs through DRF's
encoder, 6 µs so.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from rest_framework.renderers import JSONRenderer

# DRF escapes these two for JavaScript (they end a line in a string literal there).
LINE_SEPARATORS = ((b"\xe2\x80\xa8", b"\\u2028"), (b"\xe2\x80\xa9", b"\\u2029"))


class FastJSONRenderer(JSONRenderer):
    # As DRF: datetimes by its encoder (UTC ends in "Z"), dataclasses not as objects, and keys
    # that are not strings written as strings.
    options = (
        orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_NON_STR_KEYS
    )

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        if data is None:
            return b""
        renderer_context = renderer_context or {}
        indent = self.get_indent(accepted_media_type or "", renderer_context)
        if indent or not self.compact or self.ensure_ascii:
            return super().render(data, accepted_media_type, renderer_context)
        try:
            written = orjson.dumps(
                data,
                default=self.encoder_class().default,
                option=self.options,
            )
        except orjson.JSONEncodeError:
            return super().render(data, accepted_media_type, renderer_context)
        for raw, escaped in LINE_SEPARATORS:
            if raw in written:
                written = written.replace(raw, escaped)
        return written


class TraceJSONRenderer(FastJSONRenderer):
    """FastJSONRenderer writing dates and datetimes itself, UTC ending in "Z" as DRF's encoder
    writes it: for answers whose datetimes have offsets of whole minutes and that hold no time of
    day (the module's docstring)."""

    options = orjson.OPT_UTC_Z | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_NON_STR_KEYS
