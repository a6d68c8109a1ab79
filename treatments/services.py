"""Patients, treatments by lot (or by scan), consent and adverse events.

`treatment_record` is the clinical gate of DESIGN rule 2: it checks everything, lists every
reason it refuses, and only then draws the clinic's accepted stock in the same transaction.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import Model, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from common.errors import DomainError, Problem
from common.postgresql.prepared import Prepared
from common.services import history, validate_instance
from common.validators import jurisdiction_chain
from lots.models import (
    Lot,
    LotStatus,
    Product,
    ProductAuthorisation,
    RegulatoryBasis,
    RestrictionScope,
    SourceRestriction,
)
from lots.selectors import lot_use_problems
from providers.models import Clinic, ClinicPractitioner, Licence, Practitioner, Role
from providers.selectors import require_any_role
from stock.models import MovementKind, StockBalance, StockMovement, StockState
from stock.services import Change, balances_take, movements_for
from treatments.models import (
    COSMETIC_INDICATIONS,
    AdverseEvent,
    ConsentText,
    Patient,
    PatientContact,
    Treatment,
    TreatmentLine,
)

TREATING_ROLES = (Role.CLINICIAN, Role.CLINIC_ADMINISTRATOR)
# A clock a few minutes fast on a tablet must not block a clinician.
FUTURE_TOLERANCE = datetime.timedelta(minutes=10)


@transaction.atomic
def patient_create(
    *, actor: Any, clinic: Clinic, reference: str, contact: dict[str, Any] | None = None
) -> Patient:
    require_any_role(actor, TREATING_ROLES, clinic=clinic)
    patient = Patient(clinic=clinic, reference=reference.strip())
    validate_instance(patient)
    with history(actor, "patient registered"):
        patient.save()
        if contact:
            details = PatientContact(patient=patient, **contact)
            validate_instance(details)
            details.save()
    return patient


@dataclass(frozen=True)
class LineRequest:
    """A lot used and its units. The lot may be given by its id, as an API client names it:
    treatment_record reads every lot afresh, so a lot read beforehand would be read twice."""

    lot: Lot | int
    units: int

    @property
    def lot_id(self) -> int:
        return self.lot if isinstance(self.lot, int) else self.lot.pk


@dataclass(frozen=True)
class Line:
    """A line as treatment_record judges and writes it: its lot read afresh, with its product."""

    lot: Lot
    units: int


@dataclass(frozen=True)
class ConsentRequest:
    consent_text: ConsentText
    taken_by: Any
    taken_at: datetime.datetime


def regulatory_statement(lots: list[Lot]) -> str:
    """What the patient must be told of each product's basis: its IND or BLA, or not approved."""
    parts = []
    for lot in lots:
        if lot.regulatory_basis == RegulatoryBasis.NONE:
            basis = "not approved by the FDA; no IND or BLA"
        else:
            # Numbers are usually kept with their prefix ("IND 027845"); do not say "IND IND".
            prefix = lot.get_regulatory_basis_display().split(" ")[0]
            number = lot.regulatory_number
            basis = number if number.upper().startswith(prefix) else f"{prefix} {number}"
        parts.append(f"{lot.product.name} lot {lot.lot_number}: {basis}")
    return "; ".join(parts)


def treatment_problems(
    *,
    clinic: Clinic,
    patient: Patient,
    practitioner: Practitioner,
    performed_at: datetime.datetime,
    indication: str,
    route: str,
    lines: list[Line],
    consent: ConsentRequest | None,
    lot_facts: LotFacts,
    now: datetime.datetime,
) -> list[Problem]:
    """Every reason DESIGN rule 2 refuses this treatment, in words a clinician understands.
    `lines` and `lot_facts` are as `lots_afresh` read them; the practitioner's standing on the
    treatment's day is read here (one statement)."""
    day = clinic.local_date(performed_at)
    chain = jurisdiction_chain(clinic.jurisdiction)
    return treatment_rule_problems(
        clinic=clinic,
        patient=patient,
        practitioner=practitioner,
        performed_at=performed_at,
        indication=indication,
        route=route,
        lines=lines,
        consent=consent,
        lot_facts=lot_facts,
        now=now,
        standing=_standing(clinic, practitioner, chain, day),
    )


