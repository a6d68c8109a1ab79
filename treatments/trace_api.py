"""The two traces over HTTP: forward from lots (by lot, donor, product or manufacturer) to every
treatment, patient reference, practitioner and clinic plus the stock on hand; backward from a
patient or treatment to every lot, donor with marker results, QC result and certificate.

Each runs a fixed number of queries whatever the size of the result. Both answer JSON, or CSV
(`?format=csv` or `Accept: text/csv`) streamed from the database in chunks so memory stays flat
however many treatments a recall reaches. Results are scoped like every read (clinic staff: their
own clinics); patient contact details never appear in a trace.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db.models import Count, Q, Sum
from django.db.models.functions import Coalesce
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from common.api import Pagination
from common.api_fields import BIGINT_MAX, ErrorSerializer, OptionalChoiceField
from common.api_views import Api, get_or_404, validated
from common.csv import CsvRenderer, csv_response
from lots.api import (
    DonorMarkerResultOutputSerializer,
    LotCertificateOutputSerializer,
    LotQcResultOutputSerializer,
    ManufacturerRefSerializer,
    ProductRefSerializer,
)
from lots.models import Donor, Lot, Product, QcSpecification, Tissue
from lots.selectors import current_certificates
from providers.api import ClinicRefSerializer
from providers.permissions import CLINIC_STAFF_PERMISSIONS
from stock.api import LotRefSerializer
from stock.models import StockBalance
from treatments.api import (
    PatientOutputSerializer,
    PatientRefSerializer,
    PractitionerRefSerializer,
    TreatmentLineOutputSerializer,
)
from treatments.filters import SERIOUS
from treatments.models import AdverseEvent, Treatment, TreatmentLine
from treatments.selectors import ForwardScope, patient_list, trace_backward, trace_forward

CSV_CHUNK_ROWS = 2000
# Django reads at most DATA_UPLOAD_MAX_NUMBER_FIELDS (1000) query fields; the other parameters take
# at most 8, so this many repeated `lot` ids always fit (separated by commas they count as one).
LOT_IDS_MAX = 990

# ---------------------------------------------------------------------------------------------
# CSV


class _TraceApi(Api):
    permission_classes = CLINIC_STAFF_PERMISSIONS
    renderer_classes = [JSONRenderer, CsvRenderer]

    def handle_exception(self, exc: Exception) -> Response:
        # Errors are always JSON in the one error shape, whatever format the caller asked for.
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return super().handle_exception(exc)

    @staticmethod
    def wants_csv(request: Request) -> bool:
        return getattr(request.accepted_renderer, "format", None) == "csv"


def _trace_responses(json_serializer: type[serializers.Serializer[Any]]) -> dict[Any, Any]:
    return {
        (200, "application/json"): json_serializer,
        (200, "text/csv"): OpenApiTypes.STR,
        **{(code, "application/json"): ErrorSerializer for code in (400, 401, 403, 404, 406)},
    }


FORMAT_PARAMETER = OpenApiParameter(
    "format",
    OpenApiTypes.STR,
    OpenApiParameter.QUERY,
    enum=["json", "csv"],
    description="`csv` streams the rows as CSV (as does `Accept: text/csv`).",
)


def _id(help_text: str, **kwargs: Any) -> serializers.IntegerField:
    return serializers.IntegerField(
        min_value=1, max_value=BIGINT_MAX, help_text=help_text, **kwargs
    )


# ---------------------------------------------------------------------------------------------
# Forward


class ForwardTraceQuerySerializer(serializers.Serializer[Any]):
    lot = serializers.ListField(
        child=_id("Lot id."),
        required=False,
        max_length=LOT_IDS_MAX,
        help_text="Lot id; repeat the parameter or separate ids with commas for several.",
    )
    donor = _id("Donor id: every lot made from the donor.", required=False)
    product = _id("Product id: every lot of the product.", required=False)
    manufacturer = _id("Manufacturer id: every lot it made.", required=False)
    manufactured_from = serializers.DateField(
        required=False, help_text="Only lots manufactured on or after this date."
    )
    manufactured_to = serializers.DateField(
        required=False, help_text="Only lots manufactured on or before this date."
    )


class TraceLotSerializer(serializers.ModelSerializer[Lot]):
    product = ProductRefSerializer(read_only=True)
    manufacturer = ManufacturerRefSerializer(read_only=True)

    class Meta:
        model = Lot
        fields = [
            "id",
            "lot_number",
            "product",
            "manufacturer",
            "status",
            "manufactured_on",
            "expires_on",
        ]
        read_only_fields = fields


class ForwardTreatmentRowSerializer(serializers.ModelSerializer[TreatmentLine]):
    performed_at = serializers.DateTimeField(source="treatment.performed_at", read_only=True)
    clinic = ClinicRefSerializer(source="treatment.clinic", read_only=True)
    patient_reference = serializers.CharField(source="treatment.patient.reference", read_only=True)
    practitioner = PractitionerRefSerializer(source="treatment.practitioner", read_only=True)
    lot_number = serializers.CharField(source="lot.lot_number", read_only=True)
    product = ProductRefSerializer(source="lot.product", read_only=True)

    class Meta:
        model = TreatmentLine
        fields = [
            "treatment",
            "performed_at",
            "clinic",
            "patient_reference",
            "practitioner",
            "lot",
            "lot_number",
            "product",
            "units",
        ]
        read_only_fields = fields


class StockOnHandSerializer(serializers.ModelSerializer[StockBalance]):
    clinic = ClinicRefSerializer(read_only=True)
    lot_number = serializers.CharField(source="lot.lot_number", read_only=True)

    class Meta:
        model = StockBalance
        fields = ["clinic", "lot", "lot_number", "state", "quantity"]
        read_only_fields = fields


class TraceAdverseEventSerializer(serializers.ModelSerializer[AdverseEvent]):
    clinic = ClinicRefSerializer(source="treatment.clinic", read_only=True)
    patient_reference = serializers.CharField(source="treatment.patient.reference", read_only=True)
    lot = LotRefSerializer(read_only=True, allow_null=True, help_text="The suspected lot.")
    serious = serializers.BooleanField(source="is_serious", read_only=True)

    class Meta:
        model = AdverseEvent
        fields = [
            "id",
            "treatment",
            "clinic",
            "patient_reference",
            "lot",
            "onset_on",
            "description",
            "serious",
            *SERIOUS,
            "reported_at",
        ]
        read_only_fields = fields


class ForwardCountsSerializer(serializers.Serializer[Any]):
    lots = serializers.IntegerField()
    treatment_lines = serializers.IntegerField(help_text="Rows of `treatments`, all pages.")
    treatments = serializers.IntegerField()
    patients = serializers.IntegerField()
    clinics = serializers.IntegerField(help_text="Clinics where the lots were used.")
    practitioners = serializers.IntegerField()
    units_used = serializers.IntegerField()
    units_on_hand = serializers.IntegerField(help_text="In every state: accepted, blocked, ...")
    adverse_events = serializers.IntegerField()


class PageSerializer(serializers.Serializer[Any]):
    limit = serializers.IntegerField()
    offset = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)


class ForwardTraceOutputSerializer(serializers.Serializer[Any]):
    lots = TraceLotSerializer(many=True)
    treatments = ForwardTreatmentRowSerializer(
        many=True, help_text="One row per treatment line of a traced lot; paged by limit/offset."
    )
    page = PageSerializer(help_text="Where `treatments` is in the whole list.")
    stock_on_hand = StockOnHandSerializer(many=True)
    adverse_events = TraceAdverseEventSerializer(many=True)
    counts = ForwardCountsSerializer()


FORWARD_CSV_COLUMNS = (
    ("treatment", "treatment_id"),
    ("performed_at", "treatment__performed_at"),
    ("clinic_id", "treatment__clinic_id"),
    ("clinic", "treatment__clinic__name"),
    ("patient_reference", "treatment__patient__reference"),
    ("practitioner_id", "treatment__practitioner_id"),
    ("practitioner", "treatment__practitioner__name"),
    ("lot", "lot_id"),
    ("lot_number", "lot__lot_number"),
    ("product", "lot__product__name"),
    ("units", "units"),
)


def _forward_scope(request: Request) -> ForwardScope:
    params = request.query_params
    data: dict[str, Any] = {
        name: params[name]
        for name in ("donor", "product", "manufacturer", "manufactured_from", "manufactured_to")
        if name in params
    }
    lot_ids = [piece for value in params.getlist("lot") for piece in value.split(",") if piece]
    if lot_ids:
        data["lot"] = lot_ids
    query = validated(ForwardTraceQuerySerializer, data)
    return ForwardScope(
        lot_ids=query.get("lot"),
        donor_id=query.get("donor"),
        product_id=query.get("product"),
        manufacturer_id=query.get("manufacturer"),
        manufactured_from=query.get("manufactured_from"),
        manufactured_to=query.get("manufactured_to"),
    )


class ForwardTraceApi(_TraceApi):
    @extend_schema(
        summary="Trace lots forward to every treatment, patient reference, practitioner, clinic "
        "and the stock on hand",
        description="Choose the lots by `lot` (repeatable or comma-separated), `donor`, "
        "`product` or `manufacturer`, optionally narrowed by manufacture date; several narrow "
        "each other. `treatments` (one row per treatment line) is paged with limit/offset and "
        "`counts` covers every page. `format=csv` streams every treatment row as CSV instead.",
        parameters=[
            ForwardTraceQuerySerializer,
            FORMAT_PARAMETER,
            OpenApiParameter("limit", OpenApiTypes.INT, OpenApiParameter.QUERY),
            OpenApiParameter("offset", OpenApiTypes.INT, OpenApiParameter.QUERY),
        ],
        responses=_trace_responses(ForwardTraceOutputSerializer),
    )
    def get(self, request: Request) -> Response | StreamingHttpResponse:
        trace = trace_forward(user=request.user, scope=_forward_scope(request))
        if self.wants_csv(request):
            rows = trace.lines.values_list(*(field for _, field in FORWARD_CSV_COLUMNS))
            return csv_response(
                "trace-forward.csv",
                [name for name, _ in FORWARD_CSV_COLUMNS],
                rows.iterator(chunk_size=CSV_CHUNK_ROWS),
            )
        totals = trace.lines.aggregate(
            treatment_lines=Count("pk"),
            treatments=Count("treatment_id", distinct=True),
            patients=Count("treatment__patient_id", distinct=True),
            clinics=Count("treatment__clinic_id", distinct=True),
            practitioners=Count("treatment__practitioner_id", distinct=True),
            units_used=Coalesce(Sum("units"), 0),
        )
        paginator = Pagination()
        paginator.request = request
        paginator.count = totals["treatment_lines"]
        limit = paginator.get_limit(request) or Pagination.default_limit
        paginator.limit, paginator.offset = limit, paginator.get_offset(request)
        start, end = paginator.offset, paginator.offset + limit
        # Past the end there is nothing to ask the database (and an offset beyond its integer
        # range would be refused there).
        page = list(trace.lines[start:end]) if start < paginator.count else []
        lots = list(trace.lots)
        stock = list(trace.stock)
        events = list(trace.adverse_events)
        return Response(
            ForwardTraceOutputSerializer(
                {
                    "lots": lots,
                    "treatments": page,
                    "page": {
                        "limit": limit,
                        "offset": paginator.offset,
                        "next": paginator.get_next_link(),
                        "previous": paginator.get_previous_link(),
                    },
                    "stock_on_hand": stock,
                    "adverse_events": events,
                    "counts": {
                        **totals,
                        "lots": len(lots),
                        "units_on_hand": sum(balance.quantity for balance in stock),
                        "adverse_events": len(events),
                    },
                }
            ).data
        )


# ---------------------------------------------------------------------------------------------
# Backward


class BackwardTraceQuerySerializer(serializers.Serializer[Any]):
    patient = _id("Patient id: every treatment of the patient.", required=False)
    treatment = _id("Treatment id.", required=False)


class BackwardAdverseEventSerializer(serializers.ModelSerializer[AdverseEvent]):
    lot = LotRefSerializer(read_only=True, allow_null=True, help_text="The suspected lot.")
    serious = serializers.BooleanField(source="is_serious", read_only=True)

    class Meta:
        model = AdverseEvent
        fields = ["id", "lot", "onset_on", "description", "serious", *SERIOUS, "reported_at"]
        read_only_fields = fields


class BackwardTreatmentSerializer(serializers.ModelSerializer[Treatment]):
    clinic = ClinicRefSerializer(read_only=True)
    patient = PatientRefSerializer(read_only=True)
    practitioner = PractitionerRefSerializer(read_only=True)
    lines = TreatmentLineOutputSerializer(many=True, read_only=True)
    adverse_events = BackwardAdverseEventSerializer(many=True, read_only=True)

    class Meta:
        model = Treatment
        fields = [
            "id",
            "performed_at",
            "clinic",
            "patient",
            "practitioner",
            "indication",
            "route",
            "anatomical_site",
            "lines",
            "adverse_events",
        ]
        read_only_fields = fields


class TraceDonorSerializer(serializers.ModelSerializer[Donor]):
    markers = DonorMarkerResultOutputSerializer(source="marker_results", many=True, read_only=True)

    class Meta:
        model = Donor
        fields = [
            "id",
            "code",
            "isbt_din",
            "tissue",
            "collection_date",
            "eligibility",
            "eligibility_decided_at",
            "markers",
        ]
        read_only_fields = fields


class TraceProductSerializer(serializers.ModelSerializer[Product]):
    tissue = OptionalChoiceField(
        choices=Tissue.choices, read_only=True, help_text="Human-derived products only; else null."
    )

    class Meta:
        model = Product
        fields = ["id", "name", "gtin", "source_kind", "tissue"]
        read_only_fields = fields


class TraceLotDetailSerializer(serializers.ModelSerializer[Lot]):
    class Meta:
        model = Lot
        fields = [
            "id",
            "lot_number",
            "status",
            "manufactured_on",
            "expires_on",
            "regulatory_basis",
            "regulatory_number",
        ]
        read_only_fields = fields


class BackwardLotSerializer(serializers.Serializer[Any]):
    lot = TraceLotDetailSerializer()
    product = TraceProductSerializer()
    manufacturer = ManufacturerRefSerializer()
    donors = TraceDonorSerializer(many=True)
    qc_results = LotQcResultOutputSerializer(many=True)
    certificates = LotCertificateOutputSerializer(many=True, help_text="The lot's CoAs.")
    manufacturer_certificates = LotCertificateOutputSerializer(
        many=True, help_text="The manufacturer's current GMP / ISO 13485 certificates."
    )


class BackwardCountsSerializer(serializers.Serializer[Any]):
    treatments = serializers.IntegerField()
    lots = serializers.IntegerField()
    donors = serializers.IntegerField()


class BackwardTraceOutputSerializer(serializers.Serializer[Any]):
    patient = PatientOutputSerializer(allow_null=True, help_text="When traced from a patient.")
    treatments = BackwardTreatmentSerializer(many=True)
    lots = BackwardLotSerializer(many=True)
    counts = BackwardCountsSerializer()


BACKWARD_CSV_HEADER = (
    "treatment",
    "performed_at",
    "clinic",
    "patient_reference",
    "practitioner",
    "lot",
    "lot_number",
    "lot_status",
    "product",
    "manufacturer",
    "units",
    "donor_codes",
    "certificates",
)


class _Evidence:
    """What the output needs besides the selector's lots, read in two more queries whatever
    their number: the QC specification in force per product, and which of the lots'
    certificates are current (not superseded)."""

    def __init__(self, lots: list[Lot]) -> None:
        product_ids = {lot.product_id for lot in lots}
        defaults: dict[int, QcSpecification] = {}
        own: dict[int, dict[int, QcSpecification]] = {}
        for spec in QcSpecification.objects.filter(
            Q(product_id__in=product_ids) | Q(product__isnull=True)
        ).select_related("test"):
            if spec.product_id is None:
                defaults[spec.test_id] = spec
            else:
                own.setdefault(spec.product_id, {})[spec.test_id] = spec
        # A product's own specification wins over the network default (qc_specifications_for).
        self.specifications = {pid: {**defaults, **own.get(pid, {})} for pid in product_ids}
        certificate_ids = [c.pk for lot in lots for c in lot.certificates.all()]
        self.current_certificate_ids = set(
            current_certificates().filter(pk__in=certificate_ids).values_list("pk", flat=True)
        )

    def lot(self, lot: Lot) -> dict[str, Any]:
        """One lot's evidence, serialised (each part with the context it needs)."""
        # trace_backward prefetches the manufacturer's current quality certificates.
        quality_certificates = lot.manufacturer.quality_certificates  # type: ignore[attr-defined]
        return {
            "lot": TraceLotDetailSerializer(lot).data,
            "product": TraceProductSerializer(lot.product).data,
            "manufacturer": ManufacturerRefSerializer(lot.manufacturer).data,
            "donors": TraceDonorSerializer(lot.donors.all(), many=True).data,
            "qc_results": LotQcResultOutputSerializer(
                lot.qc_results.all(),
                many=True,
                context={"specifications": self.specifications[lot.product_id]},
            ).data,
            "certificates": LotCertificateOutputSerializer(
                lot.certificates.all(),
                many=True,
                context={"current_certificate_ids": self.current_certificate_ids},
            ).data,
            "manufacturer_certificates": LotCertificateOutputSerializer(
                quality_certificates,
                many=True,
                context={"current_certificate_ids": {c.pk for c in quality_certificates}},
            ).data,
        }


