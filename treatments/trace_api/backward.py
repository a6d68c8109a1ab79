"""The backward trace: from a patient or a treatment to every lot, donor with marker results, QC
result and certificate."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from django.db.models import Q
from django.http import StreamingHttpResponse
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from common.api_fields import OptionalChoiceField
from common.api_views import get_or_404, validated
from common.csv import csv_response
from lots.api import (
    DonorMarkerResultOutputSerializer,
    LotCertificateOutputSerializer,
    LotQcResultOutputSerializer,
    ManufacturerRefSerializer,
)
from lots.models import Certificate, Donor, Lot, LotQcResult, Product, QcSpecification, Tissue
from providers.api import ClinicRefSerializer
from stock.api import LotRefSerializer
from treatments.api.patients import PatientOutputSerializer, PatientRefSerializer
from treatments.api.treatments import PractitionerRefSerializer, TreatmentLineOutputSerializer
from treatments.filters import SERIOUS
from treatments.models import AdverseEvent, Treatment
from treatments.selectors import patient_list, trace_backward
from treatments.trace_api.base import FORMAT_PARAMETER, TraceApi, query_id, trace_responses


class BackwardTraceQuerySerializer(serializers.Serializer[Any]):
    patient = query_id("Patient id: every treatment of the patient.", required=False)
    treatment = query_id("Treatment id.", required=False)


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
    """What the output needs besides the selector's lots, read in one more query whatever their
    number: the QC specification in force per product. Which certificates are current comes
    with them from the selector."""

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
        self.current_certificate_ids = {
            certificate.pk
            for lot in lots
            for certificate in lot.certificates.all()
            if certificate.is_current  # type: ignore[attr-defined]
        }

    def lots(self, lots: list[Lot]) -> list[dict[str, Any]]:
        """Every lot's evidence, serialised. Each serializer is built once for all the lots (a
        ModelSerializer works out its fields when built, which cost more than writing the rows);
        donors with their marker results and the QC results, most of the rows, are written
        straight (`_DonorRows`, `_QcRows`)."""
        # trace_backward prefetches the manufacturer's current quality certificates.
        quality = {lot.pk: lot.manufacturer.quality_certificates for lot in lots}  # type: ignore[attr-defined]
        details = TraceLotDetailSerializer(lots, many=True).data
        products = TraceProductSerializer([lot.product for lot in lots], many=True).data
        manufacturers = ManufacturerRefSerializer(
            [lot.manufacturer for lot in lots], many=True
        ).data
        certificates: serializers.ListSerializer[Certificate] = serializers.ListSerializer(
            child=LotCertificateOutputSerializer(),
            context={
                "current_certificate_ids": self.current_certificate_ids
                | {c.pk for held in quality.values() for c in held}
            },
        )
        donors = _DonorRows()
        qc_results = {
            product_id: _QcRows(specifications)
            for product_id, specifications in self.specifications.items()
        }
        return [
            {
                "lot": detail,
                "product": product,
                "manufacturer": manufacturer,
                "donors": donors(lot.donors.all()),
                "qc_results": qc_results[lot.product_id](lot.qc_results.all()),
                "certificates": certificates.to_representation(lot.certificates.all()),
                "manufacturer_certificates": certificates.to_representation(quality[lot.pk]),
            }
            for lot, detail, product, manufacturer in zip(
                lots, details, products, manufacturers, strict=True
            )
        ]


class _DonorRows:
    """Donors with their marker results as TraceDonorSerializer writes them (a test holds the two
    to the same output). A patient's lots bring hundreds of marker results, and DRF's field by
    field machinery cost several times what the database did to read them."""

    def __init__(self) -> None:
        fields = TraceDonorSerializer().fields
        self.collection_date = fields["collection_date"]
        self.decided_at = fields["eligibility_decided_at"]

    def __call__(self, donors: Iterable[Donor]) -> list[dict[str, Any]]:
        return [
            {
                "id": donor.pk,
                "code": donor.code,
                "isbt_din": donor.isbt_din,
                "tissue": donor.tissue,
                "collection_date": _written(self.collection_date, donor.collection_date),
                "eligibility": donor.eligibility,
                "eligibility_decided_at": _written(self.decided_at, donor.eligibility_decided_at),
                "markers": [
                    {
                        "id": result.pk,
                        "marker": result.marker.code,
                        "marker_name": result.marker.name,
                        "result": result.result,
                        "tested_on": result.tested_on.isoformat(),
                        "laboratory": result.laboratory,
                        "test_method": result.test_method,
                    }
                    for result in donor.marker_results.all()
                ],
            }
            for donor in donors
        ]


class _QcRows:
    """QC results as LotQcResultOutputSerializer writes them against one product's
    specifications, judged by the serializer's own methods (a test holds the two to the same
    output)."""

    def __init__(self, specifications: dict[int, QcSpecification]) -> None:
        self.serializer = LotQcResultOutputSerializer(context={"specifications": specifications})
        fields = self.serializer.fields
        self.numeric_value = fields["numeric_value"]
        self.outcome = fields["outcome"]

    def __call__(self, results: Iterable[LotQcResult]) -> list[dict[str, Any]]:
        return [
            {
                "id": result.pk,
                "test": result.test.code,
                "test_name": result.test.name,
                "numeric_value": _written(self.numeric_value, result.numeric_value),
                "outcome": self.outcome.to_representation(result.outcome),
                "tested_on": result.tested_on.isoformat(),
                "laboratory": result.laboratory,
                "method": result.method,
                "specification": self.serializer.get_specification(result),
                "passes": self.serializer.get_passes(result),
            }
            for result in results
        ]


def _written(field: serializers.Field[Any, Any, Any, Any], value: Any) -> Any:
    """A value as `field` writes it; None stays None, as DRF leaves it."""
    return None if value is None else field.to_representation(value)


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


class BackwardTraceApi(TraceApi):
    @extend_schema(
        summary="Trace a patient or a treatment back to every lot, donor, QC result and "
        "certificate",
        description="Give `patient` or `treatment`. Each lot lists its donors with their marker "
        "results, its QC results (with whether each passes the specification in force) and "
        "its certificates, plus the manufacturer's. Another clinic's patient or treatment is "
        "a 404. `format=csv` gives one row per treatment line with the lot's donor codes.",
        parameters=[BackwardTraceQuerySerializer, FORMAT_PARAMETER],
        responses=trace_responses(BackwardTraceOutputSerializer),
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
            raise NotFound(_("No such treatment."), code="not_found")
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
                "lots": evidence.lots(trace.lots),
                "counts": {
                    "treatments": len(trace.treatments),
                    "lots": len(trace.lots),
                    "donors": len({d.pk for lot in trace.lots for d in lot.donors.all()}),
                },
            }
        )
