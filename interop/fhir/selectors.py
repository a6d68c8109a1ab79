"""What the FHIR interface reads, scoped as every other read: lots are the network's (every role
reads them), treatments and adverse events only at the clinics the caller may see. The traces go
through the trace selectors, so the FHIR answer is the JSON trace's answer in another shape.

Each search returns a `Search`: the matching rows' count and one page of them, in a fixed number
of queries whatever the length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db.models import Model, Prefetch, QuerySet

from interop.fhir import systems
from lots.models import Donor, Lot
from lots.sec import CODE_LENGTH as SEC_CODE_LENGTH
from lots.selectors import lots_matching_sec
from treatments.models import AdverseEvent, Treatment
from treatments.selectors import ForwardScope, trace_forward, treatment_list, visible_clinic_ids

M = TypeVar("M", bound=Model)


@dataclass(frozen=True)
class Search(Generic[M]):
    total: int
    rows: list[M]


@dataclass(frozen=True)
class PageWindow:
    offset: int
    count: int


def search_page(queryset: QuerySet[M], window: PageWindow) -> Search[M]:
    """Two queries (the count, then the page; nothing past the end), plus the page's prefetches."""
    total = queryset.count()
    if window.offset >= total or window.count == 0:
        return Search(total=total, rows=[])
    return Search(total=total, rows=list(queryset[window.offset : window.offset + window.count]))


def lots_for_fhir() -> QuerySet[Lot]:
    """Lots with what a BiologicallyDerivedProduct names: product, manufacturer, donations."""
    return Lot.objects.select_related("product", "manufacturer").prefetch_related(
        Prefetch("donors", queryset=Donor.objects.only("id", "code", "isbt_din").order_by("code"))
    )


def lot_search(*, system: str | None, value: str, window: PageWindow) -> Search[Lot]:
    """Lots by a token of their identifier: a lot number (any manufacturer's unless `system`
    names one), a donation identification number or donor code, or a Single European Code."""
    lots = lots_for_fhir().order_by("pk")
    by_lot_number = lots.filter(lot_number=value)
    by_din = _by_donation_number(lots, value)
    by_code = lots.filter(lot_donors__donor__code=value)
    # A token is a whole identifier: the Single European Code's 40 characters.
    by_sec = lots_matching_sec(lots, value) if len(value) == SEC_CODE_LENGTH else lots.none()
    if system is None:
        matches = by_lot_number | by_code | by_sec | (by_din if by_din is not None else lots.none())
    elif system == systems.SINGLE_EUROPEAN_CODE:
        matches = by_sec
    elif system == systems.ISBT_DONATION_NUMBER:
        matches = by_din if by_din is not None else lots.none()
    elif system == systems.DONOR_CODE:
        matches = by_code
    else:
        manufacturer_id = _manufacturer_of_lot_number_system(system)
        matches = (
            lots.none()
            if manufacturer_id is None
            else by_lot_number.filter(manufacturer_id=manufacturer_id)
        )
    return search_page(matches.distinct(), window)


def _by_donation_number(lots: QuerySet[Lot], value: str) -> QuerySet[Lot] | None:
    """A donation number is 13 characters; the stored form adds its check character."""
    if len(value) == 13:
        return lots.filter(lot_donors__donor__isbt_din__startswith=value)
    if len(value) == 14:
        return lots.filter(lot_donors__donor__isbt_din=value)
    return None


def _manufacturer_of_lot_number_system(system: str) -> int | None:
    prefix, suffix = f"{systems.LOCAL}:manufacturer:", ":lot-number"
    if not (system.startswith(prefix) and system.endswith(suffix)):
        return None
    number = system[len(prefix) : -len(suffix)]
    return int(number) if number.isdecimal() and len(number) < 19 else None


def procedures_for(*, user: Any) -> QuerySet[Treatment]:
    return treatment_list(user=user).order_by("performed_at", "pk")


def procedure_search(
    *, user: Any, patient_id: int | None, lot_id: int | None, window: PageWindow
) -> Search[Treatment]:
    """Treatments the caller may see, of a patient (the backward trace) or that used a lot (the
    forward trace, whose lines are one per treatment for one lot), oldest first."""
    if lot_id is None:
        treatments = procedures_for(user=user)
        if patient_id is not None:
            treatments = treatments.filter(patient_id=patient_id)
        return search_page(treatments, window)
    lines = trace_forward(user=user, scope=ForwardScope(lot_ids=[lot_id])).lines
    if patient_id is not None:
        lines = lines.filter(treatment__patient_id=patient_id)
    ids = search_page(
        lines.prefetch_related(None).select_related(None).only("treatment_id"), window
    )
    by_id = procedures_for(user=user).in_bulk([line.treatment_id for line in ids.rows])
    return Search(
        total=ids.total,
        rows=[by_id[line.treatment_id] for line in ids.rows if line.treatment_id in by_id],
    )


def adverse_events_for(*, user: Any) -> QuerySet[AdverseEvent]:
    events = AdverseEvent.objects.select_related(
        "treatment__clinic", "treatment__patient", "lot"
    ).order_by("onset_on", "pk")
    clinic_ids = visible_clinic_ids(user)
    return events if clinic_ids is None else events.filter(treatment__clinic_id__in=clinic_ids)


def adverse_event_search(
    *, user: Any, patient_id: int | None, lot_id: int | None, window: PageWindow
) -> Search[AdverseEvent]:
    events = adverse_events_for(user=user)
    if patient_id is not None:
        events = events.filter(treatment__patient_id=patient_id)
    if lot_id is not None:
        events = events.filter(lot_id=lot_id)
    return search_page(events, window)
