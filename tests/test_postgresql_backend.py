"""common.postgresql reads a `timestamp with time zone` with psycopg's own loader, and gives what
Django's loader gives for every value PostgreSQL can hold and Python can: the same instant, the
same time zone object, the same error for the rest. Named cursors (iterator()) and a connection
whose settings changed after it opened read as Django's backend does. A connection kept between
requests is checked without a round trip when it was used a moment ago, and a connection the
server ended is still replaced before it is used."""

from __future__ import annotations

import datetime
import time
import zoneinfo
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.backends.postgresql.psycopg_any import BaseTzLoader
from django.test.utils import override_settings
from hypothesis import given, settings
from hypothesis import strategies as st

from common.postgresql.base import (
    QUIET_CHECK_SECONDS,
    DatabaseWrapper,
    psycopg_timestamptz_loader,
)

pytestmark = pytest.mark.django_db

ZONES = [
    datetime.UTC,
    zoneinfo.ZoneInfo("Europe/Berlin"),
    zoneinfo.ZoneInfo("America/Chicago"),
    zoneinfo.ZoneInfo("Asia/Kathmandu"),  # +05:45
    datetime.timezone(datetime.timedelta(hours=-9, minutes=-30)),
]


class DjangoUtcLoader(BaseTzLoader):
    """The loader Django registers for a connection in UTC."""

    timezone = datetime.UTC


def _both(texts: list[str]) -> tuple[list[object], list[object]]:
    """Each text cast to timestamptz by PostgreSQL, read once by Django's loader and once by the
    loader this backend registers; an error is compared by its type and message."""
    results: list[list[object]] = []
    for loader in (DjangoUtcLoader, psycopg_timestamptz_loader()):
        connection.ensure_connection()
        with psycopg.connect(connection.connection.info.dsn) as raw:
            raw.execute("SET TIME ZONE 'UTC'")
            raw.adapters.register_loader("timestamptz", loader)
            read: list[object] = []
            for text in texts:
                try:
                    value = raw.execute("SELECT %s::timestamptz", [text]).fetchone()
                except psycopg.DataError as error:
                    raw.rollback()
                    read.append((type(error), str(error)))
                else:
                    assert value is not None
                    read.append(value[0])
            results.append(read)
    return results[0], results[1]