def treatment_rule_problems(
    *,
    clinic: Clinic,
    patient: Patient,
    practitioner: Practitioner,
    performed_at: datetime.datetime,
    indication: str,
    route: str,
    lines: list[Line],
    consent: ConsentRequest | None,
    lot_facts: LotFacts,
    now: datetime.datetime,
    standing: Standing,
) -> list[Problem]:
    """The rules of `treatment_problems` with the practitioner's `standing` on the treatment's
    day given: reads nothing, so a caller judging many treatments (the history import) reads
    the standings once for all of them."""
    problems: list[Problem] = []
    # The treatment's day is the clinic's calendar day: at 00:30 in Berlin it is already the
    # next day, whatever the date in UTC. Expiry, "made after", and the licence are judged on it;
    # the future and consent-order checks compare instants and need no zone.
    day = clinic.local_date(performed_at)
    if patient.clinic_id != clinic.pk:
        problems.append(
            Problem(
                "patient_other_clinic",
                _("This patient is registered at another clinic."),
                "patient",
            )
        )
    if performed_at > now + FUTURE_TOLERANCE:
        problems.append(
            Problem(
                "treatment_in_future",
                _("A treatment cannot be recorded ahead of time."),
                "performed_at",
            )
        )
    if not lines:
        problems.append(Problem("treatment_no_lot", _("Name at least one lot used."), "lines"))
    lot_ids = [line.lot.pk for line in lines]
    if len(set(lot_ids)) != len(lot_ids):
        problems.append(
            Problem(
                "treatment_lot_repeated", _("Each lot appears once; add up its units."), "lines"
            )
        )
    chain = jurisdiction_chain(clinic.jurisdiction)
    if not standing.member:
        problems.append(
            Problem(
                "practitioner_not_member",
                _("%(practitioner)s does not practise at %(clinic)s.")
                % {"practitioner": practitioner.name, "clinic": clinic.name},
                "practitioner",
            )
        )
    if not standing.licensed:
        problems.append(
            Problem(
                "practitioner_not_licensed",
                _("%(practitioner)s holds no licence valid in %(jurisdiction)s on %(day)s.")
                % {
                    "practitioner": practitioner.name,
                    "jurisdiction": clinic.jurisdiction,
                    "day": day.isoformat(),
                },
                "practitioner",
            )
        )
    problems.extend(
        _lot_problems(
            clinic, lines, lot_facts, standing.restrictions, day, indication, route, chain
        )
    )
    if consent is None and clinic.consent_required:
        problems.append(
            Problem(
                "consent_required",
                _("%(clinic)s requires the patient's informed consent before treatment.")
                % {"clinic": clinic.name},
                "consent",
            )
        )
    if consent is not None:
        if consent.taken_at > performed_at:
            problems.append(
                Problem(
                    "consent_after_treatment",
                    _("Consent must be taken before the treatment."),
                    "consent.taken_at",
                )
            )
        if not consent.consent_text.active:
            problems.append(
                Problem(
                    "consent_text_retired",
                    _("That consent text version is retired."),
                    "consent.consent_text",
                )
            )
    return problems


@dataclass(frozen=True)
class LotFacts:
    """What the rules need to know of a treatment's lots besides the lots themselves: the
    clinic's accepted units of each lot, by lot id, and the authorisation status of each product
    in each jurisdiction of the clinic's chain, by (product id, jurisdiction)."""

    balances: dict[int, int]
    authorisations: dict[tuple[int, str], str]


@dataclass(frozen=True)
class Standing:
    """A practitioner's standing at a clinic on a day: a member of it, licensed there that day,
    and the source restrictions of the clinic's jurisdictions (in their order)."""

    member: bool
    licensed: bool
    restrictions: list[SourceRestriction]


def _standing(
    clinic: Clinic, practitioner: Practitioner, chain: list[str], day: datetime.date
) -> Standing:
    """Whether the practitioner practises at the clinic and holds a licence valid there on `day`,
    and the source restrictions of the clinic's jurisdictions (in their order): one statement."""
    return _read_afresh(clinic, [], practitioner=practitioner, day=day)[2]


RESTRICTION_FIELDS = ("id", "jurisdiction", "source_kind", "scope", "note")


