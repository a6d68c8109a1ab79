"""The forward trace: from lots (by lot, donor, product or manufacturer) to every treatment,
patient reference, practitioner and clinic, plus the stock on hand and adverse events."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from common.api import Pagination
from common.api_fields import CopiedFieldsSerializer
from common.api_views import validated
from common.csv import csv_cells, csv_copy_response
from lots.api import ManufacturerRefSerializer, ProductRefSerializer
from lots.models import Lot
from lots.selectors import sec_eye_readable
from providers.api import ClinicRefSerializer
from stock.api import LotRefSerializer
from stock.models import StockBalance
from treatments.api.treatments import PractitionerRefSerializer
from treatments.filters import SERIOUS
from treatments.models import AdverseEvent, TreatmentLine
from treatments.selectors import (
    FORWARD_TOTALS,
    ForwardScope,
    forward_events,
    forward_lots,
    forward_page,
    forward_stock,
    forward_totals,
    trace_forward,
    visible_clinic_ids,
)
from treatments.trace_api.base import (
    FORMAT_PARAMETER,
    TimeWriter,
    TraceApi,
    date_text,
    plain_ids,
    query_id,
    sec_text,
    time_writer,
    trace_responses,
)

# Django reads at most DATA_UPLOAD_MAX_NUMBER_FIELDS (1000) query fields; the other parameters take
# at most 8, so this many repeated `lot` ids always fit (separated by commas they count as one).
LOT_IDS_MAX = 990


class ForwardTraceQuerySerializer(CopiedFieldsSerializer):
    lot = serializers.ListField(
        child=query_id("Lot id."),
        required=False,
        max_length=LOT_IDS_MAX,
        help_text="Lot id; repeat the parameter or separate ids with commas for several.",
    )
    donor = query_id("Donor id: every lot made from the donor.", required=False)
    product = query_id("Product id: every lot of the product.", required=False)
    manufacturer = query_id("Manufacturer id: every lot it made.", required=False)
    manufactured_from = serializers.DateField(
        required=False, help_text="Only lots manufactured on or after this date."
    )
    manufactured_to = serializers.DateField(
        required=False, help_text="Only lots manufactured on or before this date."
    )
    sec = serializers.CharField(
        required=False,
        max_length=60,
        help_text="Single European Code: the whole code, its donation identification sequence "
        "or a leading part of it, with or without `SEC` and spaces; every lot whose code starts "
        "with it.",
    )


class TraceLotSerializer(serializers.ModelSerializer[Lot]):
    product = ProductRefSerializer(read_only=True)
    manufacturer = ManufacturerRefSerializer(read_only=True)
    sec = serializers.CharField(
        source="sec.eye_readable",
        read_only=True,
        allow_null=True,
        help_text="The Single European Code as printed (EU tissues and cells), null if none.",
    )

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
            "sec",
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
    ("performed_at", "performed_at"),
    # The line's own copies of its treatment's (LINE_COPIES): the export never reads a treatment.
    ("clinic_id", "clinic_id"),
    ("clinic", "clinic__name"),
    ("patient_reference", "patient__reference"),
    ("practitioner_id", "practitioner_id"),
    ("practitioner", "practitioner__name"),
    ("lot", "lot_id"),
    ("lot_number", "lot__lot_number"),
    ("lot_sec", "lot_sec"),
    ("product", "lot__product__name"),
    ("units", "units"),
)


def forward_csv_source(lines: QuerySet[TreatmentLine]) -> QuerySet[TreatmentLine]:
    """The trace's lines with what its CSV adds to them: each lot's Single European Code as
    printed, so that a member state's use record (establishment, product, recipient, date, SEC)
    is one download."""
    return lines.annotate(lot_sec=sec_eye_readable("lot__"))


# The answer is written as ForwardTraceOutputSerializer documents it, without DRF's field by field
# machinery: building its nested serializers and walking them cost more than the database took to
# answer a typical lot. The tests hold the two to the same output.


def forward_lot(row: tuple[Any, ...]) -> dict[str, Any]:
    """A row of `forward_lots` as TraceLotSerializer writes it."""
    lot_id, lot_number, product_id, product, gtin, manufacturer_id, manufacturer = row[:7]
    status, manufactured_on, expires_on = row[7:10]
    return {
        "id": lot_id,
        "lot_number": lot_number,
        "product": {"id": product_id, "name": product, "gtin": gtin},
        "manufacturer": {"id": manufacturer_id, "legal_name": manufacturer},
        "status": status,
        "manufactured_on": date_text(manufactured_on),
        "expires_on": date_text(expires_on),
        "sec": sec_text(row[10:16], expires_on),
    }


def forward_stock_row(row: tuple[Any, ...]) -> dict[str, Any]:
    """A row of `forward_stock` as StockOnHandSerializer writes it."""
    clinic_id, clinic, lot_id, lot_number, state, quantity = row
    return {
        "clinic": {"id": clinic_id, "name": clinic},
        "lot": lot_id,
        "lot_number": lot_number,
        "state": state,
        "quantity": quantity,
    }


def forward_event(row: tuple[Any, ...], time: TimeWriter) -> dict[str, Any]:
    """A row of `forward_events` as TraceAdverseEventSerializer writes it."""
    event_id, treatment, clinic_id, clinic, patient_reference, lot_id, lot_number = row[:7]
    onset_on, description = row[7:9]
    flags = dict(zip(SERIOUS, row[9:14], strict=True))
    return {
        "id": event_id,
        "treatment": treatment,
        "clinic": {"id": clinic_id, "name": clinic},
        "patient_reference": patient_reference,
        "lot": None if lot_id is None else {"id": lot_id, "lot_number": lot_number},
        "onset_on": date_text(onset_on),
        "description": description,
        "serious": any(flags.values()),
        **flags,
        "reported_at": time(row[14]),
    }


def forward_rows(
    page: list[tuple[Any, ...]], lots: dict[int, dict[str, Any]], time: TimeWriter
) -> list[dict[str, Any]]:
    """The rows of a `forward_page` as ForwardTreatmentRowSerializer writes them; each line's lot
    number and product come from the trace's lots (`forward_lot`), already read."""
    rows = []
    for (
        treatment,
        at,
        clinic_id,
        clinic,
        patient_reference,
        practitioner_id,
        practitioner,
        lot_id,
        units,
    ) in page:
        lot = lots[lot_id]
        rows.append(
            {
                "treatment": treatment,
                "performed_at": time(at),
                "clinic": {"id": clinic_id, "name": clinic},
                "patient_reference": patient_reference,
                "practitioner": {"id": practitioner_id, "name": practitioner},
                "lot": lot_id,
                "lot_number": lot["lot_number"],
                "product": lot["product"],
                "units": units,
            }
        )
    return rows


