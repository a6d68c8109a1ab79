"""Evidence a recall leaves: streamed CSV of its exposures and its notices, and the PDF recall
report. None of them carries patient contact details; patients appear by pseudonymous reference
(CSV) or as counts (PDF)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db.models import CharField, OuterRef, Subquery, Value
from django.template.loader import render_to_string
from django.utils import timezone

from common.csv import csv_cells, csv_copy_lines, csv_lines
from common.pdf import html_to_pdf
from recalls.models import Acknowledgement, Recall, RecallLot
from recalls.selectors import (
    RecallEffectiveness,
    acknowledgement_list,
    disposition_list,
    exposure_list,
    notification_list,
    recall_effectiveness,
    stock_to_account_for,
)

CSV_CHUNK_SIZE = 2000

EXPOSURE_COLUMNS = [
    "recall",
    "round",
    "clinic_id",
    "clinic",
    "patient_id",
    "patient_reference",
    "treatment_id",
    "treatment_line_id",
    "performed_at",
    "practitioner",
    "lot_id",
    "lot_number",
    "product",
    "units",
]

NOTICE_COLUMNS = [
    "recall",
    "round",
    "notice_id",
    "message_id",
    "clinic_id",
    "clinic",
    "channel",
    "recipient",
    "status",
    "attempts",
    "created_at",
    "sent_at",
    "last_error",
    "reminders_sent",
    "last_reminded_at",
    "clinic_acknowledged_at",
]


# EXPOSURE_COLUMNS' values, as fields of `exposure_list`'s rows (the recall's reference annotated).
EXPOSURE_FIELDS = [
    "recall_reference",
    "round",
    "clinic_id",
    "clinic__name",
    "patient_id",
    "patient__reference",
    "treatment_id",
    "treatment_line_id",
    "performed_at",
    "practitioner__name",
    "lot_id",
    "lot__lot_number",
    "lot__product__name",
    "units",
]


def exposures_csv(*, recall: Recall, clinic_ids: list[int] | None) -> Iterator[bytes]:
    """One line per frozen exposure, written by PostgreSQL (COPY) and streamed as it comes: a
    recall can freeze 10^5 exposures, which csv.writer wrote at 50 µs a row. The same bytes as
    `common.csv.csv_lines` writes for the same rows."""
    exposures = exposure_list(recall=recall, clinic_ids=clinic_ids).annotate(
        recall_reference=Value(recall.reference, output_field=CharField())
    )
    return csv_copy_lines(EXPOSURE_COLUMNS, csv_cells(exposures, EXPOSURE_FIELDS))


def notices_csv(*, recall: Recall, clinic_ids: list[int] | None) -> Iterator[str]:
    """One line per notice (recipient and channel), with its delivery state and when its clinic
    acknowledged."""
    acknowledged_at = Acknowledgement.objects.filter(
        recall=recall, clinic_id=OuterRef("clinic_id")
    ).values("acknowledged_at")[:1]
    notices = (
        notification_list(recall=recall, clinic_ids=clinic_ids)
        .annotate(clinic_acknowledged_at=Subquery(acknowledged_at))
        .iterator(chunk_size=CSV_CHUNK_SIZE)
    )
    return csv_lines(
        NOTICE_COLUMNS,
        (
            [
                recall.reference,
                notice.round,
                notice.pk,
                str(notice.message_id),
                notice.clinic_id,
                notice.clinic.name if notice.clinic else "",
                notice.channel,
                notice.recipient,
                notice.status,
                notice.attempts,
                notice.created_at,
                notice.sent_at,
                notice.last_error,
                notice.reminders_sent,
                notice.last_reminded_at,
                notice.clinic_acknowledged_at,
            ]
            for notice in notices
        ),
    )


# ---------------------------------------------------------------------------------------------
# The PDF report


def duration_text(seconds: float | None) -> str:
    """ "3 d 04 h 05 min", "2 h 05 min", "4 min 10 s"; empty when the moment has not come."""
    if seconds is None:
        return ""
    total = int(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours:02d} h {minutes:02d} min"
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s"


def _timeline(effectiveness: RecallEffectiveness) -> list[dict[str, Any]]:
    timing = effectiveness.timing
    withdrawn = (
        [
            {
                "label": "Lots withdrawn (entered after the fact)",
                "at": timing.withdrawn_at,
                "after": "",
            }
        ]
        if timing.withdrawn_at < timing.opened_at
        else []
    )
    opened_after = duration_text(timing.seconds_to_open) if withdrawn else ""
    return [
        *withdrawn,
        {"label": "Opened", "at": timing.opened_at, "after": opened_after},
        {
            "label": "First notice sent",
            "at": timing.first_notice_sent_at,
            "after": duration_text(timing.seconds_to_first_notice),
        },
        {
            "label": "All notices sent",
            "at": timing.all_notices_sent_at,
            "after": duration_text(timing.seconds_to_all_notices_sent),
        },
        {
            "label": "All clinics acknowledged",
            "at": timing.fully_acknowledged_at,
            "after": duration_text(timing.seconds_to_full_acknowledgement),
        },
        {
            "label": "Closed",
            "at": timing.closed_at,
            "after": duration_text(timing.seconds_to_close),
        },
    ]


def _percent(share: float | None) -> str:
    return "n/a" if share is None else f"{share * 100:.1f} %"


# The report lists at most this many notices, in their order; the notices CSV lists every one.
# WeasyPrint lays out about 160 rows a second here: 2,000 notices took 12.5 s, and a network's
# recall can write more, past what a web worker is given for one request.
REPORT_NOTICES = 500


def recall_report_context(*, recall: Recall, clinic_ids: list[int] | None) -> dict[str, Any]:
    """What the report shows, read in a fixed number of queries."""
    effectiveness = recall_effectiveness(recall=recall, clinic_ids=clinic_ids)
    notices = notification_list(recall=recall, clinic_ids=clinic_ids)
    lots = list(
        RecallLot.objects.filter(recall=recall)
        .select_related("lot__product", "lot__manufacturer")
        .order_by("round", "lot__lot_number")
    )
    return {
        "recall": recall,
        "scoped": clinic_ids is not None,
        "lots": lots,
        "scopes": list(
            recall.scopes.select_related("donor", "product", "manufacturer", "added_by")
            .prefetch_related("lots")
            .order_by("round")
        ),
        "effectiveness": effectiveness,
        "timeline": _timeline(effectiveness),
        "percent": {
            "clinics": _percent(effectiveness.clinics_acknowledged_share),
            "contacted": _percent(effectiveness.patients_contacted_share),
            "attempted": _percent(effectiveness.patients_attempted_share),
            "units": _percent(effectiveness.units_accounted_share),
        },
        "acknowledgements": list(acknowledgement_list(recall=recall, clinic_ids=clinic_ids)),
        "stock": list(stock_to_account_for(recall=recall, clinic_ids=clinic_ids)),
        "dispositions": list(disposition_list(recall=recall, clinic_ids=clinic_ids)),
        "notices": list(notices[:REPORT_NOTICES]),
        "notices_total": notices.count(),
        "notices_listed_at_most": REPORT_NOTICES,
        "generated_at": timezone.now(),
        "site_url": settings.SITE_URL,
    }


def recall_report_html(*, recall: Recall, clinic_ids: list[int] | None) -> str:
    return render_to_string(
        "recalls/report.html", recall_report_context(recall=recall, clinic_ids=clinic_ids)
    )


def _no_fetching(url: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    # The report is self-contained: nothing is fetched from the network or the disk.
    raise ValueError(f"the recall report fetches nothing ({url})")


def recall_report_pdf(*, recall: Recall, clinic_ids: list[int] | None = None) -> bytes:
    """The recall report as PDF: identity, class, depth, reason and hazard, lots, timeline,
    effectiveness, clinics with acknowledgement times, dispositions, notices with status; for a
    drill, the timing report."""
    html = recall_report_html(recall=recall, clinic_ids=clinic_ids)
    return html_to_pdf(html, url_fetcher=_no_fetching)