def _lot_problems(
    clinic: Clinic,
    lines: list[Line],
    lot_facts: LotFacts,
    restrictions: list[SourceRestriction],
    day: datetime.date,
    indication: str,
    route: str,
    chain: list[str],
) -> list[Problem]:
    problems: list[Problem] = []
    balances, authorisations = lot_facts.balances, lot_facts.authorisations
    for index, line in enumerate(lines):
        lot, product = line.lot, line.lot.product
        where = f"lines[{index}]"
        if lot.status == LotStatus.RECALLED:
            problems.append(
                Problem(
                    "lot_recalled",
                    _("Lot %(lot)s is recalled: do not use it.") % {"lot": lot.lot_number},
                    f"{where}.lot",
                )
            )
        elif lot.status == LotStatus.ON_HOLD:
            problems.append(
                Problem(
                    "lot_on_hold",
                    _("Lot %(lot)s is on hold: do not use it.") % {"lot": lot.lot_number},
                    f"{where}.lot",
                )
            )
        elif lot.status != LotStatus.RELEASED:
            problems.append(
                Problem(
                    "lot_not_released",
                    _("Lot %(lot)s is %(status)s, not released for use.")
                    % {"lot": lot.lot_number, "status": lot.get_status_display().lower()},
                    f"{where}.lot",
                )
            )
        if lot.is_expired(on=day):
            problems.append(
                Problem(
                    "lot_expired",
                    _("Lot %(lot)s expired on %(expires_on)s.")
                    % {"lot": lot.lot_number, "expires_on": lot.expires_on.isoformat()},
                    f"{where}.lot",
                )
            )
        if day < lot.manufactured_on:
            problems.append(
                Problem(
                    "treatment_before_lot_made",
                    _(
                        "Lot %(lot)s was made on %(manufactured_on)s, after the date of this "
                        "treatment: check the date or the lot."
                    )
                    % {
                        "lot": lot.lot_number,
                        "manufactured_on": lot.manufactured_on.isoformat(),
                    },
                    f"{where}.lot",
                )
            )
        problems.extend(lot_use_problems(lot=lot, clinic=clinic, day=day, where=f"{where}.lot"))
        if route not in product.permitted_routes:
            problems.append(
                Problem(
                    "route_not_permitted",
                    _("%(product)s is not for %(route)s use.")
                    % {"product": product.name, "route": route.replace("_", " ")},
                    "route",
                )
            )
        status = next(
            (authorisations[(product.pk, j)] for j in chain if (product.pk, j) in authorisations),
            None,
        )
        if status == "banned":
            problems.append(
                Problem(
                    "product_not_authorised",
                    _("%(product)s may not be used in %(jurisdiction)s.")
                    % {"product": product.name, "jurisdiction": clinic.jurisdiction},
                    f"{where}.lot",
                )
            )
        elif status == "investigational" and lot.regulatory_basis != RegulatoryBasis.IND:
            problems.append(
                Problem(
                    "product_investigational_only",
                    _(
                        "In %(jurisdiction)s %(product)s is for investigational use under an IND "
                        "only."
                    )
                    % {"jurisdiction": clinic.jurisdiction, "product": product.name},
                    f"{where}.lot",
                )
            )
        for restriction in restrictions:
            if restriction.applies_to(
                source_kind=product.source_kind,
                indication=indication,
                cosmetic_indications=COSMETIC_INDICATIONS,
            ):
                if restriction.scope == RestrictionScope.COSMETIC_USES:
                    message = _(
                        "%(jurisdiction)s forbids %(source_kind)s products for cosmetic use: "
                        "%(product)s cannot be used."
                    ) % {
                        "jurisdiction": restriction.jurisdiction,
                        "source_kind": product.get_source_kind_display().lower(),
                        "product": product.name,
                    }
                else:
                    message = _(
                        "%(jurisdiction)s forbids %(source_kind)s products: %(product)s cannot be "
                        "used."
                    ) % {
                        "jurisdiction": restriction.jurisdiction,
                        "source_kind": product.get_source_kind_display().lower(),
                        "product": product.name,
                    }
                problems.append(Problem("product_not_authorised", message, f"{where}.lot"))
                break
        if line.units <= 0:
            problems.append(
                Problem(
                    "units_not_positive", _("Give the units used, above zero."), f"{where}.units"
                )
            )
        elif balances.get(lot.pk, 0) < line.units:
            problems.append(
                Problem(
                    "stock_insufficient",
                    _("%(clinic)s has %(held)s accepted unit(s) of Lot %(lot)s; %(needed)s needed.")
                    % {
                        "clinic": clinic.name,
                        "held": balances.get(lot.pk, 0),
                        "lot": lot.lot_number,
                        "needed": line.units,
                    },
                    f"{where}.units",
                )
            )
    return problems