def _forward_scope(request: Request) -> ForwardScope:
    params = request.query_params
    data: dict[str, Any] = {
        name: params[name]
        for name in (
            "donor",
            "product",
            "manufacturer",
            "manufactured_from",
            "manufactured_to",
            "sec",
        )
        if name in params
    }
    lot_ids = [piece for value in params.getlist("lot") for piece in value.split(",") if piece]
    if lot_ids and not data:
        ids = plain_ids(lot_ids)
        if ids is not None and len(ids) <= LOT_IDS_MAX:
            return ForwardScope(lot_ids=ids)  # as the serializer reads them (plain_ids)
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
        sec=query.get("sec"),
    )


class ForwardTraceApi(TraceApi):
    @extend_schema(
        summary="Trace lots forward to every treatment, patient reference, practitioner, clinic "
        "and the stock on hand",
        description="Choose the lots by `lot` (repeatable or comma-separated), `donor`, "
        "`product`, `manufacturer` or `sec` (Single European Code), optionally narrowed by "
        "manufacture date; several narrow each other. `treatments` (one row per treatment "
        "line) is paged with limit/offset and `counts` covers every page. `format=csv` streams "
        "every treatment row as CSV instead.",
        parameters=[
            ForwardTraceQuerySerializer,
            FORMAT_PARAMETER,
            OpenApiParameter("limit", OpenApiTypes.INT, OpenApiParameter.QUERY),
            OpenApiParameter("offset", OpenApiTypes.INT, OpenApiParameter.QUERY),
        ],
        responses=trace_responses(ForwardTraceOutputSerializer),
    )
    def get(self, request: Request) -> Response | StreamingHttpResponse:
        scope = _forward_scope(request)
        if self.wants_csv(request):
            trace = trace_forward(user=request.user, scope=scope)
            return csv_copy_response(
                "trace-forward.csv",
                [name for name, _ in FORWARD_CSV_COLUMNS],
                csv_cells(
                    forward_csv_source(trace.lines), [field for _, field in FORWARD_CSV_COLUMNS]
                ),
            )
        # What trace_forward's querysets read, in SQL (treatments.selectors.forward_*): composing
        # them with the ORM took longer than PostgreSQL took to answer a typical lot. The lots
        # first: the rest is read by their ids, and the lines show their lot and product.
        lots = [forward_lot(row) for row in forward_lots(scope=scope)]
        by_id = {lot["id"]: lot for lot in lots}
        lot_ids = [*by_id]
        clinic_ids = visible_clinic_ids(request.user)
        totals = (
            forward_totals(lot_ids=lot_ids, clinic_ids=clinic_ids)
            if lot_ids
            else dict.fromkeys(FORWARD_TOTALS, 0)
        )
        time = time_writer()
        paginator = Pagination()
        paginator.request = request
        paginator.count = totals["treatment_lines"]
        limit = paginator.get_limit(request) or Pagination.default_limit
        paginator.limit, paginator.offset = limit, paginator.get_offset(request)
        # Past the end there is nothing to ask the database (and an offset beyond its integer
        # range would be refused there).
        rows = (
            forward_rows(
                forward_page(
                    lot_ids=lot_ids, clinic_ids=clinic_ids, offset=paginator.offset, limit=limit
                ),
                by_id,
                time,
            )
            if paginator.offset < paginator.count
            else []
        )
        stock = [
            forward_stock_row(row) for row in forward_stock(lot_ids=lot_ids, clinic_ids=clinic_ids)
        ]
        events = [
            forward_event(row, time)
            for row in forward_events(lot_ids=lot_ids, clinic_ids=clinic_ids)
        ]
        return Response(
            {
                "lots": lots,
                "treatments": rows,
                "page": {
                    "limit": limit,
                    "offset": paginator.offset,
                    "next": paginator.get_next_link(),
                    "previous": paginator.get_previous_link(),
                },
                "stock_on_hand": stock,
                "adverse_events": events,
                "counts": {
                    "lots": len(lots),
                    "treatment_lines": totals["treatment_lines"],
                    "treatments": totals["treatments"],
                    "patients": totals["patients"],
                    "clinics": totals["clinics"],
                    "practitioners": totals["practitioners"],
                    "units_used": totals["units_used"],
                    "units_on_hand": sum(balance["quantity"] for balance in stock),
                    "adverse_events": len(events),
                },
            }
        )
