"""common.renderers.FastJSONRenderer writes what DRF's JSONRenderer writes, byte for byte, for
every value an answer can hold (hypothesis draws them), and leaves indented JSON to DRF;
TraceJSONRenderer too for every datetime whose offset is whole minutes, and the traces' times
(time_writer) whatever the zones."""

from __future__ import annotations

import datetime
import decimal
import uuid
import zoneinfo

import pytest
from django.db import models
from django.test.utils import override_settings
from django.utils.translation import gettext_lazy
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework.fields import DateTimeField
from rest_framework.renderers import JSONRenderer

from common.renderers import FastJSONRenderer, TraceJSONRenderer
from treatments.trace_api.base import time_writer


class Colour(models.TextChoices):
    RED = "red", "Red"
    BLUE = "blue", "Blue"


class Rank(models.IntegerChoices):
    FIRST = 1, "First"


ZONES = [datetime.UTC, zoneinfo.ZoneInfo("Europe/Berlin"), zoneinfo.ZoneInfo("America/Chicago")]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),  # past 64 bits: left to DRF
    st.text(),  # U+2028 and U+2029 included: DRF escapes them
    st.sampled_from(["\u2028", "a\u2029b", "Ærø ✓ 😀", '"\\/', "\x00\x1f"]),
    st.dates(),
    st.datetimes(timezones=st.sampled_from(ZONES)),
    st.datetimes(),  # naive
    st.times(),
    st.decimals(allow_nan=False, allow_infinity=False, places=4),
    st.uuids(),
    st.sampled_from([Colour.RED, Colour.BLUE, Rank.FIRST]),
    st.just(gettext_lazy("Recall notice")),
    st.timedeltas(),
)
keys = st.one_of(
    st.text(), st.integers(min_value=-(2**63), max_value=2**63 - 1), st.booleans(), st.none()
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.tuples(children, children),
        st.dictionaries(keys, children, max_size=4),
    ),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(values)
def test_it_writes_every_value_as_drf_writes_it(value):
    assert FastJSONRenderer().render(value) == JSONRenderer().render(value)


@pytest.mark.parametrize(
    "value",
    [
        {"at": datetime.datetime(2026, 12, 6, 18, 0, tzinfo=datetime.UTC)},
        {"at": datetime.datetime(2026, 12, 6, 18, 0, 0, 123456, tzinfo=datetime.UTC)},
        {"id": uuid.UUID(int=7), "amount": decimal.Decimal("1.50")},
        {"big": 2**64, "small": -(2**63) - 1},
        {2: "two", True: "yes", None: "nothing", 2.5: "float"},
        [Colour.RED, Rank.FIRST, gettext_lazy("Recall notice")],
        "line\u2028separator\u2029paragraph",
        None,
    ],
    ids=[
        "utc",
        "microseconds",
        "uuid and decimal",
        "beyond 64 bits",
        "keys",
        "choices",
        "js",
        "none",
    ],
)
def test_the_cases_drf_treats_its_own_way(value):
    assert FastJSONRenderer().render(value) == JSONRenderer().render(value)


@pytest.mark.parametrize("indent", ["application/json; indent=4", "application/json; indent=0"])
def test_indented_json_is_drfs(indent):
    value = {"lots": [{"id": 1, "name": "Ærø"}], "at": datetime.date(2026, 12, 6)}
    assert FastJSONRenderer().render(value, indent) == JSONRenderer().render(value, indent)


def test_it_writes_without_the_standard_librarys_encoder(monkeypatch):
    """The point of it: DRF's json.dumps is not called for an answer orjson can write."""
    value = {"lots": [{"id": 1, "at": datetime.datetime(2026, 12, 6, tzinfo=datetime.UTC)}]}
    expected = JSONRenderer().render(value)

    def refuse(*args, **kwargs):
        raise AssertionError("json.dumps called")

    monkeypatch.setattr("rest_framework.renderers.json.dumps", refuse)

    assert FastJSONRenderer().render(value) == expected


# Offsets of whole minutes: fixed ones, and the zones' own since 1970 (before, local mean times
# with seconds, which TraceJSONRenderer is not handed: see below).
MINUTE_OFFSETS = st.sampled_from(
    [
        datetime.UTC,
        datetime.timezone(datetime.timedelta(hours=5, minutes=45)),
        datetime.timezone(-datetime.timedelta(hours=9, minutes=30)),
    ]
)
trace_scalars = st.one_of(
    # No time of day: the traces hold none, and orjson writes some otherwise (common.renderers).
    scalars.filter(lambda value: not isinstance(value, datetime.datetime | datetime.time)),
    st.datetimes(timezones=MINUTE_OFFSETS),
    # hypothesis takes naive bounds, the zone drawn apart
    st.datetimes(min_value=datetime.datetime(1970, 1, 2), timezones=st.sampled_from(ZONES)),  # noqa: DTZ001
    st.datetimes(),
)
trace_values = st.recursive(
    trace_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(trace_values)
def test_the_trace_renderer_writes_datetimes_of_whole_minute_offsets_as_drf_does(value):
    assert TraceJSONRenderer().render(value) == JSONRenderer().render(value)


def test_the_trace_renderer_writes_datetimes_itself(monkeypatch):
    value = [datetime.datetime(2026, 12, 7, 8, 0, 0, 5, tzinfo=datetime.UTC)] * 3
    expected = JSONRenderer().render(value)
    monkeypatch.setattr(
        "rest_framework.utils.encoders.JSONEncoder.default",
        lambda self, obj: pytest.fail(f"DRF's encoder called for {obj!r}"),
    )
    assert TraceJSONRenderer().render(value) == expected


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/Chicago"])
@settings(max_examples=150, deadline=None)
@given(
    st.datetimes(
        timezones=st.sampled_from([*ZONES, zoneinfo.ZoneInfo("Asia/Kathmandu")]),
        allow_imaginary=False,
    )
)
def test_a_traces_times_are_written_as_drfs_datetime_field_writes_them(zone, value):
    """Whatever the zone of the setting and of the time, local mean times with seconds included:
    what reaches TraceJSONRenderer from time_writer is written as DRF's serializer field and
    renderer write the time."""
    with override_settings(TIME_ZONE=zone):
        written = time_writer()(value)
        assert TraceJSONRenderer().render([written, None]) == JSONRenderer().render(
            [DateTimeField().to_representation(value), None]
        )