def _backward_csv_rows(treatments: list[Treatment], lots: list[Lot]) -> Iterator[list[Any]]:
    by_id = {lot.pk: lot for lot in lots}
    for treatment in treatments:
        for line in treatment.lines.all():
            lot = by_id[line.lot_id]
            yield [
                treatment.pk,
                treatment.performed_at,
                treatment.clinic.name,
                treatment.patient.reference,
                treatment.practitioner.name,
                lot.pk,
                lot.lot_number,
                lot.status,
                lot.product.name,
                lot.manufacturer.legal_name,
                line.units,
                ";".join(donor.code for donor in lot.donors.all()),
                ";".join(f"{c.kind}:{c.number}" for c in lot.certificates.all()),
            ]


class BackwardTraceApi(_TraceApi):
    @extend_schema(
        summary="Trace a patient or a treatment back to every lot, donor, QC result and "
        "certificate",
        description="Give `patient` or `treatment`. Each lot lists its donors with their marker "
        "results, its QC results (with whether each passes the specification in force) and "
        "its certificates, plus the manufacturer's. Another clinic's patient or treatment is "
        "a 404. `format=csv` gives one row per treatment line with the lot's donor codes.",
        parameters=[BackwardTraceQuerySerializer, FORMAT_PARAMETER],
        responses=_trace_responses(BackwardTraceOutputSerializer),
    )
    def get(self, request: Request) -> Response | StreamingHttpResponse:
        query = validated(BackwardTraceQuerySerializer, request.query_params.dict())
        patient = None
        if query.get("patient"):
            patient = get_or_404(patient_list(user=request.user), query["patient"], what="patient")
        trace = trace_backward(
            user=request.user, patient_id=query.get("patient"), treatment_id=query.get("treatment")
        )
        if query.get("treatment") and not trace.treatments:
            raise NotFound("No such treatment.", code="not_found")
        if self.wants_csv(request):
            return csv_response(
                "trace-backward.csv",
                BACKWARD_CSV_HEADER,
                _backward_csv_rows(trace.treatments, trace.lots),
            )
        evidence = _Evidence(trace.lots)
        # Serialised part by part (each lot's QC results need its product's specifications);
        # BackwardTraceOutputSerializer documents the whole.
        return Response(
            {
                "patient": None if patient is None else PatientOutputSerializer(patient).data,
                "treatments": BackwardTreatmentSerializer(trace.treatments, many=True).data,
                "lots": [evidence.lot(lot) for lot in trace.lots],
                "counts": {
                    "treatments": len(trace.treatments),
                    "lots": len(trace.lots),
                    "donors": len({d.pk for lot in trace.lots for d in lot.donors.all()}),
                },
            }
        )