@transaction.atomic
def treatment_record(
    *,
    actor: Any,
    clinic: Clinic,
    patient: Patient,
    practitioner: Practitioner,
    performed_at: datetime.datetime,
    indication: str,
    route: str,
    anatomical_site: str,
    lines: list[LineRequest],
    consent: ConsentRequest | None = None,
    notes: str = "",
) -> Treatment:
    """Record a treatment and draw its units from the clinic's accepted stock.

    Refuses with every applicable reason, and a refusal changes nothing.
    """
    require_any_role(actor, TREATING_ROLES, clinic=clinic)
    read, lot_facts, standing = _read_afresh(
        clinic, lines, practitioner=practitioner, day=clinic.local_date(performed_at)
    )
    problems = treatment_rule_problems(
        clinic=clinic,
        patient=patient,
        practitioner=practitioner,
        performed_at=performed_at,
        indication=indication,
        route=route,
        lines=read,
        consent=consent,
        lot_facts=lot_facts,
        now=timezone.now(),
        standing=standing,
    )
    if problems:
        raise DomainError(problems, status=409)
    treatment = Treatment(
        clinic=clinic,
        patient=patient,
        practitioner=practitioner,
        performed_at=performed_at,
        indication=indication,
        route=route,
        anatomical_site=anatomical_site.strip(),
        notes=notes,
        consent_text=consent.consent_text if consent else None,
        consent_taken_by=consent.taken_by if consent else None,
        consent_taken_at=consent.taken_at if consent else None,
        consent_regulatory_statement=regulatory_statement([line.lot for line in read]),
        recorded_by=actor,
        recorded_at=timezone.now(),
    )
    # The related rows are the instances this request read, and the consent's order is one of the
    # problems above (its completeness holds by construction); the database's foreign keys and
    # constraints enforce both again. Validating them here would read each row once more, and
    # the treatment's constraints, both on the consent, would be composed only to be skipped.
    validate_instance(
        treatment,
        exclude=[*ALREADY_CHECKED, "recorded_by", "consent_taken_by"],
        constraints=False,
    )
    # The ledger's movements are written here, as stock.services.apply_changes writes them, in
    # one statement with the lines and the take from the balances (stock.services.balances_take,
    # whose conditional UPDATE refuses a take that finds too few units, and this transaction
    # with it): every recording draws on its clinic's balance of the lot, and its row lock is
    # held only from that statement to the commit.
    with history(actor, "treatment recorded"):
        _insert(Treatment, [treatment])
        changes = [
            Change(clinic.pk, line.lot.pk, StockState.ACCEPTED, -line.units, MovementKind.TREATMENT)
            for line in read
        ]
        movements = movements_for(
            changes, actor=actor, reason=f"treatment {treatment.pk}", at=performed_at
        )
        # The copies of the treatment the database writes on each line, known here too.
        written = [
            TreatmentLine(
                treatment=treatment,
                lot=line.lot,
                units=line.units,
                performed_at=treatment.performed_at,
                clinic=clinic,
                patient=patient,
                practitioner=practitioner,
            )
            for line in read
        ]
        _insert_lines_drawn(written, movements, changes)
    _known(treatment, "lines", written)
    _known(treatment, "adverse_events", [])
    return treatment


# Fields of a new treatment that treatment_problems has already judged, or that hold instances
# read for this request.
ALREADY_CHECKED = ["clinic", "patient", "practitioner", "consent_text", "consent_taken_at"]


def lots_afresh(clinic: Clinic, lines: list[LineRequest]) -> tuple[list[Line], LotFacts]:
    """The lines with their lots read again, with their products, and what the rules need to know
    of them at the clinic (LotFacts), in one statement. A caller's lot may have been read before
    it was recalled or put on hold; a lot recalled after this read is caught by the recall's own
    stock block, which moves the accepted units to blocked under the balance's row lock. A lot
    id that names no lot is refused at its line."""
    read, facts, _standing = _read_afresh(clinic, lines, practitioner=None, day=None)
    return read, facts


