"""GET /api/v1/epcis/events/: the stock ledger as an EPCISDocument, in `application/ld+json`
(`application/json` when asked for). Signed in as for the rest of the API, with any role; what a
caller sees is what the movement list shows them (providers.access). Errors keep the API's one
shape."""

from __future__ import annotations

import re
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from common.api import Pagination
from common.api_fields import BIGINT_MAX, LIST_ERRORS
from common.api_views import Api, validated
from common.errors import DomainError
from interop.epcis import events, openapi, selectors, vocabulary
from providers.permissions import CLINIC_STAFF_PERMISSIONS
from stock.api import OffsetDateTimeField


class JsonLdRenderer(JSONRenderer):
    media_type = vocabulary.MEDIA_TYPE
    format = "jsonld"


# `+02:00` sent unencoded in a query string arrives as ` 02:00`.
_OFFSET_AS_SPACE = re.compile(r"^(\S+T\S+) (\d\d(:?\d\d)?)$")


class QueryDateTimeField(OffsetDateTimeField):
    """A date and time with its UTC offset, read from a query string, where an unencoded `+`
    reads as a space."""

    def to_internal_value(self, value: Any) -> Any:
        if isinstance(value, str):
            value = _OFFSET_AS_SPACE.sub(r"\1+\2", value)
        return super().to_internal_value(value)


class EventQuerySerializer(serializers.Serializer[Any]):
    lot = serializers.IntegerField(
        required=False, min_value=1, max_value=BIGINT_MAX, help_text="Lot id."
    )
    clinic = serializers.IntegerField(
        required=False, min_value=1, max_value=BIGINT_MAX, help_text="Clinic id."
    )
    since = QueryDateTimeField(
        required=False, help_text="Events at or after this time (with its UTC offset)."
    )
    until = QueryDateTimeField(
        required=False, help_text="Events before this time (with its UTC offset)."
    )
    limit = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=Pagination.max_limit,
        default=Pagination.default_limit,
        help_text=f"Events per page ({Pagination.default_limit} unless given).",
    )
    offset = serializers.IntegerField(
        required=False, min_value=0, max_value=BIGINT_MAX, default=0, help_text="Events to skip."
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        since, until = attrs.get("since"), attrs.get("until")
        if since is not None and until is not None and until <= since:
            raise DomainError.single(
                "time_range_reversed",
                _("until must be later than since."),
                field="until",
                status=400,
            )
        return attrs


def _page_link(request: Request, offset: int, limit: int, relation: str) -> str:
    query = request.query_params.copy()
    query["limit"] = str(limit)
    query["offset"] = str(offset)
    return f'<{request.build_absolute_uri(request.path)}?{query.urlencode()}>; rel="{relation}"'


class EpcisEventsApi(Api):
    permission_classes = CLINIC_STAFF_PERMISSIONS
    renderer_classes = [JsonLdRenderer, JSONRenderer]
    http_method_names = ["get", "head", "options"]

    @extend_schema(
        operation_id="epcis_events",
        summary="Stock events as a GS1 EPCIS 2.0 document",
        description="Receipts, transfers, quarantine decisions, recall blocks, treatment use, "
        "wastage, returns and destructions at the clinics you may see, one ObjectEvent per "
        "movement of the stock ledger, oldest recorded first. Treatment use names no patient. "
        "The next and previous pages are in the `Link` header. docs/epcis.md has the mapping.",
        parameters=[
            EventQuerySerializer,
            OpenApiParameter(
                "Link",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                response=[200],
                description='The next and previous pages: `<url>; rel="next"`.',
            ),
        ],
        responses={
            200: OpenApiResponse(openapi.EPCIS_DOCUMENT, description="An EPCISDocument."),
            **LIST_ERRORS,
        },
    )
    def get(self, request: Request) -> Response:
        query = validated(EventQuerySerializer, request.query_params)
        where = selectors.EventFilter(
            lot_id=query.get("lot"),
            clinic_id=query.get("clinic"),
            since=query.get("since"),
            until=query.get("until"),
        )
        offset, limit = query["offset"], query["limit"]
        page = selectors.event_page(user=request.user, where=where, offset=offset, limit=limit)
        response = Response(events.epcis_document(page.movements, created=timezone.now()))
        links = []
        if page.has_next:
            links.append(_page_link(request, offset + limit, limit, "next"))
        if offset > 0:
            links.append(_page_link(request, max(0, offset - limit), limit, "prev"))
        if links:
            response["Link"] = ", ".join(links)
        return response
