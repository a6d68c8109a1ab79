"""A lot's trace drawn on the server as inline SVG: donors, then the lot, then the clinics it
reached, then the treatments given there.

The drawing needs no script and prints as it shows. It is an image with a title and a description
(role="img", aria-labelledby), and every node carries its name as text, so a screen reader and a
printout both read it. A heavy lot stays readable: a clinic with more than `COLLAPSE_ABOVE`
treatments gets one node "n treatments" instead of one node per treatment. Patients appear by
their pseudonymous reference only.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

from django.utils import formats, timezone
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

COLLAPSE_ABOVE = 12

NODE_WIDTH = 190
NODE_HEIGHT = 44
ROW_GAP = 12
COLUMN_GAP = 60
MARGIN = 16
HEADING = 28
LABEL_LIMIT = 26


@dataclass(frozen=True)
class TreatmentNode:
    reference: str
    performed_at: datetime.datetime
    units: int


@dataclass
class ClinicNode:
    clinic_id: int
    name: str
    treatment_count: int = 0
    units_used: int = 0
    units_in_stock: int = 0
    units_blocked: int = 0
    treatments: list[TreatmentNode] = field(default_factory=list)

    @property
    def collapsed(self) -> bool:
        return self.treatment_count > COLLAPSE_ABOVE or (
            self.treatment_count > 0 and not self.treatments
        )


@dataclass
class Trace:
    """What the drawing shows: plain values, so it can be built and tested without a database."""

    lot_label: str
    lot_status: str
    donors: list[str]
    clinics: list[ClinicNode]


@dataclass(frozen=True)
class _Box:
    x: int
    y: int
    title: str
    detail: str
    kind: str


def _short(text: str) -> str:
    return text if len(text) <= LABEL_LIMIT else text[: LABEL_LIMIT - 1] + "…"


def _box(column: int, row: int, title: str, detail: str, kind: str) -> _Box:
    x = MARGIN + column * (NODE_WIDTH + COLUMN_GAP)
    return _Box(x, HEADING + MARGIN + row * (NODE_HEIGHT + ROW_GAP), title, detail, kind)


def _treatment_items(clinic: ClinicNode) -> list[tuple[str, str]]:
    if clinic.collapsed:
        return [
            (
                ngettext("%(count)d treatment", "%(count)d treatments", clinic.treatment_count)
                % {"count": clinic.treatment_count},
                ngettext("%(units)d unit used", "%(units)d units used", clinic.units_used)
                % {"units": clinic.units_used},
            )
        ]
    return [
        (
            _("Patient %(reference)s") % {"reference": treatment.reference},
            formats.date_format(timezone.localtime(treatment.performed_at), "SHORT_DATE_FORMAT"),
        )
        for treatment in clinic.treatments
    ]


def description(trace: Trace) -> str:
    treatments = sum(clinic.treatment_count for clinic in trace.clinics)
    return _(
        "%(lot)s (%(status)s) made from %(donors)s; it reached %(clinics)s, "
        "with %(treatments)s in all."
    ) % {
        "lot": trace.lot_label,
        "status": trace.lot_status,
        "donors": ngettext("%(count)d donor", "%(count)d donors", len(trace.donors))
        % {"count": len(trace.donors)}
        if trace.donors
        else _("no recorded donor"),
        "clinics": ngettext("%(count)d clinic", "%(count)d clinics", len(trace.clinics))
        % {"count": len(trace.clinics)},
        "treatments": ngettext("%(count)d treatment", "%(count)d treatments", treatments)
        % {"count": treatments},
    }


def render_trace_svg(trace: Trace, *, element_id: str = "trace") -> SafeString:
    """The trace as an inline <svg> element (escaped text; safe to put in a template)."""
    donors = [
        _box(0, row, _("Donor %(code)s") % {"code": code}, "", "donor")
        for row, code in enumerate(trace.donors)
    ]
    lot = _box(1, 0, trace.lot_label, trace.lot_status, "lot")
    clinic_boxes: list[_Box] = []
    treatment_boxes: list[tuple[int, _Box]] = []
    row = 0
    for index, clinic in enumerate(trace.clinics):
        items = _treatment_items(clinic) if clinic.treatment_count else []
        start = row
        for title, detail in items:
            treatment_boxes.append((index, _box(3, row, title, detail, "treatment")))
            row += 1
        row = max(row, start + 1)
        stock = ngettext(
            "%(units)d unit in stock", "%(units)d units in stock", clinic.units_in_stock
        ) % {"units": clinic.units_in_stock}
        if clinic.units_blocked:
            stock = _("%(usable)d in stock · %(blocked)d blocked") % {
                "usable": clinic.units_in_stock,
                "blocked": clinic.units_blocked,
            }
        clinic_boxes.append(_box(2, start, clinic.name, stock, "clinic"))
    rows = max(len(donors), 1, row)
    width = MARGIN * 2 + 4 * NODE_WIDTH + 3 * COLUMN_GAP
    height = HEADING + MARGIN * 2 + rows * (NODE_HEIGHT + ROW_GAP) - ROW_GAP
    title_id, desc_id = f"{element_id}-title", f"{element_id}-desc"
    title = _("Trace of %(lot)s") % {"lot": trace.lot_label}
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="graph trace" id={quoteattr(element_id)}'
        f' role="img" aria-labelledby="{title_id} {desc_id}" viewBox="0 0 {width} {height}"'
        f' width="{width}" height="{height}">',
        f"<title id={quoteattr(title_id)}>{escape(title)}</title>",
        f"<desc id={quoteattr(desc_id)}>{escape(description(trace))}</desc>",
    ]
    for column, heading in enumerate((_("Donors"), _("Lot"), _("Clinics"), _("Treatments"))):
        x = MARGIN + column * (NODE_WIDTH + COLUMN_GAP)
        parts.append(f'<text class="heading" x="{x}" y="{MARGIN + 8}">{escape(heading)}</text>')
    for box in donors:
        parts.append(_edge(box, lot))
    for box in clinic_boxes:
        parts.append(_edge(lot, box))
    for index, box in treatment_boxes:
        parts.append(_edge(clinic_boxes[index], box))
    for box in [*donors, lot, *clinic_boxes, *(drawn for _index, drawn in treatment_boxes)]:
        parts.append(_node(box))
    if not trace.donors:
        empty = escape(_("No donor recorded"))
        parts.append(f'<text class="empty" x="{MARGIN}" y="{HEADING + MARGIN + 26}">{empty}</text>')
    if not trace.clinics:
        x = MARGIN + 2 * (NODE_WIDTH + COLUMN_GAP)
        empty = escape(_("Not at any clinic you can see"))
        parts.append(f'<text class="empty" x="{x}" y="{HEADING + MARGIN + 26}">{empty}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text above is escaped


def _edge(source: _Box, target: _Box) -> str:
    x1, y1 = source.x + NODE_WIDTH, source.y + NODE_HEIGHT // 2
    x2, y2 = target.x, target.y + NODE_HEIGHT // 2
    middle = (x1 + x2) // 2
    return f'<path class="edge" d="M{x1},{y1} C{middle},{y1} {middle},{y2} {x2},{y2}"/>'


def _node(box: _Box) -> str:
    title = escape(_short(box.title))
    full = f"<title>{escape(box.title)}</title>" if title != escape(box.title) else ""
    if box.detail:
        text = (
            f'<text x="{box.x + 10}" y="{box.y + 19}">{title}</text>'
            f'<text class="detail" x="{box.x + 10}" y="{box.y + 36}">'
            f"{escape(_short(box.detail))}</text>"
        )
    else:
        text = f'<text x="{box.x + 10}" y="{box.y + 27}">{title}</text>'
    return (
        f'<g class="node {box.kind}">{full}<rect x="{box.x}" y="{box.y}" width="{NODE_WIDTH}"'
        f' height="{NODE_HEIGHT}" rx="8"/>{text}</g>'
    )
