"""Reads of the contact-data read record, scoped by role and clinic (DESIGN rule 8).

Network quality managers and auditors see every read. At a clinic, its administrators (and a
quality manager or auditor held at that clinic only) see the reads of that clinic's patients.
Clinicians see none: the record says who looked at whom, which is for those who oversee them.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from itertools import islice
from typing import Any, overload

from django.apps import apps
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import QuerySet
from pghistory import core
from pghistory.models import Events

from audit.models import ContactDataRead
from common.admin import AUDIT_TRAIL_MASKS
from providers.access import access_for
from providers.models import NETWORK_ROLES, Role

# Roles that read a clinic's record when held at that clinic.
CLINIC_READER_ROLES = (Role.CLINIC_ADMINISTRATOR, *NETWORK_ROLES)


def reader_clinic_ids(memberships: Iterable[tuple[str, int | None]]) -> list[int] | None:
    """From active (role, clinic id or None) pairs: None means every clinic (network quality
    manager or auditor); otherwise the clinics whose reads they show, empty for none."""
    held = list(memberships)
    if any(role in NETWORK_ROLES and clinic_id is None for role, clinic_id in held):
        return None
    return sorted(
        {
            clinic_id
            for role, clinic_id in held
            if role in CLINIC_READER_ROLES and clinic_id is not None
        }
    )


def contact_data_read_clinic_ids(user: Any) -> list[int] | None:
    """`reader_clinic_ids` of the user's active memberships (providers.access)."""
    return reader_clinic_ids(access_for(user).memberships)


def contact_data_reads(*, user: Any) -> QuerySet[ContactDataRead]:
    """The reads the user may see, newest first, with their clinic."""
    reads = ContactDataRead.objects.select_related("clinic").order_by("-at", "-pk")
    clinic_ids = contact_data_read_clinic_ids(user)
    if clinic_ids is None:
        return reads
    return reads.filter(clinic_id__in=clinic_ids)


# ---------------------------------------------------------------------------------------------
# The audit trail: every history event of every tracked record (pghistory's aggregate of the
# event tables), for network quality managers and auditors.

# Patient contact details are shown to the patient's own clinic staff only (DESIGN rules 7 and 8):
# the audit search, which is for network roles, shows that they changed, never their values. A
# contact attempt's note is free text about reaching the patient, so it is hidden too.
HIDDEN = "(hidden: patient contact data)"
AUDIT_SEARCH_HIDDEN_FIELDS: dict[str, frozenset[str]] = {
    "treatments.PatientContact": frozenset(
        {"full_name", "date_of_birth", "phone", "email", "postal_address"}
    ),
    "recalls.PatientContactAttempt": frozenset({"note"}),
}


