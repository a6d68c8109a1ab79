"""Lots: list, detail (with donors, QC results, certificates and signed status changes),
record a lot and add a source donor."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from common.api_fields import (
    BIGINT_MAX,
    CREATE_ERRORS,
    INTEGER_MAX,
    LIST_ERRORS,
    READ_ERRORS,
    WRITE_ERRORS,
    TextChoiceField,
    id_field,
)
from common.api_views import Api, ListApi, get_or_404, validated
from lots import services
from lots.api.serializers import (
    DonorRefSerializer,
    LotQcResultOutputSerializer,
    LotStatusChangeOutputSerializer,
    ManufacturerRefSerializer,
    ProductRefSerializer,
    reason_field,
)
from lots.filters import LotFilter
from lots.models import Certificate, Donor, Lot, LotUnit, Product, RegulatoryBasis
from lots.sec import SingleEuropeanCode
from lots.selectors import current_certificates, lot_get, lot_list, qc_specifications_for


class SecOutputSerializer(serializers.Serializer[Any]):
    issuing_country = serializers.CharField(help_text="ISO 3166-1 alpha-2.")
    establishment_code = serializers.CharField(help_text="Tissue establishment number (6).")
    donation_number = serializers.CharField(help_text="Unique donation number (13).")
    coding_system = serializers.CharField(help_text="E (EUTC), A (ISBT 128) or B (Eurocode).")
    product_number = serializers.CharField(help_text="Product number (7).")
    split_number = serializers.CharField(help_text="Split number (3).")
    expiry_date = serializers.SerializerMethodField(help_text="YYYYMMDD: the lot's expiry.")
    code = serializers.CharField(help_text="The 40 characters, as a barcode carries them.")
    eye_readable = serializers.CharField(
        help_text="As printed: SEC, the donation identification sequence, a space, the product "
        "identification sequence."
    )

    def get_expiry_date(self, sec: SingleEuropeanCode) -> str:
        return sec.expires_on.strftime("%Y%m%d")


class SecInputSerializer(serializers.Serializer[Any]):
    """Lengths, characters and the country are checked by lots.services.lot_create, each with
    its own code (`sec_<part>_length`, `sec_<part>_invalid`, `sec_issuing_country_unknown`)."""

    issuing_country = serializers.CharField(max_length=40, help_text="ISO 3166-1 alpha-2: DE.")
    establishment_code = serializers.CharField(
        max_length=40, help_text="Tissue establishment number from the EU compendium (6)."
    )
    donation_number = serializers.CharField(max_length=40, help_text="Unique donation number (13).")
    coding_system = serializers.CharField(
        max_length=40, help_text="E (EUTC), A (ISBT 128) or B (Eurocode)."
    )
    product_number = serializers.CharField(max_length=40, help_text="Product number (7).")
    split_number = serializers.CharField(max_length=40, help_text="Split number (3): 000 unsplit.")
    expiry_date = serializers.CharField(
        max_length=40, help_text="YYYYMMDD, the lot's own expiry date."
    )


class LotOutputSerializer(serializers.ModelSerializer[Lot]):
    product = ProductRefSerializer(read_only=True)
    manufacturer = ManufacturerRefSerializer(read_only=True)
    donors = DonorRefSerializer(many=True, read_only=True)
    is_expired = serializers.SerializerMethodField(
        help_text="Past its expiry date today (usable through the expiry date itself)."
    )
    sec = SecOutputSerializer(
        read_only=True,
        allow_null=True,
        help_text="The Single European Code (EU tissues and cells), null if the lot has none.",
    )
    release_effective_at = serializers.DateTimeField(
        read_only=True,
        allow_null=True,
        help_text="From when the latest release holds (earlier than its signing when "
        "retrospective); no treatment dated before it is accepted.",
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
            "release_effective_at",
            "sec",
            "donors",
            "created_at",
        ]
        read_only_fields = fields

    def get_is_expired(self, lot: Lot) -> bool:
        today = self.context.get("today") or timezone.localdate()
        return lot.is_expired(on=today)


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


class LotDetailOutputSerializer(LotOutputSerializer):
    qc_results = LotQcResultOutputSerializer(many=True, read_only=True)
    certificates = LotCertificateOutputSerializer(many=True, read_only=True)
    status_changes = LotStatusChangeOutputSerializer(many=True, read_only=True)

    class Meta(LotOutputSerializer.Meta):
        fields = [*LotOutputSerializer.Meta.fields, "qc_results", "certificates", "status_changes"]
        read_only_fields = fields


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
    sec = SecInputSerializer(
        required=False,
        help_text="The Single European Code, for human-derived tissues and cells.",
    )

    def validate_donors(self, ids: list[int]) -> list[Donor]:
        # One query for the whole list, rather than one per id.
        found = {donor.pk: donor for donor in Donor.objects.filter(pk__in=ids)}
        missing = [donor_id for donor_id in ids if donor_id not in found]
        if missing:
            raise serializers.ValidationError(
                _("No donor with id %(ids)s.") % {"ids": ", ".join(map(str, missing))},
                code="does_not_exist",
            )
        return [found[donor_id] for donor_id in ids]


class LotDonorAddInputSerializer(serializers.Serializer[Any]):
    donor = id_field(Donor.objects.all(), help_text="Donor id.")
    reason = reason_field()


class LotSecSetInputSerializer(serializers.Serializer[Any]):
    sec = SecInputSerializer()
    reason = reason_field()


def _lot_detail(lot_id: int) -> dict[str, Any]:
    try:
        lot = lot_get(lot_id=lot_id)
    except Lot.DoesNotExist as error:
        raise NotFound(_("No such lot."), code="not_found") from error
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
        description="`donors` takes donor ids (integers, as listed by /donors/), not donor codes. "
        "`sec` gives the Single European Code of a human-derived lot; each part is refused with "
        "its own code and field (`sec.issuing_country`: `sec_issuing_country_length`, "
        "`sec_issuing_country_invalid`, `sec_issuing_country_unknown`; likewise the other "
        "parts; `sec.expiry_date`: `sec_expiry_date_invalid`, `sec_expiry_date_mismatch`), "
        "`sec_not_applicable` for a product not of human origin, `sec_taken` for a code another "
        "lot carries.",
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


class LotSecSetApi(Api):
    @extend_schema(
        summary="Give a lot registered without one its Single European Code",
        description="For a human-derived lot only, once: a code given is not changed "
        "(`sec_already_set`). Each part is checked as at registration; `sec_taken` when another "
        "lot carries the code. The code is part of what a lot decision signs, so it is given "
        "while the lot is quarantined or on hold (`lot_not_editable` otherwise): a released lot "
        "is held, coded and released again.",
        request=LotSecSetInputSerializer,
        responses={200: LotDetailOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, lot_id: int) -> Response:
        lot = get_or_404(lot_list(), lot_id, what="lot")
        data = validated(LotSecSetInputSerializer, request.data)
        services.lot_sec_set(actor=request.user, lot=lot, sec=data["sec"], reason=data["reason"])
        return Response(_lot_detail(lot.pk))
