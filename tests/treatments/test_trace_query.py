"""A trace asked for by plain ids skips its query's serializer (trace_api.base.plain_ids): for
every text, the ids it reads are the serializer's, and whatever it does not read plainly is
left to the serializer, which names what is wrong."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from treatments.trace_api.backward import BackwardTraceQuerySerializer
from treatments.trace_api.base import plain_ids
from treatments.trace_api.forward import ForwardTraceQuerySerializer

# What a query string can carry for an id: digits of any script, signs, spaces, separators,
# exponents, and numbers past a bigint.
id_text = st.one_of(
    st.from_regex(r"\A\s*[+-]?[0-9]{0,25}(\.0*)?\s*\Z"),
    st.text(alphabet="0123456789 +-._e\t\n\x1f²٣\uff11", max_size=22),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.text(max_size=8),
)


def serializer_reads(serializer_class, data) -> dict | None:
    serializer = serializer_class(data=data)
    return dict(serializer.validated_data) if serializer.is_valid() else None


@given(st.lists(id_text, min_size=1, max_size=5))
@example(["0"])
@example(["000"])
@example([" 7 "])
@example(["9" * 18])
@example(["9" * 19])
@example(["9223372036854775807"])
@example(["+5"])
@example(["5.0"])
@example(["1_000"])
@example(["²"])
def test_plain_ids_read_lots_as_the_forward_serializer_does(texts):
    ids = plain_ids(texts)
    if ids is not None:
        assert serializer_reads(ForwardTraceQuerySerializer, {"lot": texts}) == {"lot": ids}


@given(id_text)
@example("0")
@example("18446744073709551616")
@example(" 12\n")
@example("1\x1f")
def test_plain_ids_read_a_patient_as_the_backward_serializer_does(text):
    ids = plain_ids([text])
    if ids is not None:
        assert serializer_reads(BackwardTraceQuerySerializer, {"patient": text}) == {
            "patient": ids[0]
        }


@pytest.mark.parametrize(
    ("texts", "ids"),
    [(["1"], [1]), (["007", "42"], [7, 42]), (["9" * 18], [int("9" * 18)])],
)
def test_plain_ids_are_ascii_digits_and_not_zero(texts, ids):
    assert plain_ids(texts) == ids


@pytest.mark.parametrize(
    "texts",
    [
        ["0"],
        ["1", "0"],
        [" 1"],
        ["1\x1f"],
        ["+1"],
        ["1.0"],
        ["1_0"],
        ["²"],
        ["٣"],
        ["9" * 19],
        [""],
    ],
)
def test_anything_else_is_left_to_the_serializer(texts):
    assert plain_ids(texts) is None
