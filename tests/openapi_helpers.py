"""The published OpenAPI schema, generated from the code as `/api/schema/` serves it, and a check
that a response the test client received conforms to it (schemathesis' response validation, the
same the schemathesis run applies)."""

from __future__ import annotations

import functools
import json
from typing import Any

import requests
import schemathesis
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer


@functools.cache
def generated_schema_json() -> str:
    """The schema as JSON text; generated once per test run (it depends only on the code)."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return OpenApiJsonRenderer().render(schema).decode()


def generated_schema() -> dict[str, Any]:
    """A fresh copy each time: schemathesis resolves references in the dictionary it is given."""
    loaded: dict[str, Any] = json.loads(generated_schema_json())
    return loaded


@functools.cache
def _published() -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_dict(generated_schema())


def assert_matches_schema(response: Any, method: str, path: str) -> None:
    """The response (status, content type and body) is one the schema lists for the operation.
    `path` is the schema's template, e.g. `/api/v1/products/{product_id}/`."""
    __tracebackhide__ = True
    content = (
        b"".join(response.streaming_content) if response.streaming else bytes(response.content)
    )
    request = requests.Request(method.upper(), f"http://testserver{path}").prepare()
    converted = schemathesis.Response(
        status_code=response.status_code,
        headers={name.lower(): [value] for name, value in response.headers.items()},
        content=content,
        request=request,
        elapsed=0.0,
        verify=False,
    )
    _published()[path][method.upper()].validate_response(converted)
