"""API plumbing shared by every app: one error shape, pagination, small view helpers.

Every error the API returns has the same shape::

    {"errors": [{"code": "qc_out_of_spec", "message": "...", "field": "qc.endotoxin"}]}
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import psycopg.errors
from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import TooManyFieldsSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils.html import escape
from django.utils.translation import gettext as _
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

from common.errors import DomainError, Problem, problems_from_validation_error

logger = logging.getLogger(__name__)

NON_FIELD = api_settings.NON_FIELD_ERRORS_KEY


class Pagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 500


def _flatten(detail: Any, path: str | None) -> list[Problem]:
    """Turn DRF's nested error detail into a flat list of problems with dotted field paths."""
    if isinstance(detail, dict):
        problems: list[Problem] = []
        for key, value in detail.items():
            child = None if key == NON_FIELD else (f"{path}.{key}" if path else str(key))
            problems.extend(_flatten(value, child if key != NON_FIELD else path))
        return problems
    if isinstance(detail, list):
        problems = []
        for index, value in enumerate(detail):
            nested = isinstance(value, dict | list)
            problems.extend(_flatten(value, f"{path}[{index}]" if nested and path else path))
        return problems
    code = getattr(detail, "code", None) or "invalid"
    return [Problem(code=str(code), message=str(detail), field=path)]


def error_response(problems: list[Problem], status_code: int) -> Response:
    return Response({"errors": [problem.as_dict() for problem in problems]}, status=status_code)


# What PostgreSQL aborts a transaction for when concurrent requests collide: nothing the client
# did wrong, and the same request will normally pass when sent again.
RETRYABLE = (
    psycopg.errors.DeadlockDetected,
    psycopg.errors.SerializationFailure,
    psycopg.errors.LockNotAvailable,
)


# Seconds a client is told to wait before sending a request again that met a database outage: a
# restart or fail-over takes a few.
DATABASE_RETRY_AFTER_SECONDS = 5


def database_unavailable() -> Response:
    """503 for a request that lost its database (refused, restarted, connection cut): nothing
    the client did wrong. Every service writes in one transaction, so what the request began was
    rolled back with the connection."""
    problem = Problem(
        "database_unavailable",
        _(
            "The database cannot be reached at the moment; the request was not completed. "
            "Send it again in a few seconds."
        ),
        None,
    )
    response = error_response([problem], status.HTTP_503_SERVICE_UNAVAILABLE)
    response["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
    return response


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, OperationalError) and isinstance(exc.__cause__, RETRYABLE):
        logger.warning("concurrent change aborted a request: %s", exc)
        problem = Problem(
            "concurrent_change_retry",
            _(
                "Another change to the same records collided with this one; nothing was saved. "
                "Send the request again."
            ),
            None,
        )
        retry = error_response([problem], status.HTTP_503_SERVICE_UNAVAILABLE)
        retry["Retry-After"] = "1"
        return retry
    if isinstance(exc, OperationalError | InterfaceError):
        logger.warning("database unavailable: %s", exc)
        return database_unavailable()
    if isinstance(exc, DomainError):
        return error_response(exc.problems, exc.status)
    if isinstance(exc, DjangoValidationError):
        return error_response(problems_from_validation_error(exc), status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, IntegrityError):
        # A constraint the database enforces and a service did not check first: still the
        # client's input, so a 409 naming the rule rather than a 500.
        constraint = getattr(getattr(exc, "__cause__", None), "diag", None)
        name = getattr(constraint, "constraint_name", None)
        logger.warning("integrity error reached the API: %s", exc)
        problem = Problem(
            "constraint_violated",
            _("The change breaks a database rule (%(constraint)s).") % {"constraint": name},
            name,
        )
        return error_response([problem], status.HTTP_409_CONFLICT)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        problems = _flatten(exc.detail, None)
    elif isinstance(exc, exceptions.APIException):
        detail = exc.detail
        code = getattr(detail, "code", None) or exc.default_code
        problems = [Problem(code=str(code), message=str(detail), field=None)]
    else:
        problems = [Problem(code="error", message=str(exc), field=None)]
    response.data = {"errors": [problem.as_dict() for problem in problems]}
    return response


# It changes nothing, so Django's CSRF check (for session-signed forms) has nothing to guard here:
# without the exemption a write to an unknown API path would answer the HTML CSRF page, a 403.
@csrf_exempt
def api_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    problem = Problem("not_found", _("No API endpoint at %(path)s.") % {"path": request.path}, None)
    return JsonResponse({"errors": [problem.as_dict()]}, status=404)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's answer to a request it refuses before any view runs (SuspiciousOperation: more
    query or form fields than DATA_UPLOAD_MAX_NUMBER_FIELDS, a malformed header). Under /api/ it
    is the one error shape; elsewhere Django's own page."""
    if not request.path.startswith("/api/"):
        return defaults.bad_request(request, exception)
    if isinstance(exception, TooManyFieldsSent):
        problem = Problem(
            "too_many_fields",
            _("A request is read with at most %(limit)s query or form fields.")
            % {"limit": settings.DATA_UPLOAD_MAX_NUMBER_FIELDS},
            None,
        )
    else:
        problem = Problem("bad_request", _("The request is malformed."), None)
    return JsonResponse({"errors": [problem.as_dict()]}, status=400)


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's answer to an exception nothing else handled (handler500). A lost database is
    not a fault of the code: 503 with Retry-After, in the error shape under /api/ and as a short
    page elsewhere (a clinic page, the admin). Anything else stays Django's 500."""
    error = sys.exc_info()[1]  # Django calls this while it handles the exception
    if not isinstance(error, OperationalError | InterfaceError):
        return defaults.server_error(request)
    unavailable = database_unavailable()
    message = unavailable.data["errors"][0]["message"]
    response: HttpResponse
    if request.path.startswith("/api/"):
        response = JsonResponse(unavailable.data, status=status.HTTP_503_SERVICE_UNAVAILABLE)
    else:
        response = HttpResponse(
            f"<!doctype html><title>503</title><p>{escape(message)}</p>",
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
    response["Retry-After"] = unavailable["Retry-After"]
    return response
