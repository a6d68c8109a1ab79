"""How fast a history import runs here: builds a clinic with practitioners and released lots, then
imports their receipts and N charted treatments (and prints rows/s and seconds per phase).

    manage.py benchmark_history_import --rows 100000 [--dry-run]

It writes to the database it is pointed at (the rows stay: each run has a clinic of its own).
"""

from __future__ import annotations

import csv
import datetime
import io
import time
import uuid
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from history.services import history_import
from lots.models import Lot, LotStatus, Product, RegulatoryBasis, Route, SourceKind
from providers.access import access_cache
from providers.models import (
    Clinic,
    ClinicPractitioner,
    Licence,
    Manufacturer,
    Membership,
    Practitioner,
    Role,
)
from treatments.models import ConsentText

LOTS = 20
PRACTITIONERS = 25
# Each patient is treated this many times on average; about a quarter are new to the system.
VISITS = 4
DAY = datetime.timedelta(days=1)


class Command(BaseCommand):
    help = "Time a history import of N treatments (with their lots' receipts) on this machine."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--rows", type=int, default=100_000)
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        rows = options["rows"]
        if rows < 1:
            raise CommandError("--rows must be at least 1.")
        tag = uuid.uuid4().hex[:8]
        clinic, admin, practitioners, lots = _network(tag, rows)
        consent = ConsentText.objects.create(
            code=f"bench-{tag}", version=1, title="Consent", body="Not approved by the FDA."
        )
        receipts = _receipts_file(lots, rows)
        treatments = _treatments_file(practitioners, lots, consent, rows)
        with access_cache():
            self._timed("receipts", admin, clinic, receipts, len(lots), dry_run=False)
            self._timed("treatments", admin, clinic, treatments, rows, dry_run=options["dry_run"])

    def _timed(
        self, kind: str, admin: Any, clinic: Clinic, data: bytes, rows: int, *, dry_run: bool
    ) -> None:
        phases: dict[str, float] = {}
        started = time.perf_counter()

        def progress(phase: str, done: int, total: int) -> None:
            phases.setdefault(phase, time.perf_counter())

        outcome = history_import(
            actor=admin, clinic=clinic, kind=kind, data=data, dry_run=dry_run, progress=progress
        )
        total = time.perf_counter() - started
        if outcome.problems:
            self.stderr.write(f"{kind}: {len(outcome.problems)} problem(s): {outcome.report[:3]}")
            return
        writing = phases.get("writing", started + total)
        self.stdout.write(
            f"{kind}: {rows} rows in {total:.2f} s ({rows / total:,.0f} rows/s); "
            f"read and check {writing - started:.2f} s, write and commit "
            f"{started + total - writing:.2f} s{' (dry run)' if dry_run else ''}"
        )


def _network(tag: str, rows: int) -> tuple[Clinic, Any, list[Practitioner], list[Lot]]:
    today = timezone.now().date()
    user = get_user_model().objects.create_user(username=f"bench-{tag}", password=None)
    clinic = Clinic.objects.create(
        name=f"Benchmark clinic {tag}", address="-", jurisdiction="US-TX"
    )
    Membership.objects.create(user=user, clinic=clinic, role=Role.CLINIC_ADMINISTRATOR)
    practitioners = Practitioner.objects.bulk_create(
        Practitioner(name=f"Practitioner {n} {tag}", profession="physician")
        for n in range(PRACTITIONERS)
    )
    Licence.objects.bulk_create(
        Licence(
            practitioner=p,
            number=f"L-{tag}-{n}",
            jurisdiction="US-TX",
            valid_from=today - 800 * DAY,
            valid_until=today + 365 * DAY,
        )
        for n, p in enumerate(practitioners)
    )
    ClinicPractitioner.objects.bulk_create(
        ClinicPractitioner(clinic=clinic, practitioner=p) for p in practitioners
    )
    manufacturer = Manufacturer.objects.create(
        legal_name=f"Benchmark Biologics {tag}", country="US", registration_number=tag
    )
    product = Product.objects.create(
        manufacturer=manufacturer,
        name=f"Benchmark serum {tag}",
        source_kind=SourceKind.SYNTHETIC,
        permitted_routes=[Route.TOPICAL],
        storage_min_celsius=Decimal("-80"),
        storage_max_celsius=Decimal("-60"),
    )
    lots = Lot.objects.bulk_create(
        Lot(
            product=product,
            manufacturer=manufacturer,
            lot_number=f"B{tag}{n:03d}",
            manufactured_on=today - 800 * DAY,
            expires_on=today - 10 * DAY,
            quantity=rows,
            regulatory_basis=RegulatoryBasis.IND,
            regulatory_number="IND 012345",
            status=LotStatus.RELEASED,
            status_changed_at=timezone.now(),
            created_by=user,
        )
        for n in range(LOTS)
    )
    return clinic, user, practitioners, lots


def _csv(header: list[str], rows: Any) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


def _receipts_file(lots: list[Lot], rows: int) -> bytes:
    received_at = (timezone.now() - 700 * DAY).isoformat()
    return _csv(
        [
            "lot_number",
            "quantity",
            "decision",
            "received_at",
            "package_intact",
            "label_readable",
            "transport_min_celsius",
            "transport_max_celsius",
            "storage_location",
        ],
        (
            [lot.lot_number, rows, "accept", received_at, "yes", "yes", "-75", "-65", "Freezer"]
            for lot in lots
        ),
    )


def _treatments_file(
    practitioners: list[Practitioner], lots: list[Lot], consent: ConsentText, rows: int
) -> bytes:
    start = timezone.now() - 690 * DAY
    step = (670 * DAY) / max(rows, 1)
    return _csv(
        [
            "patient",
            "practitioner",
            "performed_at",
            "lot_number",
            "units",
            "route",
            "indication",
            "anatomical_site",
            "consent_text",
            "consent_taken_at",
        ],
        (
            [
                f"EMR-{n % (rows // VISITS + 1):06d}",
                practitioners[n % len(practitioners)].pk,
                (start + n * step).isoformat(timespec="seconds"),
                lots[n % len(lots)].lot_number,
                1,
                "topical",
                "skin_rejuvenation",
                "face",
                consent.pk,
                (start + n * step - datetime.timedelta(minutes=20)).isoformat(timespec="seconds"),
            ]
            for n in range(rows)
        ),
    )
