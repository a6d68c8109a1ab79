"""REST API for products, donors, QC tests, lots, certificates and the release gate: one view per
use case. Views validate with an input serializer, call one service or selector, and serialise."""

from __future__ import annotations

import base64
import binascii
import logging
from typing import Any

from django.core.files.storage import default_storage
from django.db.models import Prefetch, QuerySet
from django.http import FileResponse, HttpResponse, HttpResponseBase
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from common.api_fields import (
    BIGINT_MAX,
    CREATE_ERRORS,
    INTEGER_MAX,
    LIST_ERRORS,
    READ_ERRORS,
    WRITE_ERRORS,
    CodeRelatedField,
    ErrorItemSerializer,
    OptionalChoiceField,
    TextChoiceField,
    error_responses,
    id_field,
    request_text,
)
from common.api_views import Api, ListApi, get_or_404, validated
from lots import services
from lots.filters import CertificateFilter, DonorFilter, LotFilter, ProductFilter
from lots.models import (
    AuthorisationStatus,
    Certificate,
    CertificateKind,
    Donor,
    DonorMarkerResult,
    Eligibility,
    Lot,
    LotQcResult,
    LotStatusChange,
    LotUnit,
    Marker,
    MarkerResultValue,
    Product,
    ProductAuthorisation,
    QcOutcome,
    QcSpecification,
    QcTest,
    RegulatoryBasis,
    Route,
    SignatureMeaning,
    SourceKind,
    Tissue,
)
from lots.selectors import (
    certificate_list,
    current_certificates,
    donor_list,
    lot_get,
    lot_list,
    lot_release_check,
    product_list,
    qc_result_passes,
    qc_specifications_for,
)
from providers.models import Manufacturer

logger = logging.getLogger(__name__)

TEXT_MAX_LENGTH = 2000
PASSWORD_MAX_LENGTH = 4096

# ---------------------------------------------------------------------------------------------
# Output serializers


class ManufacturerRefSerializer(serializers.ModelSerializer[Manufacturer]):
    class Meta:
        model = Manufacturer
        fields = ["id", "legal_name"]
        read_only_fields = fields


class ProductRefSerializer(serializers.ModelSerializer[Product]):
    class Meta:
        model = Product
        fields = ["id", "name", "gtin"]
        read_only_fields = fields


class ProductAuthorisationOutputSerializer(serializers.ModelSerializer[ProductAuthorisation]):
    class Meta:
        model = ProductAuthorisation
        fields = ["jurisdiction", "status", "note"]
        read_only_fields = fields


class ProductOutputSerializer(serializers.ModelSerializer[Product]):
    manufacturer = ManufacturerRefSerializer(read_only=True)
    tissue = OptionalChoiceField(
        choices=Tissue.choices, read_only=True, help_text="Human-derived products only; else null."
    )
    permitted_routes = serializers.ListField(
        child=serializers.ChoiceField(choices=Route.choices), read_only=True
    )
    authorisations = ProductAuthorisationOutputSerializer(many=True, read_only=True)

    class Meta:
        model = Product
        fields = [
            "id",
            "manufacturer",
            "name",
            "gtin",
            "source_kind",
            "tissue",
            "permitted_routes",
            "storage_min_celsius",
            "storage_max_celsius",
            "authorisations",
            "created_at",
        ]
        read_only_fields = fields


class MarkerOutputSerializer(serializers.ModelSerializer[Marker]):
    required_for_tissues = serializers.ListField(
        child=serializers.ChoiceField(choices=Tissue.choices),
        read_only=True,
        help_text="Donors of these tissues must be tested for this marker.",
    )

    class Meta:
        model = Marker
        fields = ["id", "code", "name", "required_for_tissues", "active"]
        read_only_fields = fields


class QcSpecificationOutputSerializer(serializers.ModelSerializer[QcSpecification]):
    expected_outcome = OptionalChoiceField(
        choices=QcOutcome.choices,
        read_only=True,
        help_text="For qualitative tests; null for measured ones.",
    )
    description = serializers.CharField(source="describe", read_only=True)

    class Meta:
        model = QcSpecification
        fields = ["required", "min_value", "max_value", "expected_outcome", "description"]
        read_only_fields = fields


