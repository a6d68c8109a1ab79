"""`python manage.py benchmark_traces --treatments 50000 [--lots 5] [--clinics 3]`: how fast the
traces and the clinical gate are on a realistic volume, in figures (STYLE: speed is measured by a
command that prints figures, not by a test that asserts a time).

Each run creates a fresh, separate data set in the database it points at, written with
bulk_create straight into the tables (not through the services: that would take minutes and is not
what is measured). Everything it creates hangs off one manufacturer named
"Benchmark manufacturer <run>", with clinics, users and patients carrying the same run tag, so runs
never collide. Traceability records cannot be deleted (database triggers refuse it), so a run's
data stays: run it against a database kept for benchmarks, never a production one.

Then it times, with several repetitions (median and minimum): the forward trace of one lot fully
iterated, its first page and its CSV export, the backward trace of one patient, and
`treatment_record` through the service; and prints the row counts and the query plan of the
forward trace's lines.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import hashlib
import io
import re
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pghistory
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction
from django.db.models import Count
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from lots.models import (
    Certificate,
    CertificateKind,
    Donor,
    DonorMarkerResult,
    Eligibility,
    Lot,
    LotDonor,
    LotQcResult,
    LotStatus,
    Marker,
    MarkerResultValue,
    Product,
    QcOutcome,
    QcTest,
    RegulatoryBasis,
    Route,
    SourceKind,
    Tissue,
)
from providers.models import (
    Clinic,
    ClinicPractitioner,
    Licence,
    Manufacturer,
    Membership,
    Practitioner,
    Profession,
    Role,
)
from stock.models import (
    MovementKind,
    Receipt,
    ReceiptDecision,
    StockBalance,
    StockMovement,
    StockState,
)
from stock.selectors import stock_balances_disagreeing
from treatments.models import AdverseEvent, Indication, Patient, Treatment, TreatmentLine
from treatments.selectors import ForwardScope, trace_backward, trace_forward
from treatments.services import LineRequest, treatment_record

BATCH = 5000
SPARE_UNITS = 1000  # accepted units left per clinic and lot, enough for the timed treatments
# A passing value for each lot QC test of the default specification (lots/reference_data.py).
PASSING_QC: dict[str, Decimal | str] = {
    "sterility": QcOutcome.NOT_DETECTED,
    "mycoplasma": QcOutcome.NOT_DETECTED,
    "endotoxin": Decimal("0.1"),
    "particle_concentration": Decimal("5000000000"),
    "particle_size": Decimal("110"),
    "ev_marker_membrane": QcOutcome.DETECTED,
    "ev_marker_cytosolic": QcOutcome.DETECTED,
    "ev_negative_marker": QcOutcome.NOT_DETECTED,
}
# The columns of the forward trace's CSV export, fetched as plain values (as the trace API's
# export in treatments/trace_api.py does), not as model instances.
CSV_COLUMNS = (
    ("treatment", "treatment_id"),
    ("performed_at", "treatment__performed_at"),
    ("clinic_id", "treatment__clinic_id"),
    ("clinic", "treatment__clinic__name"),
    ("patient_reference", "treatment__patient__reference"),
    ("practitioner_id", "treatment__practitioner_id"),
    ("practitioner", "treatment__practitioner__name"),
    ("lot", "lot_id"),
    ("lot_number", "lot__lot_number"),
    ("product", "lot__product__name"),
    ("units", "units"),
)
PAGE = 100


class Command(BaseCommand):
    help = (
        "Generate a fresh benchmark data set (a new one on every run, tagged with the run) and "
        "print timings of the forward and backward traces and of treatment_record."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--treatments", type=int, default=50_000)
        parser.add_argument("--lots", type=int, default=5)
        parser.add_argument("--clinics", type=int, default=3)
        parser.add_argument("--repetitions", type=int, default=5)
        parser.add_argument(
            "--record", type=int, default=200, help="treatments recorded through the service"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        treatments, lots, clinics = options["treatments"], options["lots"], options["clinics"]
        if treatments < 1 or lots < 1 or clinics < 1:
            raise CommandError("--treatments, --lots and --clinics must be at least 1.")
        run = timezone.now().strftime("%Y%m%d-%H%M%S")
        self.out(f"Benchmark run {run}: a fresh data set, tagged 'Benchmark manufacturer {run}'.")
        started = time.perf_counter()
        data = generate(run=run, treatments=treatments, lots=lots, clinics=clinics)
        self.out(f"generated in {time.perf_counter() - started:.1f} s; ANALYZE ...")
        with connection.cursor() as cursor:
            for model in (
                Treatment,
                TreatmentLine,
                Patient,
                StockMovement,
                StockBalance,
                AdverseEvent,
                Lot,
                LotDonor,
            ):
                cursor.execute(f"ANALYZE {model._meta.db_table}")
        self.print_counts(data)
        self.time_traces(data, options["repetitions"])
        self.time_treatment_record(data, options["record"])
        self.print_plan(data)

    # -----------------------------------------------------------------------------------------

    def out(self, text: str = "") -> None:
        self.stdout.write(text)

    def print_counts(self, data: Data) -> None:
        self.out()
        self.out("Rows in this run's data set (whole table in brackets):")
        for label, model, mine in [
            ("treatments", Treatment, Treatment.objects.filter(clinic__in=data.clinics)),
            (
                "treatment lines",
                TreatmentLine,
                TreatmentLine.objects.filter(treatment__clinic__in=data.clinics),
            ),
            (
                "stock movements",
                StockMovement,
                StockMovement.objects.filter(clinic__in=data.clinics),
            ),
            ("patients", Patient, Patient.objects.filter(clinic__in=data.clinics)),
            (
                "adverse events",
                AdverseEvent,
                AdverseEvent.objects.filter(treatment__clinic__in=data.clinics),
            ),
            ("lots", Lot, Lot.objects.filter(manufacturer=data.manufacturer)),
        ]:
            self.out(f"  {label:<16} {mine.count():>9,}  ({model._default_manager.count():,})")
        per_lot = Counter(
            TreatmentLine.objects.filter(lot__in=data.lots).values_list("lot_id", flat=True)
        )
        self.out(f"  lines of the traced lot: {per_lot[data.lots[0].pk]:,}")
        disagreeing = stock_balances_disagreeing()
        self.out(f"  stock balances that disagree with the ledger: {len(disagreeing)}")

    def time_traces(self, data: Data, repetitions: int) -> None:
        lot = data.lots[0]
        scope = ForwardScope(lot_ids=[lot.pk])
        patient_id = data.busiest_patient_id

        def forward() -> int:
            return walk_forward(trace_forward(user=data.auditor, scope=scope))

        def forward_as_clinician() -> int:
            return walk_forward(trace_forward(user=data.clinicians[0], scope=scope))

        def export() -> int:
            return csv_rows(trace_forward(user=data.auditor, scope=scope))

        def page() -> int:
            return first_page(trace_forward(user=data.auditor, scope=scope))

        def backward() -> int:
            return walk_backward(trace_backward(user=data.auditor, patient_id=patient_id))

        self.out()
        self.out(f"Timings ({repetitions} repetitions each; median / min):")
        for label, work in [
            (f"forward trace of lot {lot.lot_number}, fully iterated", forward),
            ("  the same, as one clinic's clinician", forward_as_clinician),
            (f"  totals and the first page of {PAGE} lines, as the API answers", page),
            ("CSV export of that forward trace (values, streamed)", export),
            ("backward trace of one patient, fully iterated", backward),
        ]:
            with CaptureQueriesContext(connection) as queries:
                size = work()
            times = repeat(work, repetitions)
            self.out(
                f"  {label}: {statistics.median(times) * 1000:,.1f} ms / "
                f"{min(times) * 1000:,.1f} ms  ({size:,} rows/values, {len(queries)} queries)"
            )

    def time_treatment_record(self, data: Data, count: int) -> None:
        if count < 1:
            return
        clinic = data.clinics[0]
        clinician = data.clinicians[0]
        practitioner = data.practitioners[0]
        patients = list(Patient.objects.filter(clinic=clinic).order_by("pk")[:count])
        lots = list(
            Lot.objects.select_related("product").filter(pk__in=[lot.pk for lot in data.lots])
        )
        performed_at = timezone.now() - datetime.timedelta(minutes=5)
        with CaptureQueriesContext(connection) as queries:
            record_one(clinic, clinician, practitioner, patients[0], lots[0], performed_at)
        times = []
        for index in range(count):
            started = time.perf_counter()
            record_one(
                clinic,
                clinician,
                practitioner,
                patients[index % len(patients)],
                lots[index % len(lots)],
                performed_at,
            )
            times.append(time.perf_counter() - started)
        self.out(
            f"  treatment_record through the service, {count} treatments: "
            f"{sum(times) / count * 1000:.1f} ms per treatment (median "
            f"{statistics.median(times) * 1000:.1f} ms, min {min(times) * 1000:.1f} ms, "
            f"{len(queries)} queries each)"
        )

    def print_plan(self, data: Data) -> None:
        lines = trace_forward(user=data.auditor, scope=ForwardScope(lot_ids=[data.lots[0].pk]))
        plan = lines.lines.explain(analyze=True)
        self.out()
        self.out("Query plan of the forward trace's lines (EXPLAIN ANALYZE):")
        for text in plan.splitlines():
            self.out(f"  {text}")
        table = TreatmentLine._meta.db_table
        indexes = sorted(
            set(re.findall(rf"Index (?:Only )?Scan (?:using|on) (\S+)(?: on {table}\b)?", plan))
            & line_indexes()
        )
        if indexes:
            self.out(f"The lines are found through the index(es) {', '.join(indexes)} on {table}.")
        else:
            self.out(f"The lines query reads {table} WITHOUT an index (sequential scan).")


def line_indexes() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = %s",
            [TreatmentLine._meta.db_table],
        )
        return {name for (name,) in cursor.fetchall()}


# ---------------------------------------------------------------------------------------------
# What is timed: everything a trace page, an export and an API response touch


def walk_forward(trace: Any) -> int:
    rows: list[tuple[Any, ...]] = []
    for lot in trace.lots:
        rows.append((lot.lot_number, lot.product.name, lot.manufacturer.legal_name))
    for line in trace.lines:
        treatment = line.treatment
        rows.append(
            (
                line.lot.lot_number,
                line.lot.product.name,
                line.units,
                treatment.clinic.name,
                treatment.patient.reference,
                treatment.practitioner.name,
                treatment.performed_at,
            )
        )
    for balance in trace.stock:
        rows.append((balance.clinic.name, balance.lot.lot_number, balance.quantity))
    for event in trace.adverse_events:
        rows.append(
            (event.treatment.clinic.name, event.treatment.patient.reference, event.onset_on)
        )
    return len(rows)


def csv_rows(trace: Any) -> int:
    """The CSV export of the forward trace, streamed in chunks as the export does."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([name for name, _ in CSV_COLUMNS])
    rows = trace.lines.values_list(*(field for _, field in CSV_COLUMNS))
    for row in rows.iterator(chunk_size=2000):
        writer.writerow(row)
    return buffer.getvalue().count("\n") - 1


