"""Importing charted treatments: each row one treatment with one lot, judged by the live recording
rules (treatments.services.treatment_rule_problems) on its own date, then written set-based.

The check reads a fixed number of statements whatever the file's length: the lots, their facts at
the clinic, the practitioners, their memberships and licences, the jurisdiction's restrictions,
the patients, the consent texts and the clinic's ledger of those lots. The rows are then judged
in Python in time order, so each draws on the stock as the ledger stood at its time.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _

from common.errors import Problem
from common.validators import jurisdiction_chain
from history.lookups import AcceptedStock, LotIndex
from history.reading import Cells, Columns, Row, RowProblem
from history.writing import insert_rows
from lots.models import Lot, Route, SourceRestriction
from providers.models import Clinic, ClinicPractitioner, Licence, Practitioner
from stock.models import MovementKind, StockMovement, StockState
from stock.services import Change, balances_move
from treatments.models import ConsentText, Indication, Patient, Treatment, TreatmentLine
from treatments.services import (
    ConsentRequest,
    Line,
    LineRequest,
    LotFacts,
    Standing,
    lots_afresh,
    regulatory_statement,
    treatment_rule_problems,
)

COLUMNS = Columns(
    required=(
        "patient",
        "practitioner",
        "performed_at",
        "lot_number",
        "units",
        "route",
        "indication",
        "anatomical_site",
    ),
    optional=("gtin", "notes", "consent_text", "consent_taken_at"),
)

# The live rules name fields of a treatment request; an import names its columns.
FIELD_COLUMNS = {
    "patient": "patient",
    "practitioner": "practitioner",
    "performed_at": "performed_at",
    "route": "route",
    "lines": "lot_number",
    "lines[0].lot": "lot_number",
    "lines[0].units": "units",
    "consent": "consent_text",
    "consent.consent_text": "consent_text",
    "consent.taken_at": "consent_taken_at",
}

Progress = Callable[[int], None]
# As the models hold them (Patient.reference, Lot.lot_number).
REFERENCE_MAX = 40
LOT_NUMBER_MAX = 20
BATCH = 2000


@dataclass(frozen=True)
class _Parsed:
    line: int
    patient: str
    practitioner_id: int
    performed_at: datetime.datetime
    lot_number: str
    gtin: str
    units: int
    route: str
    indication: str
    anatomical_site: str
    notes: str
    consent_text_id: int | None
    consent_taken_at: datetime.datetime | None


@dataclass(frozen=True)
class Planned:
    """A treatment as it will be written: every row read and judged."""

    parsed: _Parsed
    patient: Patient
    practitioner: Practitioner
    lot: Lot
    consent: ConsentRequest | None


def _parse(row: Row, problems: list[RowProblem]) -> _Parsed | None:
    cells = Cells(row, problems)
    before = len(problems)
    patient = cells.text("patient", max_length=REFERENCE_MAX)
    practitioner_id = cells.integer("practitioner")
    performed_at = cells.moment("performed_at")
    lot_number = cells.text("lot_number", max_length=LOT_NUMBER_MAX)
    gtin = cells.text("gtin", required=False, max_length=14)
    units = cells.integer("units")
    route = cells.choice("route", Route.values)
    indication = cells.choice("indication", Indication.values)
    site = cells.text("anatomical_site", max_length=200)
    notes = cells.text("notes", required=False)
    consent_text_id = cells.integer("consent_text", required=False)
    consent_taken_at = cells.moment("consent_taken_at", required=consent_text_id is not None)
    # A value is None only where its cell added a problem.
    if (
        len(problems) > before
        or practitioner_id is None
        or performed_at is None
        or units is None
        or route is None
        or indication is None
    ):
        return None
    return _Parsed(
        row.line,
        patient,
        practitioner_id,
        performed_at,
        lot_number,
        gtin,
        units,
        route,
        indication,
        site,
        notes,
        consent_text_id,
        consent_taken_at,
    )


class _Standings:
    """The practitioners' standing at the clinic on each day, from three statements for all."""

    def __init__(self, clinic: Clinic, practitioner_ids: set[int]) -> None:
        chain = jurisdiction_chain(clinic.jurisdiction)
        self.members = set(
            ClinicPractitioner.objects.filter(
                clinic=clinic, practitioner_id__in=practitioner_ids, active=True
            ).values_list("practitioner_id", flat=True)
        )
        self.licences: dict[int, list[Licence]] = defaultdict(list)
        for licence in Licence.objects.filter(
            practitioner_id__in=practitioner_ids, jurisdiction__in=chain
        ):
            self.licences[licence.practitioner_id].append(licence)
        # As treatments.services._standing orders them: the rules name the first that applies.
        self.restrictions = list(
            SourceRestriction.objects.filter(jurisdiction__in=chain).order_by(
                "jurisdiction", "source_kind"
            )
        )

    def on(self, practitioner_id: int, day: datetime.date) -> Standing:
        return Standing(
            member=practitioner_id in self.members,
            licensed=any(licence.is_valid_on(day) for licence in self.licences[practitioner_id]),
            restrictions=self.restrictions,
        )


