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
from lots.selectors import current_certificates, lot_get, lot_list, qc_specifications_for


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
