"""REST API for patients, consent texts, treatments (by lot id or by scanning the vial), adverse
events and scan resolution. One view per use case; every read is scoped to the clinics the caller
may see, and another clinic's patient or treatment is a 404, never a hint that it exists.

Patient contact details have their own endpoint, open only to the patient's own clinic staff; no
other response carries them (DESIGN: auditors see pseudonymous references only).
"""

from __future__ import annotations

import datetime
from typing import Any, cast

from django.db.models import Prefetch, QuerySet
from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from audit.models import ReadVia
from audit.services import contact_data_read_record
from common.api_fields import (
    CREATE_ERRORS,
    INTEGER_MAX,
    LIST_ERRORS,
    READ_ERRORS,
    WRITE_ERRORS,
    ErrorItemSerializer,
    TextChoiceField,
    error_responses,
    id_field,
)
from common.api_views import Api, ListApi, get_or_404, validated
from common.errors import DomainError, Problem
from lots.api import ProductRefSerializer
from lots.models import Lot, LotStatus, Route
from lots.scan import scan_resolve
from providers.access import access_for
from providers.api import ClinicRefSerializer
from providers.models import Clinic, Practitioner, Role
from providers.permissions import (
    CLINIC_STAFF_PERMISSIONS,
    HasActiveRole,
)
from providers.selectors import clinic_list
from stock.api import LotRefSerializer, OffsetDateTimeField
from treatments import services
from treatments.filters import (
    SERIOUS,
    AdverseEventFilter,
    ConsentTextFilter,
    PatientFilter,
    TreatmentFilter,
)
from treatments.models import (
    AdverseEvent,
    ConsentText,
    Indication,
    Patient,
    PatientContact,
    Treatment,
    TreatmentLine,
)
from treatments.selectors import patient_list, treatment_list, visible_clinic_ids

TEXT_MAX_LENGTH = 5000
SCAN_MAX_LENGTH = 200
LINES_MAX = 50
# Who may read a patient's contact details: clinic roles at the patient's own clinic.
CONTACT_READERS = (Role.CLINIC_ADMINISTRATOR.value, Role.CLINICIAN.value)

# ---------------------------------------------------------------------------------------------
# Output serializers


class PatientOutputSerializer(serializers.ModelSerializer[Patient]):
    clinic = ClinicRefSerializer(read_only=True)

    class Meta:
        model = Patient
        fields = ["id", "reference", "clinic", "created_at"]
        read_only_fields = fields


class PatientContactOutputSerializer(serializers.ModelSerializer[PatientContact]):
    class Meta:
        model = PatientContact
        fields = ["patient", "full_name", "date_of_birth", "phone", "email", "postal_address"]
        read_only_fields = fields


class ConsentTextOutputSerializer(serializers.ModelSerializer[ConsentText]):
    class Meta:
        model = ConsentText
        fields = ["id", "code", "version", "title", "body", "active"]
        read_only_fields = fields


class ConsentTextRefSerializer(serializers.ModelSerializer[ConsentText]):
    class Meta:
        model = ConsentText
        fields = ["id", "code", "version", "title"]
        read_only_fields = fields


class PractitionerRefSerializer(serializers.ModelSerializer[Practitioner]):
    class Meta:
        model = Practitioner
        fields = ["id", "name"]
        read_only_fields = fields


class PatientRefSerializer(serializers.ModelSerializer[Patient]):
    class Meta:
        model = Patient
        fields = ["id", "reference"]
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


class AdverseEventOutputSerializer(serializers.ModelSerializer[AdverseEvent]):
    lot = LotRefSerializer(read_only=True, allow_null=True, help_text="The suspected lot.")
    serious = serializers.BooleanField(source="is_serious", read_only=True)
    reported_by = serializers.CharField(source="reported_by.username", read_only=True)

    class Meta:
        model = AdverseEvent
        fields = [
            "id",
            "treatment",
            "lot",
            "onset_on",
            "description",
            "serious",
            *SERIOUS,
            "reported_by",
            "reported_at",
        ]
        read_only_fields = fields


