"""Reads: patients and treatments scoped to what the user may see, and the two traces.

Each trace runs a fixed number of queries whatever the size of the result (the tests count them):
one per kind of row, joined in the database, never a query per row.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connections, router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.utils.translation import gettext as _

from common.errors import DomainError, Problem
from lots.models import (
    MANUFACTURER_CERTIFICATE_KINDS,
    Certificate,
    Donor,
    DonorMarkerResult,
    Lot,
    LotDonor,
    LotQcResult,
    LotStatus,
    Marker,
    Product,
    QcSpecification,
    QcTest,
)
from lots.sec import PARTS as SEC_PARTS
from lots.selectors import current_certificates, lots_matching_sec
from providers.access import access_for
from providers.models import Clinic, Manufacturer, Practitioner
from stock.models import StockBalance
from treatments.filters import SERIOUS
from treatments.models import AdverseEvent, Patient, Treatment, TreatmentLine


def _reading() -> BaseDatabaseWrapper:
    """The database a trace's own SQL reads, as the ORM's reads would (common.db_routing: a
    replica while a safe request has written nothing)."""
    return connections[router.db_for_read(Treatment)]


def visible_clinic_ids(user: Any) -> list[int] | None:
    """None means every clinic (network quality manager or auditor); otherwise the clinic ids the
    user belongs to (providers.access decides)."""
    return access_for(user).visible_clinic_ids


def _scoped(queryset: QuerySet[Any], clinic_field: str, user: Any) -> QuerySet[Any]:
    return _within(queryset, clinic_field, visible_clinic_ids(user))


def _within(
    queryset: QuerySet[Any], clinic_field: str, clinic_ids: list[int] | None
) -> QuerySet[Any]:
    if clinic_ids is None:
        return queryset
    return queryset.filter(**{f"{clinic_field}__in": clinic_ids})


def patient_list(*, user: Any) -> QuerySet[Patient]:
    return _scoped(Patient.objects.select_related("clinic"), "clinic_id", user)


def treatment_list(*, user: Any) -> QuerySet[Treatment]:
    return _scoped(
        Treatment.objects.select_related("clinic", "patient", "practitioner").prefetch_related(
            Prefetch("lines", queryset=TreatmentLine.objects.select_related("lot__product"))
        ),
        "clinic_id",
        user,
    )


# The list's order, newest first; a lot's lines hold it too, as their copies of the treatment's
# time and its id (the lot's covering index, read backwards).
TREATMENT_ORDER = ("-performed_at", "-pk")
LINE_ORDER = ("-performed_at", "-treatment_id")


@dataclass(frozen=True)
class TreatmentsByLines:
    """The treatments of `treatments` that have one of `lines`, for a pager (DRF's limit/offset,
    Django's Paginator): its count and a page are read from the lines, which carry their
    treatment's time, clinic, patient and practitioner (LINE_COPIES), so a lot's count and page
    come from the lot's covering index, newest first, without joining its every line to its
    treatment. Only the page's treatments are read, by id, in the list's order (TREATMENT_ORDER).

    `lines` must hold at most one line per treatment (one lot: treatment_line_unique_lot) and be
    narrowed as the list is (the clinics the user sees: `treatments_by_lines`)."""

    treatments: QuerySet[Treatment]
    lines: QuerySet[TreatmentLine]

    def count(self) -> int:
        return self.lines.count()

    def __getitem__(self, page: slice) -> list[Treatment]:
        if not isinstance(page, slice):
            raise TypeError("a page of treatments is read by a slice")
        # One statement: the page's ids (a LIMIT subquery on the lines' index), then their rows.
        ids = self.lines.order_by(*LINE_ORDER).values("treatment_id")[page]
        return list(self.treatments.filter(pk__in=ids).order_by(*TREATMENT_ORDER))


def treatments_by_lines(
    *, treatments: QuerySet[Treatment], lines: QuerySet[TreatmentLine], user: Any
) -> TreatmentsByLines:
    """`treatments` (treatment_list's, narrowed or not) that have one of `lines`, counted and paged
    from the lines (TreatmentsByLines) at the clinics the user may see, as treatment_list scopes
    treatments: by the line's copy of its treatment's clinic."""
    return TreatmentsByLines(
        treatments=treatments, lines=_scoped(lines, "clinic_id", user).order_by()
    )


@dataclass(frozen=True)
class ForwardScope:
    lot_ids: list[int] | None = None
    donor_id: int | None = None
    product_id: int | None = None
    manufacturer_id: int | None = None
    manufactured_from: datetime.date | None = None
    manufactured_to: datetime.date | None = None
    sec: str | None = None

    def lots(self) -> QuerySet[Lot]:
        chosen = (self.lot_ids, self.donor_id, self.product_id, self.manufacturer_id, self.sec)
        if not any(chosen):
            raise DomainError.single(
                "trace_scope_missing",
                _(
                    "Trace from a lot, a donor, a product, a manufacturer or a Single European "
                    "Code."
                ),
                field="scope",
                status=400,
            )
        lots = Lot.objects.all()
        if self.lot_ids:
            lots = lots.filter(pk__in=self.lot_ids)
        if self.donor_id:
            lots = lots.filter(lot_donors__donor_id=self.donor_id)
        if self.product_id:
            lots = lots.filter(product_id=self.product_id)
        if self.manufacturer_id:
            lots = lots.filter(manufacturer_id=self.manufacturer_id)
        if self.manufactured_from:
            lots = lots.filter(manufactured_on__gte=self.manufactured_from)
        if self.manufactured_to:
            lots = lots.filter(manufactured_on__lte=self.manufactured_to)
        if self.sec:
            lots = lots_matching_sec(lots, self.sec)
        return lots


@dataclass
class ForwardTrace:
    lots: QuerySet[Lot]
    lines: QuerySet[TreatmentLine]
    stock: QuerySet[StockBalance]
    adverse_events: QuerySet[AdverseEvent]


def trace_forward(*, user: Any, scope: ForwardScope) -> ForwardTrace:
    """From lots (chosen by lot, donor, product or manufacturer) to every treatment, patient
    reference, practitioner and clinic, plus the stock still on hand per clinic.

    Returns querysets, so a caller can stream them; each evaluates as one query, and the lines
    as five (lines and patients, then lots, products, clinics, practitioners).
    """
    clinic_ids = visible_clinic_ids(user)
    lot_ids = scope.lots().values("pk")
    lots = Lot.objects.filter(pk__in=lot_ids).select_related("product", "manufacturer")
    lines = _within(
        TreatmentLine.objects.filter(lot_id__in=lot_ids)
        .select_related("treatment__patient")
        # A lot's thousands of lines share a few lots, products, clinics and practitioners:
        # fetched once each instead of joined into every row, which took most of the time of
        # a large trace (benchmark_scale, traces section).
        .prefetch_related("lot__product", "treatment__clinic", "treatment__practitioner")
        .order_by("lot_id", "performed_at", "treatment_id"),
        "clinic_id",
        clinic_ids,
    )
    stock = _within(
        StockBalance.objects.filter(lot_id__in=lot_ids, quantity__gt=0)
        .select_related("clinic", "lot")
        .order_by("lot_id", "clinic_id", "state"),
        "clinic_id",
        clinic_ids,
    )
    adverse_events = _within(
        AdverseEvent.objects.filter(
            Q(lot_id__in=lot_ids) | Q(lot__isnull=True, treatment__lines__lot_id__in=lot_ids)
        )
        .select_related("treatment__clinic", "treatment__patient", "lot")
        .distinct()
        .order_by("onset_on", "pk"),
        "treatment__clinic_id",
        clinic_ids,
    )
    return ForwardTrace(lots=lots, lines=lines, stock=stock, adverse_events=adverse_events)


def _bigint_array(ids: Iterable[int]) -> str:
    """`ids` as the text of a bigint[] literal, for a parameter cast `%s::bigint[]`. psycopg binds
    a list by inspecting it for its narrowest type (int2[], cast again by PostgreSQL): for the
    few ids of a trace that cost more than the text, on both sides (about 10 us a list)."""
    return "{" + ",".join(str(int(value)) for value in ids) + "}"


def _forward_where(lot_ids: list[int], clinic_ids: list[int] | None) -> tuple[str, list[Any]]:
    """The lines of `lot_ids` at the clinics the user may see (None: every clinic), as trace_forward
    chooses them."""
    if clinic_ids is None:
        return "line.lot_id = ANY(%s::bigint[])", [_bigint_array(lot_ids)]
    return "line.lot_id = ANY(%s::bigint[]) AND line.clinic_id = ANY(%s::bigint[])", [
        _bigint_array(lot_ids),
        _bigint_array(clinic_ids),
    ]


FORWARD_TOTALS = (
    "treatment_lines",
    "treatments",
    "patients",
    "clinics",
    "practitioners",
    "units_used",
)


def forward_totals(*, lot_ids: list[int], clinic_ids: list[int] | None) -> dict[str, int]:
    """What the forward trace's lines of `lot_ids` add up to (FORWARD_TOTALS), in one statement.

    This and `forward_page` read what trace_forward's `lines` would, written in SQL: composing
    the two with the ORM took longer than PostgreSQL took to answer them for a typical lot
    (benchmark_scale, traces section). The tests hold both to the querysets' answers. Both read
    the lines alone, which carry their treatment's time, clinic, patient and practitioner
    (LINE_COPIES); the counts come from the lot's covering index without visiting a row."""
    where, params = _forward_where(lot_ids, clinic_ids)
    sql = f"""
        SELECT count(*), count(DISTINCT line.treatment_id), count(DISTINCT line.patient_id),
               count(DISTINCT line.clinic_id), count(DISTINCT line.practitioner_id),
               coalesce(sum(line.units), 0)
        FROM {TreatmentLine._meta.db_table} line
        WHERE {where}
    """  # noqa: S608 - table names are ours, the condition a constant; values are parameters
    with _reading().cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return dict(zip(FORWARD_TOTALS, map(int, row), strict=True))


def forward_page(
    *, lot_ids: list[int], clinic_ids: list[int] | None, offset: int, limit: int
) -> list[tuple[Any, ...]]:
    """A page of the forward trace's lines of `lot_ids`, in its order (lot, time, treatment): per
    line the treatment id, performed at, clinic id, clinic name, patient reference, practitioner
    id, practitioner name, lot id and units. One statement; the names by subselect, which
    PostgreSQL plans in a fraction of the time five tables joined take."""
    where, params = _forward_where(lot_ids, clinic_ids)
    sql = f"""
        SELECT line.treatment_id, line.performed_at, line.clinic_id,
               (SELECT name FROM {Clinic._meta.db_table} WHERE id = line.clinic_id),
               (SELECT reference FROM {Patient._meta.db_table} WHERE id = line.patient_id),
               line.practitioner_id,
               (SELECT name FROM {Practitioner._meta.db_table} WHERE id = line.practitioner_id),
               line.lot_id, line.units
        FROM {TreatmentLine._meta.db_table} line
        WHERE {where}
        ORDER BY line.lot_id, line.performed_at, line.treatment_id
        LIMIT %s OFFSET %s
    """  # noqa: S608 - table names are ours, the condition a constant; values are parameters
    with _reading().cursor() as cursor:
        cursor.execute(sql, [*params, limit, offset])
        rows: list[tuple[Any, ...]] = cursor.fetchall()
    return rows


def forward_lots(*, scope: ForwardScope) -> list[tuple[Any, ...]]:
    """The lots of a forward trace (as trace_forward's `lots`, in Lot's order): id, lot number,
    product id, name and GTIN, manufacturer id and legal name, status, manufactured on, expires
    on, and the six parts of its Single European Code (SEC_PARTS' order). One statement, the
    scope's choice of lots as its subquery; written in SQL, as `forward_totals`."""
    params: Sequence[Any]
    if scope.lot_ids and scope == ForwardScope(lot_ids=scope.lot_ids):
        # Lots by id alone, the commonest trace: as scope.lots() chooses them, without composing it.
        chosen, params = "SELECT unnest(%s::bigint[])", [_bigint_array(scope.lot_ids)]
    else:
        try:
            chosen, params = scope.lots().values("pk").order_by().query.sql_with_params()
        except EmptyResultSet:  # a scope that can match nothing (a code no lot starts with)
            return []
    sql = f"""
        SELECT lot.id, lot.lot_number, product.id, product.name, product.gtin, lot.manufacturer_id,
               manufacturer.legal_name,
               lot.status, lot.manufactured_on, lot.expires_on,
               {", ".join(f"lot.sec_{part}" for part in SEC_PARTS)}
        FROM {Lot._meta.db_table} lot
        JOIN {Product._meta.db_table} product ON product.id = lot.product_id
        JOIN {Manufacturer._meta.db_table} manufacturer ON manufacturer.id = lot.manufacturer_id
        WHERE lot.id IN ({chosen})
        ORDER BY lot.manufactured_on DESC, lot.lot_number
    """  # noqa: S608 - table and column names are ours, the subquery Django's; values parameters
    with _reading().cursor() as cursor:
        cursor.execute(sql, params)
        rows: list[tuple[Any, ...]] = cursor.fetchall()
    return rows


def forward_stock(*, lot_ids: list[int], clinic_ids: list[int] | None) -> list[tuple[Any, ...]]:
    """The stock on hand of `lot_ids` at the clinics the user may see (as trace_forward's
    `stock`, in its order): clinic id, clinic name, lot id, lot number, state, quantity."""
    visible = "" if clinic_ids is None else "AND balance.clinic_id = ANY(%s::bigint[])"
    sql = f"""
        SELECT balance.clinic_id,
               (SELECT name FROM {Clinic._meta.db_table} WHERE id = balance.clinic_id),
               balance.lot_id,
               (SELECT lot_number FROM {Lot._meta.db_table} WHERE id = balance.lot_id),
               balance.state, balance.quantity
        FROM {StockBalance._meta.db_table} balance
        WHERE balance.lot_id = ANY(%s::bigint[]) AND balance.quantity > 0 {visible}
        ORDER BY balance.lot_id, balance.clinic_id, balance.state
    """  # noqa: S608 - table names are ours, the condition a constant; values are parameters
    with _reading().cursor() as cursor:
        lots = _bigint_array(lot_ids)
        cursor.execute(sql, [lots] if clinic_ids is None else [lots, _bigint_array(clinic_ids)])
        rows: list[tuple[Any, ...]] = cursor.fetchall()
    return rows


def forward_events(*, lot_ids: list[int], clinic_ids: list[int] | None) -> list[tuple[Any, ...]]:
    """The adverse events of a forward trace (as trace_forward's `adverse_events`, in its order):
    those naming one of `lot_ids`, and those naming no lot after a treatment that used one, at
    the clinics the user may see. Per event: id, treatment id, clinic id, clinic name, patient
    reference, lot id, lot number, onset on, description, the five seriousness flags
    (treatments.filters.SERIOUS), reported at."""
    event, line = AdverseEvent._meta.db_table, TreatmentLine._meta.db_table
    visible = "" if clinic_ids is None else "AND t.clinic_id = ANY(%s::bigint[])"
    sql = f"""
        SELECT e.id, e.treatment_id, t.clinic_id,
               (SELECT name FROM {Clinic._meta.db_table} WHERE id = t.clinic_id),
               (SELECT reference FROM {Patient._meta.db_table} WHERE id = t.patient_id),
               e.lot_id, (SELECT lot_number FROM {Lot._meta.db_table} WHERE id = e.lot_id),
               e.onset_on, e.description, {", ".join(f"e.{flag}" for flag in SERIOUS)},
               e.reported_at
        FROM {event} e JOIN {Treatment._meta.db_table} t ON t.id = e.treatment_id
        WHERE e.id IN (
            SELECT id FROM {event} WHERE lot_id = ANY(%s::bigint[])
            UNION
            SELECT named.id FROM {line} line
            JOIN {event} named ON named.treatment_id = line.treatment_id AND named.lot_id IS NULL
            WHERE line.lot_id = ANY(%s::bigint[])
        ) {visible}
        ORDER BY e.onset_on, e.id
    """  # noqa: S608 - table and column names are ours, the condition a constant
    lots = _bigint_array(lot_ids)
    params = [lots, lots] if clinic_ids is None else [lots, lots, _bigint_array(clinic_ids)]
    with _reading().cursor() as cursor:
        cursor.execute(sql, params)
        rows: list[tuple[Any, ...]] = cursor.fetchall()
    return rows


@dataclass
class BackwardTrace:
    treatments: list[Treatment]
    lots: list[Lot]


def trace_backward(
    *, user: Any, patient_id: int | None = None, treatment_id: int | None = None
) -> BackwardTrace:
    """From a patient or a treatment to every lot used, and from each lot to its donors with their
    marker results, its QC results, its certificates of analysis (`lot.certificates`) and the
    manufacturer's current GMP / ISO 13485 certificates
    (`lot.manufacturer.quality_certificates`); each certificate carries `is_current`. Ten queries,
    whatever the size."""
    treatments = _backward_treatments(user, patient_id, treatment_id)
    lots = _backward_lots(treatments).prefetch_related(
        Prefetch(
            "donors",
            queryset=Donor.objects.prefetch_related(
                Prefetch(
                    "marker_results",
                    queryset=DonorMarkerResult.objects.select_related("marker"),
                )
            ),
        ),
        # Each certificate says whether it is current (no newer version supersedes it).
        Prefetch(
            "certificates",
            queryset=Certificate.objects.annotate(
                is_current=Exists(current_certificates().filter(pk=OuterRef("pk")))
            ),
        ),
        Prefetch(
            "manufacturer__certificates",
            queryset=_quality_certificates(),
            to_attr="quality_certificates",
        ),
    )
    return BackwardTrace(treatments=treatments, lots=list(lots))


def backward_treatments(
    *, user: Any, patient_id: int | None = None, treatment_id: int | None = None
) -> QuerySet[Treatment]:
    """The treatments a backward trace starts from (a patient's, or one), scoped to what the user
    may see, oldest first, with nothing joined or prefetched: a caller picks its columns (reading
    `lines__...` gives a row per line, and one with empty line columns for a treatment without
    lines)."""
    _backward_scope_given(patient_id, treatment_id)
    treatments = _within(Treatment.objects.all(), "clinic_id", visible_clinic_ids(user))
    if patient_id:
        treatments = treatments.filter(patient_id=patient_id)
    if treatment_id:
        treatments = treatments.filter(pk=treatment_id)
    return treatments.order_by("performed_at", "pk")


def backward_patient(*, user: Any, patient_id: int) -> tuple[Any, ...] | None:
    """The patient a backward trace starts from, if the user may see them (as `patient_list`):
    id, reference, created at, clinic id, clinic name. Written in SQL, as `backward_lines`."""
    clinic_ids = visible_clinic_ids(user)
    sql = """
        SELECT p.id, p.reference, p.created_at, clinic.id, clinic.name
        FROM {patient} p JOIN {clinic} clinic ON clinic.id = p.clinic_id
        WHERE p.id = %s {visible}
    """.format(  # noqa: S608 - table names are ours, the condition a constant; values parameters
        patient=Patient._meta.db_table,
        clinic=Clinic._meta.db_table,
        visible="" if clinic_ids is None else "AND p.clinic_id = ANY(%s::bigint[])",
    )
    with _reading().cursor() as cursor:
        cursor.execute(
            sql, [patient_id] if clinic_ids is None else [patient_id, _bigint_array(clinic_ids)]
        )
        row: tuple[Any, ...] | None = cursor.fetchone()
    return row


def backward_lines(
    *, user: Any, patient_id: int | None = None, treatment_id: int | None = None
) -> list[tuple[Any, ...]]:
    """The treatments of a backward trace (as `backward_treatments` chooses and orders them, in
    one statement) as a row per treatment line, in the order of the lines (a treatment without
    lines: one row, its line and lot columns empty): treatment id, performed at, clinic id, clinic
    name, patient id, reference, practitioner id, name, indication, route, anatomical site; the
    line's lot id, lot number, product id, product name, GTIN, units, stock movement; the lot's
    status, manufactured on, expires on, regulatory basis and number, the six parts of its Single
    European Code (SEC_PARTS' order), the product's source kind and tissue, the lot's
    manufacturer id and legal name.

    Written in SQL rather than built by the ORM, as `backward_evidence`.
    """
    _backward_scope_given(patient_id, treatment_id)
    conditions: list[str] = []
    params: list[Any] = []
    clinic_ids = visible_clinic_ids(user)
    # As backward_treatments: the patient, the treatment, and only clinics the user may see.
    for condition, value in (
        ("t.patient_id = %s", patient_id or None),
        ("t.id = %s", treatment_id or None),
        (
            "t.clinic_id = ANY(%s::bigint[])",
            None if clinic_ids is None else _bigint_array(clinic_ids),
        ),
    ):
        if value is not None:
            conditions.append(condition)
            params.append(value)
    # The names come by subselects rather than joins: PostgreSQL took several times longer to
    # plan eight tables joined than to run the statement.
    sql = """
        SELECT t.id, t.performed_at, t.clinic_id,
               (SELECT name FROM {clinic} WHERE id = t.clinic_id),
               t.patient_id, (SELECT reference FROM {patient} WHERE id = t.patient_id),
               t.practitioner_id, (SELECT name FROM {practitioner} WHERE id = t.practitioner_id),
               t.indication, t.route, t.anatomical_site,
               line.lot_id, lot.lot_number, lot.product_id, product.name, product.gtin,
               line.units, line.stock_movement_id,
               lot.status, lot.manufactured_on, lot.expires_on, lot.regulatory_basis,
               lot.regulatory_number, lot.sec_issuing_country, lot.sec_establishment_code,
               lot.sec_donation_number, lot.sec_coding_system, lot.sec_product_number,
               lot.sec_split_number, product.source_kind, product.tissue, lot.manufacturer_id,
               (SELECT legal_name FROM {manufacturer} WHERE id = lot.manufacturer_id)
        FROM {treatment} t
        LEFT JOIN {line} line ON line.treatment_id = t.id
        LEFT JOIN {lot} lot ON lot.id = line.lot_id
        LEFT JOIN {product} product ON product.id = lot.product_id
        WHERE {conditions}
        ORDER BY t.performed_at, t.id, line.id
    """.format(  # noqa: S608 - table names are ours, conditions constants; values are parameters
        treatment=Treatment._meta.db_table,
        clinic=Clinic._meta.db_table,
        patient=Patient._meta.db_table,
        practitioner=Practitioner._meta.db_table,
        line=TreatmentLine._meta.db_table,
        lot=Lot._meta.db_table,
        product=Product._meta.db_table,
        manufacturer=Manufacturer._meta.db_table,
        conditions=" AND ".join(conditions),
    )
    with _reading().cursor() as cursor:
        cursor.execute(sql, params)
        rows: list[tuple[Any, ...]] = cursor.fetchall()
    return rows


@dataclass
class BackwardEvidence:
    """What stands behind the treatments and lots of a backward trace, as rows (tuples) whose
    columns `backward_evidence` names."""

    adverse_events: list[tuple[Any, ...]]
    donors: list[tuple[Any, ...]]
    qc_results: list[tuple[Any, ...]]
    certificates: list[tuple[Any, ...]]


def backward_evidence(
    *, treatment_ids: list[int], lot_ids: list[int], manufacturer_ids: list[int]
) -> BackwardEvidence:
    """The evidence behind the treatments and lots of a backward trace already read (their ids,
    and those of the lots' manufacturers), in four statements whatever their number:

    - `adverse_events`, per treatment newest first: treatment, id, lot, lot number, onset,
      description, the five seriousness flags (AdverseEvent's), reported at;
    - `donors`, a row per lot and donor (by code): lot, donor id, code, ISBT DIN, tissue,
      collection date, eligibility, decided at, and the donor's marker results (by marker) as
      DonorMarkerResultOutputSerializer writes them, written by PostgreSQL (dates in ISO 8601):
      hundreds of small objects, built faster there than in Python;
    - `qc_results`, by lot then test: lot, id, test id, code, name, kind, unit, numeric value,
      outcome, tested on, laboratory, method, then the specification in force for the lot's
      product twice, the product's own and the network default (id, min, max, expected outcome;
      empty where there is none), the product's own winning (qc_specifications_for);
    - `certificates`, the lots' certificates and their manufacturers' current GMP / ISO 13485
      certificates, newest upload first: lot (empty for a manufacturer's), manufacturer, id,
      kind, issuer, number, valid from, valid until, SHA-256, supersedes, uploaded at, and the
      certificate that supersedes it (empty for a current one).

    Written in SQL rather than built by the ORM: composing the four statements cost the request
    more than PostgreSQL took to answer them.
    """
    tables = {
        "event": AdverseEvent._meta.db_table,
        "lot": Lot._meta.db_table,
        "lot_donor": LotDonor._meta.db_table,
        "donor": Donor._meta.db_table,
        "result": DonorMarkerResult._meta.db_table,
        "marker": Marker._meta.db_table,
        "qc": LotQcResult._meta.db_table,
        "test": QcTest._meta.db_table,
        "spec": QcSpecification._meta.db_table,
        "certificate": Certificate._meta.db_table,
    }
    treatments, lots = _bigint_array(treatment_ids), _bigint_array(lot_ids)
    manufacturers = _bigint_array(manufacturer_ids)
    statements: tuple[tuple[str, list[Any]], ...] = (
        (
            """
            SELECT e.treatment_id, e.id, e.lot_id, l.lot_number, e.onset_on, e.description,
                   e.results_in_death, e.life_threatening, e.hospitalisation, e.disability,
                   e.intervention_required, e.reported_at
            FROM {event} e LEFT JOIN {lot} l ON l.id = e.lot_id
            WHERE e.treatment_id = ANY(%s::bigint[])
            ORDER BY e.treatment_id, e.reported_at DESC, e.id DESC
            """,
            [treatments],
        ),
        (
            """
            SELECT ld.lot_id, d.id, d.code, d.isbt_din, d.tissue, d.collection_date,
                   d.eligibility, d.eligibility_decided_at,
                   COALESCE(json_agg(json_build_object(
                       'id', r.id, 'marker', m.code, 'marker_name', m.name, 'result', r.result,
                       'tested_on', r.tested_on, 'laboratory', r.laboratory,
                       'test_method', r.test_method
                   ) ORDER BY r.marker_id) FILTER (WHERE r.id IS NOT NULL), '[]')
            FROM {lot_donor} ld
            JOIN {donor} d ON d.id = ld.donor_id
            LEFT JOIN {result} r ON r.donor_id = d.id
            LEFT JOIN {marker} m ON m.id = r.marker_id
            WHERE ld.lot_id = ANY(%s::bigint[])
            GROUP BY ld.lot_id, d.id
            ORDER BY ld.lot_id, d.code, d.id
            """,
            [lots],
        ),
        (
            """
            SELECT q.lot_id, q.id, q.test_id, t.code, t.name, t.kind, t.unit, q.numeric_value,
                   q.outcome, q.tested_on, q.laboratory, q.method,
                   own.id, own.min_value, own.max_value, own.expected_outcome,
                   network.id, network.min_value, network.max_value, network.expected_outcome
            FROM {qc} q
            JOIN {lot} l ON l.id = q.lot_id
            JOIN {test} t ON t.id = q.test_id
            LEFT JOIN {spec} own ON own.test_id = q.test_id AND own.product_id = l.product_id
            LEFT JOIN {spec} network ON network.test_id = q.test_id
                AND network.product_id IS NULL
            WHERE q.lot_id = ANY(%s::bigint[]) AND l.id = ANY(%s::bigint[])
            ORDER BY q.lot_id, q.test_id
            """,
            # The lots named twice, so that they are read by their key (joined whole, they were
            # scanned whole).
            [lots, lots],
        ),
        (
            """
            SELECT c.lot_id, c.manufacturer_id, c.id, c.kind, c.issuer, c.number, c.valid_from,
                   c.valid_until, c.sha256, c.supersedes_id, c.uploaded_at, newer.id
            FROM {certificate} c LEFT JOIN {certificate} newer ON newer.supersedes_id = c.id
            WHERE c.lot_id = ANY(%s::bigint[])
               OR (c.lot_id IS NULL AND newer.id IS NULL
                   AND c.manufacturer_id = ANY(%s::bigint[]) AND c.kind = ANY(%s::text[]))
            ORDER BY c.uploaded_at DESC, c.id
            """,
            [lots, manufacturers, [kind.value for kind in MANUFACTURER_CERTIFICATE_KINDS]],
        ),
    )
    rows = []
    with _reading().cursor() as cursor:
        for sql, params in statements:
            cursor.execute(sql.format(**tables), params)
            rows.append(cursor.fetchall())
    events, donors, qc_results, certificates = rows
    return BackwardEvidence(
        adverse_events=events, donors=donors, qc_results=qc_results, certificates=certificates
    )


def _backward_scope_given(patient_id: int | None, treatment_id: int | None) -> None:
    if not patient_id and not treatment_id:
        raise DomainError.single(
            "trace_scope_missing",
            _("Trace back from a patient or a treatment."),
            field="scope",
            status=400,
        )


def _backward_treatments(
    user: Any, patient_id: int | None, treatment_id: int | None
) -> list[Treatment]:
    treatments = backward_treatments(user=user, patient_id=patient_id, treatment_id=treatment_id)
    return list(
        treatments.select_related("clinic", "patient", "practitioner").prefetch_related(
            Prefetch("lines", queryset=TreatmentLine.objects.select_related("lot__product")),
            Prefetch("adverse_events", queryset=AdverseEvent.objects.select_related("lot")),
        )
    )


def _backward_lots(treatments: list[Treatment]) -> QuerySet[Lot]:
    lot_ids = {line.lot_id for treatment in treatments for line in treatment.lines.all()}
    return (
        Lot.objects.filter(pk__in=lot_ids)
        .select_related("product__manufacturer", "manufacturer")
        .prefetch_related(
            Prefetch("qc_results", queryset=LotQcResult.objects.select_related("test"))
        )
        .order_by("pk")
    )


def _quality_certificates() -> QuerySet[Certificate]:
    """A manufacturer's GMP / ISO 13485 certificates that are current (not superseded by a newer
    version); each keeps its validity dates."""
    return (
        current_certificates()
        .filter(kind__in=MANUFACTURER_CERTIFICATE_KINDS, lot__isnull=True)
        .order_by("kind", "-valid_from", "pk")
    )


def lot_use_warnings(lot: Lot, *, on: datetime.date) -> list[Problem]:
    """Why the scanned vial may not be used on `on`, in the words treatment_record refuses with."""
    warnings = []
    if lot.status == LotStatus.RECALLED:
        warnings.append(
            Problem(
                "lot_recalled",
                _("Lot %(lot)s is recalled: do not use it.") % {"lot": lot.lot_number},
                "lot",
            )
        )
    elif lot.status == LotStatus.ON_HOLD:
        warnings.append(
            Problem(
                "lot_on_hold",
                _("Lot %(lot)s is on hold: do not use it.") % {"lot": lot.lot_number},
                "lot",
            )
        )
    elif lot.status != LotStatus.RELEASED:
        warnings.append(
            Problem(
                "lot_not_released",
                _("Lot %(lot)s is %(status)s, not released for use.")
                % {"lot": lot.lot_number, "status": lot.get_status_display().lower()},
                "lot",
            )
        )
    if lot.is_expired(on=on):
        warnings.append(
            Problem(
                "lot_expired",
                _("Lot %(lot)s expired on %(expires_on)s.")
                % {"lot": lot.lot_number, "expires_on": lot.expires_on.isoformat()},
                "lot",
            )
        )
    return warnings
