"""Base classes for the API views: deny by default, JSON in, one error shape out.

A view validates its input with a small serializer, calls one service or selector, and serialises
the result. List views are `ListApi` (django-filter FilterSet, limit/offset pagination); a POST on a
list URL is a separate method of the same class that calls the create service, never a generic
`create()`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Model, QuerySet
from django.utils.translation import gettext as _
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail, NotFound, ParseError, ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import JSONParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from common.api import Pagination
from common.api_fields import BIGINT_MAX

M = TypeVar("M", bound=Model)


class JsonParser(JSONParser):
    """DRF's JSON parser, which also answers a body nested too deeply to decode with a 400
    (Python's decoder raises RecursionError there, which DRF would let through as a 500)."""

    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as error:
            raise ParseError(_("JSON parse error - nested too deeply.")) from error


class ContentNegotiation(DefaultContentNegotiation):
    """DRF's, except that an unknown `?format=` is a 400 naming the parameter, like any other bad
    query parameter, rather than a bare 404 (the schema lists the formats as the parameter's enum;
    an `Accept` header nothing matches stays a 406); and OPTIONS is answered in JSON whatever
    format was asked for, as a view that streams a file (CSV) has nothing to render it with."""

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        offered = list(renderers)
        if request.method == "OPTIONS":
            for renderer in offered:
                if isinstance(renderer, JSONRenderer):
                    return renderer, renderer.media_type
        selected: tuple[BaseRenderer, str] = super().select_renderer(
            request, offered, format_suffix
        )
        return selected

    def filter_renderers(
        self, renderers: Iterable[BaseRenderer], format: str
    ) -> list[BaseRenderer]:
        offered = list(renderers)
        found = [renderer for renderer in offered if renderer.format == format]
        if not found:
            names = ", ".join(sorted(str(renderer.format) for renderer in offered))
            raise ValidationError(
                {
                    "format": [
                        ErrorDetail(
                            _("Use one of: %(formats)s.") % {"formats": names},
                            code="invalid_choice",
                        )
                    ]
                }
            )
        return found


class Api(APIView):
    """Permissions: settings' DEFAULT_PERMISSION_CLASSES (providers.permissions), unless a
    view names others."""

    parser_classes = [JsonParser]
    content_negotiation_class = ContentNegotiation


class ListApi(ListAPIView[Any]):
    parser_classes = [JsonParser]
    content_negotiation_class = ContentNegotiation
    pagination_class = Pagination
    filter_backends = [DjangoFilterBackend]


def get_or_404(queryset: QuerySet[M], pk: int, *, what: str) -> M:
    """One object from a selector's queryset, or a 404 in the error shape."""
    if pk > BIGINT_MAX:
        raise NotFound(_("No such %(what)s.") % {"what": what}, code="not_found")
    try:
        return queryset.get(pk=pk)
    except ObjectDoesNotExist as error:
        raise NotFound(_("No such %(what)s.") % {"what": what}, code="not_found") from error


def validated(serializer_class: type[serializers.Serializer[Any]], data: Any, **kwargs: Any) -> Any:
    """Validate request data with an input serializer; its errors reach the handler as a 400."""
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
