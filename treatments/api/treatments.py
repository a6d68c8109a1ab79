"""Treatments: record one (lots named by id or by scanning the vial), list them and read one with
its lots, consent and adverse events. Another clinic's treatment is a 404."""

from __future__ import annotations

from typing import Any, cast

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Prefetch, QuerySet
from django.utils.translation import gettext as _
from django_filters.rest_framework import DjangoFilterBackend
from django_filters.utils import translate_validation
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.exceptions import ErrorDetail
from rest_framework.request import Request
from rest_framework.response import Response

from common.api_fields import (
    BIGINT_MAX,
    INTEGER_MAX,
    LIST_ERRORS,
    READ_ERRORS,
    CopiedFieldsSerializer,
    TextChoiceField,
    error_responses,
)
from common.api_views import Api, ListApi, get_or_404, validated
from common.errors import DomainError, Problem
from common.postgresql.prepared import Prepared
from lots.api import ProductRefSerializer
from lots.models import Route
from lots.scan import scan_resolve
from providers.access import access_for
from providers.api import ClinicRefSerializer
from providers.models import Clinic, Practitioner
from providers.permissions import CLINIC_STAFF_PERMISSIONS
from stock.api import OffsetDateTimeField
from treatments import services
from treatments.api.adverse_events import AdverseEventOutputSerializer
from treatments.api.base import SCAN_MAX_LENGTH, TEXT_MAX_LENGTH, treatments_for
from treatments.api.consent_texts import ConsentTextRefSerializer
from treatments.api.patients import PatientRefSerializer
from treatments.filters import TreatmentFilter
from treatments.models import (
    AdverseEvent,
    ConsentText,
    Indication,
    Patient,
    Treatment,
    TreatmentLine,
)
from treatments.selectors import treatments_by_lines

LINES_MAX = 50


class PractitionerRefSerializer(serializers.ModelSerializer[Practitioner]):
    class Meta:
        model = Practitioner
        fields = ["id", "name"]
        read_only_fields = fields


class TreatmentLineOutputSerializer(serializers.ModelSerializer[TreatmentLine]):
    lot_number = serializers.CharField(source="lot.lot_number", read_only=True)
    product = ProductRefSerializer(source="lot.product", read_only=True)

    class Meta:
        model = TreatmentLine
        fields = ["lot", "lot_number", "product", "units", "stock_movement"]
        read_only_fields = fields


class ConsentOutputSerializer(serializers.Serializer[Any]):
    consent_text = ConsentTextRefSerializer()
    taken_by = serializers.CharField(source="consent_taken_by.username")
    taken_at = serializers.DateTimeField(source="consent_taken_at")
    regulatory_statement = serializers.CharField(
        source="consent_regulatory_statement",
        help_text="What the patient was told of each product's regulatory basis.",
    )


class TreatmentOutputSerializer(serializers.ModelSerializer[Treatment]):
    clinic = ClinicRefSerializer(read_only=True)
    patient = PatientRefSerializer(read_only=True)
    practitioner = PractitionerRefSerializer(read_only=True)
    lines = TreatmentLineOutputSerializer(many=True, read_only=True)
    consent = serializers.SerializerMethodField()
    recorded_by = serializers.CharField(source="recorded_by.username", read_only=True)

    class Meta:
        model = Treatment
        fields = [
            "id",
            "clinic",
            "patient",
            "practitioner",
            "performed_at",
            "indication",
            "route",
            "anatomical_site",
            "notes",
            "lines",
            "consent",
            "recorded_by",
            "recorded_at",
        ]
        read_only_fields = fields

    @extend_schema_field(ConsentOutputSerializer(allow_null=True))
    def get_consent(self, treatment: Treatment) -> dict[str, Any] | None:
        if treatment.consent_text_id is None:
            return None
        return ConsentOutputSerializer(treatment).data


class TreatmentDetailOutputSerializer(TreatmentOutputSerializer):
    adverse_events = AdverseEventOutputSerializer(many=True, read_only=True)

    class Meta(TreatmentOutputSerializer.Meta):
        fields = [*TreatmentOutputSerializer.Meta.fields, "adverse_events"]
        read_only_fields = fields


