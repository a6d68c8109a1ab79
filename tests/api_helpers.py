"""Helpers the API tests share: the error shape and the fixed-query-count check for lists."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.apps import apps
from django.db import connection
from django.test.utils import CaptureQueriesContext

API = "/api/v1"


def error_codes(response: Any) -> list[str]:
    """The codes of an error response, after checking it has the one error shape."""
    body = response.json()
    assert set(body) == {"errors"}, body
    assert body["errors"], body
    for problem in body["errors"]:
        assert set(problem) == {"code", "message", "field"}, problem
        assert isinstance(problem["code"], str) and problem["code"], problem
        assert isinstance(problem["message"], str) and problem["message"], problem
        assert problem["field"] is None or isinstance(problem["field"], str), problem
    return [problem["code"] for problem in body["errors"]]


def error_fields(response: Any) -> list[str | None]:
    error_codes(response)
    return [problem["field"] for problem in response.json()["errors"]]


def assert_list_queries_fixed(
    client: Any,
    url: str,
    add_rows: Callable[[int], None],
    django_assert_num_queries: Any,
) -> None:
    """The list runs as many queries for 20 more rows as for 1 more, and shows all of them."""
    before = client.get(url).json()["count"]
    add_rows(1)
    with CaptureQueriesContext(connection) as one_row:
        response = client.get(url)
    assert response.status_code == 200, response.content
    assert response.json()["count"] == before + 1
    add_rows(19)
    with django_assert_num_queries(len(one_row)):
        response = client.get(url)
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == before + 20
    assert len(body["results"]) == min(before + 20, 50)


TRACKED_APPS = ("providers", "lots", "auth", "pghistory")


def row_counts() -> dict[str, int]:
    """Rows in every table of the traceability apps (history events and contexts included), in one
    query."""
    tables = sorted(
        model._meta.db_table
        for label in TRACKED_APPS
        for model in apps.get_app_config(label).get_models()
        if model._meta.managed and not model._meta.proxy
    )
    # Table names come from the models, never from input.
    sql = " UNION ALL ".join(
        f"SELECT %s, COUNT(*) FROM {connection.ops.quote_name(table)}"  # noqa: S608
        for table in tables
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, tables)
        return dict(cursor.fetchall())
