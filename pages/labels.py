"""A printable label per received lot: a GS1 DataMatrix holding (01) GTIN, (17) expiry and (10)
lot number, with the same facts in plain text beside it, and the lot's Single European Code in
its eye-readable form where the lot carries one (Directive 2006/86/EC Article 10a).

The symbol is drawn by zxing-cpp in GS1 mode, so it starts with FNC1 and a scanner reports it
as `]d2`: scan_resolve reads it back to the lot. The element string is written with square
brackets around the application identifiers because a lot number may itself hold parentheses
(GS1 character set 82 has them, and no square brackets).
"""

from __future__ import annotations

import io

import zxingcpp
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils.translation import gettext as _
from PIL import Image

from lots.models import Lot
from pages.base import page, refused
from stock.selectors import receipt_list

LABEL_SCALE = 8


def label_element_string(lot: Lot) -> str:
    """(01) GTIN, (17) expiry YYMMDD, (10) lot number: the lot number last, so no separator."""
    return f"[01]{lot.product.gtin}[17]{lot.expires_on:%y%m%d}[10]{lot.lot_number}"


def label_barcode(lot: Lot) -> zxingcpp.Barcode:
    # Square symbols only: left free, the writer may pick a rectangular DMRE size (8x64 and
    # the like) that many clinic scanners cannot read, and that reports itself as ]d8, not ]d2.
    return zxingcpp.create_barcode(
        label_element_string(lot), zxingcpp.BarcodeFormat.DataMatrix, gs1=True, forceSquare=True
    )


def label_png(lot: Lot, *, scale: int = LABEL_SCALE) -> bytes:
    """The DataMatrix as a PNG, `scale` pixels a module, with its quiet zone."""
    image = Image.fromarray(zxingcpp.write_barcode_to_image(label_barcode(lot), scale=scale))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def label_human_text(lot: Lot) -> str:
    """What the symbol holds, as a person reads it on the label."""
    return f"(01){lot.product.gtin}(17){lot.expires_on:%y%m%d}(10){lot.lot_number}"


def _labelled_lot(request: HttpRequest, lot_id: int) -> Lot | HttpResponse:
    """The lot, when it was received at a clinic the user sees and its product has a GTIN;
    otherwise the refusal page saying why there is no label."""
    receipt = receipt_list(user=request.user).filter(lot_id=lot_id).first()
    if receipt is None:
        return refused(
            request,
            _("No lot received at your clinics has this number. Open the stock page to find it."),
            status=404,
        )
    lot = receipt.lot
    if not lot.product.gtin:
        return refused(
            request,
            _(
                "%(product)s has no GTIN on record, so no GS1 label can be printed. Ask quality "
                "to add the product's GTIN."
            )
            % {"product": lot.product.name},
            status=404,
        )
    return lot


@page()
def lot_label(request: HttpRequest, lot_id: int) -> HttpResponse:
    lot = _labelled_lot(request, lot_id)
    if isinstance(lot, HttpResponse):
        return lot
    return render(
        request,
        "pages/stock/label.html",
        {
            "nav": "stock",
            "lot": lot,
            "element_string": label_human_text(lot),
            "sec": lot.sec,
        },
    )


@page()
def lot_label_png(request: HttpRequest, lot_id: int) -> HttpResponse:
    lot = _labelled_lot(request, lot_id)
    if isinstance(lot, HttpResponse):
        return lot
    response = HttpResponse(label_png(lot), content_type="image/png")
    response["Content-Disposition"] = f'inline; filename="label-{lot.pk}.png"'
    return response


urlpatterns = [
    path("stock/lots/<int:lot_id>/label/", lot_label, name="stock-label"),
    path("stock/lots/<int:lot_id>/label.png", lot_label_png, name="stock-label-png"),
]
