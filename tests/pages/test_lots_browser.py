"""A quality manager releases lots in a real browser (Chromium via Playwright, live server): the
unmet requirements come before any signature; a releasable lot is signed and shows "Released".
Every lot page passes axe-core's serious and critical checks."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from lots.models import LotStatus
from tests.factories import PASSWORD, lot_for_release, releasable_lot
from tests.pages.conftest import assert_accessible, sign_in

pytestmark = pytest.mark.usefixtures("reference_data")


def test_a_quality_manager_sees_unmet_requirements_then_releases_a_releasable_lot(
    wide_page, quality_manager
):
    page = wide_page
    blocked = lot_for_release(quality_manager=quality_manager, coa=False, skip_qc=("sterility",))
    ready = releasable_lot(quality_manager=quality_manager)
    sign_in(page, quality_manager)

    page.goto("/lots/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Lots")
    assert_accessible(page)

    page.get_by_role("link", name=f"Lot {blocked.lot_number} of {blocked.product.name}").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(
        f"Lot {blocked.lot_number} of {blocked.product.name}"
    )
    expect(page.get_by_role("img", name=f"Trace of Lot {blocked.lot_number}")).to_be_visible()
    assert_accessible(page)

    page.get_by_role("link", name="Release…").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("2 requirements are not met")
    expect(alert).to_contain_text("No certificate of analysis for this lot is on file.")
    expect(alert).to_contain_text("No Sterility result on file.")
    expect(page.get_by_label("Your password")).to_have_count(0)
    assert_accessible(page)

    page.goto(f"/lots/{ready.pk}/release/")
    expect(page.get_by_text("Every release requirement is met.")).to_be_visible()
    page.get_by_label("Your password").fill("not my password")
    page.get_by_label("Meaning of your signature").select_option("approval")
    page.get_by_label("Reason").fill("Batch record, QC and donor file reviewed.")
    page.get_by_role("button", name="Sign and release").click()
    expect(page.get_by_text("The password you re-entered to sign is not correct.")).to_be_visible()
    assert_accessible(page)
    ready.refresh_from_db()
    assert ready.status == LotStatus.QUARANTINED

    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_role("button", name="Sign and release").click()

    expect(page).to_have_url(re.compile(rf"/lots/{ready.pk}/$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Released")
    expect(page.get_by_text("Released by Quinn Manager")).to_be_visible()
    assert_accessible(page)
    ready.refresh_from_db()
    assert ready.status == LotStatus.RELEASED


def test_the_certificates_page_is_accessible(wide_page, quality_manager):
    sign_in(wide_page, quality_manager)

    wide_page.goto("/lots/certificates/")

    expect(wide_page.get_by_role("heading", level=1)).to_have_text("Certificates needing attention")
    assert_accessible(wide_page)