class QcTestOutputSerializer(serializers.ModelSerializer[QcTest]):
    default_specification = serializers.SerializerMethodField(
        help_text="The network default; a product may override it."
    )

    class Meta:
        model = QcTest
        fields = ["id", "code", "name", "kind", "unit", "default_specification"]
        read_only_fields = fields

    @extend_schema_field(QcSpecificationOutputSerializer(allow_null=True))
    def get_default_specification(self, test: QcTest) -> dict[str, Any] | None:
        specs = test.default_specifications  # type: ignore[attr-defined]
        return QcSpecificationOutputSerializer(specs[0]).data if specs else None


class DonorMarkerResultOutputSerializer(serializers.ModelSerializer[DonorMarkerResult]):
    marker = serializers.CharField(source="marker.code", read_only=True)
    marker_name = serializers.CharField(source="marker.name", read_only=True)

    class Meta:
        model = DonorMarkerResult
        fields = ["id", "marker", "marker_name", "result", "tested_on", "laboratory", "test_method"]
        read_only_fields = fields


class DonorOutputSerializer(serializers.ModelSerializer[Donor]):
    eligibility_decided_by = serializers.CharField(
        source="eligibility_decided_by.username",
        allow_null=True,
        read_only=True,
        help_text="Username of who signed the eligibility decision.",
    )
    marker_results = DonorMarkerResultOutputSerializer(many=True, read_only=True)

    class Meta:
        model = Donor
        fields = [
            "id",
            "code",
            "isbt_din",
            "tissue",
            "collection_date",
            "specimen_date",
            "birth_mother_tested",
            "testing_laboratory",
            "eligibility",
            "eligibility_decided_by",
            "eligibility_decided_at",
            "marker_results",
            "created_at",
        ]
        read_only_fields = fields


class DonorRefSerializer(serializers.ModelSerializer[Donor]):
    class Meta:
        model = Donor
        fields = ["id", "code"]
        read_only_fields = fields


class LotOutputSerializer(serializers.ModelSerializer[Lot]):
    product = ProductRefSerializer(read_only=True)
    manufacturer = ManufacturerRefSerializer(read_only=True)
    donors = DonorRefSerializer(many=True, read_only=True)
    is_expired = serializers.SerializerMethodField(
        help_text="Past its expiry date today (usable through the expiry date itself)."
    )

    class Meta:
        model = Lot
        fields = [
            "id",
            "lot_number",
            "product",
            "manufacturer",
            "manufactured_on",
            "expires_on",
            "is_expired",
            "quantity",
            "unit",
            "regulatory_basis",
            "regulatory_number",
            "status",
            "status_changed_at",
            "donors",
            "created_at",
        ]
        read_only_fields = fields

    def get_is_expired(self, lot: Lot) -> bool:
        today = self.context.get("today") or timezone.localdate()
        return lot.is_expired(on=today)


class LotQcResultOutputSerializer(serializers.ModelSerializer[LotQcResult]):
    test = serializers.CharField(source="test.code", read_only=True)
    test_name = serializers.CharField(source="test.name", read_only=True)
    outcome = OptionalChoiceField(
        choices=QcOutcome.choices,
        read_only=True,
        help_text="For qualitative tests; null for measured ones.",
    )
    specification = serializers.SerializerMethodField(
        help_text="What the result must show (the product's own specification or the default)."
    )
    passes = serializers.SerializerMethodField(
        help_text="Derived from the specification now in force; null when the test has none."
    )

    class Meta:
        model = LotQcResult
        fields = [
            "id",
            "test",
            "test_name",
            "numeric_value",
            "outcome",
            "tested_on",
            "laboratory",
            "method",
            "specification",
            "passes",
        ]
        read_only_fields = fields

    def _spec(self, result: LotQcResult) -> QcSpecification | None:
        specifications: dict[int, QcSpecification] = self.context["specifications"]
        return specifications.get(result.test_id)

    def get_specification(self, result: LotQcResult) -> str | None:
        spec = self._spec(result)
        return spec.describe() if spec is not None else None

    def get_passes(self, result: LotQcResult) -> bool | None:
        spec = self._spec(result)
        return qc_result_passes(spec, result) if spec is not None else None


