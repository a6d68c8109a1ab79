"""common.postgresql.prepared: a statement PostgreSQL parses and plans once per connection. It
answers as the same SQL sent as text, is made once per session and never among a request's
counted statements, survives a rollback, and is made again on a new connection, or when a
migration changed the type of a column it answers."""

from __future__ import annotations

import datetime

import pytest
from django.db import OperationalError, connection, transaction
from django.test.utils import CaptureQueriesContext

from common.db_routing import READ_STATEMENTS
from common.postgresql.prepared import READ_PREFIX, Prepared

pytestmark = pytest.mark.django_db

SQL = "SELECT %s::bigint + 1, %s::text || '!', %s::date"
NAMED_SQL = "SELECT %(n)s + 1, %(n)s * 2, %(word)s || '?', %(days)s::int[]"


def made() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM pg_prepared_statements ORDER BY name")
        return [name for (name,) in cursor.fetchall()]


@pytest.mark.parametrize(
    "values",
    [
        [1, "a", datetime.date(2026, 1, 2)],
        [None, None, None],
        [2**62, "it's; DROP TABLE x --", datetime.date(1, 1, 1)],
        [-5, "\u00e9\u4e2d", datetime.date(9999, 12, 31)],
    ],
)
def test_a_prepared_statement_answers_as_its_sql_sent_as_text(values):
    statement = Prepared(SQL, ["bigint", "text", "date"])
    with connection.cursor() as cursor:
        cursor.execute(SQL, values)
        as_text = cursor.fetchall()
        statement.execute(cursor, values)
        assert cursor.fetchall() == as_text


def test_named_placeholders_are_one_parameter_each_however_often_used():
    statement = Prepared(NAMED_SQL, {"n": "bigint", "word": "text", "days": "int[]"})
    assert statement.prepare.count("$1") == 2 and "$4" not in statement.prepare
    with connection.cursor() as cursor:
        statement.execute(cursor, {"word": "why", "n": 20, "days": [1, 2]})
        assert cursor.fetchall() == [(21, 40, "why?", [1, 2])]


@pytest.mark.django_db(transaction=True)  # closes its connection
def test_it_is_made_once_per_connection_outside_the_counted_statements():
    statement = Prepared("SELECT %s::int * 3", ["int"])
    connection.close()
    with CaptureQueriesContext(connection) as captured:
        for value in range(3):
            with connection.cursor() as cursor:
                statement.execute(cursor, [value])
                assert cursor.fetchone() == (value * 3,)
    assert [query["sql"] for query in captured.captured_queries] == [
        f"EXECUTE {statement.name} ({value})" for value in range(3)
    ]
    assert made().count(statement.name) == 1


@pytest.mark.django_db(transaction=True)  # closes its connection
def test_a_rollback_keeps_it_and_a_new_connection_makes_it_again():
    statement = Prepared("SELECT %s::text", ["text"])
    connection.close()
    with pytest.raises(RuntimeError), transaction.atomic(), connection.cursor() as cursor:
        statement.execute(cursor, ["first"])
        raise RuntimeError("rolled back")
    with connection.cursor() as cursor:
        statement.execute(cursor, ["after the rollback"])
        assert cursor.fetchone() == ("after the rollback",)
    assert made().count(statement.name) == 1
    connection.close()
    assert statement.name not in made()
    with connection.cursor() as cursor:
        statement.execute(cursor, ["on a new connection"])
        assert cursor.fetchone() == ("on a new connection",)


def test_every_placeholder_needs_its_type():
    with pytest.raises(ValueError, match="one type for each"):
        Prepared("SELECT %s, %s", ["int"])
    with pytest.raises(KeyError):
        Prepared("SELECT %(a)s, %(b)s", {"a": "int"})
    with pytest.raises(ValueError, match="no placeholder"):
        Prepared("SELECT 'x' LIKE 'a%%'", [])


def test_connections_plan_prepared_statements_generically():
    with connection.cursor() as cursor:
        cursor.execute("SHOW plan_cache_mode")
        assert cursor.fetchone() == ("force_generic_plan",)


def test_only_a_prepared_select_is_run_as_a_read_for_the_replica_router():
    assert Prepared(" select %s::int", ["int"]).run.upper().startswith(READ_PREFIX)
    for writing in ("UPDATE t SET a = %s", "WITH x AS (DELETE FROM t RETURNING a) SELECT %s"):
        assert not Prepared(writing, ["int"]).run.upper().startswith(READ_PREFIX)
    assert READ_PREFIX in READ_STATEMENTS


@pytest.fixture
def altered_table():
    """A table whose columns the test changes the types of, as a migration would while a running
    process keeps its connection (and its prepared statements)."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE altered (id int, code varchar(4))")
        cursor.execute("INSERT INTO altered VALUES (7, 'abcd')")
    yield "altered"
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS altered")


ALTER = "ALTER TABLE altered ALTER COLUMN code TYPE varchar(40), ALTER COLUMN id TYPE bigint"


@pytest.mark.django_db(transaction=True)  # the statement runs outside any transaction
def test_a_statement_whose_columns_changed_type_is_made_again_and_answers(altered_table):
    statement = Prepared("SELECT code, id FROM altered WHERE id = %s", ["int"])
    with connection.cursor() as cursor:
        statement.execute(cursor, [7])
        assert cursor.fetchall() == [("abcd", 7)]
        cursor.execute(ALTER)
        cursor.execute("UPDATE altered SET code = repeat('x', 40)")
        statement.execute(cursor, [7])
        assert cursor.fetchall() == [("x" * 40, 7)]
        # and again, without making it a third time
        statement.execute(cursor, [7])
        assert cursor.fetchall() == [("x" * 40, 7)]
    assert made().count(statement.name) == 1


@pytest.mark.django_db(transaction=True)
def test_inside_a_transaction_the_work_is_lost_as_retryable_and_the_next_run_answers(
    altered_table,
):
    statement = Prepared("SELECT code FROM altered WHERE id = %s", ["int"])
    with connection.cursor() as cursor:
        statement.execute(cursor, [7])
        cursor.fetchall()
        cursor.execute(ALTER)
    # The transaction is aborted: nothing it did is kept, and the error is one the API answers
    # with 503 and Retry-After (common.api), not a 500.
    with pytest.raises(OperationalError, match="changed type"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO altered VALUES (8, 'lost')")
            statement.execute(cursor, [7])
    with transaction.atomic(), connection.cursor() as cursor:
        statement.execute(cursor, [7])
        assert cursor.fetchall() == [("abcd",)]
        cursor.execute("SELECT count(*) FROM altered")
        assert cursor.fetchone() == (1,)
    assert made().count(statement.name) == 1


def test_other_errors_of_a_prepared_statement_are_left_as_they_are():
    statement = Prepared("SELECT 1 / %s", ["int"])
    with pytest.raises(Exception, match="division by zero"), connection.cursor() as cursor:
        statement.execute(cursor, [0])
