"""The kinds of signed act and, for each, how its signed content is read from the database.

An app that owns signed records registers its kinds in its `signing` module. A builder reads the
record by its id through `get_model`, with `.values()` queries only, so the same builder serves
the running application and a data migration (which passes its historical `apps.get_model`).

The signed content of every kind has the same shape:

    {"kind": ..., "record": "<app>.<model>:<id>", "subject": "<app>.<model>:<id>",
     "state": {...}, "act": {...}}

`record` is the row the signature belongs to (a lot status change, a donor, a recall, a recall's
widening round); `subject` is the thing whose state was signed (the lot, the donor, the recall).
`state` is what was true of the subject when it was signed and can only change by a correction;
`act` is what the signer decided. Neither holds anything that legitimately changes afterwards
(a lot's current status, stock balances, notice counters, `updated_at`-like fields): those are
left out, so an untouched record verifies for ever.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.db.models import Model, QuerySet

ModelLookup = Callable[[str, str], type[Model]]


class RecordMissing(LookupError):
    """The signed record no longer exists (or the signature points at an id that never did)."""


@dataclass(frozen=True)
class Built:
    subject: str
    state: dict[str, Any]
    act: dict[str, Any]


Builder = Callable[[int, datetime.datetime, ModelLookup], Built]


Acts = Callable[[ModelLookup], QuerySet[Any]]


@dataclass(frozen=True)
class SignedKind:
    code: str
    label: str
    record_model: str  # "<app_label>.<model_name>", lower case, as in ContentType
    meanings: frozenset[str]
    build: Builder
    # Every record that must carry a signature of this kind, and the field holding the time of
    # the act (the signature's `signed_at`): how a deleted signature is found.
    acts: Acts
    act_time: str


KINDS: dict[str, SignedKind] = {}


def register(kind: SignedKind) -> SignedKind:
    KINDS[kind.code] = kind
    return kind


def kind_get(code: str) -> SignedKind:
    try:
        return KINDS[code]
    except KeyError as error:
        raise LookupError(f"No signed kind {code!r} is registered.") from error


def record_label(record_model: str, record_id: int) -> str:
    return f"{record_model}:{record_id}"


def signed_content(
    *,
    kind: SignedKind,
    record_model: str,
    record_id: int,
    signed_at: datetime.datetime,
    get_model: ModelLookup = apps.get_model,
) -> dict[str, Any]:
    """The content a signature of `kind` on the record signs, read as the record now stands.
    `record_model` is the model the signature points at; a builder given a record of another
    model reads nothing of it (`RecordMissing`)."""
    if record_model != kind.record_model:
        raise RecordMissing(f"A {kind.label} signs a {kind.record_model}, not a {record_model}.")
    built = kind.build(record_id, signed_at, get_model)
    return {
        "kind": kind.code,
        "record": record_label(record_model, record_id),
        "subject": built.subject,
        "state": built.state,
        "act": built.act,
    }


def table(get_model: ModelLookup, app_label: str, model_name: str) -> QuerySet[Any]:
    """Every row of a model, through `get_model` (the running app's or a migration's)."""
    return get_model(app_label, model_name)._default_manager.all()


def one(queryset: Any, what: str) -> dict[str, Any]:
    """The single row of a `.values()` queryset, or RecordMissing naming `what`."""
    row = queryset.first()
    if row is None:
        raise RecordMissing(f"No {what}.")
    return dict(row)


def iso(value: Any) -> Any:
    """Dates and times as ISO 8601 (times in UTC), decimals as strings; the rest as it is."""
    if isinstance(value, datetime.datetime):
        return value.astimezone(datetime.UTC).isoformat()
    if isinstance(value, datetime.date):
        return value.isoformat()
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)


def plain(row: dict[str, Any]) -> dict[str, Any]:
    return {key: iso(value) for key, value in row.items()}
