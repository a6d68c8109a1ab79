"""Clinic pages, stock: what the use cases share: who receives and moves stock (asked of
providers.access through the Access), first-expiry-first-out order, and why units are not
usable."""

from __future__ import annotations

import datetime
from typing import cast

from django.db.models import Q
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from lots.models import LotStatus
from providers.access import Access
from stock import services
from stock.models import StockBalance, StockState

# Oldest expiry first (first expiry, first out), then by name.
FEFO = ("lot__expires_on", "lot__product__name", "lot__lot_number", "clinic__name", "state")


def stock_clinic_ids(access: Access) -> frozenset[int] | None:
    """Clinics where the user receives and moves stock: None for every clinic."""
    return access.clinic_ids(services.STOCK_ROLES)


def keeps_stock(access: Access) -> bool:
    ids = stock_clinic_ids(access)
    return ids is None or bool(ids)


def keeps_stock_at(access: Access, clinic_id: int) -> bool:
    return access.holds_any(services.STOCK_ROLES, clinic_id=clinic_id)


def _unusable_q(today: datetime.date) -> Q:
    return (
        ~Q(state=StockState.ACCEPTED)
        | ~Q(lot__status=LotStatus.RELEASED)
        | Q(lot__expires_on__lt=today)
    )


def why_not_usable(balance: StockBalance, today: datetime.date) -> str:
    """Empty when the units may be used; otherwise the reason, in a clinic's words."""
    lot = balance.lot
    if balance.state == StockState.QUARANTINED:
        return _("Quarantined: check before use")
    if balance.state == StockState.BLOCKED:
        return _("Blocked by a recall")
    if balance.state == StockState.REJECTED:
        return _("Rejected: return or destroy")
    if lot.status != LotStatus.RELEASED:
        return _("Lot %(status)s") % {"status": lot.get_status_display().lower()}
    if lot.is_expired(on=today):
        return _("Expired")
    return ""


def badge_code(balance: StockBalance, today: datetime.date) -> str:
    """The colour of the state badge: green only for usable units."""
    if balance.state != StockState.ACCEPTED:
        return str(balance.state)
    if balance.lot.status != LotStatus.RELEASED:
        return str(balance.lot.status)
    return "expired" if balance.lot.is_expired(on=today) else "accepted"


# Lazy, so the refusal speaks the user's language; page() renders it as text.
STOCK_REFUSAL = cast(
    str,
    gettext_lazy(
        "Receiving and moving stock is for a clinic's administrators and quality managers."
    ),
)