def test_the_backend_in_use_reads_with_psycopgs_loader() -> None:
    connection.ensure_connection()
    wrapper = connections[DEFAULT_DB_ALIAS]
    assert isinstance(wrapper, DatabaseWrapper)
    assert wrapper.reads_timestamps_natively
    loader = connection.connection.adapters.get_loader(1184, psycopg.pq.Format.TEXT)
    assert loader is psycopg_timestamptz_loader()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.datetimes(
            min_value=datetime.datetime(1, 1, 2),  # noqa: DTZ001 - hypothesis takes naive bounds
            max_value=datetime.datetime(9999, 12, 30),  # noqa: DTZ001
            timezones=st.sampled_from(ZONES),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_every_instant_reads_as_djangos_loader_reads_it(instants: list[datetime.datetime]) -> None:
    texts = [instant.isoformat() for instant in instants]
    django_read, ours = _both(texts)
    assert ours == django_read
    for value, expected, text in zip(ours, django_read, texts, strict=True):
        assert isinstance(value, datetime.datetime)
        assert value.tzinfo is datetime.UTC
        assert repr(value) == repr(expected)
        assert value == datetime.datetime.fromisoformat(text)  # the instant the text names


def test_what_python_cannot_hold_fails_as_with_djangos_loader() -> None:
    texts = ["infinity", "-infinity", "0001-01-01 00:00:00+05", "10000-01-01 00:00:00+00"]
    django_read, ours = _both(texts)
    assert [type(value) for value in ours] == [type(value) for value in django_read]
    for value in ours:
        assert isinstance(value, tuple)
        assert issubclass(value[0], psycopg.DataError)  # type: ignore[arg-type]


def test_rows_read_by_the_orm_and_by_named_cursors_carry_utc() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT '2026-03-29 01:30:00+01'::timestamptz")
        (value,) = cursor.fetchone()
    assert value == datetime.datetime(2026, 3, 29, 0, 30, tzinfo=datetime.UTC)
    assert value.tzinfo is datetime.UTC
    with connection.chunked_cursor() as cursor:  # a named, server-side cursor
        cursor.execute("SELECT '2026-03-29 01:30:00+01'::timestamptz")
        assert cursor.fetchall() == [(value,)]


def test_a_connection_whose_settings_changed_reads_as_django_would() -> None:
    connection.ensure_connection()
    with override_settings(USE_TZ=False):
        assert not connections[DEFAULT_DB_ALIAS].reads_timestamps_natively  # type: ignore[attr-defined]
        with connection.cursor() as cursor:
            cursor.execute("SELECT '2026-03-29 01:30:00+00'::timestamptz")
            (value,) = cursor.fetchone()
    assert value == datetime.datetime(2026, 3, 29, 1, 30)  # noqa: DTZ001 - naive, as Django reads it


# A request taking over a kept connection (common.postgresql.base.close_if_health_check_failed).


@pytest.fixture
def kept() -> Iterator[DatabaseWrapper]:
    """A connection of its own, as a web worker keeps one between requests (CONN_HEALTH_CHECKS)."""
    wrapper = DatabaseWrapper(
        {**connection.settings_dict, "CONN_HEALTH_CHECKS": True}, DEFAULT_DB_ALIAS
    )
    wrapper.ensure_connection()
    yield wrapper
    wrapper.close()


@pytest.fixture
def observer() -> Iterator[psycopg.Connection[Any]]:
    connection.ensure_connection()
    with psycopg.connect(connection.connection.info.dsn, autocommit=True) as raw:
        yield raw


def last_statement(observer: psycopg.Connection[Any], pid: int) -> str | None:
    row = observer.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()
    return None if row is None else row[0]


def first_statement_of_next_request(wrapper: DatabaseWrapper, sql: str) -> Any:
    """What Django does between two requests (request_finished, then request_started), then the
    next request's first statement."""
    wrapper.close_if_unusable_or_obsolete()
    wrapper.close_if_unusable_or_obsolete()
    with wrapper.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()[0]


def test_a_connection_used_a_moment_ago_is_taken_over_without_a_round_trip(kept, observer):
    with kept.cursor() as cursor:
        cursor.execute("SELECT 'the last of the request before'")
    pid = kept.connection.info.backend_pid
    kept.close_if_unusable_or_obsolete()
    kept.close_if_unusable_or_obsolete()
    kept.close_if_health_check_failed()  # what the first statement of a request does first
    assert kept.health_check_done
    assert last_statement(observer, pid) == "SELECT 'the last of the request before'"
    assert first_statement_of_next_request(kept, "SELECT pg_backend_pid()") == pid


def test_a_connection_quiet_for_longer_gets_djangos_check(kept, observer):
    with kept.cursor() as cursor:
        cursor.execute("SELECT 'the last of the request before'")
    pid = kept.connection.info.backend_pid
    time.sleep(QUIET_CHECK_SECONDS + 0.2)
    kept.close_if_unusable_or_obsolete()
    kept.close_if_unusable_or_obsolete()
    kept.close_if_health_check_failed()
    assert last_statement(observer, pid) == "SELECT 1"
    assert first_statement_of_next_request(kept, "SELECT pg_backend_pid()") == pid


@pytest.mark.parametrize("quiet", [0.0, QUIET_CHECK_SECONDS + 0.2])
def test_a_connection_the_server_ended_is_replaced_before_it_is_used(kept, observer, quiet):
    with kept.cursor() as cursor:
        cursor.execute("SELECT 1")
    pid = kept.connection.info.backend_pid
    time.sleep(quiet)
    observer.execute("SELECT pg_terminate_backend(%s)", [pid])
    deadline = time.monotonic() + 10
    while last_statement(observer, pid) is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert first_statement_of_next_request(kept, "SELECT 'answered'") == "answered"
    assert kept.connection.info.backend_pid != pid
