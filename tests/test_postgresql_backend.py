"""common.postgresql reads a `timestamp with time zone` with psycopg's own loader, and gives what
Django's loader gives for every value PostgreSQL can hold and Python can: the same instant, the
same time zone object, the same error for the rest. Named cursors (iterator()) and a connection
whose settings changed after it opened read as Django's backend does."""

from __future__ import annotations

import datetime
import zoneinfo

import psycopg
import pytest
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.backends.postgresql.psycopg_any import BaseTzLoader
from django.test.utils import override_settings
from hypothesis import given, settings
from hypothesis import strategies as st

from common.postgresql.base import DatabaseWrapper, psycopg_timestamptz_loader

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