def check(
    *, clinic: Clinic, actor: Any, rows: list[Row], problems: list[RowProblem], progress: Progress
) -> list[Planned]:
    """Every row judged as `treatment_record` judges a treatment, on the row's own date; the
    treatments to write, or problems added to `problems`."""
    parsed = [item for row in rows if (item := _parse(row, problems)) is not None]
    lots = LotIndex(item.lot_number for item in parsed)
    found: dict[int, Lot] = {}
    for item in parsed:
        lot = lots.find(item.lot_number, item.gtin)
        if isinstance(lot, Problem):
            problems.append(RowProblem.at(item.line, _column(lot.field), lot))
        else:
            found[item.line] = lot
    distinct = {lot.pk for lot in found.values()}
    read, facts = lots_afresh(clinic, [LineRequest(lot=pk, units=0) for pk in distinct])
    afresh = {line.lot.pk: line.lot for line in read}
    practitioners = Practitioner.objects.in_bulk({item.practitioner_id for item in parsed})
    standings = _Standings(clinic, set(practitioners))
    patients = {
        patient.reference: patient
        for patient in Patient.objects.filter(
            clinic=clinic, reference__in={item.patient for item in parsed}
        )
    }
    consent_texts = ConsentText.objects.in_bulk(
        {item.consent_text_id for item in parsed if item.consent_text_id is not None}
    )
    stock = AcceptedStock(clinic.pk, afresh)
    now = timezone.now()
    planned: list[Planned] = []
    for done, item in enumerate(sorted(parsed, key=lambda item: item.performed_at), start=1):
        if done % BATCH == 0:
            progress(done)
        practitioner = practitioners.get(item.practitioner_id)
        if practitioner is None:
            problems.append(
                RowProblem(
                    item.line,
                    "practitioner",
                    "practitioner_unknown",
                    _("No practitioner has the id %(id)s.") % {"id": item.practitioner_id},
                )
            )
        consent = None
        if item.consent_text_id is not None:
            text = consent_texts.get(item.consent_text_id)
            if text is None:
                problems.append(
                    RowProblem(
                        item.line,
                        "consent_text",
                        "consent_text_unknown",
                        _("No consent text has the id %(id)s.") % {"id": item.consent_text_id},
                    )
                )
            elif item.consent_taken_at is not None:
                consent = ConsentRequest(text, actor, item.consent_taken_at)
        named = found.get(item.line)
        if practitioner is None or named is None or (item.consent_text_id and consent is None):
            continue
        lot = afresh[named.pk]
        patient = patients.get(item.patient) or Patient(clinic=clinic, reference=item.patient)
        patients[item.patient] = patient
        usable = stock.usable(lot.pk, item.performed_at)
        found_problems = treatment_rule_problems(
            clinic=clinic,
            patient=patient,
            practitioner=practitioner,
            performed_at=item.performed_at,
            indication=item.indication,
            route=item.route,
            lines=[Line(lot=lot, units=item.units)],
            consent=consent,
            lot_facts=LotFacts(balances={lot.pk: usable}, authorisations=facts.authorisations),
            now=now,
            standing=standings.on(practitioner.pk, clinic.local_date(item.performed_at)),
        )
        problems.extend(RowProblem.at(item.line, _column(p.field), p) for p in found_problems)
        if not any(p.code == "stock_insufficient" for p in found_problems):
            stock.draw(lot.pk, item.units)
        planned.append(Planned(item, patient, practitioner, lot, consent))
    progress(len(parsed))
    return planned


