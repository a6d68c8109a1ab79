"""A label printed from the stock page, rendered to PNG by the browser, decodes back to the lot
it names."""

from __future__ import annotations

import io

import pytest
import zxingcpp
from PIL import Image
from playwright.sync_api import expect

from lots.models import Lot
from lots.scan import scan_resolve
from tests.factories import ProductFactory, clinic_ready, receive, released_lot
from tests.pages.conftest import assert_accessible, sign_in
from tests.pages.test_labels import gtin

pytestmark = pytest.mark.usefixtures("reference_data")

LOT_NUMBER_MAX = Lot._meta.get_field("lot_number").max_length


def test_a_label_printed_from_the_stock_page_decodes_back_to_the_lot_it_names(wide_page):
    page = wide_page
    ready = clinic_ready()
    product = ProductFactory(gtin=gtin(601))
    lots = [
        released_lot(product=product, lot_number=number)
        for number in ("HX-1234", "abc-XYZ-9", "L" + "-7" * ((LOT_NUMBER_MAX - 1) // 2))
    ]
    for lot in lots:
        receive(ready, lot, 1)
    sign_in(page, ready.clinician)

    for lot in lots:
        page.goto("/stock/")
        page.get_by_role("link", name=f"Label of lot {lot.lot_number}").click()
        label = page.locator("#lot-label")
        expect(label).to_contain_text(lot.lot_number)
        expect(label).to_contain_text(product.name)
        expect(label).to_contain_text(product.gtin)
        expect(label).to_contain_text(f"{lot.expires_on:%Y-%m-%d}")
        expect(label.get_by_role("img")).to_have_js_property("complete", True)
        png = label.screenshot()
        [symbol] = zxingcpp.read_barcodes(
            Image.open(io.BytesIO(png)), text_mode=zxingcpp.TextMode.Plain
        )
        assert symbol.symbology_identifier == "]d2"
        assert scan_resolve(symbol.symbology_identifier + symbol.text).lot.pk == lot.pk
    assert_accessible(page)