def _read_afresh(
    clinic: Clinic,
    lines: list[LineRequest],
    *,
    practitioner: Practitioner | None,
    day: datetime.date | None,
) -> tuple[list[Line], LotFacts, Standing]:
    """`lots_afresh` and, with a practitioner and a day, `_standing` too, in one statement (the
    standing is read whether or not any lot is named, so it is never read twice)."""
    chain = jurisdiction_chain(clinic.jurisdiction)
    with connections[_ALIAS].cursor() as cursor:
        _AFRESH.execute(
            cursor,
            {
                "clinic": clinic.pk,
                "practitioner": None if practitioner is None else practitioner.pk,
                "day": day,
                "chain": chain,
                "accepted": StockState.ACCEPTED.value,
                "lots": sorted({line.lot_id for line in lines if line.lot_id <= _BIGINT_MAX}),
            },
        )
        rows = cursor.fetchall()
    member, licensed, restrictions = rows[0][:3]
    lots: dict[int, Lot] = {}
    balances: dict[int, int] = {}
    authorisations: dict[tuple[int, str], str] = {}
    for row in rows:
        if row[_LOT_AT] is None:  # the standing alone: no lot named, or none found
            continue
        lot = Lot.from_db(_ALIAS, _LOT_NAMES, row[_LOT_AT:_PRODUCT_AT])
        product = Product.from_db(_ALIAS, _PRODUCT_NAMES, row[_PRODUCT_AT:_ACCEPTED_AT])
        Lot.product.field.set_cached_value(lot, product)
        lots[lot.pk] = lot
        balances[lot.pk] = row[_ACCEPTED_AT]
        for jurisdiction, status in row[_ACCEPTED_AT + 1]:
            authorisations[(product.pk, jurisdiction)] = status
    unknown = [
        Problem(
            "does_not_exist",
            _("No lot has the id %(lot)s.") % {"lot": line.lot_id},
            f"lines[{index}].lot",
        )
        for index, line in enumerate(lines)
        if line.lot_id not in lots
    ]
    if unknown:
        raise DomainError(unknown, status=400)
    standing = Standing(
        member=member,
        licensed=licensed,
        restrictions=[SourceRestriction(**row) for row in json.loads(restrictions)],
    )
    facts = LotFacts(balances=balances, authorisations=authorisations)
    return [Line(lot=lots[line.lot_id], units=line.units) for line in lines], facts, standing


# The rows treatment_record judges, written out in SQL rather than composed with the ORM: every
# recording sends this statement, and compiling its ORM form (lots with their products, a balance
# and an authorisation subquery, the membership, licence and restriction subqueries) cost more
# than a third of a request's time. The columns are the models' own, in their order, so the rows
# become model instances as the ORM would build them (none of these fields converts its value).
# The standing is one row that every lot joins, so it arrives even when no lot is found; the
# restrictions keep the order the rules name them in.
# A read that feeds a write is the primary's (common.db_routing).
_ALIAS = DEFAULT_DB_ALIAS
_BIGINT_MAX = 2**63 - 1  # a larger id names no lot, and cannot be sent as a bigint
_LOT_NAMES = [field.attname for field in Lot._meta.concrete_fields]
_PRODUCT_NAMES = [field.attname for field in Product._meta.concrete_fields]
_LOT_AT = 3
_PRODUCT_AT = _LOT_AT + len(_LOT_NAMES)
_ACCEPTED_AT = _PRODUCT_AT + len(_PRODUCT_NAMES)


def _columns(table: str, model: type[Any]) -> str:
    return ", ".join(f'{table}."{field.column}"' for field in model._meta.concrete_fields)