class AdverseEventListOutputSerializer(AdverseEventOutputSerializer):
    clinic = ClinicRefSerializer(source="treatment.clinic", read_only=True)
    patient_reference = serializers.CharField(source="treatment.patient.reference", read_only=True)
    performed_at = serializers.DateTimeField(source="treatment.performed_at", read_only=True)

    class Meta(AdverseEventOutputSerializer.Meta):
        fields = [
            "id",
            "treatment",
            "performed_at",
            "clinic",
            "patient_reference",
            *AdverseEventOutputSerializer.Meta.fields[2:],
        ]
        read_only_fields = fields


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


class ScannedLotSerializer(serializers.ModelSerializer[Lot]):
    product = ProductRefSerializer(read_only=True)

    class Meta:
        model = Lot
        fields = ["id", "lot_number", "status", "expires_on", "product"]
        read_only_fields = fields


class ScanResolutionOutputSerializer(serializers.Serializer[Any]):
    gtin = serializers.CharField(help_text="GTIN-14 of the product.")
    lot_number = serializers.CharField(allow_null=True)
    expiry = serializers.DateField(allow_null=True, help_text="From (17); day 00 is month end.")
    serial = serializers.CharField(allow_null=True)
    lot = ScannedLotSerializer()
    usable = serializers.BooleanField(help_text="Released and not expired today: no warnings.")
    warnings = ErrorItemSerializer(
        many=True, help_text="Why the vial must not be used now; empty when it may."
    )


# ---------------------------------------------------------------------------------------------
# Input serializers


class PatientContactInputSerializer(serializers.Serializer[Any]):
    full_name = serializers.CharField(max_length=200)
    date_of_birth = serializers.DateField(allow_null=True, default=None)
    phone = serializers.CharField(max_length=40, allow_blank=True, default="")
    email = serializers.EmailField(max_length=254, allow_blank=True, default="")
    postal_address = serializers.CharField(max_length=TEXT_MAX_LENGTH, allow_blank=True, default="")


class PatientCreateInputSerializer(serializers.Serializer[Any]):
    clinic = id_field(Clinic.objects.all(), help_text="Clinic id.")
    reference = serializers.CharField(
        max_length=40,
        help_text="Pseudonymous, unique within the clinic; never a name or record number.",
    )
    contact = PatientContactInputSerializer(
        allow_null=True,
        default=None,
        help_text="Identifying details, kept apart and shown only to the clinic's staff.",
    )


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


class TreatmentLineInputSerializer(serializers.Serializer[Any]):
    lot = id_field(Lot.objects.all(), required=False, help_text="Lot id; or give `scan`.")
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
                "Name the lot by its id (`lot`) or by a scan (`scan`), not both.",
                code="lot_or_scan_required",
            )
        return attrs

    class Meta:
        list_serializer_class = LineListSerializer


class ConsentInputSerializer(serializers.Serializer[Any]):
    consent_text = id_field(ConsentText.objects.all(), help_text="Consent text id.")
    taken_at = OffsetDateTimeField(help_text="When the patient consented; before the treatment.")


class TreatmentRecordInputSerializer(serializers.Serializer[Any]):
    clinic = id_field(Clinic.objects.all(), help_text="Clinic id.")
    patient = id_field(Patient.objects.none(), help_text="Patient id, of that clinic.")
    practitioner = id_field(Practitioner.objects.all(), help_text="Practitioner id.")
    performed_at = OffsetDateTimeField()
    indication = TextChoiceField(choices=Indication.choices)
    route = TextChoiceField(choices=Route.choices)
    anatomical_site = serializers.CharField(max_length=200)
    notes = serializers.CharField(max_length=TEXT_MAX_LENGTH, allow_blank=True, default="")
    lines = TreatmentLineInputSerializer(  # type: ignore[call-arg]  # ListSerializer takes it
        many=True, allow_empty=True, max_length=LINES_MAX
    )
    consent = ConsentInputSerializer(allow_null=True, default=None)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None:
            # Another clinic's patient is "does not exist", never "belongs elsewhere".
            patient = cast(serializers.PrimaryKeyRelatedField[Patient], self.fields["patient"])
            # The stubs type `queryset` through the Manager descriptor; a QuerySet is what DRF
            # takes here.
            patient.queryset = patient_list(user=request.user)  # type: ignore[arg-type]