class LineListSerializer(serializers.ListSerializer[Any]):
    """Names a line's errors `lines[0].units`, the way treatment_record names its own
    (`lines[0].lot`), so a client finds every problem of a line under one path, whether the
    input or the rules refused it (DRF's own form would be `lines.0.units`)."""

    def to_internal_value(self, data: Any) -> Any:
        try:
            return super().to_internal_value(data)
        except serializers.ValidationError as error:
            detail: Any = error.detail
            if isinstance(detail, dict) and all(isinstance(key, int) for key in detail):
                raise serializers.ValidationError(
                    [detail.get(index, {}) for index in range(len(data))]
                ) from error
            raise


class TreatmentLineInputSerializer(CopiedFieldsSerializer):
    # An id only: treatment_record reads every lot afresh (one statement for all the lines) and
    # refuses an unknown one at its line.
    lot = serializers.IntegerField(
        min_value=1, max_value=BIGINT_MAX, required=False, help_text="Lot id; or give `scan`."
    )
    scan = serializers.CharField(
        max_length=SCAN_MAX_LENGTH,
        required=False,
        trim_whitespace=False,
        help_text="The vial's GS1 DataMatrix as scanned (raw, GS as \\u001d) or its "
        "human-readable form; or give `lot`.",
    )
    units = serializers.IntegerField(min_value=1, max_value=INTEGER_MAX)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("lot" in attrs) == ("scan" in attrs):
            raise serializers.ValidationError(
                _("Name the lot by its id (`lot`) or by a scan (`scan`), not both."),
                code="lot_or_scan_required",
            )
        return attrs

    class Meta:
        list_serializer_class = LineListSerializer


# How a NamedRowField parses its id (as `common.api_fields.id_field` does): only its
# to_internal_value is called, so one instance serves every field.
_ID = serializers.IntegerField(min_value=1, max_value=BIGINT_MAX)


_NO_ROWS: dict[type[Any], QuerySet[Any]] = {}


def _no_rows(model: type[Any]) -> QuerySet[Any]:
    """A queryset a NamedRowField declares and never reads (DRF clones it before any use)."""
    queryset = _NO_ROWS.get(model)
    if queryset is None:
        queryset = _NO_ROWS[model] = model.objects.none()
    return queryset


class NamedRowField(serializers.PrimaryKeyRelatedField[Any]):
    """A row of `model` named by its id, taken and documented as `id_field` takes it, whose row is
    read with the other rows the body names: `TreatmentRecordInputSerializer` reads them all in
    one statement and answers an unknown id as this field would (`does_not_exist`)."""

    def __init__(self, model: type[Any], **kwargs: Any) -> None:
        self.model = model
        # DRF builds every field of a serializer afresh for each request (it copies the declared
        # ones by calling their constructors again): the id's parser and the empty queryset are
        # the same for every copy, and neither is bound nor changed, so the copies share them.
        super().__init__(queryset=_no_rows(model), pk_field=_ID, **kwargs)

    def to_internal_value(self, data: Any) -> Any:
        # The id as PrimaryKeyRelatedField parses it, noted for the root serializer's one read.
        assert self.pk_field is not None  # noqa: S101 - __init__ sets it
        named: int = self.pk_field.to_internal_value(data)
        self.root.__dict__.setdefault("named_ids", {})[self] = named
        return named


class ConsentInputSerializer(CopiedFieldsSerializer):
    consent_text = NamedRowField(ConsentText, help_text="Consent text id.")
    taken_at = OffsetDateTimeField(help_text="When the patient consented; before the treatment.")


