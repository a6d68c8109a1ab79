"""The two admin trace pages: forward from a lot (a page of the lot's admin, through
`LOT_PAGES`), back from a patient or a treatment."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from lots.admin import LOT_PAGES
from lots.models import Lot
from providers.admin_base import can_view
from treatments.models import Patient, Treatment
from treatments.selectors import ForwardScope, trace_backward, trace_forward, visible_clinic_ids


def trace_forward_response(model_admin: Any, request: HttpRequest, *, lot: Lot) -> HttpResponse:
    """Every treatment, patient reference, practitioner and clinic that a lot reached, the stock
    still on hand and the adverse events reported: one query per kind of row."""
    if not can_view(request):
        raise PermissionDenied
    trace = trace_forward(user=request.user, scope=ForwardScope(lot_ids=[lot.pk]))
    lines = list(trace.lines)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "original": lot,
        "title": f"Trace forward: lot {lot.lot_number}",
        "lots": list(trace.lots),
        "lines": lines,
        "stock": list(trace.stock),
        "adverse_events": list(trace.adverse_events),
        "patients": len({line.treatment.patient_id for line in lines}),
        "clinics": len({line.treatment.clinic_id for line in lines}),
        "scoped": visible_clinic_ids(request.user) is not None,
        "csv_url": f"/api/v1/traces/forward/?lot={lot.pk}&format=csv",
    }
    return TemplateResponse(request, "admin/treatments/trace_forward.html", context)


def trace_back_response(
    model_admin: Any,
    request: HttpRequest,
    *,
    patient: Patient | None = None,
    treatment: Treatment | None = None,
) -> HttpResponse:
    """Every lot behind a patient's (or one treatment's) care, with the donors, marker results,
    QC results and certificates behind each lot."""
    if not can_view(request):
        raise PermissionDenied
    trace = trace_backward(
        user=request.user,
        patient_id=patient.pk if patient is not None else None,
        treatment_id=treatment.pk if treatment is not None else None,
    )
    lot_numbers = {lot.pk: lot.lot_number for lot in trace.lots}
    if patient is not None:
        subject: Any = patient
        title = f"Trace back: patient {patient.reference}"
    else:
        subject, title = treatment, f"Trace back: {treatment}"
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "original": subject,
        "title": title,
        "treatments": [
            {
                "treatment": item,
                "lines": list(item.lines.all()),
                "adverse_events": [
                    (event, lot_numbers.get(event.lot_id or 0, ""))
                    for event in item.adverse_events.all()
                ],
            }
            for item in trace.treatments
        ],
        "lots": [
            {
                "lot": lot,
                "donors": [(donor, list(donor.marker_results.all())) for donor in lot.donors.all()],
                "qc_results": list(lot.qc_results.all()),
                "certificates": list(lot.certificates.all()),
            }
            for lot in trace.lots
        ],
    }
    return TemplateResponse(request, "admin/treatments/trace_back.html", context)


LOT_PAGES["trace_forward"] = trace_forward_response
