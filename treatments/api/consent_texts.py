"""Consent texts: the active versions a treatment's consent may cite."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from common.api_fields import LIST_ERRORS
from common.api_views import ListApi
from providers.permissions import CLINIC_STAFF_PERMISSIONS
from treatments.filters import ConsentTextFilter
from treatments.models import ConsentText


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