def first_page(trace: Any) -> int:
    """What a JSON page of the forward trace reads: totals, one page of lines, lots, stock and
    adverse events, each fully touched."""
    totals = trace.lines.aggregate(
        lines=Count("pk"), patients=Count("treatment__patient_id", distinct=True)
    )
    page = dataclasses.replace(trace, lines=trace.lines[:PAGE])
    return walk_forward(page) + len(totals)


def walk_backward(trace: Any) -> int:
    rows: list[tuple[Any, ...]] = []
    for treatment in trace.treatments:
        rows.append(
            (treatment.clinic.name, treatment.patient.reference, treatment.practitioner.name)
        )
        rows += [(line.lot.lot_number, line.lot.product.name) for line in treatment.lines.all()]
        rows += [(event.onset_on,) for event in treatment.adverse_events.all()]
    for lot in trace.lots:
        rows.append((lot.lot_number, lot.product.name, lot.manufacturer.legal_name))
        for donor in lot.donors.all():
            rows.append((donor.code,))
            rows += [(r.marker.code, r.result) for r in donor.marker_results.all()]
        rows += [(qc.test.code, qc.numeric_value, qc.outcome) for qc in lot.qc_results.all()]
        rows += [(c.number, c.sha256) for c in lot.certificates.all()]
        rows += [(c.kind, c.number) for c in lot.manufacturer.quality_certificates]
    return len(rows)