class CertificateOutputSerializer(serializers.ModelSerializer[Certificate]):
    manufacturer = ManufacturerRefSerializer(read_only=True)
    lot = serializers.SerializerMethodField()
    superseded_by = serializers.SerializerMethodField(help_text="Id of the newer version, if any.")
    current = serializers.SerializerMethodField(help_text="No newer version supersedes it.")
    uploaded_by = serializers.CharField(source="uploaded_by.username", read_only=True)

    class Meta:
        model = Certificate
        fields = [
            "id",
            "kind",
            "manufacturer",
            "lot",
            "issuer",
            "number",
            "valid_from",
            "valid_until",
            "sha256",
            "size_bytes",
            "original_filename",
            "supersedes",
            "superseded_by",
            "current",
            "uploaded_by",
            "uploaded_at",
        ]
        read_only_fields = fields

    @extend_schema_field(
        {
            "type": "object",
            "nullable": True,
            "properties": {"id": {"type": "integer"}, "lot_number": {"type": "string"}},
        }
    )
    def get_lot(self, certificate: Certificate) -> dict[str, Any] | None:
        lot = certificate.lot
        return None if lot is None else {"id": lot.pk, "lot_number": lot.lot_number}

    def get_superseded_by(self, certificate: Certificate) -> int | None:
        newer = getattr(certificate, "superseded_by", None)
        return None if newer is None else newer.pk

    def get_current(self, certificate: Certificate) -> bool:
        return getattr(certificate, "superseded_by", None) is None


class LotCertificateOutputSerializer(serializers.ModelSerializer[Certificate]):
    current = serializers.SerializerMethodField(help_text="No newer version supersedes it.")

    class Meta:
        model = Certificate
        fields = [
            "id",
            "kind",
            "issuer",
            "number",
            "valid_from",
            "valid_until",
            "sha256",
            "supersedes",
            "current",
            "uploaded_at",
        ]
        read_only_fields = fields

    def get_current(self, certificate: Certificate) -> bool:
        return certificate.pk in self.context["current_certificate_ids"]


class LotStatusChangeOutputSerializer(serializers.ModelSerializer[LotStatusChange]):
    class Meta:
        model = LotStatusChange
        fields = [
            "id",
            "action",
            "from_status",
            "to_status",
            "signed_by",
            "signer_name",
            "signed_at",
            "meaning",
            "reason",
            "record_digest",
        ]
        read_only_fields = fields


class LotDetailOutputSerializer(LotOutputSerializer):
    qc_results = LotQcResultOutputSerializer(many=True, read_only=True)
    certificates = LotCertificateOutputSerializer(many=True, read_only=True)
    status_changes = LotStatusChangeOutputSerializer(many=True, read_only=True)

    class Meta(LotOutputSerializer.Meta):
        fields = [*LotOutputSerializer.Meta.fields, "qc_results", "certificates", "status_changes"]
        read_only_fields = fields


class ReleaseCheckOutputSerializer(serializers.Serializer[Any]):
    releasable = serializers.BooleanField()
    problems = ErrorItemSerializer(many=True, help_text="Every unmet release requirement.")
    warnings = ErrorItemSerializer(many=True, help_text="Worth knowing; does not block release.")


class LotDecisionOutputSerializer(serializers.Serializer[Any]):
    lot = serializers.IntegerField(help_text="The lot's id.")
    lot_status = serializers.CharField(help_text="The lot's status after the decision.")
    status_change = LotStatusChangeOutputSerializer()


# ---------------------------------------------------------------------------------------------
# Input serializers


def _reason(help_text: str = "Why: kept with the history of the record.", **kwargs: Any) -> Any:
    return serializers.CharField(
        max_length=TEXT_MAX_LENGTH, allow_blank=True, help_text=help_text, **kwargs
    )


def _password() -> serializers.CharField:
    return serializers.CharField(
        max_length=PASSWORD_MAX_LENGTH,
        allow_blank=True,
        trim_whitespace=False,
        style={"input_type": "password"},
        help_text="Your own password, re-entered to sign (21 CFR 11.200).",
    )


