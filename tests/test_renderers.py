"""common.renderers.FastJSONRenderer writes what DRF's JSONRenderer writes, byte for byte, for
every value an answer can hold (hypothesis draws them), and leaves indented JSON to DRF."""

from __future__ import annotations

import datetime
import decimal
import uuid
import zoneinfo

import pytest
from django.db import models
from django.utils.translation import gettext_lazy
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework.renderers import JSONRenderer

from common.renderers import FastJSONRenderer


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
