"""A lot's dossier: everything behind one lot and everything it reached, as one PDF an auditor can
file, with the full list of its treatment lines as a streamed CSV beside it.

It lives here, at the top of the domain apps, because it reads all of them (lots, stock,
treatments, recalls). Patients appear by pseudonymous reference only, never with contact details.
The PDF lists a lot's treatment lines only while there are at most `TREATMENT_LINES_LISTED`; a
heavier lot shows totals per clinic (always shown) and points to the CSV. Every list is read with
one query whatever its length (a bounded slice where it could grow with the lot's use), so the
dossier runs a fixed number of queries however many clinics and patients the lot reached.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Count, Max, Min, Q, Sum
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.safestring import mark_safe
from pghistory.models import Events

from common.csv import csv_lines
from common.pdf import html_to_pdf
from lots.models import (
    MANUFACTURER_CERTIFICATE_KINDS,
    Certificate,
    Donor,
    DonorMarkerResult,
    Lot,
    LotQcResult,
    LotStatusChange,
)
from lots.selectors import qc_result_passes, qc_specifications_for
from recalls.models import RecallLot
from recalls.reports import CSV_CHUNK_SIZE
from stock.models import MovementKind, Receipt, StockBalance, StockMovement
from treatments.models import AdverseEvent, TreatmentLine

# Above this many treatment lines the PDF gives totals per clinic, and the CSV the lines.
TREATMENT_LINES_LISTED = 200
# Lists that grow with the lot's use are cut here in the PDF (and say how many were left out).
ROWS_LISTED = 200
HISTORY_EVENT_MODELS = (
    "lots.LotEvent",
    "lots.LotDonorEvent",
    "lots.LotQcResultEvent",
    "lots.CertificateEvent",
    "lots.LotStatusChangeEvent",
)

TREATMENT_COLUMNS = [
    "lot_id",
    "lot_number",
    "treatment_id",
    "treatment_line_id",
    "performed_at",
    "clinic_id",
    "clinic",
    "patient_id",
    "patient_reference",
    "practitioner",
    "indication",
    "route",
    "units",
]


@dataclass(frozen=True)
class QcRow:
    test: str
    result: str
    specification: str
    passes: bool | None  # None: no specification for the test
    tested_on: datetime.date | None
    laboratory: str
    method: str


@dataclass(frozen=True)
class Cut:
    """The first rows of a list and how many more there are."""

    rows: list[Any]
    more: bool


def _cut(queryset: Any, limit: int = ROWS_LISTED) -> Cut:
    rows = list(queryset[: limit + 1])
    return Cut(rows=rows[:limit], more=len(rows) > limit)


def _user_names(user_ids: set[int]) -> dict[int, str]:
    return {
        user.pk: user.get_full_name() or user.get_username()
        for user in get_user_model().objects.filter(pk__in=user_ids)
    }


def _qc_rows(lot: Lot) -> list[QcRow]:
    """Each QC result against the specification in force, then each required test without a
    result (two queries)."""
    specifications = qc_specifications_for(lot.product)
    rows = []
    seen = set()
    for result in LotQcResult.objects.filter(lot=lot).select_related("test").order_by("test__code"):
        seen.add(result.test_id)
        spec = specifications.get(result.test_id)
        if result.outcome:
            shown = result.get_outcome_display()
        else:
            unit = f" {result.test.unit}" if result.test.unit else ""
            shown = f"{result.numeric_value}{unit}"
        rows.append(
            QcRow(
                test=result.test.name,
                result=shown,
                specification=spec.describe() if spec else "no specification",
                passes=qc_result_passes(spec, result) if spec else None,
                tested_on=result.tested_on,
                laboratory=result.laboratory,
                method=result.method,
            )
        )
    for test_id, spec in sorted(specifications.items(), key=lambda item: item[1].test.code):
        if spec.required and test_id not in seen:
            rows.append(
                QcRow(
                    test=spec.test.name,
                    result="missing",
                    specification=spec.describe(),
                    passes=False,
                    tested_on=None,
                    laboratory="",
                    method="",
                )
            )
    return rows


def _history(lot: Lot) -> list[dict[str, Any]]:
    """The pghistory events of the lot and of its own records (donor links, QC results,
    certificates, signed status changes), oldest first, with who and why (two queries)."""
    events = list(
        Events.objects.references(lot)  # type: ignore[no-untyped-call]
        .across(*HISTORY_EVENT_MODELS)
        .order_by("pgh_created_at", "pgh_id")
    )
    user_ids = {
        user_id
        for event in events
        if isinstance(user_id := (event.pgh_context or {}).get("user"), int)
    }
    names = _user_names(user_ids)
    rows = []
    for event in events:
        context = dict(event.pgh_context or {})
        user_id = context.get("user")
        diff = event.pgh_diff or {}
        if diff:
            changes = ", ".join(
                f"{name}: {old} → {new}" for name, (old, new) in sorted(diff.items())
            )
        else:
            changes = ""
        rows.append(
            {
                "at": event.pgh_created_at,
                "record": f"{str(event.pgh_obj_model).removeprefix('lots.')} #{event.pgh_obj_id}",
                "label": event.pgh_label,
                "user": names.get(user_id, "system") if isinstance(user_id, int) else "system",
                "reason": context.get("reason", ""),
                "changes": changes,
            }
        )
    return rows


def css_string(text: str) -> str:
    """`text` for a quoted CSS string (the page footer): everything but letters, digits and a few
    plain marks as a CSS escape, so no quote, backslash or markup can end the string or the
    style sheet."""
    return "".join(
        char if char.isalnum() or char in " .,:_/()" else f"\\{ord(char):x} " for char in text
    )


def lot_dossier_context(*, lot: Lot) -> dict[str, Any]:
    """What the dossier shows; `lot` comes with its product and manufacturer."""
    certificates = list(
        Certificate.objects.filter(
            Q(lot=lot)
            | Q(
                manufacturer_id=lot.manufacturer_id,
                lot__isnull=True,
                kind__in=MANUFACTURER_CERTIFICATE_KINDS,
            )
        )
        .select_related("superseded_by", "uploaded_by")
        .order_by("kind", "-valid_from", "pk")
    )
    donors = list(
        Donor.objects.filter(lot_donors__lot=lot)
        .select_related("eligibility_decided_by")
        .order_by("code")
    )
    marker_results: dict[int, list[DonorMarkerResult]] = {}
    for result in (
        DonorMarkerResult.objects.filter(donor__lot_donors__lot=lot)
        .select_related("marker")
        .order_by("marker__code")
    ):
        marker_results.setdefault(result.donor_id, []).append(result)
    lines = TreatmentLine.objects.filter(lot=lot)
    # The line's own clinic and patient (LINE_COPIES): joining every line to its treatment hashed
    # the network's every treatment (0.33 s for the heaviest lot at 1.3 x 10^6 treatments, now
    # 0.08 s).
    per_clinic = list(
        lines.values("clinic_id", "clinic__name")
        .annotate(
            lines=Count("pk"),
            patients=Count("patient_id", distinct=True),
            units=Sum("units"),
            first=Min("performed_at"),
            last=Max("performed_at"),
        )
        .order_by("clinic__name")
    )
    listed = _cut(
        lines.select_related(
            "treatment__clinic", "treatment__patient", "treatment__practitioner"
        ).order_by("performed_at", "treatment_id"),
        TREATMENT_LINES_LISTED,
    )
    movements = StockMovement.objects.filter(lot=lot)
    return {
        "lot": lot,
        "product": lot.product,
        "manufacturer": lot.manufacturer,
        "lot_certificates": [c for c in certificates if c.lot_id == lot.pk],
        "manufacturer_certificates": [c for c in certificates if c.lot_id is None],
        "donors": [(donor, marker_results.get(donor.pk, [])) for donor in donors],
        "qc_rows": _qc_rows(lot),
        "status_changes": list(LotStatusChange.objects.filter(lot=lot).order_by("signed_at", "pk")),
        "receipts": _cut(
            Receipt.objects.filter(lot=lot)
            .select_related("clinic", "received_by")
            .order_by("received_at", "pk")
        ),
        "movement_totals": list(
            movements.values("clinic__name", "kind", "state")
            .annotate(movements=Count("pk"), units=Sum("delta"))
            .order_by("clinic__name", "kind", "state")
        ),
        # Treatment use is in the treatment totals; the other movements are few and listed.
        "movements": _cut(
            movements.exclude(kind=MovementKind.TREATMENT)
            .select_related("clinic", "counterpart_clinic", "actor")
            .order_by("occurred_at", "pk")
        ),
        "balances": list(
            StockBalance.objects.filter(lot=lot)
            .exclude(quantity=0)
            .select_related("clinic")
            .order_by("clinic__name", "state")
        ),
        "treatment_totals": per_clinic,
        "treatment_count": sum(row["lines"] for row in per_clinic),
        "patient_count": sum(row["patients"] for row in per_clinic),
        "unit_count": sum(row["units"] or 0 for row in per_clinic),
        "treatment_lines": listed.rows if not listed.more else [],
        "treatments_listed": not listed.more,
        "treatment_lines_listed": TREATMENT_LINES_LISTED,
        "adverse_events": _cut(
            AdverseEvent.objects.filter(Q(lot=lot) | Q(treatment__lines__lot=lot))
            .select_related("treatment__clinic", "treatment__patient", "lot", "reported_by")
            .distinct()
            .order_by("onset_on", "pk")
        ),
        "recalls": list(
            RecallLot.objects.filter(lot=lot)
            .select_related("recall__opened_by", "recall__closed_by")
            .order_by("recall__opened_at")
        ),
        "history": _history(lot),
        "generated_at": timezone.now(),
        "footer": mark_safe(  # noqa: S308 - every character that could matter is escaped
            css_string(f"Lot {lot.lot_number} · {lot.manufacturer.legal_name}")
        ),
        "site_url": settings.SITE_URL,
    }


def lot_dossier_html(*, lot: Lot) -> str:
    return render_to_string("recalls/lot_dossier.html", lot_dossier_context(lot=lot))


def _no_fetching(url: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    # The dossier is self-contained: nothing is fetched from the network or the disk.
    raise ValueError(f"the lot dossier fetches nothing ({url})")


def lot_dossier_pdf(*, lot: Lot) -> bytes:
    return html_to_pdf(lot_dossier_html(lot=lot), url_fetcher=_no_fetching)


def lot_treatments_csv(*, lot: Lot) -> Iterator[str]:
    """One line per treatment line of the lot, read in chunks from one query."""
    lines = (
        TreatmentLine.objects.filter(lot=lot)
        .select_related("treatment__clinic", "treatment__patient", "treatment__practitioner")
        .order_by("performed_at", "treatment_id")
        .iterator(chunk_size=CSV_CHUNK_SIZE)
    )
    return csv_lines(
        TREATMENT_COLUMNS,
        (
            [
                lot.pk,
                lot.lot_number,
                line.treatment_id,
                line.pk,
                line.treatment.performed_at,
                line.treatment.clinic_id,
                line.treatment.clinic.name,
                line.treatment.patient_id,
                line.treatment.patient.reference,
                line.treatment.practitioner.name,
                line.treatment.indication,
                line.treatment.route,
                line.units,
            ]
            for line in lines
        ),
    )
