"""schemathesis against the schema drf-spectacular generates from the code: every operation, signed
in as a quality manager and as an auditor, on the demo data set, answers without a server error,
with a status code, content type and body the schema lists.

It calls the WSGI application in-process, inside the test's transaction, so what it writes is
rolled back. The seed is fixed and the examples per operation bounded, so every run sends the same
requests and the whole file takes a few minutes; raise `MAX_EXAMPLES` or change `SEED` locally to
explore further.

Nothing is excluded: the signed writes (release, eligibility, recall opening and closing, ...) ask
for the user's password, which schemathesis cannot know, so they are exercised up to their 400.
"""

from __future__ import annotations

import io
import secrets
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from django.core.management import call_command
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from django.db.models import Model
from django.test import Client, override_settings
from hypothesis import HealthCheck
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from lots.models import Certificate, Donor, Lot, Manufacturer, Product
from providers.models import Clinic, Membership, Practitioner, Role
from recalls.models import Notification, Recall, WebhookEndpoint
from tests.openapi_helpers import generated_schema
from traceability.wsgi import application
from treatments.models import ConsentText, Patient, Treatment

SEED = 20250101
MAX_EXAMPLES = 10
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
FAST_HASHING = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Path, query and body fields that name a row by its id: half the generated cases take the id of a
# seeded row instead, so the calls reach real records (details, traces, writes to existing lots)
# and not only 404s.
IDS_OF: dict[str, type[Model]] = {
    "certificate": Certificate,
    "clinic": Clinic,
    "consent_text": ConsentText,
    "donor": Donor,
    "endpoint": WebhookEndpoint,
    "from_clinic": Clinic,
    "lot": Lot,
    "manufacturer": Manufacturer,
    "notice": Notification,
    "patient": Patient,
    "practitioner": Practitioner,
    "product": Product,
    "recall": Recall,
    "supersedes": Certificate,
    "to_clinic": Clinic,
    "treatment": Treatment,
}
DEMO_IDS: dict[str, list[int]] = {}


@pytest.fixture(scope="module")
def demo_data(django_db_setup, django_db_blocker, tmp_path_factory):
    """The demo data set (`seed_demo`), written once for the module inside a transaction that is
    rolled back afterwards; each test runs in a savepoint within it."""
    media_root = str(tmp_path_factory.mktemp("media"))
    with (
        django_db_blocker.unblock(),
        override_settings(PASSWORD_HASHERS=FAST_HASHING, MEDIA_ROOT=media_root),
        transaction.atomic(),
    ):
        call_command("seed_demo", stdout=io.StringIO())
        ids = {
            name: list(model.objects.order_by("pk").values_list("pk", flat=True))
            for name, model in IDS_OF.items()
        }
        DEMO_IDS.update(ids)
        yield {"media_root": media_root}
        DEMO_IDS.clear()
        transaction.set_rollback(True)


def _as_list(pk: int) -> list[int]:
    return [pk]


def _with_real_ids(values: Any) -> st.SearchStrategy[Any]:
    if not isinstance(values, dict):
        return st.just(values)
    known = {
        name: DEMO_IDS[key]
        for name in values
        if (key := name.removesuffix("_id")) in DEMO_IDS and DEMO_IDS[key]
    }
    if not known:
        return st.just(values)
    chosen = st.fixed_dictionaries(
        {
            name: st.sampled_from(choices).map(_as_list if isinstance(values[name], list) else int)
            for name, choices in known.items()
        }
    )
    return st.one_of(st.just(values), chosen.map(lambda real: {**values, **real}))


# Loaded when the module is collected: schemathesis makes one test per operation from it.
schema = schemathesis.openapi.from_dict(
    generated_schema(),
    config=schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "generation": {"max-examples": MAX_EXAMPLES},
            # Every phase but the stateful one, which chains calls through links the schema does
            # not declare.
            "phases": {"stateful": {"enabled": False}},
        }
    ),
)
schema.app = application


@schema.hook
def flatmap_path_parameters(context: Any, path_parameters: Any) -> Any:
    return _with_real_ids(path_parameters)


@schema.hook
def flatmap_query(context: Any, query: Any) -> Any:
    return _with_real_ids(query)


@schema.hook
def flatmap_body(context: Any, body: Any) -> Any:
    return _with_real_ids(body)


@pytest.fixture(params=[Role.QUALITY_MANAGER, Role.AUDITOR], ids=["quality_manager", "auditor"])
def signed_in(request, demo_data, db, settings) -> Iterator[dict[str, dict[str, str]]]:
    """The session cookie (and CSRF token) of the demo's network quality manager or auditor, as
    a browser or the docs page would send them."""
    settings.MEDIA_ROOT = demo_data["media_root"]
    membership = Membership.objects.filter(role=request.param, clinic=None, active=True).first()
    assert membership is not None, f"the demo data has no {request.param}"
    browser = Client()
    browser.force_login(membership.user)
    csrf_token = secrets.token_hex(16)
    credentials = {
        "cookies": {
            settings.SESSION_COOKIE_NAME: browser.cookies[settings.SESSION_COOKIE_NAME].value,
            settings.CSRF_COOKIE_NAME: csrf_token,
        },
        "headers": {"X-CSRFToken": csrf_token},
    }
    # The WSGI handler closes the database connection after each request, as it should in a
    # server; here that connection holds the test's transaction (Django's test client does the
    # same).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        me = schema["/api/v1/me/"]["GET"].Case().call(**credentials)
        assert me.status_code == 200, me.content  # else every call would be a bare 401
        yield credentials
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.mark.django_db
@schema.parametrize()
@hypothesis.settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
    ],
)
def test_api_answers_as_its_schema_says(case, signed_in):
    case.call_and_validate(**signed_in, checks=CHECKS)
