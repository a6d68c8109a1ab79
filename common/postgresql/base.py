"""Django's PostgreSQL backend with two changes: a `timestamp with time zone` is read by psycopg's
own loader (compiled, with psycopg's C speedups) instead of the pure-Python subclass Django
registers to pin each value to its connection's time zone; and a connection a request takes over
from the one before it is checked without a round trip when it was used a moment ago
(`DatabaseWrapper.close_if_health_check_failed`).

Django's loader parses every value with a regular expression in Python and then replaces its
time zone; on a trace of a long history that was a large part of reading the rows, and making
one per result set cost tens of microseconds on every statement. When Django's connection time
zone is UTC (USE_TZ with no TIME_ZONE of the database's own, as this project runs), psycopg's
loader gives the very same value: it converts to the session's time zone, which Django has set
to UTC, and answers UTC as `datetime.timezone.utc`, the object Django's loader sets. With any
other time zone this backend is Django's, unchanged.
"""

from __future__ import annotations

import datetime
import select
import time
from functools import lru_cache
from typing import Any

import psycopg
from django.conf import settings
from django.db.backends.postgresql import base
from django.db.backends.postgresql.psycopg_any import register_tzloader
from psycopg.adapt import AdaptersMap
from psycopg.pq import Format

TIMESTAMPTZ = psycopg.adapters.types["timestamptz"].oid
# Django's named cursor that binds parameters on the client (typed too narrowly by the stubs).
SERVER_SIDE_CURSOR: Any = base.ServerSideCursor
# A connection last used longer ago than this gets Django's own health check (SELECT 1).
QUIET_CHECK_SECONDS = 1.0


def psycopg_timestamptz_loader() -> type[Any]:
    """The loader psycopg itself registers for timestamptz text: its C one when psycopg's speedups
    are installed (psycopg[binary] or [c]), its Python one otherwise."""
    return psycopg.adapters.get_loader(TIMESTAMPTZ, Format.TEXT)  # type: ignore[return-value]


@lru_cache
def _adapters(template: AdaptersMap) -> AdaptersMap:
    adapters = AdaptersMap(template)
    adapters.register_loader(TIMESTAMPTZ, psycopg_timestamptz_loader())
    return adapters


class DatabaseWrapper(base.DatabaseWrapper):
    last_used = -float("inf")  # time.monotonic() when a cursor was last made

    def close_if_health_check_failed(self) -> None:
        """Django's health check (CONN_HEALTH_CHECKS), which sends SELECT 1 before the first
        statement of each request on a kept connection, skipped when the connection was used
        less than QUIET_CHECK_SECONDS ago and nothing has arrived on its socket since.

        A server that ends a session (restarted, shut down, pg_terminate_backend, an idle
        timeout) sends why and closes the socket, and either makes the socket readable; an idle
        session gets nothing else unasked here (nothing LISTENs). So under load, where the round
        trip was a tenth of a short request's time outside its SQL, a dropped connection is still
        found before it is used. What this cannot see is a server host gone without closing
        anything in the last second: the request on it fails (503, try again) and the
        connection is closed after it, as Django does after any error. A connection that is
        readable, or was quiet longer, gets Django's check."""
        # Django's own attributes, which its type stubs do not declare.
        enabled: bool = getattr(self, "health_check_enabled", False)
        done: bool = getattr(self, "health_check_done", True)
        if (
            self.connection is not None
            and enabled
            and not done
            and time.monotonic() - self.last_used < QUIET_CHECK_SECONDS
            and self._nothing_to_read()
        ):
            self.health_check_done = True
            return
        super().close_if_health_check_failed()

    def _nothing_to_read(self) -> bool:
        connection = self.connection
        if connection.closed or connection.broken:
            return False
        try:
            poll = select.poll()
            poll.register(connection.fileno(), select.POLLIN)
            return not poll.poll(0)
        except (OSError, ValueError, psycopg.Error):
            return False

    @property
    def reads_timestamps_natively(self) -> bool:
        """True when psycopg's loader gives what Django's would: the connection's time zone is
        UTC."""
        return bool(settings.USE_TZ) and self.timezone is datetime.UTC

    def get_connection_params(self) -> dict[str, Any]:
        params: dict[str, Any] = super().get_connection_params()
        if self.reads_timestamps_natively:
            params["context"] = _adapters(params["context"])
        return params

    def create_cursor(self, name: str | None = None) -> Any:
        self.last_used = time.monotonic()
        loader = self.connection.adapters.get_loader(TIMESTAMPTZ, Format.TEXT)
        if hasattr(loader, "timezone"):  # Django's own loader: Django's create_cursor
            return super().create_cursor(name)
        # Django's create_cursor, less its check of the loader's time zone (psycopg's loader has
        # no `timezone` to compare: it follows the session's).
        if name is None:
            cursor = self.connection.cursor()
        elif self.settings_dict["OPTIONS"].get("server_side_binding") is not True:
            cursor = SERVER_SIDE_CURSOR(
                self.connection, name=name, scrollable=False, withhold=self.connection.autocommit
            )
        else:
            cursor = self.connection.cursor(
                name, scrollable=False, withhold=self.connection.autocommit
            )
        if not self.reads_timestamps_natively:  # settings changed since the connection opened
            register_tzloader(self.timezone, cursor)
        return cursor
