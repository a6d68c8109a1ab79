"""Reads: patients and treatments scoped to what the user may see, and the two traces.

Each trace runs a fixed number of queries whatever the size of the result (the tests count them):
one per kind of row, joined in the database, never a query per row.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import Exists, F, FilteredRelation, OuterRef, Prefetch, Q, QuerySet
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
)
from lots.selectors import current_certificates, lots_matching_sec
from providers.access import access_for
from stock.models import StockBalance
from treatments.models import AdverseEvent, Patient, Treatment, TreatmentLine


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
        # a large trace (benchmark_traces).
        .prefetch_related("lot__product", "treatment__clinic", "treatment__practitioner")
        .order_by("lot_id", "performed_at", "treatment_id"),
        "treatment__clinic_id",
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
    if not patient_id and not treatment_id:
        raise DomainError.single(
            "trace_scope_missing",
            _("Trace back from a patient or a treatment."),
            field="scope",
            status=400,
        )
    treatments = _within(Treatment.objects.all(), "clinic_id", visible_clinic_ids(user))
    if patient_id:
        treatments = treatments.filter(patient_id=patient_id)
    if treatment_id:
        treatments = treatments.filter(pk=treatment_id)
    return treatments.order_by("performed_at", "pk")


@dataclass
class BackwardEvidence:
    """What stands behind the treatments and lots of a backward trace, each a queryset that reads
    in one statement whatever the number of lots:

    - `adverse_events`: the treatments' adverse events, per treatment newest first;
    - `donors`: a row per lot, donor (by code) and marker result (by marker), the donor's marker
      results reached through `donor__marker_results__...` (empty for a donor without any);
    - `qc_results`: the lots' QC results (by lot, then test), each with the specification in force
      for its lot's product joined twice: `own_specification__...` (the product's own) and
      `network_specification__...` (the network default), the product's own winning
      (qc_specifications_for);
    - `certificates`: the lots' certificates of analysis and their manufacturers' current
      GMP / ISO 13485 certificates, one statement for both; `superseded_by__id` is empty for a
      current one.
    """

    adverse_events: QuerySet[AdverseEvent]
    donors: QuerySet[LotDonor]
    qc_results: QuerySet[LotQcResult]
    certificates: QuerySet[Certificate]


def backward_evidence(
    *, treatment_ids: Iterable[int], lot_ids: Iterable[int], manufacturer_ids: Iterable[int]
) -> BackwardEvidence:
    """The evidence behind the treatments and lots of a backward trace already read (their ids,
    and those of the lots' manufacturers)."""
    lot_ids = list(lot_ids)
    return BackwardEvidence(
        adverse_events=AdverseEvent.objects.filter(treatment_id__in=list(treatment_ids)).order_by(
            "treatment_id", "-reported_at", "-pk"
        ),
        donors=LotDonor.objects.filter(lot_id__in=lot_ids).order_by(
            "lot_id", "donor__code", "donor_id", "donor__marker_results__marker_id"
        ),
        qc_results=LotQcResult.objects.filter(lot_id__in=lot_ids)
        .annotate(
            own_specification=FilteredRelation(
                "test__specifications",
                condition=Q(test__specifications__product_id=F("lot__product_id")),
            ),
            network_specification=FilteredRelation(
                "test__specifications", condition=Q(test__specifications__product__isnull=True)
            ),
        )
        .order_by("lot_id", "test_id"),
        certificates=Certificate.objects.filter(
            Q(lot_id__in=lot_ids)
            | Q(
                manufacturer_id__in=list(manufacturer_ids),
                kind__in=MANUFACTURER_CERTIFICATE_KINDS,
                lot__isnull=True,
                superseded_by__isnull=True,
            )
        ).order_by("-uploaded_at", "pk"),
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
