"""A German-speaking administrator of a Berlin clinic reads the pages in German, with every time
on Berlin's clock, whatever language the browser asks for."""

from __future__ import annotations

import datetime

import pytest
from playwright.sync_api import expect

from pages.models import AccountPreference
from tests.factories import clinic_ready, receive, released_lot, treat
from tests.pages.conftest import assert_accessible, sign_in

pytestmark = pytest.mark.usefixtures("reference_data")


def test_a_german_speaking_user_of_the_berlin_clinic_sees_german_pages_with_berlin_times(
    wide_page,
):
    berlin = clinic_ready(jurisdiction="DE", time_zone="Europe/Berlin")
    lot = released_lot()
    receive(berlin, lot, 4)
    # 09:30 UTC on a winter day is 10:30 in Berlin (CET, UTC+1).
    at = datetime.datetime(2026, 12, 3, 9, 30, tzinfo=datetime.UTC)
    treat(berlin, lot, 1, performed_at=at)
    AccountPreference.objects.create(user=berlin.administrator, language="de")

    sign_in(wide_page, berlin.administrator)

    expect(wide_page.locator("html")).to_have_attribute("lang", "de")
    expect(wide_page.get_by_role("link", name="Startseite")).to_be_visible()
    expect(wide_page.get_by_role("button", name="Abmelden")).to_be_visible()
    expect(wide_page.get_by_role("heading", level=1)).to_contain_text("Willkommen")
    expect(wide_page.get_by_text("Europe/Berlin")).to_be_visible()
    treatments = wide_page.get_by_role("region", name="Letzte Behandlungen")
    expect(treatments).to_contain_text("3. Dezember 2026 10:30 CET")
    expect(treatments).not_to_contain_text("09:30")
    assert_accessible(wide_page)

    wide_page.get_by_role("link", name="Bestand", exact=True).click()
    expect(wide_page.locator("html")).to_have_attribute("lang", "de")
    expect(wide_page.get_by_role("heading", level=1)).not_to_contain_text("Stock")
    assert_accessible(wide_page)
