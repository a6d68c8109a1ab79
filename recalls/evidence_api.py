"""Evidence downloads over the API beyond the recall's own CSV and report: the recall evidence pack
(ZIP), and a lot's dossier (PDF) with its full treatment list (CSV). One view per download; the
body is always the file, errors are always JSON in the one error shape."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import FileResponse, HttpResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request

from common.api_fields import READ_ERRORS
from common.api_views import Api, get_or_404
from lots.models import Lot
from providers.permissions import NETWORK_PERMISSIONS
from recalls.dossier import lot_dossier_pdf, lot_treatments_csv
from recalls.evidence import evidence_pack_name, recall_evidence_pack
from recalls.selectors import recall_list
from treatments.selectors import visible_clinic_ids

RECALL_ID = OpenApiParameter("recall_id", OpenApiTypes.INT, OpenApiParameter.PATH)
LOT_ID = OpenApiParameter("lot_id", OpenApiTypes.INT, OpenApiParameter.PATH)


def _lots() -> QuerySet[Lot]:
    return Lot.objects.select_related("product", "manufacturer")


class _FileApi(Api):
    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        # The body is always the file; errors are always JSON, whatever Accept asks for.
        return super().perform_content_negotiation(request, force=True)


class RecallEvidencePackApi(_FileApi):
    @extend_schema(
        summary="The recall's evidence pack (ZIP): report, CSVs, signatures and a manifest",
        description="`report.pdf`, `exposures.csv`, `notices.csv`, `acknowledgements.csv`, "
        "`dispositions.csv`, `contact-attempts.csv` (outcomes; never contact details or notes), "
        "`signatures.csv`, and `manifest.json` and `SHA256SUMS` with the SHA-256 of every file. "
        "Clinic staff get their own clinics' part.",
        parameters=[RECALL_ID],
        responses={(200, "application/zip"): OpenApiTypes.BINARY, **READ_ERRORS},
    )
    def get(self, request: Request, recall_id: int) -> FileResponse:
        recall = get_or_404(recall_list(user=request.user), recall_id, what="recall")
        pack = recall_evidence_pack(
            recall=recall,
            clinic_ids=visible_clinic_ids(request.user),
            generated_by=request.user,
        )
        response = FileResponse(
            pack,
            as_attachment=True,
            filename=evidence_pack_name(recall),
            content_type="application/zip",
        )
        response["Cache-Control"] = "no-store"
        return response


class LotDossierPdfApi(_FileApi):
    permission_classes = NETWORK_PERMISSIONS

    @extend_schema(
        summary="A lot's dossier (PDF), for quality managers and auditors",
        description="Product, manufacturer and certificates (with SHA-256), donors and marker "
        "results, QC results against the specification, signed status changes, receipts and "
        "stock movements, treatments (pseudonymous references; totals per clinic when the lot "
        "reached many patients, the full list at `treatments.csv`), adverse events, recalls "
        "and the lot's history. Never patient contact details. Clinic staff: 403.",
        parameters=[LOT_ID],
        responses={(200, "application/pdf"): OpenApiTypes.BINARY, **READ_ERRORS},
    )
    def get(self, request: Request, lot_id: int) -> HttpResponse:
        lot = get_or_404(_lots(), lot_id, what="lot")
        response = HttpResponse(lot_dossier_pdf(lot=lot), content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="lot-{lot.pk}-dossier.pdf"'
        response["Cache-Control"] = "no-store"
        return response


class LotTreatmentsCsvApi(_FileApi):
    permission_classes = NETWORK_PERMISSIONS

    @extend_schema(
        summary="Every treatment line of a lot as CSV (streamed), beside its dossier",
        description="One row per treatment line: clinic, patient reference (never contact "
        "details), practitioner, time, units. Quality managers and auditors; clinic staff: 403.",
        parameters=[LOT_ID],
        responses={(200, "text/csv"): OpenApiTypes.STR, **READ_ERRORS},
    )
    def get(self, request: Request, lot_id: int) -> StreamingHttpResponse:
        lot = get_or_404(_lots(), lot_id, what="lot")
        response = StreamingHttpResponse(
            lot_treatments_csv(lot=lot), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="lot-{lot.pk}-treatments.csv"'
        response["Cache-Control"] = "no-store"
        return response