def repeat(work: Callable[[], Any], repetitions: int) -> list[float]:
    times = []
    for _ in range(repetitions):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return times


def record_one(
    clinic: Clinic,
    clinician: Any,
    practitioner: Practitioner,
    patient: Patient,
    lot: Lot,
    performed_at: datetime.datetime,
) -> None:
    treatment_record(
        actor=clinician,
        clinic=clinic,
        patient=patient,
        practitioner=practitioner,
        performed_at=performed_at,
        indication=Indication.WOUND,
        route=Route.TOPICAL,
        anatomical_site="forearm",
        lines=[LineRequest(lot=lot, units=1)],
    )


# ---------------------------------------------------------------------------------------------
# The data set


@dataclass
class Data:
    manufacturer: Manufacturer
    lots: list[Lot]
    clinics: list[Clinic]
    clinicians: list[Any]
    practitioners: list[Practitioner]
    auditor: Any
    busiest_patient_id: int


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@transaction.atomic
def generate(*, run: str, treatments: int, lots: int, clinics: int) -> Data:
    # The history triggers look up two settings per row inside an exception block; a setting
    # that is not defined raises and is caught, once per row, and those aborted subtransactions
    # make a long transaction slower and slower. Define both: a history context (as every
    # service has) and an empty list of ignored triggers (so no trigger is skipped).
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('pgtrigger.ignore', '{}', true)")
    with pghistory.context(reason=f"benchmark run {run}"):
        return _generate(run=run, treatments=treatments, lots=lots, clinics=clinics)