class ProductCreateInputSerializer(serializers.Serializer[Any]):
    manufacturer = id_field(Manufacturer.objects.all(), help_text="Manufacturer id.")
    name = serializers.CharField(max_length=200)
    source_kind = TextChoiceField(choices=SourceKind.choices)
    tissue = OptionalChoiceField(
        choices=Tissue.choices,
        default="",
        help_text="Human-derived products only; null or empty otherwise.",
    )
    permitted_routes = serializers.ListField(
        child=TextChoiceField(choices=Route.choices), max_length=len(Route.choices) * 2
    )
    storage_min_celsius = serializers.DecimalField(max_digits=5, decimal_places=1)
    storage_max_celsius = serializers.DecimalField(max_digits=5, decimal_places=1)
    gtin = serializers.CharField(
        max_length=14,
        allow_blank=True,
        allow_null=True,
        default=None,
        help_text="GS1 GTIN-8, -12, -13 or -14; stored as GTIN-14.",
    )


class AuthorisationSetInputSerializer(serializers.Serializer[Any]):
    status = TextChoiceField(choices=AuthorisationStatus.choices)
    note = serializers.CharField(max_length=TEXT_MAX_LENGTH, allow_blank=True, default="")
    reason = _reason()


class DonorCreateInputSerializer(serializers.Serializer[Any]):
    code = serializers.CharField(
        max_length=32, help_text="A distinct code; never a name or medical record number."
    )
    tissue = TextChoiceField(choices=Tissue.choices)
    collection_date = serializers.DateField()
    specimen_date = serializers.DateField(help_text="Within 7 days of recovery.")
    testing_laboratory = serializers.CharField(max_length=200)
    isbt_din = serializers.CharField(
        max_length=14, allow_blank=True, allow_null=True, default=None, help_text="ISBT 128 DIN."
    )
    birth_mother_tested = serializers.BooleanField(default=False)


class MarkerResultInputSerializer(serializers.Serializer[Any]):
    marker = CodeRelatedField(queryset=Marker.objects.all(), help_text="Marker code.")
    result = TextChoiceField(choices=MarkerResultValue.choices)
    tested_on = serializers.DateField()
    laboratory = serializers.CharField(max_length=200)
    test_method = serializers.CharField(max_length=200, allow_blank=True, default="")
    reason = _reason("Needed when this corrects an earlier result.", default="")


class EligibilityInputSerializer(serializers.Serializer[Any]):
    eligibility = TextChoiceField(choices=Eligibility.choices)
    password = _password()
    reason = _reason()


class LotCreateInputSerializer(serializers.Serializer[Any]):
    product = id_field(Product.objects.all(), help_text="Product id.")
    lot_number = serializers.CharField(max_length=20)
    manufactured_on = serializers.DateField()
    expires_on = serializers.DateField()
    quantity = serializers.IntegerField(min_value=0, max_value=INTEGER_MAX)
    unit = TextChoiceField(choices=LotUnit.choices, default=LotUnit.VIAL)
    regulatory_basis = TextChoiceField(choices=RegulatoryBasis.choices)
    regulatory_number = serializers.CharField(max_length=40, allow_blank=True, default="")
    donors = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=BIGINT_MAX),
        max_length=500,
        default=list,
        help_text="Ids of the source donors (from /donors/), not donor codes. Human-derived "
        "products only.",
    )

    def validate_donors(self, ids: list[int]) -> list[Donor]:
        # One query for the whole list, rather than one per id.
        found = {donor.pk: donor for donor in Donor.objects.filter(pk__in=ids)}
        missing = [donor_id for donor_id in ids if donor_id not in found]
        if missing:
            raise serializers.ValidationError(
                f"No donor with id {', '.join(map(str, missing))}.", code="does_not_exist"
            )
        return [found[donor_id] for donor_id in ids]


class LotDonorAddInputSerializer(serializers.Serializer[Any]):
    donor = id_field(Donor.objects.all(), help_text="Donor id.")
    reason = _reason()


