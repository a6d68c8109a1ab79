"""common.api_fields.CopiedFieldsSerializer: each instance validates with fields of its own,
copied from the declared ones without building them again, and the declared ones stay unused."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework import serializers

from common.api_fields import CopiedFieldsSerializer, TextChoiceField


class Line(CopiedFieldsSerializer):
    units = serializers.IntegerField(min_value=1, max_value=9)


class Body(CopiedFieldsSerializer):
    name = serializers.CharField(max_length=5)
    tags = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False)
    kind = TextChoiceField(choices=[("a", "A"), ("b", "B")])
    count = serializers.IntegerField(min_value=1, max_value=10, required=False)
    lines = Line(many=True)
    nested = Line(required=False)


def errors_of(data: dict[str, Any]) -> Any:
    body = Body(data=data)
    return None if body.is_valid() else body.errors


BAD_AND_GOOD = [
    ({"name": "abcdef", "kind": "c", "lines": [{"units": 0}]}, ["kind", "lines", "name"]),
    ({"name": "abc", "kind": "a", "lines": [{"units": 3}], "count": 0}, ["count"]),
    ({"name": "abc", "kind": "b", "lines": [], "nested": {"units": 10}}, ["nested"]),
    ({"name": "abc", "kind": "b", "lines": [], "tags": [1, 0]}, ["tags"]),
    ({"name": "ab", "kind": "a", "lines": [{"units": 1}, {"units": 9}]}, None),
]


@pytest.mark.parametrize(("data", "refused"), BAD_AND_GOOD)
def test_each_body_is_judged_alone_whatever_was_judged_before(data, refused):
    # Every other body first, so that anything one instance left on a shared field shows.
    for other, _ in BAD_AND_GOOD:
        errors_of(other)
    errors = errors_of(data)
    assert (None if errors is None else sorted(errors)) == refused


def test_instances_bind_fields_of_their_own_and_the_declared_ones_stay_unbound():
    first, second = Body(data={}), Body(data={})
    for name in ("name", "kind", "count", "tags", "lines", "nested"):
        mine, theirs = first.fields[name], second.fields[name]
        assert mine is not theirs
        assert (mine.parent, theirs.parent) == (first, second)
        assert mine.field_name == name
        declared = Body._declared_fields[name]
        assert declared is not mine and getattr(declared, "parent", None) is None
    # A nested serializer or a list of a child field is a copy of its own, down to its fields.
    assert first.fields["lines"].child is not second.fields["lines"].child
    assert first.fields["tags"].child.parent is first.fields["tags"]
    assert first.fields["nested"].fields["units"] is not second.fields["nested"].fields["units"]


def test_the_copies_judge_as_deep_copies_do():
    class Deep(Body):
        def get_fields(self) -> Any:
            return serializers.Serializer.get_fields(self)

    for data, _ in BAD_AND_GOOD:
        copied, deep = Body(data=data), Deep(data=data)
        assert copied.is_valid() == deep.is_valid()
        assert copied.errors == deep.errors
        if not copied.errors:
            assert copied.validated_data == deep.validated_data
