"""The backward trace: from a patient or a treatment to every lot, donor with marker results, QC
result and certificate."""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Iterator
from functools import cached_property
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
from lots.models import (
    Donor,
    Lot,
    LotQcResult,
    Product,
    QcOutcome,
    QcSpecification,
    Tissue,
)
from providers.api import ClinicRefSerializer
from stock.api import LotRefSerializer
from treatments.api.patients import PatientOutputSerializer, PatientRefSerializer
from treatments.api.treatments import (
    PractitionerRefSerializer,
    TreatmentLineOutputSerializer,
    treatment_line_json,
)
from treatments.filters import SERIOUS
from treatments.models import AdverseEvent, Patient, Treatment
from treatments.selectors import (
    BackwardEvidence,
    patient_list,
    trace_backward,
    trace_backward_rows,
)
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
            "status",
            "manufactured_on",
            "expires_on",
            "regulatory_basis",
            "regulatory_number",
            "sec",
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
    "lot_sec",
    "product",
    "manufacturer",
    "units",
    "donor_codes",
    "certificates",
)


class _Evidence:
    """What the output needs besides the selector's lots, read in one more query whatever their
    number: the QC specification in force per product. Which certificates are current comes
    with them from the selectors."""

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
        self._lots = lots

    @cached_property
    def current_certificate_ids(self) -> set[int]:
        """For lots from `trace_backward`, whose certificates say whether they are current."""
        return {
            certificate.pk
            for lot in self._lots
            for certificate in lot.certificates.all()
            if certificate.is_current  # type: ignore[attr-defined]
        }

    def lots(self, lots: list[Lot], evidence: BackwardEvidence) -> list[dict[str, Any]]:
        """Every lot's evidence as BackwardLotSerializer documents it, from the rows of
        `trace_backward_rows`; the QC results are judged against their product's
        specifications."""
        qc_results = {
            product_id: _QcRows(specifications)
            for product_id, specifications in self.specifications.items()
        }
        return [
            {
                "lot": {
                    "id": lot.pk,
                    "lot_number": lot.lot_number,
                    "status": lot.status,
                    "manufactured_on": _date(lot.manufactured_on),
                    "expires_on": _date(lot.expires_on),
                    "regulatory_basis": lot.regulatory_basis,
                    "regulatory_number": lot.regulatory_number,
                    "sec": None if lot.sec is None else lot.sec.eye_readable,
                },
                "product": {
                    "id": lot.product.pk,
                    "name": lot.product.name,
                    "gtin": lot.product.gtin,
                    "source_kind": lot.product.source_kind,
                    "tissue": lot.product.tissue or None,
                },
                "manufacturer": {
                    "id": lot.manufacturer.pk,
                    "legal_name": lot.manufacturer.legal_name,
                },
                "donors": [
                    _donor(donor, evidence.marker_results.get(donor["donor_id"], []))
                    for donor in evidence.donors.get(lot.pk, [])
                ],
                "qc_results": qc_results[lot.product_id](lot.qc_results.all()),
                "certificates": [
                    _certificate(row, current=row["is_current"])
                    for row in evidence.certificates.get(lot.pk, [])
                ],
                "manufacturer_certificates": [
                    _certificate(row, current=True)
                    for row in evidence.quality_certificates.get(lot.manufacturer_id, [])
                ],
            }
            for lot in lots
        ]


# The answer is written as BackwardTraceOutputSerializer documents it, without DRF's field by field
# machinery: a patient's lots bring hundreds of marker and QC results, and building and walking
# the nested serializers cost several times what the database took to read them. A test holds
# the two to the same output.
_TIME = serializers.DateTimeField()
_DATE = serializers.DateField()
_NUMERIC_VALUE = LotQcResultOutputSerializer().get_fields()["numeric_value"]
_OUTCOME = OptionalChoiceField(choices=QcOutcome.choices, read_only=True)


def _time(value: datetime.datetime | None) -> str | None:
    return None if value is None else _TIME.to_representation(value)


def _date(value: datetime.date | None) -> str | None:
    return None if value is None else _DATE.to_representation(value)


