"""The second chapter of the demo story that `manage.py seed_demo` tells: stock arrives at the
three clinics, patients are registered, and several practitioners treat them for months; one
delivery is quarantined after a temperature excursion, one clinic sends stock to cover it, a vial
is wasted, and two clinics report erythema after microneedling with lot HLX-A2502 (which the
quality manager then puts on hold, in the first chapter's command).

Everything is written through the services, in one transaction: the chapter is either all there
or not at all, so a second run checks one natural key and skips it. Receipts and treatments are
dated in the past (the services take the time), in office hours on each clinic's own clock (its
time zone, CLINIC_TIME_ZONES, is set first); a transfer, a write-off and a quarantine decision carry
the time the seed runs, since their services record the present.
"""

from __future__ import annotations

import datetime
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from demo.data import CLINIC_LANGUAGES, CLINIC_TIME_ZONES, USERS
from lots.models import Lot, LotStatus, Route
from providers import services as provider_services
from providers.models import Clinic, Practitioner, Role
from stock import services as stock_services
from stock.models import MovementKind, ReceiptDecision
from treatments import services as treatment_services
from treatments.models import AdverseEvent, ConsentText, Indication, Patient, Treatment

# The clinic key, the prefix of its patient references and how many patients it registers.
PATIENTS = {"tx": ("LS", 50), "ca": ("BV", 30), "de": ("HZ", 15)}


@dataclass(frozen=True)
class Delivery:
    clinic: str
    lot: str
    days_ago: int
    decision: str = ReceiptDecision.ACCEPT
    # Set for a delivery whose logger recorded a temperature outside the product's range.
    transport_celsius: tuple[str, str] | None = None
    quantity: int | None = None  # None: what the clinic's treatments use, and a margin


DELIVERIES = [
    Delivery("tx", "HLX-A2490", 132),
    Delivery("tx", "NVS-S2490", 122),
    Delivery("tx", "HLX-C2490", 112),
    Delivery("tx", "HLX-A2501", 52),
    Delivery("tx", "HLX-A2502", 37),
    Delivery("tx", "NVS-S2501", 22),
    Delivery("ca", "HLX-A2490", 130),
    Delivery("ca", "HLX-C2490", 110),
    Delivery("ca", "HLX-A2501", 50),
    Delivery("ca", "HLX-A2502", 35),
    # The logger peaked at 14.5 °C (the product is kept at 2-8 °C): quarantined, awaiting the
    # manufacturer's stability assessment.
    Delivery(
        "ca",
        "NVS-S2501",
        20,
        ReceiptDecision.QUARANTINE,
        transport_celsius=("3.0", "14.5"),
        quantity=20,
    ),
    Delivery("de", "NVS-S2490", 126),
    Delivery("de", "NVS-B2490", 102),
    Delivery("de", "NVS-S2501", 24),
]

# Units kept back beyond what the treatments use, so the transfer and the wastage have stock.
MARGIN = 14


@dataclass(frozen=True)
class Regimen:
    """`count` treatments at a clinic with one lot, between `first_day` and `last_day` days ago,
    by the practitioners named (a practitioner whose licence has lapsed only while it was valid).
    `add_on` is a second lot applied in the same session now and then."""

    clinic: str
    lot: str
    practitioners: tuple[str, ...]
    indication: str
    route: str
    site: str
    count: int
    first_day: int
    last_day: int
    units: tuple[int, ...] = (1,)
    add_on: str | None = None


MARIA, PRIYA, SAM = "Dr. Maria Alvarez", "Dr. Priya Shah", "Sam Rivera"
JORDAN, ETHAN, LENA = "Jordan Lee", "Dr. Ethan Brooks", "Dr. Lena Vogel"
SKIN, HAIR, ORTHO = Indication.SKIN_REJUVENATION, Indication.HAIR, Indication.ORTHOPAEDIC

