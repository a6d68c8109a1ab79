"""A request that cannot reach the database is answered 503 with Retry-After wherever it lands:
an API view (the DRF exception handler), a clinic page or the admin (Django's handler500). Other
failures stay a 500. The database connection points at a port where nothing listens; the restart
of a real server under load is tests/faults/test_database_restart.py."""

from __future__ import annotations

import pytest
from django.db import InterfaceError, OperationalError
from django.test import Client, RequestFactory

from common.api import server_error
from tests.test_health import database_down

__all__ = ["database_down"]

pytestmark = pytest.mark.django_db(transaction=True)

# A session cookie makes the first look at the user read the session table.
SESSION = "a" * 32


def _assert_database_unavailable(response) -> None:
    assert response.status_code == 503, response.content
    assert int(response["Retry-After"]) > 0


@pytest.mark.parametrize("method", ["get", "post"])
def test_an_api_request_without_its_database_is_a_503_in_the_error_shape(database_down, method):
    client = Client(raise_request_exception=False)
    response = getattr(client, method)(
        "/api/v1/manufacturers/",
        headers={"Authorization": "Token " + "b" * 64},
        content_type="application/json",
    )
    _assert_database_unavailable(response)
    [problem] = response.json()["errors"]
    assert (problem["code"], problem["field"]) == ("database_unavailable", None)


@pytest.mark.parametrize("path", ["/", "/admin/lots/lot/"])
def test_a_page_without_its_database_is_a_503_page_not_a_500(database_down, path):
    client = Client(raise_request_exception=False)
    client.cookies["sessionid"] = SESSION
    response = client.get(path)
    _assert_database_unavailable(response)
    assert response["Content-Type"].startswith("text/html")
    assert b"database cannot be reached" in response.content


@pytest.mark.parametrize(
    ("error", "path", "status", "json"),
    [
        (OperationalError("connection refused"), "/api/v1/lots/", 503, True),
        (InterfaceError("connection already closed"), "/api/v1/lots/", 503, True),
        (OperationalError("connection refused"), "/lots/", 503, False),
        (InterfaceError("connection already closed"), "/lots/", 503, False),
        (RuntimeError("a bug"), "/api/v1/lots/", 500, False),
        (RuntimeError("a bug"), "/lots/", 500, False),
    ],
)
def test_handler500_answers_503_only_for_a_lost_database(error, path, status, json):
    request = RequestFactory().get(path)
    try:
        raise error
    except Exception:
        response = server_error(request)
    assert response.status_code == status
    assert ("Retry-After" in response) is (status == 503)
    assert response["Content-Type"].startswith("application/json") is json