class AdverseEventInputSerializer(serializers.Serializer[Any]):
    onset_on = serializers.DateField()
    description = serializers.CharField(max_length=TEXT_MAX_LENGTH)
    lot = id_field(
        Lot.objects.all(),
        allow_null=True,
        default=None,
        help_text="Lot id of the suspected lot, one of the treatment's.",
    )
    results_in_death = serializers.BooleanField(default=False)
    life_threatening = serializers.BooleanField(default=False)
    hospitalisation = serializers.BooleanField(default=False)
    disability = serializers.BooleanField(default=False)
    intervention_required = serializers.BooleanField(
        default=False, help_text="Medical or surgical intervention to prevent permanent harm."
    )


class ScanInputSerializer(serializers.Serializer[Any]):
    scan = serializers.CharField(
        max_length=SCAN_MAX_LENGTH,
        trim_whitespace=False,
        help_text="The GS1 DataMatrix as scanned (`]d2` and GS as \\u001d) or its "
        "human-readable form `(01)...(17)...(10)...`.",
    )
    clinic = id_field(
        Clinic.objects.none(),
        required=False,
        allow_null=True,
        default=None,
        help_text="Clinic id where the vial is about to be used: expiry is judged on that "
        "clinic's calendar day. Without it, on the day in UTC.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None:
            # A clinic the caller cannot see is "does not exist", as everywhere else.
            clinic = cast(serializers.PrimaryKeyRelatedField[Clinic], self.fields["clinic"])
            clinic.queryset = clinic_list(user=request.user)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Patients


def _patients(request: Request) -> QuerySet[Patient]:
    return patient_list(user=request.user)


class PatientsApi(ListApi):
    permission_classes = CLINIC_STAFF_PERMISSIONS
    serializer_class = PatientOutputSerializer
    filterset_class = PatientFilter

    def get_queryset(self) -> QuerySet[Patient]:
        if getattr(self, "swagger_fake_view", False):
            return Patient.objects.none()  # schema generation: no user to scope by
        return _patients(self.request)

    @extend_schema(
        summary="List the patients of the clinics you may see (references only)",
        responses={200: PatientOutputSerializer, **LIST_ERRORS},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Register a patient, optionally with contact details",
        description="Needs the clinician or clinic administrator role at the clinic.",
        request=PatientCreateInputSerializer,
        responses={201: PatientOutputSerializer, **CREATE_ERRORS},
    )
    def post(self, request: Request) -> Response:
        data = validated(PatientCreateInputSerializer, request.data)
        patient = services.patient_create(actor=request.user, **data)
        return Response(
            PatientOutputSerializer(_patients(request).get(pk=patient.pk)).data,
            status=status.HTTP_201_CREATED,
        )


class PatientDetailApi(Api):
    permission_classes = CLINIC_STAFF_PERMISSIONS

    @extend_schema(
        summary="One patient (reference and clinic, never contact details)",
        responses={200: PatientOutputSerializer, **READ_ERRORS},
    )
    def get(self, request: Request, patient_id: int) -> Response:
        patient = get_or_404(_patients(request), patient_id, what="patient")
        return Response(PatientOutputSerializer(patient).data)


class PatientContactApi(Api):
    permission_classes = CLINIC_STAFF_PERMISSIONS

    @extend_schema(
        summary="A patient's contact details, for the patient's own clinic staff only",
        description="Only a clinic administrator or clinician of the patient's clinic may read "
        "them; quality managers and auditors are refused (403). Every read is recorded (see "
        "/api/v1/audit/contact-reads/).",
        responses={200: PatientContactOutputSerializer, **READ_ERRORS},
    )
    def get(self, request: Request, patient_id: int) -> Response:
        patient = get_or_404(_patients(request), patient_id, what="patient")
        if not any(
            role in CONTACT_READERS and clinic_id == patient.clinic_id
            for role, clinic_id in access_for(request).memberships
        ):
            raise DomainError.single(
                "role_required",
                "Contact details are shown only to the clinic administrators and clinicians of "
                "the patient's clinic.",
                status=403,
            )
        contact = PatientContact.objects.filter(patient=patient).first()
        if contact is None:
            raise DomainError.single(
                "patient_contact_missing",
                "No contact details are on record for this patient.",
                status=404,
            )
        # DESIGN rule 7: recorded before the details leave, with who read whose.
        contact_data_read_record(
            user=request.user,
            patients=[patient],
            what=f"patient {patient.reference} contact",
            via=ReadVia.API,
        )
        response = Response(PatientContactOutputSerializer(contact).data)
        response["Cache-Control"] = "no-store"
        return response


# ---------------------------------------------------------------------------------------------
# Consent texts


class ConsentTextsApi(ListApi):
    permission_classes = CLINIC_STAFF_PERMISSIONS
    serializer_class = ConsentTextOutputSerializer
    filterset_class = ConsentTextFilter

    def get_queryset(self) -> QuerySet[ConsentText]:
        # No consent-text selector exists yet; this read is that one.
        return ConsentText.objects.filter(active=True).order_by("code", "-version")

    @extend_schema(
        summary="The consent texts in use (active versions)",
        responses={200: ConsentTextOutputSerializer, **LIST_ERRORS},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


# ---------------------------------------------------------------------------------------------
# Treatments


def _treatments(request: Request) -> QuerySet[Treatment]:
    # treatment_list() joins clinic, patient, practitioner and the lines' lots; the output also
    # names who took consent and who recorded it.
    return treatment_list(user=request.user).select_related(
        "consent_text", "consent_taken_by", "recorded_by"
    )


def _treatment_detail(request: Request, treatment_id: int) -> dict[str, Any]:
    treatments = _treatments(request).prefetch_related(
        Prefetch(
            "adverse_events",
            queryset=AdverseEvent.objects.select_related("lot", "reported_by").order_by("pk"),
        )
    )
    treatment = get_or_404(treatments, treatment_id, what="treatment")
    return TreatmentDetailOutputSerializer(treatment).data


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
        return _treatments(self.request)

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
        return Response(_treatment_detail(request, treatment.pk), status=status.HTTP_201_CREATED)


class TreatmentDetailApi(Api):
    permission_classes = CLINIC_STAFF_PERMISSIONS

    @extend_schema(
        summary="One treatment with its lots, consent and adverse events",
        responses={200: TreatmentDetailOutputSerializer, **READ_ERRORS},
    )
    def get(self, request: Request, treatment_id: int) -> Response:
        return Response(_treatment_detail(request, treatment_id))


# ---------------------------------------------------------------------------------------------
# Adverse events


def _adverse_events(request: Request) -> QuerySet[AdverseEvent]:
    # No adverse-event selector exists yet; this read is that one, scoped like every other.
    events = AdverseEvent.objects.select_related(
        "treatment__clinic", "treatment__patient", "lot", "reported_by"
    ).order_by("-reported_at", "-pk")
    clinic_ids = visible_clinic_ids(request.user)
    return events if clinic_ids is None else events.filter(treatment__clinic_id__in=clinic_ids)


class TreatmentAdverseEventRecordApi(Api):
    permission_classes = CLINIC_STAFF_PERMISSIONS

    @extend_schema(
        summary="Report an adverse event after a treatment",
        description="Needs the clinician or clinic administrator role at the treatment's clinic. "
        "The suspected `lot` must be one the treatment used.",
        request=AdverseEventInputSerializer,
        responses={201: AdverseEventOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, treatment_id: int) -> Response:
        treatment = get_or_404(_treatments(request), treatment_id, what="treatment")
        data = validated(AdverseEventInputSerializer, request.data)
        event = services.adverse_event_record(actor=request.user, treatment=treatment, **data)
        event = AdverseEvent.objects.select_related("lot", "reported_by").get(pk=event.pk)
        return Response(AdverseEventOutputSerializer(event).data, status=status.HTTP_201_CREATED)


class AdverseEventsApi(ListApi):
    permission_classes = CLINIC_STAFF_PERMISSIONS
    serializer_class = AdverseEventListOutputSerializer
    filterset_class = AdverseEventFilter

    def get_queryset(self) -> QuerySet[AdverseEvent]:
        if getattr(self, "swagger_fake_view", False):
            return AdverseEvent.objects.none()  # schema generation: no user to scope by
        return _adverse_events(self.request)

    @extend_schema(
        summary="List adverse events at the clinics you may see, newest report first",
        responses={200: AdverseEventListOutputSerializer, **LIST_ERRORS},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


# ---------------------------------------------------------------------------------------------
# Scans


def lot_use_warnings(lot: Lot, *, on: datetime.date) -> list[Problem]:
    """Why the scanned vial may not be used on `on`, in the words treatment_record refuses with."""
    label = f"Lot {lot.lot_number}"
    warnings = []
    if lot.status == LotStatus.RECALLED:
        warnings.append(Problem("lot_recalled", f"{label} is recalled: do not use it.", "lot"))
    elif lot.status == LotStatus.ON_HOLD:
        warnings.append(Problem("lot_on_hold", f"{label} is on hold: do not use it.", "lot"))
    elif lot.status != LotStatus.RELEASED:
        warnings.append(
            Problem(
                "lot_not_released",
                f"{label} is {lot.get_status_display().lower()}, not released for use.",
                "lot",
            )
        )
    if lot.is_expired(on=on):
        warnings.append(
            Problem("lot_expired", f"{label} expired on {lot.expires_on.isoformat()}.", "lot")
        )
    return warnings


class ScanResolveApi(Api):
    # A lookup that changes nothing: every role may resolve a scan, auditors included. It is a
    # POST because a raw scan carries a GS control character, awkward in a query string.
    permission_classes = [HasActiveRole]

    @extend_schema(
        summary="Resolve a scanned GS1 DataMatrix to its lot, with warnings before use",
        description="Answers the product's GTIN, the lot number, expiry and serial read from "
        "the scan, the lot on record, and `warnings` when the vial must not be used today "
        "(lot_not_released, lot_on_hold, lot_recalled, lot_expired): today at `clinic` (by "
        "default the caller's clinic when they belong to one only), in its time zone, else in "
        "UTC. A scan that is not GS1 is "
        "400 (scan_malformed, scan_gtin_missing, scan_gtin_invalid, scan_lot_missing); an "
        "unknown GTIN or lot is 404; a label expiry that disagrees with the record is 409.",
        request=ScanInputSerializer,
        responses={200: ScanResolutionOutputSerializer, **error_responses(400, 401, 403, 404, 409)},
    )
    def post(self, request: Request) -> Response:
        data = validated(ScanInputSerializer, request.data, context={"request": request})
        resolution = scan_resolve(data["scan"])
        clinic: Clinic | None = data["clinic"]
        if clinic is None:
            # Staff of one clinic scan at that clinic.
            own = visible_clinic_ids(request.user)
            if own is not None and len(own) == 1:
                clinic = Clinic.objects.get(pk=own[0])
        # "Today" is the clinic's calendar day. A scan with no clinic to ask (a quality manager
        # checking a vial, staff of several clinics not naming one) is judged in UTC, the
        # network's day, as the lot release gate is; treatment_record judges again on its own.
        today = clinic.local_date() if clinic is not None else timezone.localdate()
        warnings = [*resolution.warnings, *lot_use_warnings(resolution.lot, on=today)]
        scan = resolution.scan
        return Response(
            ScanResolutionOutputSerializer(
                {
                    "gtin": scan.gtin,
                    "lot_number": scan.lot_number,
                    "expiry": scan.expiry,
                    "serial": scan.serial,
                    "lot": resolution.lot,
                    "usable": not warnings,
                    "warnings": [warning.as_dict() for warning in warnings],
                }
            ).data
        )
