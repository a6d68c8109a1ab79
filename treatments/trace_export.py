"""The backward trace of one patient as a PDF an auditor can file: every treatment, and behind each
lot used its product, manufacturer, donors with their marker results, QC results judged against
the specification in force, and certificates with their SHA-256.

It reads the same selector as the JSON and CSV trace (`trace_backward`, ten queries) plus the two
the API's evidence needs (specifications, current certificates), so it runs a fixed number of
queries however long the patient's history. Scoped like every read: a patient of another clinic is
a 404. Patients appear by their pseudonymous reference; contact details never appear.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from django.template.loader import render_to_string
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request

from common.api_fields import READ_ERRORS
from common.api_views import Api, get_or_404
from common.pdf import html_to_pdf
from lots.models import Lot
from lots.selectors import qc_result_passes
from providers.permissions import CLINIC_STAFF_PERMISSIONS
from treatments.models import Patient
from treatments.selectors import patient_list, trace_backward
from treatments.trace_api import _Evidence

PATIENT_ID = OpenApiParameter("patient_id", OpenApiTypes.INT, OpenApiParameter.PATH)


def _lot_evidence(lot: Lot, evidence: _Evidence) -> dict[str, Any]:
    specifications = evidence.specifications[lot.product_id]
    qc_rows = []
    for result in lot.qc_results.all():
        spec = specifications.get(result.test_id)
        qc_rows.append(
            {
                "result": result,
                "specification": spec.describe() if spec else "no specification",
                "passes": qc_result_passes(spec, result) if spec else None,
            }
        )
    return {
        "lot": lot,
        "donors": [(donor, list(donor.marker_results.all())) for donor in lot.donors.all()],
        "qc_rows": qc_rows,
        "certificates": [
            (certificate, certificate.pk in evidence.current_certificate_ids)
            for certificate in lot.certificates.all()
        ],
        # trace_backward prefetches the manufacturer's current quality certificates.
        "manufacturer_certificates": lot.manufacturer.quality_certificates,  # type: ignore[attr-defined]
    }


def patient_trace_context(*, user: Any, patient: Patient) -> dict[str, Any]:
    trace = trace_backward(user=user, patient_id=patient.pk)
    evidence = _Evidence(trace.lots)
    lot_numbers = {lot.pk: lot.lot_number for lot in trace.lots}
    return {
        "patient": patient,
        "treatments": [
            {
                "treatment": treatment,
                "lines": list(treatment.lines.all()),
                "adverse_events": [
                    (event, lot_numbers.get(event.lot_id or 0, ""))
                    for event in treatment.adverse_events.all()
                ],
            }
            for treatment in trace.treatments
        ],
        "lots": [_lot_evidence(lot, evidence) for lot in trace.lots],
        "generated_at": timezone.now(),
    }


def _no_fetching(url: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    # The trace is self-contained: nothing is fetched from the network or the disk.
    raise ValueError(f"the trace PDF fetches nothing ({url})")


def patient_trace_pdf(*, user: Any, patient: Patient) -> bytes:
    html = render_to_string(
        "treatments/trace_backward.html", patient_trace_context(user=user, patient=patient)
    )
    return html_to_pdf(html, url_fetcher=_no_fetching)


class PatientTracePdfApi(Api):
    permission_classes = CLINIC_STAFF_PERMISSIONS

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        # The body is always the PDF; errors are always JSON, whatever Accept asks for.
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        summary="A patient's backward trace as PDF (pseudonymous)",
        description="Every treatment of the patient, and behind each lot used its donors with "
        "marker results, QC results against the specification, and certificates with their "
        "SHA-256. The same trace as `GET /api/v1/traces/backward/?patient={id}` (JSON, or CSV "
        "with `format=csv`). Never contact details; another clinic's patient is a 404.",
        parameters=[PATIENT_ID],
        responses={(200, "application/pdf"): OpenApiTypes.BINARY, **READ_ERRORS},
    )
    def get(self, request: Request, patient_id: int) -> HttpResponse:
        patient = get_or_404(patient_list(user=request.user), patient_id, what="patient")
        response = HttpResponse(
            patient_trace_pdf(user=request.user, patient=patient), content_type="application/pdf"
        )
        response["Content-Disposition"] = (
            f'attachment; filename="patient-{patient.pk}-trace-backward.pdf"'
        )
        response["Cache-Control"] = "no-store"
        return response
