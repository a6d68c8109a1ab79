"""The stock pages in a real browser (Debian's Chromium driven by Playwright) against the live
server: a clinic administrator receives a delivery by scanning it (the scanner's Enter looks the
lot up and never submits the form), and the stock, receive, move and label pages pass axe-core."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from stock.models import Receipt, StockBalance, StockState
from tests.factories import ProductFactory, clinic_ready, receive, released_lot
from tests.pages.conftest import assert_accessible, sign_in
from tests.pages.test_labels import gtin

pytestmark = pytest.mark.usefixtures("reference_data")


def test_a_clinic_administrator_scans_a_delivery_checks_it_and_sees_the_balance(wide_page):
    page = wide_page
    ready = clinic_ready()
    lot = released_lot(product=ProductFactory(gtin=gtin(501)), lot_number="HX-2041")
    scan = f"(01){lot.product.gtin}(17){lot.expires_on:%y%m%d}(10){lot.lot_number}"
    sign_in(page, ready.administrator)

    page.goto("/stock/")
    assert_accessible(page)
    page.get_by_role("link", name="Receive a delivery").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Receive a delivery")
    assert_accessible(page)

    # The scanner types the string and ends it with Enter: the lot is looked up, nothing saved.
    field = page.get_by_label("Scan the delivery's DataMatrix")
    page.evaluate("window.stillThisPage = true")  # a form submission would load a new page
    field.press_sequentially(scan)
    field.press("Enter")
    expect(page.locator("#scan-result")).to_contain_text(
        f"Lot {lot.lot_number} of {lot.product.name}"
    )
    expect(page.locator("#scan-result")).to_contain_text("-80.0 to -60.0 °C")
    assert page.evaluate("window.stillThisPage") is True
    expect(page.get_by_text("Nothing was saved")).to_have_count(0)
    assert not Receipt.objects.exists()
    assert_accessible(page)

    page.get_by_label("Units delivered").fill("6")
    page.get_by_label("The package is intact").check()
    page.get_by_label("Every label is readable").check()
    page.get_by_label("Lowest transport temperature (°C)").fill("-75")
    page.get_by_label("Highest transport temperature (°C)").fill("-65")
    page.get_by_label("Storage location").fill("Freezer 2, shelf B")
    page.get_by_label("Accept: usable stock").check()
    page.get_by_role("button", name="Save the receipt").click()

    expect(page.get_by_role("status")).to_contain_text(
        f"Received 6 unit(s) of lot {lot.lot_number} of {lot.product.name}"
    )
    row = page.get_by_role("row").filter(has_text=f"Lot {lot.lot_number}")
    expect(row).to_contain_text("Usable")
    expect(row.get_by_role("cell").nth(3)).to_have_text("6")
    assert StockBalance.objects.get(lot=lot, state=StockState.ACCEPTED).quantity == 6
    assert_accessible(page)


def test_a_temperature_excursion_is_refused_on_the_page_and_saves_nothing(wide_page):
    page = wide_page
    ready = clinic_ready()
    lot = released_lot(product=ProductFactory(gtin=gtin(502)))
    sign_in(page, ready.administrator)
    page.goto("/stock/receive/")
    page.get_by_label("Scan the delivery's DataMatrix").fill(
        f"(01){lot.product.gtin}(10){lot.lot_number}"
    )
    page.get_by_label("Scan the delivery's DataMatrix").press("Enter")
    expect(page.locator("#scan-result")).to_contain_text(lot.lot_number)
    page.get_by_label("Units delivered").fill("2")
    page.get_by_label("The package is intact").check()
    page.get_by_label("Every label is readable").check()
    page.get_by_label("Lowest transport temperature (°C)").fill("-75")
    page.get_by_label("Highest transport temperature (°C)").fill("-10")
    page.get_by_label("Storage location").fill("Freezer 1")
    page.get_by_label("Accept: usable stock").check()
    page.get_by_role("button", name="Save the receipt").click()

    expect(page.get_by_text("Nothing was saved")).to_be_visible()
    expect(page.get_by_text(re.compile(r"Transport ran -75\.?0? to -10"))).to_be_visible()
    assert not Receipt.objects.exists()
    assert_accessible(page)


def test_the_move_pages_are_accessible_and_a_waste_write_off_is_recorded(wide_page):
    page = wide_page
    ready, other = clinic_ready(), clinic_ready()
    lot = released_lot()
    receive(ready, lot, 5)
    sign_in(page, ready.administrator)
    page.goto("/stock/")
    page.get_by_role("link", name=f"Transfer {lot.lot_number}").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Transfer to another clinic")
    expect(page.get_by_label("To clinic")).to_contain_text(other.clinic.name)
    assert_accessible(page)
    page.goto("/stock/")
    page.get_by_role("link", name=f"Waste {lot.lot_number}").click()
    page.get_by_label("Units").fill("2")
    page.get_by_label("Reason").fill("Vial dropped")
    assert_accessible(page)
    page.get_by_role("button", name="Write off as waste").click()
    expect(page.get_by_role("status")).to_contain_text("written off: wastage")
    assert StockBalance.objects.get(lot=lot, state=StockState.ACCEPTED).quantity == 3
