"""Clinic pages, lots: what the use cases share (labels, a lot's title, finding a lot)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from lots.models import CertificateKind, Lot, LotStatus
from lots.selectors import lot_get
from pages.base import refused

ATTENTION_DAYS = 60


KIND_LABELS = {
    CertificateKind.COA: gettext_lazy("Certificate of analysis"),
    CertificateKind.GMP: gettext_lazy("GMP certificate"),
    CertificateKind.ISO_13485: gettext_lazy("ISO 13485 certificate"),
}

STATUS_LABELS = {
    LotStatus.QUARANTINED: gettext_lazy("Quarantined"),
    LotStatus.RELEASED: gettext_lazy("Released"),
    LotStatus.REJECTED: gettext_lazy("Rejected"),
    LotStatus.ON_HOLD: gettext_lazy("On hold"),
    LotStatus.RECALLED: gettext_lazy("Recalled"),
}


def lot_title(lot: Lot) -> str:
    """A lot as people name it: "Lot HX-1234 of ProductName"."""
    return _("Lot %(number)s of %(product)s") % {
        "number": lot.lot_number,
        "product": lot.product.name,
    }


def _lot_or_none(lot_id: int) -> Lot | None:
    try:
        return lot_get(lot_id=lot_id)
    except Lot.DoesNotExist:
        return None


def _no_such_lot(request: HttpRequest) -> HttpResponse:
    return refused(request, _("There is no such lot."), status=404)