def _generate(*, run: str, treatments: int, lots: int, clinics: int) -> Data:
    now = timezone.now()
    today = timezone.localdate()
    users = get_user_model()
    quality = users.objects.create(username=f"bench-qm-{run}")
    auditor = users.objects.create(username=f"bench-auditor-{run}")
    Membership.objects.bulk_create(
        [
            Membership(user=quality, role=Role.QUALITY_MANAGER, clinic=None),
            Membership(user=auditor, role=Role.AUDITOR, clinic=None),
        ]
    )
    manufacturer = Manufacturer.objects.create(
        legal_name=f"Benchmark manufacturer {run}", country="US"
    )
    product = Product.objects.create(
        manufacturer=manufacturer,
        name=f"Benchmark serum {run}",
        source_kind=SourceKind.HUMAN,
        tissue=Tissue.ADIPOSE,
        permitted_routes=[Route.TOPICAL, Route.MICRONEEDLING],
        storage_min_celsius=Decimal("-80"),
        storage_max_celsius=Decimal("-60"),
    )

    # Lots, each pooled from two donors with full marker panels, QC results and a CoA; the
    # manufacturer holds a GMP and an ISO 13485 certificate.
    donors = Donor.objects.bulk_create(
        [
            Donor(
                code=f"BD-{run}-{index:03d}",
                tissue=Tissue.ADIPOSE,
                collection_date=today - datetime.timedelta(days=200),
                specimen_date=today - datetime.timedelta(days=200),
                testing_laboratory="Benchmark lab",
                eligibility=Eligibility.ELIGIBLE,
                eligibility_decided_by=quality,
                eligibility_decided_at=now,
            )
            for index in range(lots * 2)
        ]
    )
    markers = [m for m in Marker.objects.filter(active=True) if "adipose" in m.required_for_tissues]
    DonorMarkerResult.objects.bulk_create(
        [
            DonorMarkerResult(
                donor=donor,
                marker=marker,
                result=MarkerResultValue.NON_REACTIVE,
                tested_on=donor.specimen_date,
                laboratory="Benchmark lab",
            )
            for donor in donors
            for marker in markers
        ]
    )
    made = Lot.objects.bulk_create(
        [
            Lot(
                product=product,
                manufacturer=manufacturer,
                lot_number=f"BX-{index:04d}",
                manufactured_on=today - datetime.timedelta(days=500 + index),
                expires_on=today + datetime.timedelta(days=365),
                quantity=treatments + SPARE_UNITS * clinics,
                regulatory_basis=RegulatoryBasis.IND,
                regulatory_number="IND 099999",
                status=LotStatus.RELEASED,
                status_changed_at=now,
                created_by=quality,
            )
            for index in range(lots)
        ]
    )
    LotDonor.objects.bulk_create(
        [
            LotDonor(lot=lot, donor=donors[2 * index + k])
            for index, lot in enumerate(made)
            for k in (0, 1)
        ]
    )
    tests = list(QcTest.objects.filter(code__in=PASSING_QC))
    LotQcResult.objects.bulk_create(
        [
            LotQcResult(
                lot=lot,
                test=test,
                numeric_value=value if isinstance(value, Decimal) else None,
                outcome=value if isinstance(value, str) else "",
                tested_on=lot.manufactured_on,
                laboratory="Benchmark QC lab",
            )
            for lot in made
            for test in tests
            for value in [PASSING_QC[test.code]]
        ]
    )
    certificates = [
        Certificate(
            kind=CertificateKind.COA,
            manufacturer=manufacturer,
            lot=lot,
            issuer="Benchmark manufacturer",
            number=f"COA-{lot.lot_number}",
            valid_from=lot.manufactured_on,
            sha256=_sha256(f"{run}-coa-{lot.pk}"),
            size_bytes=1000,
            uploaded_by=quality,
            uploaded_at=now,
        )
        for lot in made
    ] + [
        Certificate(
            kind=kind,
            manufacturer=manufacturer,
            issuer="Notified body",
            number=f"{kind}-{run}",
            valid_from=today - datetime.timedelta(days=500),
            valid_until=today + datetime.timedelta(days=500),
            sha256=_sha256(f"{run}-{kind}"),
            size_bytes=1000,
            uploaded_by=quality,
            uploaded_at=now,
        )
        for kind in (CertificateKind.GMP, CertificateKind.ISO_13485)
    ]
    for certificate in certificates:
        certificate.file.name = f"certificates/{certificate.sha256[:2]}/{certificate.sha256}.pdf"
    Certificate.objects.bulk_create(certificates)

    # Clinics, each with a clinician, a licensed member practitioner and its patients.
    sites = Clinic.objects.bulk_create(
        [
            Clinic(
                name=f"Benchmark clinic {run} #{index + 1}",
                address="1 Benchmark Way",
                jurisdiction="US-TX",
                consent_required=False,
            )
            for index in range(clinics)
        ]
    )
    clinicians = [
        users.objects.create(username=f"bench-clinician-{run}-{i + 1}") for i in range(clinics)
    ]
    Membership.objects.bulk_create(
        [
            Membership(user=user, role=Role.CLINICIAN, clinic=clinic)
            for user, clinic in zip(clinicians, sites, strict=True)
        ]
    )
    practitioners = Practitioner.objects.bulk_create(
        [
            Practitioner(
                name=f"Benchmark practitioner {index + 1}", profession=Profession.PHYSICIAN
            )
            for index in range(clinics)
        ]
    )
    Licence.objects.bulk_create(
        [
            Licence(
                practitioner=practitioner,
                number=f"BL-{run}-{index}",
                jurisdiction="US-TX",
                valid_from=today - datetime.timedelta(days=800),
                valid_until=today + datetime.timedelta(days=800),
            )
            for index, practitioner in enumerate(practitioners)
        ]
    )
    ClinicPractitioner.objects.bulk_create(
        [
            ClinicPractitioner(clinic=clinic, practitioner=practitioner)
            for clinic, practitioner in zip(sites, practitioners, strict=True)
        ]
    )
    patients_per_clinic = max(1, treatments // 5 // clinics)
    patients = Patient.objects.bulk_create(
        [
            Patient(clinic=clinic, reference=f"BP-{index:06d}")
            for clinic in sites
            for index in range(patients_per_clinic)
        ],
        batch_size=BATCH,
    )
    by_clinic: dict[int, list[Patient]] = defaultdict(list)
    for patient in patients:
        by_clinic[patient.clinic_id].append(patient)

    # Treatments over the past year, one line each, round robin over clinics and lots, all after
    # the receipts (400 days ago) and the lots' manufacture (500 days ago or more).
    step = datetime.timedelta(days=365) / treatments
    rows = []
    for index in range(treatments):
        c = index % clinics
        clinic_patients = by_clinic[sites[c].pk]
        rows.append(
            Treatment(
                clinic=sites[c],
                patient=clinic_patients[(index // clinics) % len(clinic_patients)],
                practitioner=practitioners[c],
                performed_at=now - datetime.timedelta(minutes=10) - step * (treatments - index),
                indication=Indication.SKIN_REJUVENATION,
                route=Route.TOPICAL,
                anatomical_site="face",
                recorded_by=clinicians[c],
                recorded_at=now,
            )
        )
    recorded = Treatment.objects.bulk_create(rows, batch_size=BATCH)
    # Saved after their stock movements, which they point at.
    lines = [
        TreatmentLine(treatment=treatment, lot=made[index % lots], units=1)
        for index, treatment in enumerate(recorded)
    ]
    AdverseEvent.objects.bulk_create(
        [
            AdverseEvent(
                treatment=treatment,
                lot=made[index % lots],
                onset_on=timezone.localdate(treatment.performed_at),
                description="Erythema",
                reported_by=clinicians[index % clinics],
                reported_at=now,
            )
            for index, treatment in enumerate(recorded)
            if index % 1000 == 0
        ]
    )

    # The ledger: a receipt per clinic and lot, a movement per treatment line, and balances that
    # equal the ledger's sums (stock_balances_disagreeing stays empty).
    used: Counter[tuple[int, int]] = Counter()
    for treatment, line in zip(recorded, lines, strict=True):
        used[(treatment.clinic_id, line.lot_id)] += line.units
    received_at = now - datetime.timedelta(days=400)
    receipts = Receipt.objects.bulk_create(
        [
            Receipt(
                clinic=clinic,
                lot=lot,
                quantity=used[(clinic.pk, lot.pk)] + SPARE_UNITS,
                decision=ReceiptDecision.ACCEPT,
                package_intact=True,
                label_readable=True,
                transport_min_celsius=Decimal("-75"),
                transport_max_celsius=Decimal("-65"),
                storage_location="Benchmark freezer",
                received_by=quality,
                received_at=received_at,
            )
            for clinic in sites
            for lot in made
        ]
    )
    movements = [
        StockMovement(
            clinic_id=receipt.clinic_id,
            lot_id=receipt.lot_id,
            state=StockState.ACCEPTED,
            delta=receipt.quantity,
            kind=MovementKind.RECEIPT,
            actor=quality,
            occurred_at=received_at,
            receipt=receipt,
        )
        for receipt in receipts
    ] + [
        StockMovement(
            clinic_id=treatment.clinic_id,
            lot_id=line.lot_id,
            state=StockState.ACCEPTED,
            delta=-line.units,
            kind=MovementKind.TREATMENT,
            reason=f"treatment {treatment.pk}",
            actor=treatment.recorded_by,
            occurred_at=treatment.performed_at,
        )
        for treatment, line in zip(recorded, lines, strict=True)
    ]
    StockMovement.objects.bulk_create(movements, batch_size=BATCH)
    for line, movement in zip(lines, movements[len(receipts) :], strict=True):
        line.stock_movement = movement
    TreatmentLine.objects.bulk_create(lines, batch_size=BATCH)
    StockBalance.objects.bulk_create(
        [
            StockBalance(
                clinic_id=receipt.clinic_id,
                lot_id=receipt.lot_id,
                state=StockState.ACCEPTED,
                quantity=SPARE_UNITS,
            )
            for receipt in receipts
        ]
    )
    busiest = Counter(treatment.patient_id for treatment in recorded).most_common(1)[0][0]
    return Data(
        manufacturer=manufacturer,
        lots=made,
        clinics=sites,
        clinicians=clinicians,
        practitioners=practitioners,
        auditor=auditor,
        busiest_patient_id=busiest,
    )
