"""Input fields and filters the API views share, and the error shape for the OpenAPI schema.

Every value that reaches a query is checked here first: PostgreSQL refuses NUL characters in text,
numbers beyond its integer range and UTC offsets beyond 15:59:59, and any of them would surface as
a 500 instead of a 400 naming the field.
"""

from __future__ import annotations

import copy
import datetime
from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import ProhibitNullCharactersValidator
from django.db.models import Model, QuerySet
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_filters.fields import IsoDateTimeField
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import empty, get_error_detail
from rest_framework.validators import ProhibitSurrogateCharactersValidator

INTEGER_MAX = 2**31 - 1  # PostgreSQL integer (PositiveIntegerField, IntegerField)
BIGINT_MAX = 2**63 - 1  # PostgreSQL bigint (the BigAutoField primary keys)

# PostgreSQL reads a UTC offset of less than 16 hours in whole seconds ("time zone displacement out
# of range" beyond it); Python's parser takes up to 23:59:59.999999. Every real zone lies within
# -12:00 and +14:00.
UTC_OFFSET_LIMIT = datetime.timedelta(hours=16)
# Python's datetime spans the years 1 to 9999. A day's margin keeps every accepted instant
# representable in any time zone too (a clinic's local date), where it would otherwise overflow.
DATETIME_EARLIEST = datetime.datetime(1, 1, 2, tzinfo=datetime.UTC)
DATETIME_LATEST = datetime.datetime(9999, 12, 30, 23, 59, 59, 999999, tzinfo=datetime.UTC)


def validate_storable_datetime(value: datetime.datetime) -> None:
    """Refuse a date and time that PostgreSQL or Python cannot take as it stands: a UTC offset of
    16 hours or more or with a fraction of a second (`datetime_offset_out_of_range`), or an
    instant too near the ends of the years 1 to 9999 (`datetime_out_of_range`). Every date-time
    filter and input field of the API runs it; a naive value counts as UTC."""
    offset = value.utcoffset()
    if offset is not None and (abs(offset) >= UTC_OFFSET_LIMIT or offset.microseconds):
        raise DjangoValidationError(
            _("Give a UTC offset from -15:59 to +15:59 (every time zone's lies within)."),
            code="datetime_offset_out_of_range",
        )
    try:
        instant = value.astimezone(datetime.UTC) if offset is not None else value
    except OverflowError:
        instant = None
    if instant is None or not (
        DATETIME_EARLIEST <= instant.replace(tzinfo=datetime.UTC) <= DATETIME_LATEST
    ):
        raise DjangoValidationError(
            _("Give a date and time from 0001-01-02 to 9999-12-30 (UTC)."),
            code="datetime_out_of_range",
        )


# ---------------------------------------------------------------------------------------------
# Serializer fields


def id_field(queryset: QuerySet[Any], **kwargs: Any) -> serializers.PrimaryKeyRelatedField[Any]:
    """A related object by its integer id: `incorrect_type`/`invalid` for non-integers, `min_value`
    and `max_value` outside the bigint range, `does_not_exist` for an unknown id."""
    return serializers.PrimaryKeyRelatedField(
        queryset=queryset,
        pk_field=serializers.IntegerField(min_value=1, max_value=BIGINT_MAX),
        **kwargs,
    )


class TextChoiceField(serializers.ChoiceField):
    """A choice whose "not a valid choice" message cannot carry characters that break the JSON
    response: a lone surrogate echoed back would fail to encode as UTF-8 (a 500)."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str):
            ProhibitSurrogateCharactersValidator()(data)
        return super().to_internal_value(data)


class OptionalChoiceField(TextChoiceField):
    """A choice that may be left out (a product's tissue, a QC result's outcome), which the
    database keeps as blank text. It answers null, so the schema lists the choices or null and
    never a bare `""`; as input it takes null or `""` alike and hands the service `""`."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs["allow_null"] = True
        if not kwargs.get("read_only"):
            kwargs.setdefault("allow_blank", True)
        super().__init__(**kwargs)

    def run_validation(self, data: Any = empty) -> Any:
        value = super().run_validation(data)
        return "" if value is None else value

    def to_representation(self, value: Any) -> Any:
        return None if value in ("", None) else super().to_representation(value)


class OptionalEmailField(serializers.EmailField):
    """An e-mail address that may be left out, kept as blank text: answered as null, as the
    schema's `email` format has no blank (output only)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs["allow_null"] = True
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def to_representation(self, value: Any) -> Any:
        return None if value in ("", None) else super().to_representation(value)


class CodeRelatedField(serializers.SlugRelatedField[Any]):
    """A related object by its code (`hiv-1-2`, `endotoxin`). The code is checked as text (no NUL,
    bounded length) before it is looked up, so the lookup cannot fail inside the database."""

    def __init__(self, *, max_length: int = 40, **kwargs: Any) -> None:
        kwargs.setdefault("slug_field", "code")
        super().__init__(**kwargs)
        self._text = serializers.CharField(max_length=max_length)

    def to_internal_value(self, data: Any) -> Model:
        code = self._text.run_validation(data)
        found: Model = super().to_internal_value(code)
        return found


class StorableDateTimeField(serializers.DateTimeField):
    """An ISO 8601 date and time that PostgreSQL can store and Python can convert to any zone
    (validate_storable_datetime), checked as given, before it is turned into the server's zone."""

    def enforce_timezone(self, value: datetime.datetime) -> datetime.datetime:
        try:
            validate_storable_datetime(value)
        except DjangoValidationError as error:
            raise serializers.ValidationError(get_error_detail(error)) from error
        result: datetime.datetime = super().enforce_timezone(value)
        return result


