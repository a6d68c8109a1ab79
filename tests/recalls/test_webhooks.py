"""Writes about webhook endpoints: only quality managers keep them, a secret is a Standard Webhooks
secret whichever path writes it, a blank secret on a change keeps the stored one, and every write
is in the history with who and why."""

from __future__ import annotations

import base64
import os

import pytest
from pghistory.models import Events

from common.errors import DomainError
from common.services import validate_instance
from recalls.models import WebhookEndpoint
from recalls.services import webhook_endpoint_create, webhook_endpoint_update
from recalls.services.webhooks import mask_secret
from tests.factories import ClinicFactory
from tests.recalls.scenario import all_row_counts

pytestmark = pytest.mark.django_db


def secret(size: int = 32) -> str:
    return "whsec_" + base64.b64encode(os.urandom(size)).decode()


def refused(call) -> DomainError:
    with pytest.raises(DomainError) as caught:
        call()
    return caught.value


def problems(error: DomainError) -> set[tuple[str, str | None]]:
    return {(problem.code, problem.field) for problem in error.problems}


def create(actor, **fields) -> WebhookEndpoint:
    arguments = {"name": "ERP", "url": "https://erp.example.test/hooks", "secret": secret()}
    return webhook_endpoint_create(actor=actor, **{**arguments, **fields})


def events(endpoint: WebhookEndpoint):
    return Events.objects.filter(
        pgh_obj_model="recalls.WebhookEndpoint", pgh_obj_id=str(endpoint.pk)
    ).order_by("pgh_id")


# ---------------------------------------------------------------------------------------------
# Adding


def test_webhook_endpoint_create_saves_the_endpoint_with_its_history(quality_manager):
    clinic = ClinicFactory()
    value = secret()

    endpoint = create(quality_manager, name=" Clinic PMS ", secret=value, clinic=clinic)

    endpoint.refresh_from_db()
    assert (endpoint.name, endpoint.secret, endpoint.clinic, endpoint.active) == (
        "Clinic PMS",
        value,
        clinic,
        True,
    )
    event = events(endpoint).get()
    assert event.pgh_context["reason"] == "webhook endpoint added"
    assert event.pgh_context["user"] == quality_manager.pk


@pytest.mark.parametrize("role", ["auditor", "clinic_administrator", "clinician"])
def test_webhook_endpoint_create_refuses_anyone_but_a_quality_manager(request, role):
    actor = request.getfixturevalue(role)
    before = all_row_counts()

    error = refused(lambda: create(actor))

    assert (error.status, error.codes) == (403, ["role_required"])
    assert all_row_counts() == before


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0", "does not start with whsec_"),
        ("whsec_not base64 at all!", "is not base64"),
        ("whsec_" + base64.b64encode(b"short").decode(), "The key is 5 bytes long"),
        ("whsec_" + base64.b64encode(os.urandom(65)).decode(), "The key is 65 bytes long"),
    ],
)
def test_webhook_endpoint_create_refuses_a_malformed_secret_naming_the_field(
    quality_manager, value, says
):
    before = all_row_counts()

    error = refused(lambda: create(quality_manager, secret=value))

    assert error.status == 400
    assert problems(error) == {("webhook_secret_invalid", "secret")}
    message = error.problems[0].message
    assert says in message and "whsec_ followed by the base64" in message
    assert value not in message
    assert all_row_counts() == before


def test_webhook_endpoint_create_names_every_problem_at_once(quality_manager):
    error = refused(lambda: create(quality_manager, url="ftp://erp.example.test", secret=""))

    assert problems(error) == {("webhook_secret_required", "secret"), ("webhook_url_scheme", "url")}
    assert not WebhookEndpoint.objects.exists()


def test_the_secret_rule_is_the_model_fields_so_no_write_path_skips_it():
    endpoint = WebhookEndpoint(name="ERP", url="https://erp.example.test", secret="whsec_short")

    error = refused(lambda: validate_instance(endpoint))

    assert problems(error) == {("webhook_secret_invalid", "secret")}


# ---------------------------------------------------------------------------------------------
# Changing


def test_webhook_endpoint_update_with_a_blank_secret_keeps_the_stored_one(quality_manager):
    original = secret()
    endpoint = create(quality_manager, secret=original)

    updated = webhook_endpoint_update(
        actor=quality_manager, endpoint=endpoint, reason="Renamed", name="ERP v2", secret="  "
    )

    updated.refresh_from_db()
    assert (updated.name, updated.secret) == ("ERP v2", original)


def test_webhook_endpoint_update_records_the_reason_in_history(quality_manager):
    endpoint = create(quality_manager)
    replacement = secret(48)

    webhook_endpoint_update(
        actor=quality_manager,
        endpoint=endpoint,
        reason="  Rotated after the ERP upgrade  ",
        secret=replacement,
        active=False,
    )

    update = events(endpoint).get(pgh_label="update")
    assert update.pgh_context["reason"] == "Rotated after the ERP upgrade"
    assert update.pgh_context["user"] == quality_manager.pk
    assert update.pgh_diff["secret"][1] == replacement
    assert update.pgh_diff["active"] == [True, False]


def test_webhook_endpoint_update_refuses_a_malformed_secret_and_changes_nothing(quality_manager):
    original = secret()
    endpoint = create(quality_manager, secret=original)
    before = all_row_counts()

    error = refused(
        lambda: webhook_endpoint_update(
            actor=quality_manager,
            endpoint=endpoint,
            reason="Rotated",
            name="Renamed",
            secret="whsec_" + base64.b64encode(b"too short").decode(),
        )
    )

    assert error.status == 400
    assert problems(error) == {("webhook_secret_invalid", "secret")}
    assert all_row_counts() == before
    endpoint.refresh_from_db()
    assert (endpoint.name, endpoint.secret) == ("ERP", original)


def test_webhook_endpoint_update_needs_a_reason(quality_manager):
    endpoint = create(quality_manager)

    error = refused(
        lambda: webhook_endpoint_update(
            actor=quality_manager, endpoint=endpoint, reason=" ", name="Renamed"
        )
    )

    assert problems(error) == {("reason_required", "reason")}
    endpoint.refresh_from_db()
    assert endpoint.name == "ERP"


def test_webhook_endpoint_update_refuses_anyone_but_a_quality_manager(quality_manager, auditor):
    endpoint = create(quality_manager)

    error = refused(
        lambda: webhook_endpoint_update(
            actor=auditor, endpoint=endpoint, reason="Hijack", url="https://evil.example.test"
        )
    )

    assert (error.status, error.codes) == (403, ["role_required"])
    endpoint.refresh_from_db()
    assert endpoint.url == "https://erp.example.test/hooks"


def test_webhook_endpoint_update_refuses_fields_it_does_not_edit(quality_manager):
    endpoint = create(quality_manager)

    error = refused(
        lambda: webhook_endpoint_update(
            actor=quality_manager, endpoint=endpoint, reason="Moved", pk=999
        )
    )

    assert problems(error) == {("field_not_editable", "pk")}


def test_a_masked_secret_tells_two_secrets_apart_and_never_shows_one():
    value = secret()

    shown = mask_secret(value)

    assert shown == f"whsec_…{value[-4:]} (hidden)"
    assert value[6:-4] not in shown
    assert mask_secret("") == "-"