class QcResultInputSerializer(serializers.Serializer[Any]):
    test = CodeRelatedField(queryset=QcTest.objects.all(), help_text="QC test code.")
    numeric_value = serializers.DecimalField(
        max_digits=20,
        decimal_places=4,
        allow_null=True,
        default=None,
        help_text="For quantitative tests.",
    )
    outcome = OptionalChoiceField(
        choices=QcOutcome.choices,
        default="",
        help_text="For qualitative tests; null or empty for measured ones.",
    )
    tested_on = serializers.DateField()
    laboratory = serializers.CharField(max_length=200)
    method = serializers.CharField(max_length=200, allow_blank=True, default="")
    reason = _reason("Needed when this corrects an earlier result.", default="")


class SignatureInputSerializer(serializers.Serializer[Any]):
    password = _password()
    meaning = TextChoiceField(
        choices=SignatureMeaning.choices, help_text="What the signature means (21 CFR 11.50)."
    )
    reason = _reason()


class CertificateUploadInputSerializer(serializers.Serializer[Any]):
    kind = TextChoiceField(choices=CertificateKind.choices)
    issuer = serializers.CharField(max_length=200)
    number = serializers.CharField(max_length=100)
    valid_from = serializers.DateField()
    valid_until = serializers.DateField(
        allow_null=True, default=None, help_text="Required for GMP and ISO 13485 certificates."
    )
    manufacturer = id_field(
        Manufacturer.objects.all(),
        allow_null=True,
        default=None,
        help_text="Manufacturer id, for GMP and ISO 13485 certificates.",
    )
    lot = id_field(
        Lot.objects.select_related("manufacturer"),
        allow_null=True,
        default=None,
        help_text="Lot id, for a certificate of analysis.",
    )
    supersedes = id_field(
        Certificate.objects.all(),
        allow_null=True,
        default=None,
        help_text="Id of the certificate this one replaces (a reason is then required).",
    )
    reason = _reason(default="")
    # Django's multipart parser already drops control characters (NUL included) from the name.
    file = serializers.FileField(allow_empty_file=True, help_text="The certificate as a PDF.")


# ---------------------------------------------------------------------------------------------
# Products


class ProductsApi(ListApi):
    serializer_class = ProductOutputSerializer
    filterset_class = ProductFilter

    def get_queryset(self) -> QuerySet[Product]:
        return product_list()

    @extend_schema(
        summary="List products with their jurisdiction authorisations",
        responses={200: ProductOutputSerializer, **LIST_ERRORS},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Record a product",
        request=ProductCreateInputSerializer,
        responses={201: ProductOutputSerializer, **CREATE_ERRORS},
    )
    def post(self, request: Request) -> Response:
        data = validated(ProductCreateInputSerializer, request.data)
        product = services.product_create(actor=request.user, **data)
        product = product_list().get(pk=product.pk)
        return Response(ProductOutputSerializer(product).data, status=status.HTTP_201_CREATED)


class ProductDetailApi(Api):
    @extend_schema(summary="One product", responses={200: ProductOutputSerializer, **READ_ERRORS})
    def get(self, request: Request, product_id: int) -> Response:
        product = get_or_404(product_list(), product_id, what="product")
        return Response(ProductOutputSerializer(product).data)


class ProductAuthorisationSetApi(Api):
    @extend_schema(
        summary="Set whether a product may be used in a jurisdiction",
        parameters=[
            OpenApiParameter(
                "jurisdiction",
                OpenApiTypes.STR,
                OpenApiParameter.PATH,
                description="ISO 3166 code: DE, US-TX.",
            )
        ],
        request=AuthorisationSetInputSerializer,
        responses={200: ProductAuthorisationOutputSerializer, **WRITE_ERRORS},
    )
    def put(self, request: Request, product_id: int, jurisdiction: str) -> Response:
        product = get_or_404(product_list(), product_id, what="product")
        jurisdiction = request_text(jurisdiction, field="jurisdiction", max_length=6)
        data = validated(AuthorisationSetInputSerializer, request.data)
        authorisation = services.product_authorisation_set(
            actor=request.user, product=product, jurisdiction=jurisdiction, **data
        )
        return Response(ProductAuthorisationOutputSerializer(authorisation).data)