@contextmanager
def without_jit() -> Iterator[None]:
    """pghistory's aggregate is one query over every event table, which PostgreSQL's JIT compiles
    for seconds on every request (a page of 50: 1.9 s with JIT, 0.1 s without, measured): the
    audit search runs its queries in a transaction without it."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")
        yield


def audited_record_types() -> list[str]:
    """The labels (`lots.Lot`) of every model with a history, sorted."""
    return sorted({model.pgh_tracked_model._meta.label for model in pghistory_event_models()})


def pghistory_event_models() -> list[Any]:
    return list(core.event_models())


def audit_event_list(
    *,
    record_type: str | None = None,
    record_id: int | None = None,
    user_id: int | None = None,
    at_after: datetime.datetime | None = None,
    at_before: datetime.datetime | None = None,
    oldest_first: bool = False,
) -> AuditEvents:
    """History events across every tracked model (or the one named), newest first.
    `record_id` is the tracked record's primary key, `user_id` the acting user recorded in the
    event's context. Counted, sliced into pages and streamed whole as a queryset is
    (`AuditEvents`)."""
    if record_type is not None:
        model = apps.get_model(record_type)
        event_models = sorted(set(model.pgh_event_models.values()), key=str)
    else:
        event_models = pghistory_event_models()
    return AuditEvents(
        event_models=event_models,
        record_id=record_id,
        user_id=user_id,
        at_after=at_after,
        at_before=at_before,
        oldest_first=oldest_first,
    )


class AuditEvents:
    """The events an audit search names, read as pghistory's aggregate (`Events`: each event's
    data, its change from the record's previous event, its context) but only for the rows shown.

    The aggregate builds those for every event of every table before it sorts them, so a page
    of the whole history took 50 s over 2.4 million events. A page is found first: each event
    table gives its newest (or oldest) `offset + limit` events by the index on its time
    (`common.history.track_history`), merged and cut to the page; the aggregate is then asked for
    those events alone. `count()` sums the tables' counts. Iterating (the CSV export) reads the
    aggregate itself, in order, through a server-side cursor."""

    def __init__(
        self,
        *,
        event_models: list[Any],
        record_id: int | None,
        user_id: int | None,
        at_after: datetime.datetime | None,
        at_before: datetime.datetime | None,
        oldest_first: bool,
    ) -> None:
        self.event_models = event_models
        self.record_id = record_id
        self.user_id = user_id
        self.at_after = at_after
        self.at_before = at_before
        self.oldest_first = oldest_first

    def events(self) -> QuerySet[Any]:
        """The same events as pghistory's aggregate queryset, in the same order."""
        events: QuerySet[Any] = Events.objects.across(*self.event_models)  # type: ignore[no-untyped-call]
        if self.record_id is not None:
            events = events.filter(pgh_obj_id=str(self.record_id))
        if self.user_id is not None:
            events = events.filter(pgh_context__user=self.user_id)
        if self.at_after is not None:
            events = events.filter(pgh_created_at__gte=self.at_after)
        if self.at_before is not None:
            events = events.filter(pgh_created_at__lte=self.at_before)
        if self.oldest_first:
            return events.order_by("pgh_created_at", "pgh_model", "pgh_id")
        return events.order_by("-pgh_created_at", "-pgh_model", "-pgh_id")

    def iterator(self, chunk_size: int = 2000) -> Iterator[Any]:
        return self.events().iterator(chunk_size=chunk_size)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.events())

    def count(self) -> int:
        if not self.event_models:
            return 0
        branches, params = self._branches("count(*)", order=False)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT sum(n) FROM ({branches}) counted (n)", params)  # noqa: S608
            total = cursor.fetchone()[0]
        return int(total or 0)

    def __len__(self) -> int:
        return self.count()

    @overload
    def __getitem__(self, window: int) -> Any: ...

    @overload
    def __getitem__(self, window: slice) -> list[Any]: ...

    def __getitem__(self, window: int | slice) -> Any:
        if isinstance(window, int):
            one = self[window : window + 1]
            if not one:
                raise IndexError(window)
            return one[0]
        if window.step not in (None, 1):
            raise TypeError("an audit search is read a page (a slice of step 1) at a time")
        offset = window.start or 0
        if window.stop is None or offset < 0 or window.stop < offset:
            raise ValueError("a page of an audit search needs its start and its end")
        limit = window.stop - offset
        if limit == 0 or not self.event_models:
            return []
        keys = self._page_keys(offset, limit)
        if not keys:
            return []
        labels = {label for _, label, _ in keys}
        models = [model for model in self.event_models if model._meta.label in labels]
        found = {
            (event.pgh_model, event.pgh_id): event
            for event in Events.objects.across(*models).filter(  # type: ignore[no-untyped-call]
                pgh_id__in=sorted({pgh_id for _, _, pgh_id in keys})
            )
        }
        return [found[(label, pgh_id)] for _, label, pgh_id in keys if (label, pgh_id) in found]

    def _page_keys(self, offset: int, limit: int) -> list[tuple[Any, str, int]]:
        """(time, event model label, event id) of the page's events, in the search's order."""
        direction = "" if self.oldest_first else " DESC"
        order = f"1{direction}, 2{direction}, 3{direction}"
        branches, params = self._branches(
            "e.pgh_created_at, %s::text, e.pgh_id", order=True, enough=offset + limit
        )
        sql = f"SELECT * FROM ({branches}) page ORDER BY {order} LIMIT %s OFFSET %s"  # noqa: S608
        with connection.cursor() as cursor:
            cursor.execute(sql, [*params, limit, offset])
            return list(cursor.fetchall())

    def _branches(self, columns: str, *, order: bool, enough: int = 0) -> tuple[str, list[Any]]:
        """One SELECT of `columns` per event table under the search's conditions, joined by
        UNION ALL; ordered by the table's time index and cut to `enough` rows when `order`."""
        direction = "" if self.oldest_first else " DESC"
        selects: list[str] = []
        params: list[Any] = []
        for model in self.event_models:
            conditions: list[str] = []
            values: list[Any] = [model._meta.label] if "%s" in columns else []
            join = ""
            if self.record_id is not None:
                conditions.append("e.pgh_obj_id = %s")
                values.append(self.record_id)
            if self.user_id is not None:
                join = f"JOIN {CONTEXT_TABLE} c ON c.id = e.pgh_context_id"
                conditions.append("c.metadata -> 'user' = to_jsonb(%s::bigint)")
                values.append(self.user_id)
            if self.at_after is not None:
                conditions.append("e.pgh_created_at >= %s")
                values.append(self.at_after)
            if self.at_before is not None:
                conditions.append("e.pgh_created_at <= %s")
                values.append(self.at_before)
            where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
            cut = ""
            if order:
                cut = f"ORDER BY e.pgh_created_at{direction}, e.pgh_id{direction} LIMIT %s"
                values.append(enough)
            table = model._meta.db_table
            select = f"(SELECT {columns} FROM {table} e {join} {where} {cut})"  # noqa: S608
            selects.append(select)
            params += values
        return " UNION ALL ".join(selects), params


