"""Time opening a recall over many exposures.

    python manage.py benchmark_recall --exposures 100000 [--clinics 20] [--repeat 3]

Creates a fresh data set each run (a manufacturer named "Benchmark recall <timestamp>", one
released lot, clinics with contacts and stock, patients and treatments inserted with
generate_series), then opens a recall over the lot inside a transaction that is rolled back after
timing, so each repetition starts from the same state. Prints the figures; asserts nothing.
"""

from __future__ import annotations

import datetime
import statistics
import time
from typing import Any

import pgtrigger
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import connection, transaction
from django.utils import timezone

from lots.models import Lot, LotStatus, Product, RegulatoryBasis, SourceKind
from providers.models import Clinic, ClinicContact, Manufacturer, Membership, Practitioner, Role
from recalls.models import Notification, RecallExposure
from recalls.services import RecallScopeRequest, recall_open
from stock.models import StockBalance, StockMovement

PASSWORD = "benchmark-password"  # noqa: S105 - a throwaway user of the benchmark data set


class Rollback(Exception):
    pass


class Command(BaseCommand):
    help = "Time recall_open over a generated data set (prints figures)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--exposures", type=int, default=100_000)
        parser.add_argument("--clinics", type=int, default=20)
        parser.add_argument("--repeat", type=int, default=3)

    def handle(self, *args: Any, exposures: int, clinics: int, repeat: int, **options: Any) -> None:
        started = time.perf_counter()
        user, lot = self._generate(exposures=exposures, clinic_count=clinics)
        self.stdout.write(
            f"generated {exposures} treatments of lot {lot.lot_number} at {clinics} clinics in "
            f"{time.perf_counter() - started:.1f} s"
        )
        timings = []
        for _ in range(repeat):
            begun = time.perf_counter()
            try:
                with transaction.atomic():
                    recall = recall_open(
                        actor=user,
                        password=PASSWORD,
                        recall_class="I",
                        depth="patient",
                        reason="Benchmark",
                        hazard="Benchmark",
                        scope=RecallScopeRequest(lot_ids=[lot.pk]),
                    )
                    elapsed = time.perf_counter() - begun
                    counts = (
                        RecallExposure.objects.filter(recall=recall).count(),
                        Notification.objects.filter(recall=recall).count(),
                    )
                    raise Rollback
            except Rollback:
                timings.append(elapsed)
        self.stdout.write(
            f"recall_open: exposures frozen {counts[0]}, notices written {counts[1]}; "
            f"median {statistics.median(timings):.2f} s, min {min(timings):.2f} s over {repeat} "
            "runs (each rolled back)"
        )

    def _generate(self, *, exposures: int, clinic_count: int) -> tuple[Any, Lot]:
        stamp = timezone.now().strftime("%Y%m%d%H%M%S%f")
        user_model = get_user_model()
        user = user_model.objects.create(username=f"bench-{stamp}", first_name="Bench")
        user.set_password(PASSWORD)
        user.save()
        Membership.objects.create(user=user, role=Role.QUALITY_MANAGER, clinic=None)
        manufacturer = Manufacturer.objects.create(
            legal_name=f"Benchmark recall {stamp}", country="US"
        )
        product = Product.objects.create(
            manufacturer=manufacturer,
            name="Benchmark exosome",
            source_kind=SourceKind.SYNTHETIC,
            permitted_routes=["topical"],
            storage_min_celsius=-80,
            storage_max_celsius=-60,
        )
        today = timezone.localdate()
        lot = Lot.objects.create(
            product=product,
            manufacturer=manufacturer,
            lot_number=f"B{stamp[-12:]}",
            manufactured_on=today - datetime.timedelta(days=60),
            expires_on=today + datetime.timedelta(days=300),
            quantity=exposures + clinic_count * 10,
            regulatory_basis=RegulatoryBasis.NONE,
            status=LotStatus.RELEASED,
            status_changed_at=timezone.now(),
            created_by=user,
        )
        practitioner = Practitioner.objects.create(
            name="Bench Practitioner", profession="physician"
        )
        clinics = [
            Clinic.objects.create(
                name=f"Bench clinic {stamp}-{i}", address="-", jurisdiction="US-TX"
            )
            for i in range(clinic_count)
        ]
        for clinic in clinics:
            ClinicContact.objects.create(
                clinic=clinic, name="QA", email=f"qa{clinic.pk}@bench.example"
            )
            StockBalance.objects.create(clinic=clinic, lot=lot, state="accepted", quantity=10)
            StockMovement.objects.create(
                clinic=clinic,
                lot=lot,
                state="accepted",
                delta=10,
                kind="receipt",
                actor=user,
                occurred_at=timezone.now(),
            )
        clinic_ids = [clinic.pk for clinic in clinics]
        # Generated rows skip the history triggers (a third of a millisecond each here); the
        # recall being timed runs with every trigger in place.
        with (
            pgtrigger.ignore(
                "treatments.Patient:insert_insert",
                "treatments.Treatment:insert_insert",
                "treatments.TreatmentLine:insert_insert",
            ),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(
                """
                INSERT INTO treatments_patient (clinic_id, reference, created_at)
                SELECT (%s::bigint[])[1 + (g %% %s)], 'BP-' || %s || '-' || g, now()
                FROM generate_series(1, %s) g
                """,
                [clinic_ids, clinic_count, stamp, exposures],
            )
            cursor.execute(
                """
                INSERT INTO treatments_treatment (clinic_id, patient_id, practitioner_id,
                    performed_at, indication, route, anatomical_site, notes,
                    consent_regulatory_statement, recorded_by_id, recorded_at)
                SELECT p.clinic_id, p.id, %s, now() - interval '1 day', 'wound',
                       'topical', 'arm', '', '', %s, now()
                FROM treatments_patient p WHERE p.reference LIKE 'BP-' || %s || '-%%'
                """,
                [practitioner.pk, user.pk, stamp],
            )
            cursor.execute(
                """
                INSERT INTO treatments_treatmentline (treatment_id, lot_id, units)
                SELECT t.id, %s, 1 FROM treatments_treatment t
                JOIN treatments_patient p ON p.id = t.patient_id
                WHERE p.reference LIKE 'BP-' || %s || '-%%'
                """,
                [lot.pk, stamp],
            )
        return user, lot