# ---------------------------------------------------------------------------------------------
# Reference data: the donor marker panel and the QC tests


class MarkersApi(ListApi):
    serializer_class = MarkerOutputSerializer
    filterset_class = None

    def get_queryset(self) -> QuerySet[Marker]:
        # No marker selector exists yet; this read is that one.
        return Marker.objects.order_by("code")

    @extend_schema(
        summary="The donor infectious-disease marker panel",
        responses={200: MarkerOutputSerializer, **LIST_ERRORS},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class QcTestsApi(ListApi):
    serializer_class = QcTestOutputSerializer
    filterset_class = None

    def get_queryset(self) -> QuerySet[QcTest]:
        # No QC test selector exists yet; this read is that one.
        defaults = QcSpecification.objects.filter(product__isnull=True)
        return QcTest.objects.order_by("code").prefetch_related(
            Prefetch("specifications", queryset=defaults, to_attr="default_specifications")
        )

    @extend_schema(
        summary="The lot QC tests with their default specification",
        responses={200: QcTestOutputSerializer, **LIST_ERRORS},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


# ---------------------------------------------------------------------------------------------
# Donors


class DonorsApi(ListApi):
    serializer_class = DonorOutputSerializer
    filterset_class = DonorFilter

    def get_queryset(self) -> QuerySet[Donor]:
        return donor_list()

    @extend_schema(
        summary="List donors with their marker results",
        responses={200: DonorOutputSerializer, **LIST_ERRORS},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Record a source donor",
        request=DonorCreateInputSerializer,
        responses={201: DonorOutputSerializer, **CREATE_ERRORS},
    )
    def post(self, request: Request) -> Response:
        data = validated(DonorCreateInputSerializer, request.data)
        donor = services.donor_create(actor=request.user, **data)
        donor = donor_list().get(pk=donor.pk)
        return Response(DonorOutputSerializer(donor).data, status=status.HTTP_201_CREATED)


class DonorDetailApi(Api):
    @extend_schema(
        summary="One donor with marker results",
        responses={200: DonorOutputSerializer, **READ_ERRORS},
    )
    def get(self, request: Request, donor_id: int) -> Response:
        donor = get_or_404(donor_list(), donor_id, what="donor")
        return Response(DonorOutputSerializer(donor).data)


class DonorMarkerResultRecordApi(Api):
    @extend_schema(
        summary="Record (or correct, with a reason) a donor's result for a marker",
        request=MarkerResultInputSerializer,
        responses={201: DonorMarkerResultOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, donor_id: int) -> Response:
        donor = get_or_404(donor_list(), donor_id, what="donor")
        data = validated(MarkerResultInputSerializer, request.data)
        record = services.donor_marker_result_record(actor=request.user, donor=donor, **data)
        return Response(
            DonorMarkerResultOutputSerializer(record).data, status=status.HTTP_201_CREATED
        )


class DonorEligibilityDecideApi(Api):
    @extend_schema(
        summary="Sign the donor eligibility determination",
        description="Deciding `eligible` is refused (409) while a required marker is missing or "
        "reactive, listing every one.",
        request=EligibilityInputSerializer,
        responses={200: DonorOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, donor_id: int) -> Response:
        donor = get_or_404(donor_list(), donor_id, what="donor")
        data = validated(EligibilityInputSerializer, request.data)
        services.donor_eligibility_decide(actor=request.user, donor=donor, **data)
        return Response(DonorOutputSerializer(donor_list().get(pk=donor.pk)).data)


# ---------------------------------------------------------------------------------------------
# Lots


def _lot_detail(lot_id: int) -> dict[str, Any]:
    try:
        lot = lot_get(lot_id=lot_id)
    except Lot.DoesNotExist as error:
        raise NotFound("No such lot.", code="not_found") from error
    context = {
        "today": timezone.localdate(),
        "specifications": qc_specifications_for(lot.product),
        "current_certificate_ids": set(
            current_certificates().filter(lot=lot).values_list("pk", flat=True)
        ),
    }
    return LotDetailOutputSerializer(lot, context=context).data


class LotsApi(ListApi):
    serializer_class = LotOutputSerializer
    filterset_class = LotFilter

    def get_queryset(self) -> QuerySet[Lot]:
        return lot_list()

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "today": timezone.localdate()}

    @extend_schema(summary="List lots", responses={200: LotOutputSerializer, **LIST_ERRORS})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Record a lot (it starts quarantined)",
        description="`donors` takes donor ids (integers, as listed by /donors/), not donor codes.",
        request=LotCreateInputSerializer,
        responses={201: LotDetailOutputSerializer, **CREATE_ERRORS},
    )
    def post(self, request: Request) -> Response:
        data = validated(LotCreateInputSerializer, request.data)
        lot = services.lot_create(actor=request.user, **data)
        return Response(_lot_detail(lot.pk), status=status.HTTP_201_CREATED)


class LotDetailApi(Api):
    @extend_schema(
        summary="One lot with donors, QC results, certificates and signed status changes",
        responses={200: LotDetailOutputSerializer, **READ_ERRORS},
    )
    def get(self, request: Request, lot_id: int) -> Response:
        return Response(_lot_detail(lot_id))


class LotDonorAddApi(Api):
    @extend_schema(
        summary="Add a source donor to a quarantined or on-hold lot",
        request=LotDonorAddInputSerializer,
        responses={200: LotDetailOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, lot_id: int) -> Response:
        lot = get_or_404(lot_list(), lot_id, what="lot")
        data = validated(LotDonorAddInputSerializer, request.data)
        services.lot_donor_add(actor=request.user, lot=lot, **data)
        return Response(_lot_detail(lot.pk))


class LotQcResultRecordApi(Api):
    @extend_schema(
        summary="Record (or correct, with a reason) a lot's QC result",
        description="Quantitative tests take `numeric_value`, qualitative ones `outcome`.",
        request=QcResultInputSerializer,
        responses={201: LotQcResultOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, lot_id: int) -> Response:
        lot = get_or_404(lot_list(), lot_id, what="lot")
        data = validated(QcResultInputSerializer, request.data)
        record = services.lot_qc_result_record(actor=request.user, lot=lot, **data)
        context = {"specifications": qc_specifications_for(lot.product)}
        return Response(
            LotQcResultOutputSerializer(record, context=context).data,
            status=status.HTTP_201_CREATED,
        )


class LotReleaseCheckApi(Api):
    @extend_schema(
        summary="Would the lot be released now? Every unmet requirement, and warnings",
        responses={200: ReleaseCheckOutputSerializer, **READ_ERRORS},
    )
    def get(self, request: Request, lot_id: int) -> Response:
        lot = get_or_404(lot_list(), lot_id, what="lot")
        check = lot_release_check(lot=lot)
        return Response(
            ReleaseCheckOutputSerializer(
                {
                    "releasable": check.releasable,
                    "problems": [problem.as_dict() for problem in check.problems],
                    "warnings": [warning.as_dict() for warning in check.warnings],
                }
            ).data
        )


class _LotDecisionApi(Api):
    decide = staticmethod(services.lot_release)

    def post(self, request: Request, lot_id: int) -> Response:
        # 404 before the signature is checked: an unknown lot is not a signing problem.
        get_or_404(lot_list(), lot_id, what="lot")
        data = validated(SignatureInputSerializer, request.data)
        change = type(self).decide(actor=request.user, lot_id=lot_id, **data)
        return Response(
            LotDecisionOutputSerializer(
                {"lot": lot_id, "lot_status": change.to_status, "status_change": change}
            ).data
        )


_DECISION_ERRORS = error_responses(400, 401, 403, 404, 409)


class LotReleaseApi(_LotDecisionApi):
    decide = staticmethod(services.lot_release)

    @extend_schema(
        summary="Release a lot (signed)",
        description="Refused with 409 listing every unmet requirement, each with its own code.",
        request=SignatureInputSerializer,
        responses={200: LotDecisionOutputSerializer, **_DECISION_ERRORS},
    )
    def post(self, request: Request, lot_id: int) -> Response:
        return super().post(request, lot_id)


class LotRejectApi(_LotDecisionApi):
    decide = staticmethod(services.lot_reject)

    @extend_schema(
        summary="Reject a lot (signed)",
        request=SignatureInputSerializer,
        responses={200: LotDecisionOutputSerializer, **_DECISION_ERRORS},
    )
    def post(self, request: Request, lot_id: int) -> Response:
        return super().post(request, lot_id)


class LotHoldApi(_LotDecisionApi):
    decide = staticmethod(services.lot_hold)

    @extend_schema(
        summary="Put a released lot on hold (signed)",
        request=SignatureInputSerializer,
        responses={200: LotDecisionOutputSerializer, **_DECISION_ERRORS},
    )
    def post(self, request: Request, lot_id: int) -> Response:
        return super().post(request, lot_id)


# ---------------------------------------------------------------------------------------------
# Certificates


def _certificates() -> QuerySet[Certificate]:
    # certificate_list() does not join the uploader, which the output names.
    return certificate_list().select_related("uploaded_by")


class CertificatesApi(ListApi):
    serializer_class = CertificateOutputSerializer
    filterset_class = CertificateFilter
    parser_classes = [MultiPartParser]

    def get_queryset(self) -> QuerySet[Certificate]:
        return _certificates()

    @extend_schema(
        summary="List certificates", responses={200: CertificateOutputSerializer, **LIST_ERRORS}
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Upload a certificate (multipart, the PDF in `file`)",
        description="A certificate of analysis names its `lot`; a GMP or ISO 13485 certificate "
        "names its `manufacturer` and `valid_until`. A new version names the one it "
        "`supersedes` and the `reason`.",
        request={"multipart/form-data": CertificateUploadInputSerializer},
        responses={201: CertificateOutputSerializer, **CREATE_ERRORS},
    )
    def post(self, request: Request) -> Response:
        data = validated(CertificateUploadInputSerializer, request.data)
        upload = data.pop("file")
        certificate = services.certificate_upload(
            actor=request.user, file=upload, filename=upload.name or "", **data
        )
        certificate = _certificates().get(pk=certificate.pk)
        return Response(
            CertificateOutputSerializer(certificate).data, status=status.HTTP_201_CREATED
        )


class CertificateDetailApi(Api):
    @extend_schema(
        summary="One certificate", responses={200: CertificateOutputSerializer, **READ_ERRORS}
    )
    def get(self, request: Request, certificate_id: int) -> Response:
        certificate = get_or_404(_certificates(), certificate_id, what="certificate")
        return Response(CertificateOutputSerializer(certificate).data)


class CertificateFileApi(Api):
    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        # The file is always a PDF; errors are always JSON, whatever the Accept header asks for.
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        summary="The certificate's PDF",
        description="The stored file as uploaded. `ETag` is its SHA-256 (hex, quoted) and "
        "`Repr-Digest` carries the same digest (RFC 9530), so a client can check what it got.",
        responses={(200, "application/pdf"): OpenApiTypes.BINARY, **READ_ERRORS},
    )
    def get(self, request: Request, certificate_id: int) -> HttpResponseBase:
        certificate = get_or_404(Certificate.objects.all(), certificate_id, what="certificate")
        etag = f'"{certificate.sha256}"'
        if request.headers.get("If-None-Match") == etag:
            not_modified = HttpResponse(status=status.HTTP_304_NOT_MODIFIED)
            not_modified["ETag"] = etag
            return not_modified
        try:
            handle = default_storage.open(certificate.file.name or "", "rb")
        except FileNotFoundError as error:
            logger.error(
                "certificate %s: stored file %s is missing", certificate.pk, certificate.file.name
            )
            raise NotFound(
                "The certificate's file is missing from storage.", code="certificate_file_missing"
            ) from error
        filename = certificate.original_filename or f"certificate-{certificate.pk}.pdf"
        response = FileResponse(handle, content_type="application/pdf", filename=filename)
        response["ETag"] = etag
        digest = base64.b64encode(binascii.unhexlify(certificate.sha256)).decode()
        response["Repr-Digest"] = f"sha-256=:{digest}:"
        return response
