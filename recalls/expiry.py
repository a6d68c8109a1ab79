"""Expiry watch: warn each clinic of usable stock whose lot expires within 90, 60 and 30 days, and
the network quality managers of manufacturer certificates (GMP, ISO 13485) expiring within 60 days.

Each warning goes out once per threshold. An `ExpiryWarning` row is the claim: inserted before the
e-mail is sent (the unique constraint lets exactly one run win), stamped `sent_at` after. A claim
that was never stamped (mail server down, worker killed) is taken again by a later run once it is
older than the delivery lease. Stock that turns up already inside a threshold gets only the
tightest warning; a lot never goes back up a threshold, so the wider ones are not owed any more.
"""

from __future__ import annotations

import datetime
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db.models import Exists, OuterRef, Q
from django.template.loader import render_to_string
from django.utils import timezone

from lots.models import MANUFACTURER_CERTIFICATE_KINDS, Certificate, Lot
from providers.models import Clinic, ClinicContact
from recalls import notices
from recalls.delivery import DeliveryError, send_email
from recalls.models import ExpiryWarning, ExpiryWarningKind
from stock.models import StockBalance, StockState

logger = logging.getLogger(__name__)

STOCK_THRESHOLDS_DAYS = (30, 60, 90)
CERTIFICATE_THRESHOLD_DAYS = 60


@dataclass
class ExpiryReport:
    stock_warnings: int = 0
    certificate_warnings: int = 0
    unsent: list[int] = field(default_factory=list)  # ExpiryWarning ids left for the next run


def _tightest(days_left: int, thresholds: tuple[int, ...]) -> int | None:
    return next((days for days in sorted(thresholds) if days_left <= days), None)


def _claim(
    *, now: datetime.datetime, kind: str, threshold: int, **target: Any
) -> ExpiryWarning | None:
    """This run's claim on one warning, or None when it was sent or another run holds it."""
    warning, created = ExpiryWarning.objects.get_or_create(
        kind=kind, threshold_days=threshold, **target, defaults={"claimed_at": now}
    )
    if created:
        return warning
    if warning.sent_at is not None:
        return None
    lease = datetime.timedelta(seconds=settings.RECALL_DELIVERY_LEASE_SECONDS)
    taken = ExpiryWarning.objects.filter(
        pk=warning.pk,
        sent_at__isnull=True,
        claimed_at=warning.claimed_at,
        claimed_at__lt=now - lease,
    ).update(claimed_at=now)
    return warning if taken else None


def _stamp(warnings: list[ExpiryWarning]) -> None:
    ExpiryWarning.objects.filter(pk__in=[warning.pk for warning in warnings]).update(
        sent_at=timezone.now()
    )


def _email(
    *, subject: str, template: str, context: dict[str, Any], to: list[str]
) -> EmailMultiAlternatives:
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string(f"recalls/email/{template}.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=to,
        headers={"Auto-Submitted": "auto-generated"},
    )
    message.attach_alternative(
        render_to_string(f"recalls/email/{template}.html", context), "text/html"
    )
    return message


def _send(
    message: EmailMultiAlternatives, warnings: list[ExpiryWarning], report: ExpiryReport
) -> bool:
    try:
        send_email(message)
    except DeliveryError as error:
        logger.warning("expiry warning not sent (%s); the next run tries again", error.reason)
        report.unsent.extend(warning.pk for warning in warnings)
        return False
    _stamp(warnings)
    return True


@dataclass(frozen=True)
class ExpiringStock:
    lot: Lot
    quantity: int
    days_left: int
    threshold: int