@extend_schema_field(
    {
        "type": "string",
        "description": "A date (2018-03-01, from the start of that day, UTC) or an ISO 8601 date "
        "and time.",
        "example": "2018-03-01",
    }
)
class DayOrInstantField(serializers.Field):  # type: ignore[type-arg]
    """A day or an instant, for what happened before it was entered: a lot released or a recall
    withdrawn long ago is usually known by its day."""

    default_error_messages = {
        "invalid": gettext_lazy("Give a date (YYYY-MM-DD) or an ISO 8601 date and time."),
    }

    def to_internal_value(self, data: Any) -> datetime.date | datetime.datetime:
        if isinstance(data, str) and len(data.strip()) == len("YYYY-MM-DD"):
            try:
                return datetime.date.fromisoformat(data.strip())
            except ValueError:
                self.fail("invalid")
        instant: datetime.datetime = StorableDateTimeField().run_validation(data)
        return instant

    def to_representation(self, value: Any) -> str:
        return str(value.isoformat())


def request_text(value: str, *, field: str, max_length: int) -> str:
    """Check a text value that arrives outside a serializer body (a URL segment, a file name)."""
    try:
        return str(serializers.CharField(max_length=max_length).run_validation(value))
    except serializers.ValidationError as error:
        raise serializers.ValidationError({field: error.detail}) from error


class CopiedFieldsSerializer(serializers.Serializer[Any]):
    """A serializer for request bodies that copies its declared fields for each request without
    building them again.

    DRF gives each serializer instance fields of its own by deep-copying the declared ones, and a
    field deep-copies by calling its constructor again with its original arguments: for a body of
    a dozen fields, read on every treatment recorded, that was about 0.2 to 0.4 ms of a 3.5 ms
    request. A plain field here is a shallow copy instead: what binding sets (name, parent,
    source) is the copy's own, and what it shares with the declared field (its arguments,
    messages, choices) nothing changes after construction; the declared field itself is never
    bound or used. A field holding others (a nested serializer, a list or a dict of a child
    field, a many-related field) is still deep-copied, as DRF copies it, so that its children are
    bound to it and never shared."""

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        return {
            name: copy.copy(field) if _holds_no_fields(field) else copy.deepcopy(field)
            for name, field in self._declared_fields.items()
        }


def _holds_no_fields(field: serializers.Field[Any, Any, Any, Any]) -> bool:
    return not (
        isinstance(field, serializers.BaseSerializer)
        or hasattr(field, "child")
        or hasattr(field, "child_relation")
    )


class ErrorItemSerializer(serializers.Serializer[Any]):
    code = serializers.CharField(help_text="Stable machine code, e.g. `qc_out_of_spec`.")
    message = serializers.CharField(help_text="What is wrong, for a person.")
    field = serializers.CharField(
        allow_null=True, help_text="The input field or record part it concerns (dotted path)."
    )


class ErrorSerializer(serializers.Serializer[Any]):
    """Every error the API returns has this shape, listing every problem found."""

    # A declared field, which DRF's metaclass takes off the class: it does not hide `.errors`.
    errors = ErrorItemSerializer(many=True)  # type: ignore[assignment]


def error_responses(*codes: int) -> dict[int, type[ErrorSerializer]]:
    return dict.fromkeys(codes, ErrorSerializer)


# Not signed in or no role (401 / 403), malformed input or filters (400), unknown id (404), a rule
# of the record's state refuses the change (409).
LIST_ERRORS = error_responses(400, 401, 403)
READ_ERRORS = error_responses(401, 403, 404)
WRITE_ERRORS = error_responses(400, 401, 403, 404, 409)
CREATE_ERRORS = error_responses(400, 401, 403, 409)


# ---------------------------------------------------------------------------------------------
# Filter fields


class _IsoDateField(forms.DateField):
    input_formats = ["%Y-%m-%d"]


class IsoDateFilter(django_filters.DateFilter):
    """A date filter that accepts only ISO 8601 dates (YYYY-MM-DD)."""

    field_class = _IsoDateField


class _StorableIsoDateTimeField(IsoDateTimeField):
    default_validators = [validate_storable_datetime]


class IsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    """An ISO 8601 date-time filter that refuses values PostgreSQL cannot take (a UTC offset of 16
    hours or more) or Python cannot convert (validate_storable_datetime)."""

    field_class = _StorableIsoDateTimeField


class _StrictBooleanField(forms.Field):
    default_error_messages = {"invalid": gettext_lazy("Use true or false.")}
    _values = {"true": True, "1": True, "false": False, "0": False}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.validators.append(ProhibitNullCharactersValidator())

    def to_python(self, value: Any) -> bool | None:
        if value in (None, ""):
            return None
        cleaned = self._values.get(str(value).strip().lower())
        if cleaned is None:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return cleaned


class StrictBooleanFilter(django_filters.BooleanFilter):
    """`true` or `false` (or 1 / 0); anything else is a 400, not silently ignored."""

    field_class = _StrictBooleanField


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(django_filters.Filter):
    """A related object's integer id; ids outside the bigint range are refused."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", BIGINT_MAX)
        super().__init__(*args, **kwargs)

    field_class = forms.IntegerField
