"""What the API schema says of every operation beyond what each view declares."""

from __future__ import annotations

from typing import Any

# Answers any request can get, whatever the operation: past a throttle's rate (429), and while the
# database is unreachable or a concurrent change has to be retried (503). Each comes with
# Retry-After and the one error shape.
ANY_REQUEST_ERRORS = {
    "429": "Too many requests from this account or address: wait Retry-After seconds.",
    "503": "The database is unreachable (`database_unavailable`) or a concurrent change must be "
    "retried: send the request again after Retry-After seconds; nothing was written.",
}
_METHODS = ("get", "put", "post", "patch", "delete", "head", "options")
# Answered to any request with a body of a media type the operation does not read.
BODY_ERRORS = {
    "415": "The body's Content-Type is not one this operation reads (`unsupported_media_type`).",
}


def document_any_request_errors(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: add ANY_REQUEST_ERRORS to every operation, and
    BODY_ERRORS to every operation that takes a body, where it does not declare its own, in the
    error shape every other error uses."""
    retry_after = {
        "Retry-After": {
            "schema": {"type": "integer"},
            "description": "Seconds to wait before sending the request again.",
        }
    }
    for path in result.get("paths", {}).values():
        for method, operation in path.items():
            if method not in _METHODS:
                continue
            responses = operation.setdefault("responses", {})
            for status, description in ANY_REQUEST_ERRORS.items():
                responses.setdefault(status, _error(description, headers=retry_after))
            if "requestBody" in operation:
                for status, description in BODY_ERRORS.items():
                    responses.setdefault(status, _error(description))
    return result


def _error(description: str, **extra: Any) -> dict[str, Any]:
    return {
        "description": description,
        **extra,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