def _treatment(treatment: Treatment) -> dict[str, Any]:
    """As BackwardTreatmentSerializer writes it."""
    return {
        "id": treatment.pk,
        "performed_at": _time(treatment.performed_at),
        "clinic": {"id": treatment.clinic.pk, "name": treatment.clinic.name},
        "patient": {"id": treatment.patient.pk, "reference": treatment.patient.reference},
        "practitioner": {"id": treatment.practitioner.pk, "name": treatment.practitioner.name},
        "indication": treatment.indication,
        "route": treatment.route,
        "anatomical_site": treatment.anatomical_site,
        "lines": [treatment_line_json(line) for line in treatment.lines.all()],
        "adverse_events": [
            {
                "id": event.pk,
                "lot": None
                if event.lot is None
                else {"id": event.lot.pk, "lot_number": event.lot.lot_number},
                "onset_on": _date(event.onset_on),
                "description": event.description,
                "serious": event.is_serious,
                **{flag: getattr(event, flag) for flag in SERIOUS},
                "reported_at": _time(event.reported_at),
            }
            for event in treatment.adverse_events.all()
        ],
    }


def _patient(patient: Patient) -> dict[str, Any]:
    """As PatientOutputSerializer writes it."""
    return {
        "id": patient.pk,
        "reference": patient.reference,
        "clinic": {"id": patient.clinic.pk, "name": patient.clinic.name},
        "created_at": _time(patient.created_at),
    }


def _certificate(row: dict[str, Any], *, current: bool) -> dict[str, Any]:
    """As LotCertificateOutputSerializer writes it."""
    return {
        "id": row["id"],
        "kind": row["kind"],
        "issuer": row["issuer"],
        "number": row["number"],
        "valid_from": _date(row["valid_from"]),
        "valid_until": _date(row["valid_until"]),
        "sha256": row["sha256"],
        "supersedes": row["supersedes_id"],
        "current": current,
        "uploaded_at": _time(row["uploaded_at"]),
    }


def _donor(donor: dict[str, Any], marker_results: list[dict[str, Any]]) -> dict[str, Any]:
    """As TraceDonorSerializer writes it, with its marker results."""
    return {
        "id": donor["donor_id"],
        "code": donor["code"],
        "isbt_din": donor["isbt_din"],
        "tissue": donor["tissue"],
        "collection_date": _date(donor["collection_date"]),
        "eligibility": donor["eligibility"],
        "eligibility_decided_at": _time(donor["eligibility_decided_at"]),
        "markers": [
            {
                "id": result["id"],
                "marker": result["marker_code"],
                "marker_name": result["marker_name"],
                "result": result["result"],
                "tested_on": _date(result["tested_on"]),
                "laboratory": result["laboratory"],
                "test_method": result["test_method"],
            }
            for result in marker_results
        ],
    }


class _QcRows:
    """QC results as LotQcResultOutputSerializer writes them against one product's
    specifications, judged by the serializer's own methods."""

    def __init__(self, specifications: dict[int, QcSpecification]) -> None:
        self.judge = LotQcResultOutputSerializer(context={"specifications": specifications})

    def __call__(self, results: Iterable[LotQcResult]) -> list[dict[str, Any]]:
        return [
            {
                "id": result.pk,
                "test": result.test.code,
                "test_name": result.test.name,
                "numeric_value": None
                if result.numeric_value is None
                else _NUMERIC_VALUE.to_representation(result.numeric_value),
                "outcome": _OUTCOME.to_representation(result.outcome),
                "tested_on": _date(result.tested_on),
                "laboratory": result.laboratory,
                "method": result.method,
                "specification": self.judge.get_specification(result),
                "passes": self.judge.get_passes(result),
            }
            for result in results
        ]


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
                None if lot.sec is None else lot.sec.eye_readable,
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
        scope = {"patient_id": query.get("patient"), "treatment_id": query.get("treatment")}
        if self.wants_csv(request):
            trace = trace_backward(user=request.user, **scope)
            _found(query, trace.treatments)
            return csv_response(
                "trace-backward.csv",
                BACKWARD_CSV_HEADER,
                _backward_csv_rows(trace.treatments, trace.lots),
            )
        rows = trace_backward_rows(user=request.user, **scope)
        _found(query, rows.treatments)
        donors = rows.evidence.donors
        return Response(
            {
                "patient": None if patient is None else _patient(patient),
                "treatments": [_treatment(treatment) for treatment in rows.treatments],
                "lots": _Evidence(rows.lots).lots(rows.lots, rows.evidence),
                "counts": {
                    "treatments": len(rows.treatments),
                    "lots": len(rows.lots),
                    "donors": len(
                        {donor["donor_id"] for held in donors.values() for donor in held}
                    ),
                },
            }
        )


def _found(query: dict[str, Any], treatments: list[Treatment]) -> None:
    if query.get("treatment") and not treatments:
        raise NotFound(_("No such treatment."), code="not_found")