REGIMENS = [
    # clinic, lot, practitioners, indication, route, site, count, first and last day ago, units
    Regimen(
        "tx",
        "HLX-A2490",
        (MARIA, PRIYA, SAM),
        SKIN,
        Route.MICRONEEDLING,
        "face",
        50,
        125,
        55,
        (1, 1, 2),
        add_on="NVS-S2490",
    ),
    Regimen(
        "tx", "NVS-S2490", (MARIA, PRIYA, SAM), SKIN, Route.TOPICAL, "face and neck", 25, 115, 25
    ),
    Regimen("tx", "HLX-C2490", (MARIA, PRIYA), HAIR, Route.INJECTION, "scalp", 25, 105, 10),
    Regimen(
        "tx", "HLX-A2501", (MARIA, PRIYA, SAM), SKIN, Route.MICRONEEDLING, "face", 35, 48, 2, (1, 2)
    ),
    Regimen(
        "tx", "HLX-A2502", (MARIA, PRIYA), SKIN, Route.MICRONEEDLING, "face", 12, 33, 5, (1, 2)
    ),
    Regimen("tx", "NVS-S2501", (MARIA, PRIYA), SKIN, Route.TOPICAL, "decolletage", 8, 18, 1),
    Regimen(
        "ca", "HLX-A2490", (JORDAN, ETHAN), SKIN, Route.MICRONEEDLING, "face", 25, 125, 50, (1, 2)
    ),
    Regimen(
        "ca", "HLX-C2490", (ETHAN,), ORTHO, Route.INTRA_ARTICULAR, "left knee", 16, 105, 5, (2,)
    ),
    Regimen(
        "ca", "HLX-A2501", (JORDAN, ETHAN), SKIN, Route.MICRONEEDLING, "face", 20, 46, 1, (1, 2)
    ),
    Regimen("ca", "HLX-A2502", (JORDAN,), SKIN, Route.MICRONEEDLING, "face and neck", 9, 31, 6),
    # The DE clinic uses no human-derived product for cosmetic use (see the source restriction).
    Regimen("de", "NVS-S2490", (LENA,), SKIN, Route.TOPICAL, "face", 20, 123, 20),
    Regimen("de", "NVS-B2490", (LENA,), ORTHO, Route.INJECTION, "right knee", 8, 98, 3),
    Regimen("de", "NVS-S2501", (LENA,), SKIN, Route.MICRONEEDLING, "face", 7, 20, 1),
]

# Sam Rivera's licence lapsed 20 days ago: the story gives him no treatment after that.
LICENCE_LAPSED_DAYS_AGO = {SAM: 20}

FIRST_NAMES = [
    "Olivia", "Liam", "Emma", "Noah", "Ava", "Elijah", "Sophia", "James", "Isabella", "Lucas",
    "Mia", "Mateo", "Amelia", "Levi", "Harper", "Ezra", "Evelyn", "Leon", "Hannah", "Jonas",
]  # fmt: skip
LAST_NAMES = [
    "Garcia", "Nguyen", "Patel", "Kim", "Johnson", "Martinez", "Brown", "Okafor", "Cohen", "Rossi",
    "Schmidt", "Weber", "Fischer", "Tanaka", "Silva", "Haddad", "Novak", "Murphy", "Larsen", "Ali",
]  # fmt: skip
PHONE_PREFIX = {"tx": "+1 214 555 ", "ca": "+1 415 555 ", "de": "+49 69 5550 "}


@dataclass
class Planned:
    clinic: str
    patient: str
    practitioner: str
    performed_at: datetime.datetime
    regimen: Regimen
    lines: list[tuple[str, int]]


