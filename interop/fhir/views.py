"""The FHIR R5 endpoints: read and search, nothing else. Signed in as for the rest of the API (a
token or a session), with a role (providers.access decides what each may see: another clinic's
treatment is a 404), answered as `application/fhir+json`, errors as OperationOutcome.

Left out of the OpenAPI schema: FHIR describes itself, in the CapabilityStatement at `metadata`.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from fhir.resources.bundle import Bundle
from fhir.resources.operationoutcome import OperationOutcome
from fhir.resources.resource import Resource
from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from common.api import Pagination
from common.api_fields import BIGINT_MAX
from common.api_views import get_or_404
from common.errors import DomainError, Problem
from common.validators import whole_number
from interop.fhir import capability, resources, selectors, systems
from providers.permissions import CLINIC_STAFF_PERMISSIONS

# What `_format` may say for JSON; a `+` sent unencoded in a query reads as a space.
JSON_FORMATS = frozenset(
    {"json", "application/json", "application/fhir+json", "application/fhir json"}
)
ACCEPTED_MEDIA_RANGES = frozenset({"*/*", "application/*", "application/json", systems.MEDIA_TYPE})
PAGING_PARAMETERS = frozenset({"_format", "_count", "_offset"})

# What an HTTP status means as an OperationOutcome issue type (http://hl7.org/fhir/issue-type).
ISSUE_TYPES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    409: "conflict",
    429: "throttled",
    503: "transient",
}


class FhirJsonRenderer(BaseRenderer):
    media_type = systems.MEDIA_TYPE
    format = "json"
    charset = "utf-8"

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        if data is None:
            return b""
        rendered: str = data.model_dump_json()
        return rendered.encode()


def _accepts_json(header: str) -> bool:
    ranges = {piece.split(";")[0].strip().lower() for piece in header.split(",")}
    return bool(ranges & ACCEPTED_MEDIA_RANGES)


class FhirContentNegotiation(BaseContentNegotiation):
    """JSON only, in the FHIR media type, whether asked for by `_format` or by `Accept` (plain
    `application/json` included, as FHIR clients send it); anything else is a 406."""

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser | None:
        return None

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        wanted = request.query_params.get("_format")
        if wanted is not None:
            if wanted.strip().lower() not in JSON_FORMATS:
                raise NotAcceptable(
                    _("This server answers in JSON only: use _format=json."),
                    code="format_not_supported",
                )
        elif not _accepts_json(request.META.get("HTTP_ACCEPT") or "*/*"):
            raise NotAcceptable(
                _("This server answers in application/fhir+json only."),
                code="format_not_supported",
            )
        return renderer, systems.MEDIA_TYPE


def operation_outcome(errors: list[dict[str, Any]], status: int) -> OperationOutcome:
    """The API's problems as issues: the FHIR issue type from the status, the project's stable
    code in `details.coding`, the field (a search parameter, say) in `expression`."""
    issue_type = ISSUE_TYPES.get(status, "processing")
    issues = []
    for error in errors:
        issue: dict[str, Any] = {
            "severity": "error",
            "code": issue_type,
            "details": {
                "coding": [{"system": systems.ERROR_CODE, "code": error["code"]}],
                "text": error["message"],
            },
        }
        if error.get("field"):
            issue["expression"] = [error["field"]]
        issues.append(issue)
    return OperationOutcome.model_validate({"issue": issues})


@extend_schema(exclude=True)
class FhirApi(APIView):
    permission_classes = CLINIC_STAFF_PERMISSIONS
    renderer_classes = [FhirJsonRenderer]
    parser_classes: list[Any] = []
    content_negotiation_class = FhirContentNegotiation
    # Read-only: anything else, OPTIONS included, is a 405 OperationOutcome.
    http_method_names = ["get", "head"]

    def handle_exception(self, exc: Exception) -> Response:
        # Errors are OperationOutcomes in the FHIR media type, whatever was asked for.
        self.request.accepted_renderer = FhirJsonRenderer()
        self.request.accepted_media_type = systems.MEDIA_TYPE
        response = super().handle_exception(exc)
        response.data = operation_outcome(response.data["errors"], response.status_code)
        return response

    def base_url(self) -> str:
        return self.request.build_absolute_uri(reverse("fhir-metadata")).removesuffix("metadata")


def _search_parameters(request: Request, allowed: frozenset[str]) -> dict[str, str]:
    """The search's parameters, each once; one this server does not search by is refused rather
    than ignored, so a client never takes an unfiltered answer for a filtered one."""
    names = set(request.query_params)
    problems = [
        Problem(
            "search_parameter_unknown",
            _("This server does not search by %(name)s here.") % {"name": name},
            name,
        )
        for name in sorted(names - allowed - PAGING_PARAMETERS)
    ]
    problems += [
        Problem("search_parameter_repeated", _("Give %(name)s once.") % {"name": name}, name)
        for name in sorted(names)
        if len(request.query_params.getlist(name)) > 1
    ]
    problems += [
        Problem(
            "search_parameter_invalid",
            _("%(name)s holds a NUL character.") % {"name": name},
            name,
        )
        for name in sorted(names)
        if "\x00" in request.query_params[name]
    ]
    if problems:
        raise DomainError(problems, status=400)
    return {name: request.query_params[name] for name in names & allowed}


def _digits(value: str) -> int | None:
    """A parameter's whole number, written in ASCII digits alone (no sign, no spaces)."""
    return whole_number(value) if value == value.strip() else None


