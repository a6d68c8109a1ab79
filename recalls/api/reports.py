"""The recall's evidence as files: exposures and notices as CSV, the recall report as PDF."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request

from common.api_fields import READ_ERRORS
from common.api_views import Api
from common.csv import csv_stream
from recalls.api.common import RECALL_ID, recall_or_404
from recalls.reports import exposures_csv, notices_csv, recall_report_pdf
from treatments.selectors import visible_clinic_ids


class _FileApi(Api):
    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        # The body is always the file; errors are always JSON, whatever Accept asks for.
        return super().perform_content_negotiation(request, force=True)


class RecallExposuresCsvApi(_FileApi):
    @extend_schema(
        summary="The recall's exposures as CSV (streamed; references, never contact details)",
        parameters=[RECALL_ID],
        responses={(200, "text/csv"): OpenApiTypes.STR, **READ_ERRORS},
    )
    def get(self, request: Request, recall_id: int) -> StreamingHttpResponse:
        recall = recall_or_404(request, recall_id)
        rows = exposures_csv(recall=recall, clinic_ids=visible_clinic_ids(request.user))
        return csv_stream(rows, f"{recall.reference}-exposures.csv")


class RecallNoticesCsvApi(_FileApi):
    @extend_schema(
        summary="The recall's notices as CSV (streamed) with delivery status",
        parameters=[RECALL_ID],
        responses={(200, "text/csv"): OpenApiTypes.STR, **READ_ERRORS},
    )
    def get(self, request: Request, recall_id: int) -> StreamingHttpResponse:
        recall = recall_or_404(request, recall_id)
        rows = notices_csv(recall=recall, clinic_ids=visible_clinic_ids(request.user))
        return csv_stream(rows, f"{recall.reference}-notices.csv")


class RecallReportPdfApi(_FileApi):
    @extend_schema(
        summary="The recall report as PDF",
        description="Identity, class, depth, reason and hazard, lots, timeline, effectiveness, "
        "clinics with acknowledgement times, dispositions and notices; a drill's timing report. "
        "Never patient contact details.",
        parameters=[RECALL_ID],
        responses={(200, "application/pdf"): OpenApiTypes.BINARY, **READ_ERRORS},
    )
    def get(self, request: Request, recall_id: int) -> HttpResponse:
        recall = recall_or_404(request, recall_id)
        pdf = recall_report_pdf(recall=recall, clinic_ids=visible_clinic_ids(request.user))
        response = HttpResponse(pdf, content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{recall.reference}.pdf"'
        response["Cache-Control"] = "no-store"
        return response
