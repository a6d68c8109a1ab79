"""Clinic pages, lots: what needs attention, as the home page shows it (imported by pages.home):
manufacturer certificates expired or expiring soon, and quarantined lots awaiting release."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from common.errors import Problem
from lots.models import MANUFACTURER_CERTIFICATE_KINDS, Certificate, Lot, LotStatus
from lots.selectors import current_certificates, lot_list, lot_release_check
from pages.lots.common import ATTENTION_DAYS, lot_title
from providers.models import Manufacturer


@dataclass(frozen=True)
class CertificateAttention:
    """A manufacturer certificate that has expired or expires soon, and no later certificate of
    the same kind for that manufacturer runs longer."""

    certificate: Certificate
    expired: bool
    days_left: int

    @property
    def manufacturer(self) -> Manufacturer:
        return self.certificate.manufacturer


def certificates_needing_attention(
    *, today: datetime.date, within_days: int = ATTENTION_DAYS
) -> list[CertificateAttention]:
    """Manufacturer certificates (GMP, ISO 13485) expired or expiring within `within_days` of
    `today`: per manufacturer and kind, the current certificate that runs longest, when even that
    one ends within the window. Expired first, then soonest. One query."""
    longest: dict[tuple[int, str], Certificate] = {}
    rows = (
        current_certificates()
        .filter(kind__in=MANUFACTURER_CERTIFICATE_KINDS, lot__isnull=True)
        .select_related("manufacturer")
        .order_by("manufacturer_id", "kind", "pk")
    )
    for certificate in rows:
        key = (certificate.manufacturer_id, certificate.kind)
        held = longest.get(key)
        if held is None or _runs_longer(certificate, held):
            longest[key] = certificate
    horizon = today + datetime.timedelta(days=within_days)
    found = [
        CertificateAttention(
            certificate=certificate,
            expired=certificate.valid_until < today,
            days_left=(certificate.valid_until - today).days,
        )
        for certificate in longest.values()
        if certificate.valid_until is not None and certificate.valid_until <= horizon
    ]
    return sorted(
        found, key=lambda item: (item.days_left, item.manufacturer.legal_name, item.certificate.pk)
    )


def _runs_longer(candidate: Certificate, held: Certificate) -> bool:
    if held.valid_until is None:
        return False
    return candidate.valid_until is None or candidate.valid_until > held.valid_until


@dataclass(frozen=True)
class AwaitingRelease:
    lot: Lot
    problems: list[Problem]
    warnings: list[Problem]

    @property
    def releasable(self) -> bool:
        return not self.problems

    @property
    def title(self) -> str:
        return lot_title(self.lot)


def lots_awaiting_release(*, limit: int = 10) -> list[AwaitingRelease]:
    """Quarantined lots, oldest first, each with every unmet release requirement. At most `limit`
    lots are checked, so the queries are bounded: one for the lots, then the release check's
    fixed handful per lot."""
    lots = list(
        lot_list()
        .filter(status=LotStatus.QUARANTINED)
        .prefetch_related(None)
        .order_by("created_at", "pk")[:limit]
    )
    found = []
    for lot in lots:
        check = lot_release_check(lot=lot)
        found.append(AwaitingRelease(lot=lot, problems=check.problems, warnings=check.warnings))
    return found
