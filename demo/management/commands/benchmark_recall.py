"""Time opening a recall over many exposures, or over the demo data.

    python manage.py benchmark_recall --exposures 100000 [--clinics 20] [--repeat 3]
    python manage.py benchmark_recall --demo [--lot HLX-A2490] [--repeat 5]

By default it creates a fresh data set each run (a manufacturer named "Benchmark recall
<timestamp>", one released lot, clinics with contacts and stock, patients and treatments inserted
with generate_series), then opens a recall over the lot inside a transaction that is rolled back
after timing, so each repetition starts from the same state. Prints the figures; asserts nothing.
A rolled-back recall skips the commit; the committed figure, with the notices delivered, each
beside its floor, is the recalls section of the scale benchmark (demo/bench/recalls.py).

With --demo it generates nothing: on a database loaded by `manage.py seed_demo` it opens a recall
as the demo quality manager over one demo lot (by default the one with the most treatments that is
in no open recall), each time in a transaction that is rolled back, so the demo data is left as it
was. The signature's password is a throwaway one set inside that transaction and hashed with a fast
hasher: the figure is the recall's own work, not the half second a PBKDF2 check costs.
"""

from __future__ import annotations

import datetime
import statistics
import time
from typing import Any

import pgtrigger
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.db.models import Count
from django.test.utils import override_settings
from django.utils import timezone

from lots.models import Lot, LotStatus, Product, RegulatoryBasis, SourceKind
from providers.models import Clinic, ClinicContact, Manufacturer, Membership, Practitioner, Role
from recalls.models import Notification, RecallExposure, RecallLot, RecallStock
from recalls.services import RecallScopeRequest, recall_open
from stock.models import StockBalance, StockMovement

PASSWORD = "benchmark-password"  # noqa: S105 - a throwaway user of the benchmark data set
DEMO_QUALITY_MANAGER = "demo-quality"  # demo.data.USERS
FAST_HASHER = "django.contrib.auth.hashers.MD5PasswordHasher"


class Rollback(Exception):
    pass


class Command(BaseCommand):
    help = "Time recall_open over a generated data set (prints figures)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--exposures", type=int, default=100_000)
        parser.add_argument("--clinics", type=int, default=20)
        parser.add_argument("--repeat", type=int, default=3)
        parser.add_argument(
            "--demo",
            action="store_true",
            help="Time recall_open over the demo data (manage.py seed_demo); generates nothing.",
        )
        parser.add_argument(
            "--lot",
            help="With --demo: the lot number to recall (default: the demo lot with the most "
            "treatments that is in no open recall).",
        )

    def handle(
        self,
        *args: Any,
        exposures: int,
        clinics: int,
        repeat: int,
        demo: bool,
        lot: str | None,
        **options: Any,
    ) -> None:
        sizes = {"exposures": exposures, "clinics": clinics, "repeat": repeat}
        if problems := [f"--{name} must be at least 1." for name, n in sizes.items() if n < 1]:
            raise CommandError(" ".join(problems))
        if demo:
            self._demo(lot_number=lot, repeat=repeat)
            return
        if lot:
            raise CommandError("--lot needs --demo.")
        started = time.perf_counter()
        user, generated = self._generate(exposures=exposures, clinic_count=clinics)
        self.stdout.write(
            f"generated {exposures} treatments of lot {generated.lot_number} at {clinics} clinics "
            f"in {time.perf_counter() - started:.1f} s"
        )
        self._time(user=user, lot=generated, repeat=repeat, password=PASSWORD)

    def _time(
        self, *, user: Any, lot: Lot, repeat: int, password: str, set_password: bool = False
    ) -> None:
        """Open the recall `repeat` times, each in a transaction rolled back after timing; print
        the median and the minimum with what one recall froze and wrote."""
        timings = []
        for _ in range(repeat):
            try:
                with transaction.atomic():
                    if set_password:
                        user.set_password(password)
                        user.save(update_fields=["password"])
                    begun = time.perf_counter()
                    recall = recall_open(
                        actor=user,
                        password=password,
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
                        RecallStock.objects.filter(recall=recall).count(),
                    )
                    raise Rollback
            except Rollback:
                timings.append(elapsed)
        self.stdout.write(
            f"recall_open: exposures frozen {counts[0]}, notices written {counts[1]}, clinic "
            f"stock rows frozen {counts[2]}; median {statistics.median(timings):.3f} s, "
            f"min {min(timings):.3f} s over {repeat} runs (each rolled back)"
        )

    def _demo(self, *, lot_number: str | None, repeat: int) -> None:
        user = (
            get_user_model()
            .objects.filter(
                username=DEMO_QUALITY_MANAGER,
                memberships__role=Role.QUALITY_MANAGER,
                memberships__active=True,
            )
            .first()
        )
        if user is None:
            raise CommandError(
                f"No demo quality manager ({DEMO_QUALITY_MANAGER}) here: run "
                "`manage.py seed_demo` first."
            )
        lot = self._demo_lot(lot_number)
        lines = lot.treatment_lines.count()
        treated_at = lot.treatment_lines.values("treatment__clinic").distinct().count()
        stocked_at = (
            StockBalance.objects.filter(lot=lot, quantity__gt=0).values("clinic").distinct().count()
        )
        self.stdout.write(
            f"demo data: lot {lot.lot_number} ({lot.product.name}), {lines} treatment lines "
            f"at {treated_at} clinic(s), stock at {stocked_at} clinic(s); opened as "
            f"{user.get_username()} (throwaway password, fast hasher)"
        )
        # Every signature re-checks the password; the fast hasher keeps PBKDF2 out of the figure.
        with override_settings(PASSWORD_HASHERS=[FAST_HASHER, *settings.PASSWORD_HASHERS]):
            self._time(user=user, lot=lot, repeat=repeat, password=PASSWORD, set_password=True)

    def _demo_lot(self, lot_number: str | None) -> Lot:
        lots = (
            Lot.objects.select_related("product")
            .annotate(lines=Count("treatment_lines"))
            .exclude(pk__in=RecallLot.objects.filter(active=True).values("lot_id"))
        )
        if lot_number:
            lot = lots.filter(lot_number=lot_number).first()
            if lot is None:
                taken = RecallLot.objects.filter(lot__lot_number=lot_number, active=True).first()
                raise CommandError(
                    f"Lot {lot_number} is in open recall {taken.recall.reference}: pick another."
                    if taken
                    else f"No lot {lot_number} here."
                )
            return lot
        lot = lots.filter(lines__gt=0).order_by("-lines", "lot_number").first()
        if lot is None:
            raise CommandError("No treated lot outside an open recall here: run seed_demo first.")
        return lot

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