_RESTRICTION_PAIRS = ", ".join(f"'{name}', restriction.{name}" for name in RESTRICTION_FIELDS)
_AFRESH_SQL = f"""
    SELECT
        standing.member,
        standing.licensed,
        standing.restrictions,
        {_columns("lot", Lot)},
        {_columns("product", Product)},
        COALESCE(
            (
                SELECT balance.quantity FROM {StockBalance._meta.db_table} balance
                WHERE balance.clinic_id = %(clinic)s AND balance.lot_id = lot.id
                    AND balance.state = %(accepted)s
            ),
            0
        ),
        ARRAY(
            SELECT ARRAY[authorisation.jurisdiction::text, authorisation.status::text]
            FROM {ProductAuthorisation._meta.db_table} authorisation
            WHERE authorisation.product_id = product.id
                AND authorisation.jurisdiction = ANY(%(chain)s)
        )
    FROM (
        SELECT
            EXISTS (
                SELECT 1 FROM {ClinicPractitioner._meta.db_table} link
                WHERE link.clinic_id = %(clinic)s AND link.practitioner_id = %(practitioner)s
                    AND link.active
            ) AS member,
            EXISTS (
                SELECT 1 FROM {Licence._meta.db_table} licence
                WHERE licence.practitioner_id = %(practitioner)s
                    AND licence.jurisdiction = ANY(%(chain)s)
                    AND licence.valid_from <= %(day)s AND licence.valid_until >= %(day)s
            ) AS licensed,
            (
                SELECT COALESCE(
                    json_agg(
                        json_build_object(
                            {_RESTRICTION_PAIRS}
                        )
                        ORDER BY restriction.jurisdiction, restriction.source_kind
                    ),
                    '[]'
                )::text
                FROM {SourceRestriction._meta.db_table} restriction
                WHERE restriction.jurisdiction = ANY(%(chain)s)
            ) AS restrictions
    ) standing
    LEFT JOIN (
        {Lot._meta.db_table} lot JOIN {Product._meta.db_table} product
            ON product.id = lot.product_id
    ) ON lot.id = ANY(%(lots)s::bigint[])
"""  # noqa: S608 - the table and column names are the models' own; values are parameters
# Parsed and planned once per connection (common.postgresql.prepared): afresh, PostgreSQL spent
# several times longer on that than on running it.
_AFRESH = Prepared(
    _AFRESH_SQL,
    {
        "clinic": "bigint",
        "practitioner": "bigint",
        "day": "date",
        "chain": "varchar[]",
        "accepted": "varchar",
        "lots": "bigint[]",
    },
)