class DemoStory:
    """Runs the chapter; `clinics`, `lots`, `practitioners` are the first chapter's records by
    key, lot number and name; `staff[clinic]` is the clinic administrator who receives stock and
    records the treatments of practitioners without a login of their own."""

    def __init__(
        self,
        *,
        clinics: dict[str, Clinic],
        staff: dict[str, Any],
        lots: dict[str, Lot],
        practitioners: dict[str, Practitioner],
        consent_text: ConsentText,
        write: Callable[[str], Any],
    ) -> None:
        self.clinics, self.staff, self.lots = clinics, staff, lots
        self.practitioners, self.consent_text, self.write = practitioners, consent_text, write
        # Each clinic's today, read once so that a run across midnight dates consistently.
        self.today: dict[str, datetime.date] = {}
        self.random = random.Random(2025)  # noqa: S311 - demo data, not security

    def done(self) -> bool:
        return Patient.objects.filter(clinic=self.clinics["tx"], reference="LS-0001").exists()

    def run(self) -> bool:
        """Tell the chapter unless it is there already; True when it was written now."""
        self._time_zones()
        self.today = {key: clinic.local_date() for key, clinic in self.clinics.items()}
        if self.done():
            return False
        with transaction.atomic():
            patients = self._patients()
            plan = self._plan()
            self._receive(plan)
            treatments = self._treat(plan, patients)
            self._transfer_wastage_and_quarantine()
            self._adverse_events(list(zip(plan, treatments, strict=True)))
        return True

    # -- clocks ------------------------------------------------------------------------------

    def _time_zones(self) -> None:
        """The first chapter creates the clinics on UTC (clinic_create's default); each is put on
        its own clock before anything is dated, so a database seeded earlier is corrected too."""
        username = next(name for role, name, *_ in USERS if role == Role.QUALITY_MANAGER)
        quality_manager = get_user_model().objects.get(username=username)
        for key, zone in CLINIC_TIME_ZONES.items():
            clinic = self.clinics[key]
            wanted = {"time_zone": zone, "language": CLINIC_LANGUAGES[key]}
            changed = {
                field: value for field, value in wanted.items() if getattr(clinic, field) != value
            }
            if changed:
                provider_services.clinic_update(
                    actor=quality_manager,
                    clinic=clinic,
                    reason="the clinic's own time zone for its calendar days, and its language",
                    **changed,
                )

    def _at(self, clinic_key: str, days_ago: int, time: datetime.time) -> datetime.datetime:
        """`time` on the clinic's clock, `days_ago` days before the clinic's today."""
        day = self.today[clinic_key] - datetime.timedelta(days=days_ago)
        return datetime.datetime.combine(day, time, tzinfo=self.clinics[clinic_key].zone)

    # -- patients ----------------------------------------------------------------------------

    def _patients(self) -> dict[str, Patient]:
        patients = {}
        for key, (prefix, count) in PATIENTS.items():
            clinic = self.clinics[key]
            for number in range(1, count + 1):
                reference = f"{prefix}-{number:04d}"
                first = FIRST_NAMES[(number * 7 + len(prefix)) % len(FIRST_NAMES)]
                last = LAST_NAMES[(number * 11 + ord(prefix[0])) % len(LAST_NAMES)]
                patients[reference] = treatment_services.patient_create(
                    actor=self.staff[key],
                    clinic=clinic,
                    reference=reference,
                    contact={
                        "full_name": f"{first} {last}",
                        "date_of_birth": datetime.date(1955 + number % 45, 1 + number % 12, 15),
                        "phone": f"{PHONE_PREFIX[key]}{number:04d}",
                        "email": f"{first}.{last}.{reference}@example.com".lower(),
                    },
                )
        return patients

    # -- the plan: who is treated when, with what --------------------------------------------

    def _plan(self) -> list[Planned]:
        delivered = {(d.clinic, d.lot): d.days_ago for d in DELIVERIES}
        # A database seeded before this chapter existed may hold a lot on hold already; its
        # treatments are left out rather than refused.
        usable = {number for number, lot in self.lots.items() if lot.status == LotStatus.RELEASED}
        plan = []
        for regimen in REGIMENS:
            if regimen.lot not in usable:
                self.write(f"  {regimen.lot} is {self.lots[regimen.lot].status}: not used")
                continue
            prefix, count = PATIENTS[regimen.clinic]
            for _ in range(regimen.count):
                days_ago = self.random.randint(regimen.last_day, regimen.first_day)
                performed_at = self._at(
                    regimen.clinic,
                    days_ago,
                    datetime.time(self.random.randint(9, 17), self.random.choice((0, 15, 30, 45))),
                )
                practitioners = [
                    name
                    for name in regimen.practitioners
                    if days_ago > LICENCE_LAPSED_DAYS_AGO.get(name, -1)
                ]
                lines = [(regimen.lot, self.random.choice(regimen.units))]
                add_on = regimen.add_on
                if (
                    add_on in usable
                    and delivered.get((regimen.clinic, add_on or ""), 0) > days_ago
                    and self.random.random() < 0.2
                ):
                    lines.append((add_on, 1))
                plan.append(
                    Planned(
                        clinic=regimen.clinic,
                        patient=f"{prefix}-{self.random.randint(1, count):04d}",
                        practitioner=self.random.choice(practitioners),
                        performed_at=performed_at,
                        regimen=regimen,
                        lines=lines,
                    )
                )
        plan.sort(key=lambda item: item.performed_at)
        return plan

    # -- stock ---------------------------------------------------------------------------------

    def _receive(self, plan: list[Planned]) -> None:
        used: dict[tuple[str, str], int] = defaultdict(int)
        for item in plan:
            for lot_number, units in item.lines:
                used[(item.clinic, lot_number)] += units
        for delivery in DELIVERIES:
            lot = self.lots[delivery.lot]
            product = lot.product
            needed = used[(delivery.clinic, delivery.lot)] + MARGIN
            quantity = delivery.quantity or -(-needed // 10) * 10  # whole boxes of ten
            low, high = delivery.transport_celsius or (
                product.storage_min_celsius + Decimal("2"),
                product.storage_max_celsius - Decimal("2"),
            )
            stock_services.stock_receive(
                actor=self.staff[delivery.clinic],
                clinic=self.clinics[delivery.clinic],
                lot=lot,
                quantity=quantity,
                decision=delivery.decision,
                package_intact=True,
                label_readable=True,
                transport_min_celsius=Decimal(low),
                transport_max_celsius=Decimal(high),
                storage_location="Pharmacy fridge"
                if product.storage_min_celsius > 0
                else "Freezer A",
                received_at=self._at(delivery.clinic, delivery.days_ago, datetime.time(8, 30)),
                notes=(
                    f"Logger recorded {low} to {high} °C in transit; held for the manufacturer's "
                    "stability assessment."
                    if delivery.transport_celsius
                    else ""
                ),
            )

    def _treat(self, plan: list[Planned], patients: dict[str, Patient]) -> list[Treatment]:
        treatments = []
        for item in plan:
            practitioner = self.practitioners[item.practitioner]
            actor = practitioner.user or self.staff[item.clinic]
            treatments.append(
                treatment_services.treatment_record(
                    actor=actor,
                    clinic=self.clinics[item.clinic],
                    patient=patients[item.patient],
                    practitioner=practitioner,
                    performed_at=item.performed_at,
                    indication=item.regimen.indication,
                    route=item.regimen.route,
                    anatomical_site=item.regimen.site,
                    lines=[
                        treatment_services.LineRequest(lot=self.lots[number], units=units)
                        for number, units in item.lines
                    ],
                    consent=treatment_services.ConsentRequest(
                        consent_text=self.consent_text,
                        taken_by=actor,
                        taken_at=item.performed_at - datetime.timedelta(minutes=20),
                    ),
                )
            )
        return treatments

    def _transfer_wastage_and_quarantine(self) -> None:
        tx, ca = self.clinics["tx"], self.clinics["ca"]
        stock_services.stock_transfer(
            actor=self.staff["tx"],
            from_clinic=tx,
            to_clinic=ca,
            lot=self.lots["NVS-S2501"],
            quantity=10,
            reason="Bayview's own delivery of NVS-S2501 is quarantined after a temperature "
            "excursion; Lone Star sends ten vials to cover.",
        )
        stock_services.stock_quarantine_resolve(
            actor=self.staff["ca"],
            clinic=ca,
            lot=self.lots["NVS-S2501"],
            quantity=10,
            accept=True,
            reason="Transfer from Lone Star checked on arrival: package intact, logger 3-6 °C.",
        )
        stock_services.stock_write_off(
            actor=self.staff["tx"],
            clinic=tx,
            lot=self.lots["HLX-A2501"],
            quantity=2,
            kind=MovementKind.WASTAGE,
            reason="Two vials thawed and left out of the freezer overnight; discarded.",
        )

    def _adverse_events(self, treated: list[tuple[Planned, Treatment]]) -> list[AdverseEvent]:
        lot = self.lots["HLX-A2502"]
        events = []
        reports = [
            (
                "tx",
                "Erythema and swelling of the treated area from the day after microneedling, "
                "lasting four days; resolved with cool compresses.",
                {},
            ),
            (
                "ca",
                "Persistent erythema and papules at the microneedling sites; oral antihistamine "
                "and a topical corticosteroid prescribed.",
                {"intervention_required": True},
            ),
        ]
        for clinic_key, description, seriousness in reports:
            clinic = self.clinics[clinic_key]
            # Days on the clinic's calendar, as adverse_event_record judges the onset.
            latest = self.today[clinic_key] - datetime.timedelta(days=3)
            treatment = next(
                (
                    t
                    for item, t in treated
                    if t.clinic_id == clinic.pk
                    and clinic.local_date(t.performed_at) <= latest
                    and any(number == lot.lot_number for number, _ in item.lines)
                ),
                None,
            )
            if treatment is None:
                continue
            practitioner = treatment.practitioner
            events.append(
                treatment_services.adverse_event_record(
                    actor=practitioner.user or self.staff[clinic_key],
                    treatment=treatment,
                    onset_on=clinic.local_date(treatment.performed_at) + datetime.timedelta(days=1),
                    description=description,
                    lot=lot,
                    **seriousness,
                )
            )
        return events