class TreatmentRecordInputSerializer(CopiedFieldsSerializer):
    clinic = NamedRowField(Clinic, help_text="Clinic id.")
    patient = NamedRowField(Patient, help_text="Patient id, of that clinic.")
    practitioner = NamedRowField(Practitioner, help_text="Practitioner id.")
    performed_at = OffsetDateTimeField()
    indication = TextChoiceField(choices=Indication.choices)
    route = TextChoiceField(choices=Route.choices)
    anatomical_site = serializers.CharField(max_length=200)
    notes = serializers.CharField(max_length=TEXT_MAX_LENGTH, allow_blank=True, default="")
    lines = TreatmentLineInputSerializer(  # type: ignore[call-arg]  # ListSerializer takes it
        many=True, allow_empty=True, max_length=LINES_MAX
    )
    consent = ConsentInputSerializer(allow_null=True, default=None)

    def to_internal_value(self, data: Any) -> Any:
        """The fields' own checks, then the clinic, patient, practitioner and consent text the
        body names, read in one statement; an unknown id is refused at its field beside every
        other error of the body, in the fields' order, as a PrimaryKeyRelatedField would."""
        self.__dict__["named_ids"] = {}
        refused: serializers.ValidationError | None = None
        values: Any = None
        try:
            values = super().to_internal_value(data)
        except serializers.ValidationError as error:
            refused = error
        named: dict[NamedRowField, int] = self.__dict__["named_ids"]
        request = self.context.get("request")
        rows = _named_rows(
            {field.model: pk for field, pk in named.items()},
            user=None if request is None else request.user,
        )
        unknown = [(field, pk) for field, pk in named.items() if rows.get(field.model) is None]
        if unknown:
            raise serializers.ValidationError(_with_unknown(self, refused, unknown))
        if refused is not None:
            raise refused
        for name in ("clinic", "patient", "practitioner"):
            values[name] = rows[self.fields[name].model]  # type: ignore[attr-defined]
        if values["consent"] is not None:
            values["consent"]["consent_text"] = rows[ConsentText]
        return values


def _with_unknown(
    serializer: serializers.Serializer[Any],
    refused: serializers.ValidationError | None,
    unknown: list[tuple[NamedRowField, int]],
) -> dict[str, Any]:
    """The body's errors with `does_not_exist` at each unknown id, every level in its fields'
    order as DRF lists them (whatever else an error names keeps its place after them)."""
    errors: dict[str, Any] = {}
    if refused is not None:
        if not isinstance(refused.detail, dict):
            raise refused
        errors = dict(refused.detail)
    for field, pk in unknown:
        detail = [
            ErrorDetail(
                str(field.error_messages["does_not_exist"]).format(pk_value=pk),
                code="does_not_exist",
            )
        ]
        parent = cast(serializers.Serializer[Any], field.parent)
        if parent is serializer:
            errors[cast(str, field.field_name)] = detail
        else:
            at = cast(str, parent.field_name)
            nested = dict(errors.get(at) or {})
            nested[cast(str, field.field_name)] = detail
            errors[at] = _ordered(nested, parent.fields)
    return _ordered(errors, serializer.fields)


def _ordered(errors: dict[str, Any], fields: Any) -> dict[str, Any]:
    first = {name: errors[name] for name in fields if name in errors}
    return {**first, **{name: error for name, error in errors.items() if name not in first}}


# The four rows a treatment's body names, read in one statement rather than one query each: every
# recording reads them, and four compiled lookups cost more than the rules that follow. The
# columns are the models' own, in their order, so each row becomes the instance the ORM would
# build (none of these fields converts its value).
_NAMED_MODELS: tuple[type[Any], ...] = (Clinic, Patient, Practitioner, ConsentText)
_NAMED_SQL = "SELECT {columns} FROM (SELECT 1) AS one {joins}".format(  # noqa: S608 - our names
    columns=", ".join(
        f'{model._meta.model_name}."{field.column}"'
        for model in _NAMED_MODELS
        for field in model._meta.concrete_fields
    ),
    joins=" ".join(
        f"LEFT JOIN {model._meta.db_table} {model._meta.model_name} "
        f"ON {model._meta.model_name}.id = %s"
        for model in _NAMED_MODELS
    ),
)
_NAMED = Prepared(_NAMED_SQL, ["bigint"] * len(_NAMED_MODELS))  # common.postgresql.prepared