CONTEXT_TABLE = "pghistory_context"


def user_names(user_ids: Iterable[int]) -> dict[int, str]:
    """User id -> full name (or username); one query."""
    wanted = set(user_ids)
    if not wanted:
        return {}
    return {
        user.pk: user.get_full_name() or user.get_username()
        for user in get_user_model().objects.filter(pk__in=wanted)
    }


def event_user_id(event: Any) -> int | None:
    user_id = (event.pgh_context or {}).get("user")
    return user_id if isinstance(user_id, int) and not isinstance(user_id, bool) else None


def _shown(record_type: str, values: dict[str, Any]) -> dict[str, Any]:
    hidden = AUDIT_SEARCH_HIDDEN_FIELDS.get(record_type, frozenset())
    masks = AUDIT_TRAIL_MASKS.get(record_type, {})
    shown: dict[str, Any] = {}
    for name, value in values.items():
        if name in hidden:
            shown[name] = None if value is None else HIDDEN
        elif name in masks:
            shown[name] = None if value is None else masks[name](value)
        else:
            shown[name] = value
    return shown


def audit_event_view(event: Any, users: dict[int, str]) -> dict[str, Any]:
    """One event as the audit search shows it: who, when, why, what (old and new values), with
    patient contact data and secrets masked."""
    context = dict(event.pgh_context or {})
    user_id = event_user_id(event)
    context.pop("user", None)
    record_type = str(event.pgh_obj_model)
    diff = event.pgh_diff or {}
    old = _shown(record_type, {name: values[0] for name, values in diff.items()})
    new = _shown(record_type, {name: values[1] for name, values in diff.items()})
    changes = {name: [old[name], new[name]] for name in diff}
    return {
        "id": event.pgh_slug,
        "event_model": event.pgh_model,
        "event_id": event.pgh_id,
        "label": event.pgh_label,
        "at": event.pgh_created_at,
        "record_type": record_type,
        "record_id": event.pgh_obj_id,
        "user": user_id,
        "user_name": users.get(user_id, f"user #{user_id}") if user_id is not None else "system",
        "reason": str(context.pop("reason", "") or ""),
        "context": context,
        "data": _shown(record_type, dict(event.pgh_data or {})),
        "changes": changes,
    }


def audit_event_views(events: Iterable[Any]) -> list[dict[str, Any]]:
    """`audit_event_view` of each event, with the acting users' names read in one query."""
    events = list(events)
    users = user_names(uid for event in events if (uid := event_user_id(event)) is not None)
    return [audit_event_view(event, users) for event in events]


def audit_event_stream(events: Any, *, chunk_size: int = 2000) -> Iterator[dict[str, Any]]:
    """`audit_event_view` of each event, read through a server-side cursor `chunk_size` rows at
    a time, with one user query per chunk: flat in memory at any length."""
    # Inside a transaction the server-side cursor streams as it is read (outside one, Django
    # declares it WITH HOLD, which PostgreSQL materialises whole first).
    with without_jit():
        rows = events.iterator(chunk_size=chunk_size)
        names: dict[int, str] = {}
        while chunk := list(islice(rows, chunk_size)):
            wanted = {uid for event in chunk if (uid := event_user_id(event)) is not None}
            if len(names) > 10 * chunk_size:
                names.clear()
            names.update(user_names(wanted - names.keys()))
            for event in chunk:
                yield audit_event_view(event, names)
