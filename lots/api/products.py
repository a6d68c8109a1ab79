"""Products and their jurisdiction authorisations: list, detail, create, set an authorisation."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from common.api_fields import (
    CREATE_ERRORS,
    LIST_ERRORS,
    READ_ERRORS,
    WRITE_ERRORS,
    OptionalChoiceField,
    TextChoiceField,
    id_field,
    request_text,
)
from common.api_views import Api, ListApi, get_or_404, validated
from lots import services
from lots.api.serializers import TEXT_MAX_LENGTH, ManufacturerRefSerializer, reason_field
from lots.filters import ProductFilter
from lots.models import (
    AuthorisationStatus,
    Product,
    ProductAuthorisation,
    Route,
    SourceKind,
    Tissue,
)
from lots.selectors import product_list
from providers.models import Manufacturer


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
    reason = reason_field()


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
