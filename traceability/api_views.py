"""Base classes for the API views: deny by default, JSON in, one error shape out.

A view validates its input with a small serializer, calls one service or selector, and serialises
the result. List views are `ListApi` (django-filter FilterSet, limit/offset pagination); a POST on a
list URL is a separate method of the same class that calls the create service, never a generic
`create()`.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Model, QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ParseError
from rest_framework.generics import ListAPIView
from rest_framework.parsers import JSONParser
from rest_framework.views import APIView

from traceability.api import Pagination
from traceability.api_fields import BIGINT_MAX
from traceability.permissions import ROLE_PERMISSIONS

M = TypeVar("M", bound=Model)


class JsonParser(JSONParser):
    """DRF's JSON parser, which also answers a body nested too deeply to decode with a 400
    (Python's decoder raises RecursionError there, which DRF would let through as a 500)."""

    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as error:
            raise ParseError("JSON parse error - nested too deeply.") from error


class Api(APIView):
    permission_classes = ROLE_PERMISSIONS
    parser_classes = [JsonParser]


class ListApi(ListAPIView[Any]):
    permission_classes = ROLE_PERMISSIONS
    parser_classes = [JsonParser]
    pagination_class = Pagination
    filter_backends = [DjangoFilterBackend]


def get_or_404(queryset: QuerySet[M], pk: int, *, what: str) -> M:
    """One object from a selector's queryset, or a 404 in the error shape."""
    if pk > BIGINT_MAX:
        raise NotFound(f"No such {what}.", code="not_found")
    try:
        return queryset.get(pk=pk)
    except ObjectDoesNotExist as error:
        raise NotFound(f"No such {what}.", code="not_found") from error


def validated(serializer_class: type[serializers.Serializer[Any]], data: Any, **kwargs: Any) -> Any:
    """Validate request data with an input serializer; its errors reach the handler as a 400."""
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