def _whole_number(name: str, value: str, *, low: int, high: int) -> int:
    number = _digits(value)
    if number is None or not low <= number <= high:
        raise DomainError.single(
            "search_parameter_invalid",
            _("%(name)s is a whole number from %(low)s to %(high)s.")
            % {"name": name, "low": low, "high": high},
            field=name,
            status=400,
        )
    return number


def _window(request: Request) -> selectors.PageWindow:
    """`_count` (at most the API's page limit) and `_offset`, as the JSON lists' limit/offset."""
    params = request.query_params
    count = Pagination.default_limit
    if "_count" in params:
        count = _whole_number("_count", params["_count"], low=0, high=Pagination.max_limit)
    offset = (
        _whole_number("_offset", params["_offset"], low=0, high=BIGINT_MAX)
        if "_offset" in params
        else 0
    )
    return selectors.PageWindow(offset=offset, count=count)


def _reference_id(name: str, value: str, resource_type: str) -> int:
    """`Patient/12` (or a full URL ending so, or the bare id) as the id 12."""
    local = value.rsplit("/", 2)
    if len(local) > 1 and local[-2] != resource_type:
        local = []
    number = _digits(local[-1]) if local else None
    if number is None or not 1 <= number <= BIGINT_MAX:
        raise DomainError.single(
            "search_parameter_invalid",
            _("%(name)s names a %(type)s: %(type)s/ and its id.")
            % {"name": name, "type": resource_type},
            field=name,
            status=400,
        )
    return number


def _patient_id(params: dict[str, str]) -> int | None:
    """`subject` or its synonym `patient`."""
    for name in ("subject", "patient"):
        if name in params:
            return _reference_id(name, params[name], "Patient")
    return None


def _product_id(params: dict[str, str], name: str) -> int | None:
    """The lot a `name=BiologicallyDerivedProduct/{id}` parameter names, when it is given."""
    if name not in params:
        return None
    return _reference_id(name, params[name], "BiologicallyDerivedProduct")


def _links(request: Request, window: selectors.PageWindow, total: int) -> list[dict[str, str]]:
    def url(offset: int) -> str:
        query = request.query_params.copy()
        query["_count"] = str(window.count)
        query["_offset"] = str(offset)
        return f"{request.build_absolute_uri(request.path)}?{query.urlencode()}"

    links = [
        {"relation": "self", "url": request.build_absolute_uri()},
        {"relation": "first", "url": url(0)},
    ]
    if window.offset > 0:
        links.append({"relation": "previous", "url": url(max(0, window.offset - window.count))})
    if window.count and window.offset + window.count < total:
        links.append({"relation": "next", "url": url(window.offset + window.count)})
    return links


