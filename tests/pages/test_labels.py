"""The printable lot label: its GS1 DataMatrix, drawn by zxing-cpp, decodes back to exactly the
lot it names, for lot numbers with letters, hyphens, punctuation and the longest the model
allows; and only a clinic that received the lot can print it."""

from __future__ import annotations

import io

import pytest
import zxingcpp
from django.urls import reverse
from PIL import Image

from lots.models import Lot
from lots.scan import scan_resolve
from pages.labels import label_png
from tests.factories import ProductFactory, clinic_ready, receive, released_lot
from tests.pages.conftest import client_for

pytestmark = pytest.mark.django_db

LOT_NUMBER_MAX = Lot._meta.get_field("lot_number").max_length


def gtin(serial: int) -> str:
    body = f"0950600{serial:06d}"
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)


def decoded_lot(png: bytes) -> Lot:
    """Read the PNG as a scanner would (symbology identifier, FNC1 as GS) and resolve it."""
    [symbol] = zxingcpp.read_barcodes(
        Image.open(io.BytesIO(png)), text_mode=zxingcpp.TextMode.Plain
    )
    assert symbol.format == zxingcpp.BarcodeFormat.DataMatrix
    assert symbol.symbology_identifier == "]d2"  # GS1 DataMatrix: FNC1 first
    rows, columns = symbol.extra["Version"].split("x")
    assert rows == columns  # square: every clinic scanner reads it
    return scan_resolve(symbol.symbology_identifier + symbol.text).lot


LOT_NUMBERS = [
    "ABC123",
    "abc-XYZ-9",
    "HX-1234",
    "a-b-c-9",
    "X" * LOT_NUMBER_MAX,
    "A1-B2-C3-D4-E5-F6-G7"[:LOT_NUMBER_MAX],
    "LOT(7)/2026.B",
    "Q%&'*+,:;<=>?_x!\"",
]


@pytest.mark.parametrize("lot_number", LOT_NUMBERS)
def test_a_label_png_decodes_back_to_exactly_the_lot_it_names(lot_number):
    product = ProductFactory(gtin=gtin(len(lot_number) * 7 + LOT_NUMBERS.index(lot_number)))
    # A lot with the same number at another product, and another lot of the same product:
    # the decoded label must name this one.
    released_lot(
        product=ProductFactory(gtin=gtin(900 + LOT_NUMBERS.index(lot_number))),
        lot_number=lot_number,
    )
    released_lot(product=product)
    lot = released_lot(product=product, lot_number=lot_number)

    assert decoded_lot(label_png(lot)).pk == lot.pk


def test_labels_of_several_lots_each_decode_to_their_own_lot():
    product = ProductFactory(gtin=gtin(4242))
    lots = [released_lot(product=product, lot_number=n) for n in ("L-1", "L-2", "L-10", "l-1")]
    assert [decoded_lot(label_png(lot)).pk for lot in lots] == [lot.pk for lot in lots]


def test_the_label_page_shows_product_lot_expiry_and_gtin_beside_the_code():
    ready = clinic_ready()
    lot = released_lot(product=ProductFactory(gtin=gtin(77)), lot_number="HX-77")
    receive(ready, lot, 2)
    response = client_for(ready.clinician).get(reverse("pages:stock-label", args=[lot.pk]))
    text = response.content.decode()
    assert response.status_code == 200
    for fact in (lot.product.name, "HX-77", f"{lot.expires_on:%Y-%m-%d}", lot.product.gtin):
        assert fact in text
    assert reverse("pages:stock-label-png", args=[lot.pk]) in text


def test_the_label_png_served_to_the_clinic_decodes_to_the_lot():
    ready = clinic_ready()
    lot = released_lot(product=ProductFactory(gtin=gtin(78)), lot_number="ZZ-9")
    receive(ready, lot, 2)
    response = client_for(ready.administrator).get(reverse("pages:stock-label-png", args=[lot.pk]))
    assert response["Content-Type"] == "image/png"
    assert decoded_lot(response.content).pk == lot.pk


def test_another_clinics_lot_has_no_label_for_you():
    ready, other = clinic_ready(), clinic_ready()
    lot = released_lot(product=ProductFactory(gtin=gtin(79)))
    receive(other, lot, 2)
    client = client_for(ready.administrator)
    assert client.get(reverse("pages:stock-label", args=[lot.pk])).status_code == 404
    assert client.get(reverse("pages:stock-label-png", args=[lot.pk])).status_code == 404


def test_a_product_without_gtin_gets_no_label_but_a_reason(auditor):
    ready = clinic_ready()
    lot = released_lot(product=ProductFactory(gtin=None))
    receive(ready, lot, 1)
    response = client_for(auditor).get(reverse("pages:stock-label", args=[lot.pk]))
    assert response.status_code == 404
    assert "has no GTIN on record" in response.content.decode()
