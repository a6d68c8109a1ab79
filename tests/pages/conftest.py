"""Shared helpers for the clinic pages' tests: signing in through the page itself (so django-axes
and the session are the real ones), a Django test client signed in as a role, and an axe-core
accessibility check that fails on any serious or critical violation."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from tests.factories import PASSWORD

SERIOUS = frozenset({"serious", "critical"})


def sign_in(page: Any, user: Any, *, password: str = PASSWORD) -> None:
    """Sign in through the sign-in page, as a person would."""
    page.goto("/sign-in/")
    page.get_by_label("Username").fill(user.get_username())
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/sign-in/" not in url)


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def serious_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it stands."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [v for v in results.response["violations"] if v.get("impact") in SERIOUS]


def assert_accessible(page: Any) -> None:
    found = serious_violations(page)
    assert not found, "\n".join(
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:5]}"
        for v in found
    )


@pytest.fixture
def wide_page(page):
    """The page at a tablet's size (1024x768), the smallest the clinic pages are made for."""
    page.set_viewport_size({"width": 1024, "height": 768})
    return page