def _stock_warnings(today: datetime.date, now: datetime.datetime, report: ExpiryReport) -> None:
    """Days left are counted on each clinic's own calendar (its time zone): the query takes a day
    either side of the UTC day, and each row is judged by its clinic's day."""
    horizon = today + datetime.timedelta(days=max(STOCK_THRESHOLDS_DAYS) + 1)
    balances = (
        StockBalance.objects.filter(
            state=StockState.ACCEPTED,
            quantity__gt=0,
            lot__expires_on__gte=today - datetime.timedelta(days=1),
            lot__expires_on__lte=horizon,
        )
        .select_related("lot__product", "lot__manufacturer", "clinic")
        .order_by("clinic_id", "lot__expires_on", "lot_id")
    )
    claimed: dict[int, list[tuple[ExpiryWarning, ExpiringStock]]] = defaultdict(list)
    clinic_today: dict[int, datetime.date] = {}
    for balance in balances:
        local_today = clinic_today.setdefault(balance.clinic_id, balance.clinic.local_date(now))
        if balance.lot.expires_on < local_today:
            continue
        days_left = (balance.lot.expires_on - local_today).days
        threshold = _tightest(days_left, STOCK_THRESHOLDS_DAYS)
        if threshold is None:
            continue
        warning = _claim(
            now=now,
            kind=ExpiryWarningKind.STOCK,
            threshold=threshold,
            clinic_id=balance.clinic_id,
            lot_id=balance.lot_id,
            certificate=None,
        )
        if warning is not None:
            claimed[balance.clinic_id].append(
                (warning, ExpiringStock(balance.lot, balance.quantity, days_left, threshold))
            )
    clinics = Clinic.objects.in_bulk(list(claimed))
    for clinic_id, rows in claimed.items():
        clinic = clinics[clinic_id]
        contacts = list(
            ClinicContact.objects.filter(clinic=clinic, active=True)
            .order_by("email")
            .values_list("email", flat=True)
        )
        warnings = [warning for warning, _ in rows]
        if not contacts:
            logger.warning("clinic %s has expiring stock but no active contact", clinic_id)
            report.unsent.extend(warning.pk for warning in warnings)
            continue
        items = [item for _, item in rows]
        soonest = min(item.days_left for item in items)
        message = _email(
            subject=(
                f"Stock expiring within {min(item.threshold for item in items)} days at "
                f"{clinic.name}: {len(items)} lot{'s' if len(items) != 1 else ''}, the first in "
                f"{soonest} day{'s' if soonest != 1 else ''}"
            ),
            template="expiry_stock",
            context={"clinic": clinic, "items": items, "today": clinic_today[clinic_id]},
            to=contacts,
        )
        if _send(message, warnings, report):
            report.stock_warnings += len(warnings)


def _certificate_warnings(
    today: datetime.date, now: datetime.datetime, report: ExpiryReport
) -> None:
    # A manufacturer that already holds a later certificate of the same kind has renewed: no
    # warning about the old one.
    renewed = Certificate.objects.filter(
        manufacturer_id=OuterRef("manufacturer_id"),
        kind=OuterRef("kind"),
        superseded_by__isnull=True,
        valid_from__lte=OuterRef("valid_until"),
    ).filter(Q(valid_until__isnull=True) | Q(valid_until__gt=OuterRef("valid_until")))
    certificates = (
        Certificate.objects.filter(
            kind__in=MANUFACTURER_CERTIFICATE_KINDS,
            superseded_by__isnull=True,
            valid_from__lte=today,
            valid_until__gte=today,
            valid_until__lte=today + datetime.timedelta(days=CERTIFICATE_THRESHOLD_DAYS),
        )
        .exclude(Exists(renewed))
        .select_related("manufacturer")
        .order_by("valid_until", "pk")
    )
    claimed = [
        (warning, certificate)
        for certificate in certificates
        if (
            warning := _claim(
                now=now,
                kind=ExpiryWarningKind.CERTIFICATE,
                threshold=CERTIFICATE_THRESHOLD_DAYS,
                clinic=None,
                lot=None,
                certificate_id=certificate.pk,
            )
        )
        is not None
    ]
    if not claimed:
        return
    warnings = [warning for warning, _ in claimed]
    recipients = notices.quality_manager_emails()
    if not recipients:
        logger.warning("certificates expiring but no quality manager with an e-mail address")
        report.unsent.extend(warning.pk for warning in warnings)
        return
    items = [
        {"certificate": certificate, "days_left": (certificate.valid_until - today).days}
        for _, certificate in claimed
        if certificate.valid_until is not None
    ]
    message = _email(
        subject=(
            f"Manufacturer certificate{'s' if len(items) != 1 else ''} expiring within "
            f"{CERTIFICATE_THRESHOLD_DAYS} days: {len(items)}"
        ),
        template="expiry_certificates",
        context={"items": items, "today": today},
        to=recipients,
    )
    if _send(message, warnings, report):
        report.certificate_warnings += len(warnings)


def expiry_watch(*, now: datetime.datetime | None = None) -> ExpiryReport:
    """Send the expiry warnings that are due and not yet sent. Safe to run at any time and
    concurrently: each warning is claimed before it is sent."""
    now = now or timezone.now()
    today = now.date()  # UTC (aware `now`); clinics' stock is judged on their own day
    report = ExpiryReport()
    _stock_warnings(today, now, report)
    _certificate_warnings(today, now, report)
    return report