def _insert(model: type[Model], rows: list[Any]) -> None:
    """Insert `rows`, new instances of `model`, in one statement and give each its id, as
    `bulk_create` does (no save(), no signals: these models have neither of their own). Written in
    SQL as the reads are: composing the ORM's INSERTs cost more of each recording than PostgreSQL
    took to run them. Every column is sent as its field prepares it for the database, so a value
    the database sets (a line's copies of its treatment) is sent as the ORM would send it."""
    fields = [field for field in model._meta.concrete_fields if not field.primary_key]
    connection = connections[_ALIAS]
    values = [
        field.get_db_prep_save(field.pre_save(row, True), connection)
        for row in rows
        for field in fields
    ]
    columns = ", ".join(f'"{field.column}"' for field in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    rows_sql = ", ".join([f"({placeholders})"] * len(rows))
    table, pk = model._meta.db_table, model._meta.pk.column
    with connection.cursor() as cursor:
        cursor.execute(
            f'INSERT INTO {table} ({columns}) VALUES {rows_sql} RETURNING "{pk}"',  # noqa: S608
            values,
        )
        ids = cursor.fetchall()
    # PostgreSQL returns the rows of a multi-row VALUES in their order (bulk_create relies on it).
    for row, (pk,) in zip(rows, ids, strict=True):
        row.pk = pk
        row._state.adding = False
        row._state.db = _ALIAS


def _insert_lines_drawn(
    lines: list[TreatmentLine], movements: list[StockMovement], changes: list[Change]
) -> None:
    """Insert the ledger's `movements` and a treatment's `lines`, each line pointing at the
    movement of its lot (a treatment names each lot once), and take the `changes` from the
    balances (stock.services.balances_take), in one statement: the take and the movements are
    data-modifying WITH queries, the lines are inserted in their order from the movements' ids.
    Each row gets its id, each line its movement; a take that found too few units is refused
    (the caller's transaction with it). Neither table's triggers read the other's rows, and the
    line's foreign key to its movement is checked at the commit."""
    if not lines:
        return
    take = balances_take(changes)
    connection = connections[_ALIAS]
    movement_fields = [
        field for field in StockMovement._meta.concrete_fields if not field.primary_key
    ]
    line_fields = [field for field in TreatmentLine._meta.concrete_fields if not field.primary_key]
    drawn = TreatmentLine._meta.get_field("stock_movement").column
    movement_columns = ", ".join(f'"{field.column}"' for field in movement_fields)
    movement_row = f"({', '.join(['%s'] * len(movement_fields))})"
    line_columns = ", ".join(f'"{field.column}"' for field in line_fields)
    # The lines' values are cast as their columns are typed: in a VALUES list of their own,
    # PostgreSQL would otherwise take them as text.
    line_row = ", ".join(
        ["%s::integer", *(f"%s::{field.cast_db_type(connection)}" for field in line_fields)]
    )
    line_values = ", ".join(
        "movement.id" if field.column == drawn else f'line."{field.column}"'
        for field in line_fields
    )
    sql = f"""
        WITH {take.sql},
        movement AS (
            INSERT INTO {StockMovement._meta.db_table} ({movement_columns})
            VALUES {", ".join([movement_row] * len(movements))}
            RETURNING id, lot_id
        ),
        written AS (
            INSERT INTO {TreatmentLine._meta.db_table} ({line_columns})
            SELECT {line_values}
            FROM (VALUES {", ".join([f"({line_row})"] * len(lines))})
                AS line (ordinal, {line_columns})
            JOIN movement ON movement.lot_id = line.lot_id
            ORDER BY line.ordinal
            RETURNING id, lot_id, {drawn}
        )
        SELECT written.id, written.lot_id, written.{drawn}, ARRAY(SELECT ordinal FROM taken)
        FROM written
    """  # noqa: S608 - the table and column names are the models' own; values are parameters
    values = list(take.params)
    values += [
        field.get_db_prep_save(field.pre_save(movement, True), connection)
        for movement in movements
        for field in movement_fields
    ]
    for ordinal, line in enumerate(lines):
        values.append(ordinal)
        values.extend(
            field.get_db_prep_save(field.pre_save(line, True), connection) for field in line_fields
        )
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        rows = cursor.fetchall()
    take.check(rows[0][3])
    written = {lot_id: (pk, movement_id) for pk, lot_id, movement_id, _taken in rows}
    for movement in movements:
        movement.pk = written[movement.lot_id][1]
        movement._state.adding, movement._state.db = False, _ALIAS
    by_lot = {movement.lot_id: movement for movement in movements}
    for line in lines:
        line.pk = written[line.lot_id][0]
        line.stock_movement = by_lot[line.lot_id]
        line._state.adding, line._state.db = False, _ALIAS


def _known(treatment: Treatment, relation: str, rows: list[Any]) -> None:
    """Hand `rows` to `treatment.<relation>.all()` as a prefetch would, so whoever shows the
    treatment just recorded reads none of what was written back from the database."""
    manager = getattr(treatment, relation)
    known: QuerySet[Any] = manager.all()
    known._result_cache = rows
    treatment.__dict__.setdefault("_prefetched_objects_cache", {})[relation] = known


@transaction.atomic
def adverse_event_record(
    *,
    actor: Any,
    treatment: Treatment,
    onset_on: datetime.date,
    description: str,
    lot: Lot | None = None,
    **seriousness: bool,
) -> AdverseEvent:
    require_any_role(actor, TREATING_ROLES, clinic=treatment.clinic)
    if lot is not None and not treatment.lines.filter(lot=lot).exists():
        raise DomainError.single(
            "adverse_event_lot_not_used",
            _("The suspected lot was not used in this treatment."),
            field="lot",
            status=400,
        )
    # `onset_on` is a day on the treating clinic's calendar: compare it with that clinic's today
    # and the treatment's day there, not with the days in UTC.
    clinic = treatment.clinic
    if onset_on > clinic.local_date():
        raise DomainError.single(
            "adverse_event_onset_in_future",
            _("The onset cannot be in the future."),
            field="onset_on",
            status=400,
        )
    if onset_on < clinic.local_date(treatment.performed_at):
        raise DomainError.single(
            "adverse_event_before_treatment",
            _("The onset cannot precede the treatment."),
            field="onset_on",
            status=400,
        )
    event = AdverseEvent(
        treatment=treatment,
        lot=lot,
        onset_on=onset_on,
        description=description.strip(),
        reported_by=actor,
        reported_at=timezone.now(),
        **seriousness,
    )
    validate_instance(event, exclude=["reported_by"])
    with history(actor, "adverse event reported"):
        event.save()
    return event
