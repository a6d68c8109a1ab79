"""Statements PostgreSQL parses and plans once per connection, then runs by name.

Django sends each statement as text with its values bound on the client (psycopg's
ClientCursor), so PostgreSQL parses and plans it afresh every time. For the few statements that
every request or every recording sends, that was most of what PostgreSQL spent on them: the API
token's lookup took 184 µs of its CPU, 55 µs prepared; the recording's standing and lots 456 µs,
65 µs prepared (benchmark_scale's data at 10^7 treatments).

A `Prepared` statement is made (PREPARE) the first time it runs on a connection, on the
connection itself rather than through Django's cursor: it is neither counted nor captured among
a request's statements, so a request sends the same statements whichever connection it gets.
It then runs as `EXECUTE name(values)`, the values bound as any other statement's. A prepared
statement outlives the transaction it was made in (a rollback keeps it) and ends with the
session: a new connection, after a restart or a failed health check, prepares again. Its name is
drawn from its text, so a statement whose text changes is a new one. Every connection plans
prepared statements generically (`plan_cache_mode` in settings.DATABASES): left to choose,
PostgreSQL kept planning these afresh for each run's values.

What it asks of a deployment: a session per connection, as Django's persistent connections and
the deployment in docker-compose.yml have. A pooler in transaction mode hands sessions from one
client to the next and would lose them (it would lose pghistory's context too).

A migration that changes the type of a column a prepared statement answers (a longer varchar, an
int made bigint) makes PostgreSQL refuse to run it on the sessions that prepared it before ("cached
plan must not change result type"), which are the running processes' for as long as they keep
their connections. Such a statement is made again: at once, and run, when the connection is in
no transaction (the token's lookup); otherwise the transaction is lost, and the request answers
503 with Retry-After (django.db.OperationalError, common.api) and is made again on its next run.
"""

from __future__ import annotations

import hashlib
import re
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

from django.db import NotSupportedError, OperationalError
from psycopg import errors as pg_errors
from psycopg.pq import TransactionStatus

# How a prepared SELECT is run: what reads, as far as the text sent shows.
READ_PREFIX = "EXECUTE PREPARED_SELECT_"
_NAMED = re.compile(r"%\((\w+)\)s")
_POSITIONAL = re.compile(r"%s")
# The names prepared on each open psycopg connection (one session each), and those of them that
# the session must deallocate before preparing again (their columns changed type).
_made: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()
_stale: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()
RESULT_TYPE_CHANGED = "cached plan must not change result type"


class Prepared:
    """`sql` with psycopg's placeholders, `%s` (then `types` is a sequence, one type per
    placeholder in order) or `%(name)s` (then a mapping from each name to its type; a name used
    twice is one parameter)."""

    def __init__(self, sql: str, types: Sequence[str] | Mapping[str, str]) -> None:
        self.names: list[str] | None
        if isinstance(types, Mapping):
            names: list[str] = []

            def numbered(match: re.Match[str]) -> str:
                if match.group(1) not in names:
                    names.append(match.group(1))
                return f"${names.index(match.group(1)) + 1}"

            body = _NAMED.sub(numbered, sql)
            self.names, declared = names, [types[name] for name in names]
        else:
            if len(_POSITIONAL.findall(sql)) != len(types):
                raise ValueError("one type for each %s placeholder")
            count = iter(range(1, len(types) + 1))
            body = _POSITIONAL.sub(lambda _match: f"${next(count)}", sql)
            self.names, declared = None, list(types)
        if "%" in body:
            raise ValueError("a % that is no placeholder (psycopg would read it as one)")
        # A SELECT's name says so, for common.db_routing to see it reads (READ_PREFIX).
        kind = "select" if body.lstrip().upper().startswith("SELECT") else "statement"
        self.name = f"prepared_{kind}_" + hashlib.sha256(body.encode()).hexdigest()[:20]
        self.prepare = f"PREPARE {self.name} ({', '.join(declared)}) AS {body}"
        self.run = f"EXECUTE {self.name} ({', '.join(['%s'] * len(declared))})"

    def execute(self, cursor: Any, params: Sequence[Any] | Mapping[str, Any]) -> None:
        """Run the statement on Django's `cursor` with `params`, preparing it first if its
        connection has not (again, if its columns changed type since: the module's docstring)."""
        database = cursor.db
        values = (
            [params[name] for name in self.names or ()]
            if isinstance(params, Mapping)
            else list(params)
        )
        if self.name not in _made.setdefault(database.connection, set()):
            self._make(database)
        try:
            cursor.execute(self.run, values)
        except NotSupportedError as error:
            if not _result_type_changed(error):
                raise
            connection = database.connection
            _made[connection].discard(self.name)
            _stale.setdefault(connection, set()).add(self.name)
            if connection.info.transaction_status != TransactionStatus.IDLE:
                raise OperationalError(
                    f"{self.name}: a column it answers changed type; made again on its next run"
                ) from error
            self._make(database)
            cursor.execute(self.run, values)

    def _make(self, database: Any) -> None:
        connection = database.connection
        with database.wrap_database_errors:
            if self.name in _stale.get(connection, ()):
                connection.execute(f"DEALLOCATE {self.name}")
                _stale[connection].discard(self.name)
            connection.execute(self.prepare)
        _made[connection].add(self.name)


def _result_type_changed(error: Exception) -> bool:
    cause = error.__cause__
    return isinstance(cause, pg_errors.FeatureNotSupported) and RESULT_TYPE_CHANGED in str(cause)