def _column(field: str | None) -> str | None:
    return FIELD_COLUMNS.get(field or "", field)


def write(*, clinic: Clinic, actor: Any, planned: list[Planned], progress: Progress) -> int:
    """Write the judged treatments set-based: new patients, then in batches the treatments, their
    ledger lines and treatment lines, then each lot's balance once (refused, as live, should a
    concurrent use have taken the units meanwhile). The caller holds the transaction."""
    new_patients = {p.reference: p for item in planned if (p := item.patient).pk is None}
    Patient.objects.bulk_create(list(new_patients.values()), batch_size=BATCH)
    now = timezone.now()
    statements: dict[int, str] = {}
    done = 0
    for start in range(0, len(planned), BATCH):
        batch = planned[start : start + BATCH]
        treatment_ids = insert_rows(
            Treatment,
            TREATMENT_FIELDS,
            [_treatment(clinic, actor, item, now, statements) for item in batch],
        )
        movement_ids = insert_rows(
            StockMovement,
            ("clinic", "lot", "state", "delta", "kind", "reason", "actor", "occurred_at"),
            [
                (
                    clinic.pk,
                    item.lot.pk,
                    StockState.ACCEPTED.value,
                    -item.parsed.units,
                    MovementKind.TREATMENT.value,
                    f"treatment {treatment_id}",
                    actor.pk,
                    item.parsed.performed_at,
                )
                for item, treatment_id in zip(batch, treatment_ids, strict=True)
            ],
        )
        insert_rows(
            TreatmentLine,
            ("treatment", "lot", "units", "stock_movement"),
            [
                (treatment_id, item.lot.pk, item.parsed.units, movement_id)
                for item, treatment_id, movement_id in zip(
                    batch, treatment_ids, movement_ids, strict=True
                )
            ],
        )
        done += len(batch)
        progress(done)
    units: dict[int, int] = defaultdict(int)
    for item in planned:
        units[item.lot.pk] += item.parsed.units
    balances_move(
        [
            Change(clinic.pk, lot_id, StockState.ACCEPTED, -total, MovementKind.TREATMENT)
            for lot_id, total in units.items()
        ]
    )
    return done


TREATMENT_FIELDS = (
    "clinic",
    "patient",
    "practitioner",
    "performed_at",
    "indication",
    "route",
    "anatomical_site",
    "notes",
    "consent_text",
    "consent_taken_by",
    "consent_taken_at",
    "consent_regulatory_statement",
    "recorded_by",
    "recorded_at",
)


def _treatment(
    clinic: Clinic, actor: Any, item: Planned, now: datetime.datetime, statements: dict[int, str]
) -> tuple[Any, ...]:
    """A treatment's values in the order of TREATMENT_FIELDS; what the patient was told of the
    lot's basis is worded once per lot."""
    parsed, consent, lot = item.parsed, item.consent, item.lot
    if lot.pk not in statements:
        statements[lot.pk] = regulatory_statement([lot])
    return (
        clinic.pk,
        item.patient.pk,
        item.practitioner.pk,
        parsed.performed_at,
        parsed.indication,
        parsed.route,
        parsed.anatomical_site,
        parsed.notes,
        consent.consent_text.pk if consent else None,
        consent.taken_by.pk if consent else None,
        consent.taken_at if consent else None,
        statements[lot.pk],
        actor.pk,
        now,
    )
