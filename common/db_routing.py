"""Which server answers a query: the primary for writes and the reads they rest on, else a replica.

Installed only when `DATABASE_REPLICA_URL` is set (traceability/settings.py; docs/replicas.md):

- every write goes to the primary, and so does every read inside a transaction on the primary
  (`transaction.atomic`, `select_for_update`): a service decides on what it has just locked;
- a read goes to the replica only while a safe request (GET, HEAD, OPTIONS) is being answered and
  has written nothing yet. Unsafe requests, management commands, migrations and Celery tasks read
  the primary: their reads feed writes, and a task queued on commit must find the row it was
  queued for, however far the replica lags;
- read your writes: once a request has opened a transaction on the primary or sent it anything
  but a SELECT, the rest of that request (a streamed export included) reads the primary, and its
  response sets a cookie that keeps the same browser on the primary for
  `DATABASE_REPLICA_PIN_SECONDS`, so the page a POST redirects to shows what the POST wrote;
- sign-in state (users, sessions, API tokens, lock-outs) is always read on the primary: a
  sign-out, a revoked token or a deactivated account takes effect at once, and a token can be used
  the moment it is issued, cookie or not.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from django.conf import settings
from django.core.signals import request_finished
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model
from django.http import HttpRequest, HttpResponseBase

from common.postgresql.prepared import READ_PREFIX

PRIMARY = DEFAULT_DB_ALIAS
REPLICA = "replica"
PIN_COOKIE = "read_primary_until"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
READ_STATEMENTS = ("SELECT", "SHOW", READ_PREFIX)
SIGN_IN_APPS = frozenset({"auth", "sessions", "knox", "axes"})

# Both live for one request in the thread serving it; request_finished (sent once the response,
# a stream included, is closed) puts them back, so nothing else in that thread reads the replica.
_replica_allowed: ContextVar[bool] = ContextVar("replica_allowed", default=False)
_primary_written: ContextVar[bool] = ContextVar("primary_written", default=False)


def _reads_go_to_replica(model: type[Model]) -> bool:
    return (
        _replica_allowed.get()
        and not _primary_written.get()
        and not connections[PRIMARY].in_atomic_block
        and model._meta.app_label not in SIGN_IN_APPS
    )


class PrimaryReplicaRouter:
    """Django's database router for the primary (`default`) and its streaming `replica`."""

    def db_for_read(self, model: type[Model], **hints: Any) -> str:
        return REPLICA if _reads_go_to_replica(model) else PRIMARY

    def db_for_write(self, model: type[Model], **hints: Any) -> str:
        return PRIMARY

    def allow_relation(self, obj1: Model, obj2: Model, **hints: Any) -> bool | None:
        """Rows read from either server are the same rows."""
        if {obj1._state.db, obj2._state.db} <= {PRIMARY, REPLICA}:
            return True
        return None

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        """The replica receives the schema from the primary's WAL; it is read-only anyway."""
        return db == PRIMARY


def _note_primary_writes(
    execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]
) -> Any:
    """Execute wrapper on the primary: anything but a SELECT (a prepared one included) outside
    a transaction may have written (raw SQL included, which no router sees), so the request stays
    on the primary."""
    connection = context["connection"]
    if connection.in_atomic_block or not sql.lstrip().upper().startswith(READ_STATEMENTS):
        _primary_written.set(True)
    return execute(sql, params, many, context)


def _pinned_by_cookie(request: HttpRequest) -> bool:
    try:
        until = float(request.COOKIES.get(PIN_COOKIE, ""))
    except ValueError:
        return False
    return time.time() < until <= time.time() + settings.DATABASE_REPLICA_PIN_SECONDS


def _end_of_request(**kwargs: Any) -> None:
    _replica_allowed.set(False)
    _primary_written.set(False)


request_finished.connect(_end_of_request, dispatch_uid="common.db_routing.end_of_request")


class ReplicaReadsMiddleware:
    """Opens each request's replica scope and pins the browser to the primary after a write.

    Placed before the session middleware, so a session saved at the end of a request counts as
    that request's write."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        primary = connections[PRIMARY]
        if _note_primary_writes not in primary.execute_wrappers:
            primary.execute_wrappers.append(_note_primary_writes)
        _primary_written.set(False)
        _replica_allowed.set(request.method in SAFE_METHODS and not _pinned_by_cookie(request))
        response = self.get_response(request)
        if _primary_written.get() and settings.DATABASE_REPLICA_PIN_SECONDS > 0:
            response.set_cookie(
                PIN_COOKIE,
                str(time.time() + settings.DATABASE_REPLICA_PIN_SECONDS),
                max_age=math.ceil(settings.DATABASE_REPLICA_PIN_SECONDS),
                secure=settings.SESSION_COOKIE_SECURE,
                httponly=True,
                samesite="Lax",
            )
        return response