def _named_rows(ids: dict[type[Any], int], *, user: Any) -> dict[type[Any], Any]:
    """The clinic, patient, practitioner and consent text named by `ids`, by model; None for an
    id that names no row. A patient at a clinic the user does not see is none, as
    `patient_list(user=...)` scopes it (providers.access decides); so is every patient when there
    is no user to scope by."""
    if not ids:
        return {}
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        _NAMED.execute(
            cursor,
            [
                ids.get(model) if 0 < ids.get(model, 0) <= BIGINT_MAX else None
                for model in _NAMED_MODELS
            ],
        )
        values = cursor.fetchone()
    rows: dict[type[Any], Any] = {}
    at = 0
    for model in _NAMED_MODELS:
        fields = model._meta.concrete_fields
        row = values[at : at + len(fields)]
        at += len(fields)
        rows[model] = (
            None
            if row[0] is None
            else model.from_db(DEFAULT_DB_ALIAS, [field.attname for field in fields], row)
        )
    patient = rows[Patient]
    if patient is not None and (
        user is None or not access_for(user).sees_clinic(patient.clinic_id)
    ):
        rows[Patient] = None
    elif patient is not None and rows[Clinic] is not None and patient.clinic_id == rows[Clinic].pk:
        Patient.clinic.field.set_cached_value(patient, rows[Clinic])
    return rows


def _treatment_detail(request: Request, treatment_id: int) -> dict[str, Any]:
    treatments = treatments_for(request).prefetch_related(
        Prefetch(
            "adverse_events",
            queryset=AdverseEvent.objects.select_related("lot", "reported_by").order_by("pk"),
        )
    )
    treatment = get_or_404(treatments, treatment_id, what="treatment")
    return TreatmentDetailOutputSerializer(treatment).data


# The answer to a treatment just recorded is written as TreatmentDetailOutputSerializer documents
# it, from what was written, without DRF's field by field machinery: building its nested
# serializers cost more than several of the statements that recorded the treatment. A test holds
# the two to the same output.
_TIME = serializers.DateTimeField()


def treatment_line_json(line: TreatmentLine) -> dict[str, Any]:
    """One line as `TreatmentLineOutputSerializer` writes it, from the line with its lot and
    product already read."""
    return {
        "lot": line.lot_id,
        "lot_number": line.lot.lot_number,
        "product": {
            "id": line.lot.product.pk,
            "name": line.lot.product.name,
            "gtin": line.lot.product.gtin,
        },
        "units": line.units,
        "stock_movement": line.stock_movement_id,
    }


def recorded_answer(treatment: Treatment) -> dict[str, Any]:
    """A treatment as treatment_record returns it (its lines known, no adverse event yet), as
    TreatmentDetailOutputSerializer writes it."""
    # A database constraint keeps the three consent fields all set or all empty.
    text, taken_by, taken_at = (
        treatment.consent_text,
        treatment.consent_taken_by,
        treatment.consent_taken_at,
    )
    consent = None
    if text is not None and taken_by is not None and taken_at is not None:
        consent = {
            "consent_text": {
                "id": text.pk,
                "code": text.code,
                "version": text.version,
                "title": text.title,
            },
            "taken_by": taken_by.username,
            "taken_at": _TIME.to_representation(taken_at),
            "regulatory_statement": treatment.consent_regulatory_statement,
        }
    return {
        "id": treatment.pk,
        "clinic": {"id": treatment.clinic.pk, "name": treatment.clinic.name},
        "patient": {"id": treatment.patient.pk, "reference": treatment.patient.reference},
        "practitioner": {"id": treatment.practitioner.pk, "name": treatment.practitioner.name},
        "performed_at": _TIME.to_representation(treatment.performed_at),
        "indication": treatment.indication,
        "route": treatment.route,
        "anatomical_site": treatment.anatomical_site,
        "notes": treatment.notes,
        "lines": [treatment_line_json(line) for line in treatment.lines.all()],
        "consent": consent,
        "recorded_by": treatment.recorded_by.username,
        "recorded_at": _TIME.to_representation(treatment.recorded_at),
        "adverse_events": [],
    }