def searchset(
    view: FhirApi,
    window: selectors.PageWindow,
    search: selectors.Search[Any],
    write: Callable[[Any], Resource],
) -> Bundle:
    base = view.base_url()
    entries = []
    for row in search.rows:
        resource = write(row)
        entries.append(
            {
                "fullUrl": f"{base}{resource.get_resource_type()}/{resource.id}",
                "resource": resource,
                "search": {"mode": "match"},
            }
        )
    return Bundle.model_validate(
        {
            "type": "searchset",
            "total": search.total,
            "link": _links(view.request, window, search.total),
            "entry": entries,
        }
    )


def _resource_id(resource_id: str) -> int:
    """Ids here are whole numbers; any other id names nothing (a 404, as an unknown number)."""
    return int(resource_id) if resource_id.isdecimal() and len(resource_id) < 20 else 0


def _today() -> datetime.date:
    return timezone.localdate()


class MetadataApi(FhirApi):
    """What this server does, for clients that read it before anything else."""

    def get(self, request: Request) -> Response:
        return Response(capability.capability_statement(self.base_url()))


class ProductSearchApi(FhirApi):
    def get(self, request: Request) -> Response:
        params = _search_parameters(request, frozenset({"identifier"}))
        window = _window(request)
        token = params.get("identifier")
        if token is None:
            search = selectors.search_page(selectors.lots_for_fhir().order_by("pk"), window)
        else:
            system, _bar, value = token.rpartition("|")
            search = selectors.lot_search(system=system or None, value=value, window=window)
        today = _today()
        return Response(
            searchset(
                self, window, search, lambda lot: resources.product_resource(lot, today=today)
            )
        )


class ProductReadApi(FhirApi):
    def get(self, request: Request, resource_id: str) -> Response:
        lot = get_or_404(selectors.lots_for_fhir(), _resource_id(resource_id), what="lot")
        return Response(resources.product_resource(lot, today=_today()))


class ProcedureSearchApi(FhirApi):
    """The backward trace (`subject=Patient/{id}`) and the forward trace
    (`used=BiologicallyDerivedProduct/{id}`), or both at once, paged."""

    def get(self, request: Request) -> Response:
        params = _search_parameters(request, frozenset({"subject", "patient", "used"}))
        window = _window(request)
        lot_id = _product_id(params, "used")
        search = selectors.procedure_search(
            user=request.user, patient_id=_patient_id(params), lot_id=lot_id, window=window
        )
        return Response(searchset(self, window, search, resources.procedure_resource))


class ProcedureReadApi(FhirApi):
    def get(self, request: Request, resource_id: str) -> Response:
        treatments = selectors.procedures_for(user=request.user)
        treatment = get_or_404(treatments, _resource_id(resource_id), what="treatment")
        return Response(resources.procedure_resource(treatment))


class AdverseEventSearchApi(FhirApi):
    def get(self, request: Request) -> Response:
        params = _search_parameters(request, frozenset({"subject", "patient", "substance"}))
        window = _window(request)
        lot_id = _product_id(params, "substance")
        search = selectors.adverse_event_search(
            user=request.user, patient_id=_patient_id(params), lot_id=lot_id, window=window
        )
        return Response(searchset(self, window, search, resources.adverse_event_resource))


class AdverseEventReadApi(FhirApi):
    def get(self, request: Request, resource_id: str) -> Response:
        events = selectors.adverse_events_for(user=request.user)
        event = get_or_404(events, _resource_id(resource_id), what="adverse event")
        return Response(resources.adverse_event_resource(event))


class UnknownApi(FhirApi):
    """Any other path under the FHIR base, for any method: a 404 OperationOutcome."""

    permission_classes: list[Any] = []

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        raise DomainError.single(
            "not_found",
            _("No FHIR endpoint at %(path)s.") % {"path": request.path},
            status=404,
        )
