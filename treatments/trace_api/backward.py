"""The backward trace: from a patient or a treatment to every lot, donor with marker results, QC
result and certificate."""

from __future__ import annotations

import datetime
from collections.abc import Sized
from decimal import Decimal
from functools import cached_property
from operator import itemgetter
from typing import Any

from django.contrib.postgres.aggregates import StringAgg
from django.db.models import OuterRef, Q, QuerySet, Subquery, TextField, Value
from django.db.models.functions import Coalesce, Concat
from django.http import StreamingHttpResponse
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import ISO_8601, serializers
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings

from common.api_fields import CopiedFieldsSerializer, OptionalChoiceField
from common.api_views import validated
from common.csv import csv_response
from lots.api import (
    DonorMarkerResultOutputSerializer,
    LotCertificateOutputSerializer,
    LotQcResultOutputSerializer,
    ManufacturerRefSerializer,
)
from lots.models import (
    Certificate,
    Donor,
    Lot,
    LotDonor,
    LotQcResult,
    Product,
    QcSpecification,
    QcTest,
    Tissue,
)
from lots.selectors import qc_result_passes, sec_eye_readable
from providers.api import ClinicRefSerializer
from stock.api import LotRefSerializer
from treatments.api.patients import PatientOutputSerializer, PatientRefSerializer
from treatments.api.treatments import PractitionerRefSerializer, TreatmentLineOutputSerializer
from treatments.filters import SERIOUS
from treatments.models import AdverseEvent, Treatment
from treatments.selectors import (
    backward_evidence,
    backward_lines,
    backward_patient,
    backward_treatments,
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


class BackwardTraceQuerySerializer(CopiedFieldsSerializer):
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
    """The QC specification in force per product of `lots` (from `trace_backward`, as the PDF
    reads them), in one query whatever their number, and which of their certificates are
    current (which the selector tells)."""

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
        return {
            certificate.pk
            for lot in self._lots
            for certificate in lot.certificates.all()
            if certificate.is_current  # type: ignore[attr-defined]
        }


# The answer is written as BackwardTraceOutputSerializer documents it, straight from rows, without
# model instances or DRF's field by field machinery: a patient's lots bring hundreds of marker and
# QC results, and building instances and walking the nested serializers cost several times what
# the database took to read them. A test holds the two to the same output.
_NUMERIC_VALUE = LotQcResultOutputSerializer().get_fields()["numeric_value"]


def _patient(row: tuple[Any, ...], time: TimeWriter) -> dict[str, Any]:
    """A row of `backward_patient` as PatientOutputSerializer writes it."""
    patient_id, reference, created_at, clinic_id, clinic = row
    return {
        "id": patient_id,
        "reference": reference,
        "clinic": {"id": clinic_id, "name": clinic},
        "created_at": time(created_at),
    }


def _lot(row: tuple[Any, ...]) -> dict[str, Any]:
    """A lot from a row of `backward_lines` as BackwardLotSerializer writes it, its evidence to
    come."""
    lot_id, lot_number, product_id, product, gtin = row[11:16]
    status, manufactured_on, expires_on, basis, number = row[18:23]
    source_kind, tissue, manufacturer_id, manufacturer = row[29:33]
    return {
        "lot": {
            "id": lot_id,
            "lot_number": lot_number,
            "status": status,
            "manufactured_on": date_text(manufactured_on),
            "expires_on": date_text(expires_on),
            "regulatory_basis": basis,
            "regulatory_number": number,
            "sec": sec_text(row[23:29], expires_on),
        },
        "product": {
            "id": product_id,
            "name": product,
            "gtin": gtin,
            "source_kind": source_kind,
            "tissue": tissue or None,
        },
        "manufacturer": {"id": manufacturer_id, "legal_name": manufacturer},
        "donors": [],
        "qc_results": [],
        "certificates": [],
        "manufacturer_certificates": [],
    }


class _BackwardAnswer:
    """The backward trace as BackwardTraceOutputSerializer writes it, read in five statements
    whatever the size: the treatments with their lines and lots, then the treatments' adverse
    events, the lots' donors with their marker results, their QC results with the
    specifications in force, and their certificates with the manufacturers' current ones."""

    def __init__(self, lines: list[tuple[Any, ...]]) -> None:
        self.time = time_writer()
        self.treatments: list[dict[str, Any]] = []
        self.lots: dict[int, dict[str, Any]] = {}
        self._read_lines(lines)

    def _read_lines(self, lines: list[tuple[Any, ...]]) -> None:
        """The rows of `backward_lines`: each treatment as BackwardTreatmentSerializer writes it
        (its adverse events to come), and each lot once as BackwardLotSerializer does (its
        evidence to come)."""
        time, lots = self.time, self.lots
        treatment: dict[str, Any] = {"id": None}
        for row in lines:
            if row[0] != treatment["id"]:
                treatment = {
                    "id": row[0],
                    "performed_at": time(row[1]),
                    "clinic": {"id": row[2], "name": row[3]},
                    "patient": {"id": row[4], "reference": row[5]},
                    "practitioner": {"id": row[6], "name": row[7]},
                    "indication": row[8],
                    "route": row[9],
                    "anatomical_site": row[10],
                    "lines": [],
                    "adverse_events": [],
                }
                self.treatments.append(treatment)
            lot_id, lot_number, product_id, product, gtin, units, movement = row[11:18]
            if lot_id is None:
                continue
            treatment["lines"].append(
                {
                    "lot": lot_id,
                    "lot_number": lot_number,
                    "product": {"id": product_id, "name": product, "gtin": gtin},
                    "units": units,
                    "stock_movement": movement,
                }
            )
            if lot_id not in lots:
                lots[lot_id] = _lot(row)

    def answer(self, patient: tuple[Any, ...] | None) -> dict[str, Any]:
        lots = [self.lots[lot_id] for lot_id in sorted(self.lots)]
        evidence = backward_evidence(
            treatment_ids=[treatment["id"] for treatment in self.treatments],
            lot_ids=list(self.lots),
            manufacturer_ids=list({entry["manufacturer"]["id"] for entry in lots}),
        )
        self._read_adverse_events(evidence.adverse_events)
        donors = self._read_donors(evidence.donors)
        self._read_qc_results(evidence.qc_results)
        self._read_certificates(evidence.certificates, lots)
        return {
            "patient": None if patient is None else _patient(patient, self.time),
            "treatments": self.treatments,
            "lots": lots,
            "counts": {
                "treatments": len(self.treatments),
                "lots": len(lots),
                "donors": len(donors),
            },
        }

    def _read_adverse_events(self, events: list[tuple[Any, ...]]) -> None:
        """As BackwardAdverseEventSerializer writes them."""
        time = self.time
        by_treatment = {
            treatment["id"]: treatment["adverse_events"] for treatment in self.treatments
        }
        serious_flags = slice(6, 6 + len(SERIOUS))
        for row in events:
            treatment_id, event_id, lot_id, lot_number, onset_on, description = row[:6]
            flags = row[serious_flags]
            by_treatment[treatment_id].append(
                {
                    "id": event_id,
                    "lot": None if lot_id is None else {"id": lot_id, "lot_number": lot_number},
                    "onset_on": date_text(onset_on),
                    "description": description,
                    # AdverseEvent.is_serious: any of the flags.
                    "serious": any(flags),
                    **dict(zip(SERIOUS, flags, strict=True)),
                    "reported_at": time(row[-1]),
                }
            )

    def _read_donors(self, donors: list[tuple[Any, ...]]) -> set[int]:
        """Each lot's donors with their marker results, as TraceDonorSerializer writes them;
        answers the donors' ids."""
        time, lots = self.time, self.lots
        output_format = api_settings.DATE_FORMAT
        iso_dates = isinstance(output_format, str) and output_format.lower() == ISO_8601
        seen = set()
        for row in donors:
            lot_id, donor_id, code, isbt_din, tissue, collected, eligibility, decided_at = row[:8]
            markers = row[8]
            if not iso_dates:
                for marker in markers:
                    marker["tested_on"] = date_text(
                        datetime.date.fromisoformat(marker["tested_on"])
                    )
            lots[lot_id]["donors"].append(
                {
                    "id": donor_id,
                    "code": code,
                    "isbt_din": isbt_din,
                    "tissue": tissue,
                    "collection_date": date_text(collected),
                    "eligibility": eligibility,
                    "eligibility_decided_at": time(decided_at),
                    "markers": markers,
                }
            )
            seen.add(donor_id)
        return seen

    def _read_qc_results(self, results: list[tuple[Any, ...]]) -> None:
        """Each lot's QC results as LotQcResultOutputSerializer writes them, judged against the
        specification in force for the lot's product."""
        lots = self.lots
        judge = _QcJudge()
        for row in results:
            lot_id, result_id, test_id, code, name, kind, unit, value, outcome = row[:9]
            own, network = row[12:16], row[16:20]
            spec = judge.specification(own if own[0] is not None else network, test_id, kind, unit)
            lots[lot_id]["qc_results"].append(
                {
                    "id": result_id,
                    "test": code,
                    "test_name": name,
                    "numeric_value": None if value is None else judge.numeric(value),
                    "outcome": outcome or None,
                    "tested_on": date_text(row[9]),
                    "laboratory": row[10],
                    "method": row[11],
                    "specification": None if spec is None else judge.describe(spec),
                    "passes": None if spec is None else judge.passes(spec, value, outcome),
                }
            )

    def _read_certificates(
        self, certificates: list[tuple[Any, ...]], lots: list[dict[str, Any]]
    ) -> None:
        """Each lot's certificates (newest first, each saying whether it is current) and its
        manufacturer's current quality certificates, as LotCertificateOutputSerializer writes
        them."""
        time = self.time
        quality: dict[int, list[tuple[tuple[str, int, int], dict[str, Any]]]] = {}
        for row in certificates:
            lot_id, manufacturer_id, certificate_id, kind = row[:4]
            valid_from = row[6]
            certificate = {
                "id": certificate_id,
                "kind": kind,
                "issuer": row[4],
                "number": row[5],
                "valid_from": date_text(valid_from),
                "valid_until": date_text(row[7]),
                "sha256": row[8],
                "supersedes": row[9],
                "current": row[11] is None,
                "uploaded_at": time(row[10]),
            }
            if lot_id is not None:
                self.lots[lot_id]["certificates"].append(certificate)
            else:
                # As _quality_certificates orders them: by kind, newest validity first.
                order = (kind, -valid_from.toordinal(), certificate_id)
                quality.setdefault(manufacturer_id, []).append((order, certificate))
        for held in quality.values():
            held.sort(key=itemgetter(0))
        for entry in lots:
            entry["manufacturer_certificates"] = [
                certificate for _, certificate in quality.get(entry["manufacturer"]["id"], [])
            ]


class _QcJudge:
    """A QC result's value, specification and verdict as LotQcResultOutputSerializer gives them
    (by its own value field, the model's `describe` and `qc_result_passes`), each worked out once
    per value and specification: a trace's lots repeat the same few."""

    def __init__(self) -> None:
        self._specifications: dict[int, QcSpecification] = {}
        self._descriptions: dict[int, str] = {}
        self._verdicts: dict[tuple[int, Decimal | None, str], bool] = {}
        self._numbers: dict[Decimal, str] = {}

    def numeric(self, value: Decimal) -> str:
        number = self._numbers.get(value)
        if number is None:
            number = self._numbers[value] = _NUMERIC_VALUE.to_representation(value)
        return number

    def specification(
        self, row: tuple[Any, ...], test_id: int, kind: str, unit: str
    ) -> QcSpecification | None:
        spec_id, min_value, max_value, expected_outcome = row
        if spec_id is None:
            return None
        spec = self._specifications.get(spec_id)
        if spec is None:
            # Built as the ORM builds a row it read (from_db), which costs half a constructor.
            spec = QcSpecification.from_db(
                None,
                ["id", "min_value", "max_value", "expected_outcome"],
                [spec_id, min_value, max_value, expected_outcome],
            )
            spec.test = QcTest.from_db(None, ["id", "kind", "unit"], [test_id, kind, unit])
            self._specifications[spec_id] = spec
        return spec

    def describe(self, spec: QcSpecification) -> str:
        description = self._descriptions.get(spec.pk)
        if description is None:
            description = self._descriptions[spec.pk] = spec.describe()
        return description

    def passes(self, spec: QcSpecification, value: Decimal | None, outcome: str) -> bool:
        key = (spec.pk, value, outcome)
        verdict = self._verdicts.get(key)
        if verdict is None:
            result = LotQcResult.from_db(None, ["numeric_value", "outcome"], [value, outcome])
            verdict = self._verdicts[key] = qc_result_passes(spec, result)
        return verdict


def backward_csv_source(
    treatments: QuerySet[Treatment],
) -> QuerySet[Treatment, tuple[Any, ...]]:
    """A row per treatment line as BACKWARD_CSV_HEADER names its cells (a treatment without lines:
    one row, its line's cells empty), each lot's donor codes
    (by code) and certificates (`kind:number`, newest first) gathered by the database."""
    lot = OuterRef("lines__lot_id")
    return (
        treatments.annotate(
            lot_sec=sec_eye_readable("lines__lot__"),
            donor_codes=Subquery(
                LotDonor.objects.filter(lot_id=lot)
                .order_by()
                .values("lot_id")
                .annotate(codes=StringAgg("donor__code", ";", order_by="donor__code"))
                .values("codes")
            ),
            certificate_names=Subquery(
                Certificate.objects.filter(lot_id=lot)
                .order_by()
                .values("lot_id")
                .annotate(
                    names=StringAgg(
                        Concat("kind", Value(":"), "number"), ";", order_by="-uploaded_at"
                    )
                )
                .values("names")
            ),
        )
        .values_list(
            "id",
            "performed_at",
            "clinic__name",
            "patient__reference",
            "practitioner__name",
            "lines__lot_id",
            "lines__lot__lot_number",
            "lines__lot__status",
            "lot_sec",
            "lines__lot__product__name",
            "lines__lot__manufacturer__legal_name",
            "lines__units",
            Coalesce("donor_codes", Value(""), output_field=TextField()),
            Coalesce("certificate_names", Value(""), output_field=TextField()),
        )
        .order_by("performed_at", "pk", "lines__id")
    )


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
        query = _backward_query(request)
        patient = None
        if query.get("patient"):
            patient = backward_patient(user=request.user, patient_id=query["patient"])
            if patient is None:
                raise NotFound(_("No such %(what)s.") % {"what": "patient"}, code="not_found")
        scope = {"patient_id": query.get("patient"), "treatment_id": query.get("treatment")}
        if self.wants_csv(request):
            rows = list(backward_csv_source(backward_treatments(user=request.user, **scope)))
            _found(query, rows)
            # A treatment without lines comes as one row with its line's cells empty.
            lines = [row for row in rows if row[BACKWARD_CSV_HEADER.index("lot")] is not None]
            return csv_response("trace-backward.csv", BACKWARD_CSV_HEADER, lines)
        answer = _BackwardAnswer(backward_lines(user=request.user, **scope))
        _found(query, answer.treatments)
        return Response(answer.answer(patient))


def _backward_query(request: Request) -> dict[str, Any]:
    params = request.query_params
    if "treatment" not in params and "patient" in params:
        ids = plain_ids([params["patient"]])
        if ids is not None:
            return {"patient": ids[0]}  # as the serializer reads it (plain_ids)
    query: dict[str, Any] = validated(BackwardTraceQuerySerializer, params.dict())
    return query


def _found(query: dict[str, Any], treatments: Sized) -> None:
    if query.get("treatment") and not treatments:
        raise NotFound(_("No such treatment."), code="not_found")
