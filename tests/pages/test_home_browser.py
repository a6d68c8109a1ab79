"""Each role signs in through the sign-in page in Chromium and lands on its own home page, which
axe-core finds free of serious and critical accessibility violations."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from lots.models import LotStatus
from tests.factories import LotFactory, clinic_ready, receive, released_lot
from tests.pages.conftest import assert_accessible, sign_in
from tests.recalls.conftest import affected_clinic, open_recall, recalled_lot

pytestmark = pytest.mark.usefixtures("reference_data")


def test_clinic_staff_land_on_what_their_clinic_has_to_act_on(wide_page, quality_manager):
    lot = recalled_lot()
    affected = affected_clinic(lot)
    recall = open_recall(quality_manager, lot)

    sign_in(wide_page, affected.ready.clinician)

    expect(wide_page.get_by_role("heading", level=1)).to_contain_text("Welcome")
    owed = wide_page.get_by_role("region", name="Open recalls: what your clinic still owes")
    expect(owed).to_contain_text(recall.reference)
    expect(owed).to_contain_text("Acknowledge the recall")
    expect(wide_page.get_by_role("link", name="Find a patient and treat")).to_be_visible()
    assert_accessible(wide_page)


def test_a_quality_manager_lands_on_lots_awaiting_release(wide_page, quality_manager):
    waiting = LotFactory(status=LotStatus.QUARANTINED)

    sign_in(wide_page, quality_manager)

    awaiting = wide_page.get_by_role("region", name="Lots awaiting release")
    expect(awaiting).to_contain_text(waiting.lot_number)
    expect(wide_page.get_by_role("link", name="Open a recall")).to_be_visible()
    assert_accessible(wide_page)


def test_an_auditor_lands_on_the_same_read_only_with_the_evidence(wide_page, auditor):
    LotFactory(status=LotStatus.QUARANTINED)

    sign_in(wide_page, auditor)

    expect(wide_page.get_by_role("region", name="Evidence")).to_be_visible()
    expect(wide_page.get_by_role("link", name="Open a recall")).to_have_count(0)
    expect(wide_page.locator("main form")).to_have_count(0)
    assert_accessible(wide_page)


def test_a_clinic_administrator_sees_stock_without_a_usable_badge_on_unusable_units(wide_page):
    ready = clinic_ready()
    lot = released_lot()
    receive(ready, lot, 3, decision="quarantine")

    sign_in(wide_page, ready.administrator)

    unusable = wide_page.get_by_role("region", name="Stock that must not be used")
    expect(unusable).to_contain_text(lot.lot_number)
    expect(unusable).not_to_contain_text("usable)")
    assert_accessible(wide_page)