def _line_requests(lines: list[dict[str, Any]]) -> list[services.LineRequest]:
    """Lots named by id as they are; scans resolved to their lot. A scan that resolves to no lot
    (or to a lot whose label disagrees with the record) is reported at its line, every such line
    at once, with the status the scan's own problem carries (the most severe when they differ)."""
    requests: list[services.LineRequest] = []
    problems: list[Problem] = []
    statuses: list[int] = []
    for index, line in enumerate(lines):
        if "scan" not in line:
            requests.append(services.LineRequest(lot=line["lot"], units=line["units"]))
            continue
        try:
            lot = scan_resolve(line["scan"]).lot
        except DomainError as error:
            problems.extend(
                Problem(problem.code, problem.message, f"lines[{index}].scan")
                for problem in error.problems
            )
            statuses.append(error.status)
            continue
        requests.append(services.LineRequest(lot=lot, units=line["units"]))
    if problems:
        raise DomainError(problems, status=max(statuses))
    return requests


_TREATMENT_ERRORS = error_responses(400, 401, 403, 404, 409)


class TreatmentsApi(ListApi):
    permission_classes = CLINIC_STAFF_PERMISSIONS
    serializer_class = TreatmentOutputSerializer
    filterset_class = TreatmentFilter

    def get_queryset(self) -> QuerySet[Treatment]:
        if getattr(self, "swagger_fake_view", False):
            return Treatment.objects.none()  # schema generation: no user to scope by
        return treatments_for(self.request)

    def filter_queryset(self, queryset: QuerySet[Any]) -> Any:
        """The filters' treatments; a lot's counted and paged from its lines (treatments_by_lines):
        joining a heavy lot's every line to its treatment took 0.4 s for 10^5 lines."""
        filterset = DjangoFilterBackend().get_filterset(self.request, queryset, self)
        if not filterset.is_valid():
            raise translate_validation(filterset.errors)
        lines = filterset.lines()
        if lines is None:
            return filterset.qs
        return treatments_by_lines(treatments=queryset, lines=lines, user=self.request.user)

    @extend_schema(
        summary="List treatments at the clinics you may see, newest first",
        responses={200: TreatmentOutputSerializer, **LIST_ERRORS},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Record a treatment; its units are drawn from the clinic's accepted stock",
        description="Each line names its lot by id (`lot`) or by the vial's scanned GS1 "
        "DataMatrix (`scan`). A scan that cannot be resolved is reported at its line "
        "(`lines[0].scan`) with its own code and status (400 malformed, 404 unknown, 409 label "
        "disagrees with the record). A refused treatment answers 409 listing every reason: "
        "lot not released, recalled, on hold or expired, too little stock, practitioner not a "
        "member or not licensed, product not authorised, route not permitted, consent missing. "
        "Consent is taken by you, the caller.",
        request=TreatmentRecordInputSerializer,
        responses={201: TreatmentDetailOutputSerializer, **_TREATMENT_ERRORS},
    )
    def post(self, request: Request) -> Response:
        data = validated(TreatmentRecordInputSerializer, request.data, context={"request": request})
        lines = _line_requests(data.pop("lines"))
        consent = data.pop("consent")
        treatment = services.treatment_record(
            actor=request.user,
            lines=lines,
            consent=None
            if consent is None
            else services.ConsentRequest(
                consent_text=consent["consent_text"],
                taken_by=request.user,
                taken_at=consent["taken_at"],
            ),
            **data,
        )
        # The treatment as written: nothing is read back.
        return Response(recorded_answer(treatment), status=status.HTTP_201_CREATED)


class TreatmentDetailApi(Api):
    permission_classes = CLINIC_STAFF_PERMISSIONS

    @extend_schema(
        summary="One treatment with its lots, consent and adverse events",
        responses={200: TreatmentDetailOutputSerializer, **READ_ERRORS},
    )
    def get(self, request: Request, treatment_id: int) -> Response:
        return Response(_treatment_detail(request, treatment_id))
