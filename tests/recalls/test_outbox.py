"""The outbox after the recall: the retry schedule, a webhook endpoint that is gone (410), resending
a notice that failed for good, the notice list, and webhook endpoints through the API (registered,
rotated, deactivated; a secret shown once). Real SMTP server and HTTP receiver, tasks in this
process (test_outage.py has the real worker)."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from standardwebhooks import Webhook

from common.errors import DomainError
from recalls import delivery
from recalls.delivery import Outcome
from recalls.models import (
    Channel,
    Notification,
    NotificationResend,
    NotificationStatus,
    WebhookEndpoint,
)
from recalls.services import recall_notice_resend
from recalls.tasks import notification_deliver
from tests.admin_helpers import admin_client
from tests.api_helpers import API, assert_list_queries_fixed, error_codes, error_fields
from tests.factories import ClinicFactory, MembershipFactory, ProductFactory, UserFactory
from tests.recalls.conftest import (
    affected_clinic,
    free_port,
    open_recall,
    recalled_lot,
    webhook_endpoint,
)

pytestmark = pytest.mark.django_db


# ---------------------------------------------------------------------------------------------
# The retry schedule: never shorter than documented


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    attempts=st.integers(min_value=0, max_value=10_000),
    draw=st.floats(min_value=0, max_value=1, exclude_max=True),
    base=st.floats(min_value=0.5, max_value=120),
    factor=st.floats(min_value=1, max_value=40),
)
def test_retry_delay_is_never_shorter_than_the_documented_backoff(attempts, draw, base, factor):
    from django.conf import settings

    ceiling = base * factor
    saved = settings.RECALL_DELIVERY_BACKOFF_SECONDS, settings.RECALL_DELIVERY_BACKOFF_MAX_SECONDS
    settings.RECALL_DELIVERY_BACKOFF_SECONDS, settings.RECALL_DELIVERY_BACKOFF_MAX_SECONDS = (
        base,
        ceiling,
    )
    try:
        delay = delivery.retry_delay(attempts, draw=lambda: draw)
    finally:
        settings.RECALL_DELIVERY_BACKOFF_SECONDS, settings.RECALL_DELIVERY_BACKOFF_MAX_SECONDS = (
            saved
        )
    doublings = max(attempts - 1, 0)
    documented = ceiling if doublings > 60 else min(base * 2**doublings, ceiling)
    assert documented <= delay <= documented * (1 + settings.RECALL_DELIVERY_JITTER) + 1e-9


def test_default_schedule_doubles_from_thirty_seconds_to_ten_minutes():
    floor = [delivery.retry_delay(n, draw=lambda: 0.0) for n in range(1, 8)]
    assert floor == [30, 60, 120, 240, 480, 600, 600]
    assert delivery.retry_delay(1, draw=lambda: 0.999) < 30 * 1.25


def test_the_task_retries_after_the_delay_delivery_asks_for(quality_manager, smtp, settings):
    lot = recalled_lot()
    affected = affected_clinic(lot)
    recall = open_recall(quality_manager, lot)
    notice = Notification.objects.get(recall=recall, clinic=affected.clinic)
    settings.EMAIL_PORT = free_port()
    retried = []

    def record(*args, **kwargs):
        retried.append(kwargs)
        raise RuntimeError("stop")

    original = notification_deliver.retry
    notification_deliver.retry = record
    try:
        with pytest.raises(RuntimeError):
            notification_deliver.run(notice.pk)
    finally:
        notification_deliver.retry = original

    assert len(retried) == 1
    assert 30 <= retried[0]["countdown"] <= 30 * 1.25


# ---------------------------------------------------------------------------------------------
# A webhook endpoint that is gone


def test_endpoint_answering_410_is_deactivated_and_the_quality_managers_are_told_once(
    quality_manager, smtp, webhook_receiver
):
    quality_manager.email = "qm@network.example"
    quality_manager.save()
    lot = recalled_lot()
    affected_clinic(lot)
    affected_clinic(lot)
    endpoint = webhook_endpoint(webhook_receiver, "network")
    webhook_receiver.answers["/hooks/network"] = [410]
    recall = open_recall(quality_manager, lot)
    (notice,) = Notification.objects.filter(recall=recall, endpoint=endpoint)

    assert delivery.notification_deliver(notice.pk) == Outcome.FAILED

    endpoint.refresh_from_db()
    notice.refresh_from_db()
    assert endpoint.active is False
    assert endpoint.deactivated_at is not None
    assert endpoint.deactivation_reason.startswith("answered 410 Gone")
    assert notice.status == NotificationStatus.FAILED
    assert notice.last_error.startswith("HTTP 410")
    told = smtp.to("qm@network.example")
    assert len(told) == 1
    assert "410" in str(told[0]["Subject"]) and endpoint.name in str(told[0]["Subject"])
    # A second notice for the endpoint is not sent, and the managers are not told again.
    assert not delivery.endpoint_gone(endpoint, notification=notice, reason="again")
    assert len(smtp.to("qm@network.example")) == 1


def test_notice_to_a_deactivated_endpoint_fails_without_a_request(
    quality_manager, smtp, webhook_receiver
):
    lot = recalled_lot()
    affected_clinic(lot)
    endpoint = webhook_endpoint(webhook_receiver, "network")
    recall = open_recall(quality_manager, lot)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(active=False)
    notice = Notification.objects.get(recall=recall, endpoint=endpoint)

    assert delivery.notification_deliver(notice.pk) == Outcome.FAILED
    assert webhook_receiver.attempted == []


# ---------------------------------------------------------------------------------------------
# Resending a failed notice


def _failed_email_notice(quality_manager, settings, **recall_options):
    lot = recalled_lot()
    affected = affected_clinic(lot)
    recall = open_recall(quality_manager, lot, **recall_options)
    notice = Notification.objects.get(recall=recall, clinic=affected.clinic, channel=Channel.EMAIL)
    Notification.objects.filter(pk=notice.pk).update(
        status=NotificationStatus.FAILED,
        attempts=9,
        last_error="gave up after 9 attempts over 72 h",
        failing_since=timezone.now() - datetime.timedelta(hours=73),
        failed_at=timezone.now(),
    )
    notice.refresh_from_db()
    return notice


def test_resent_notice_is_delivered_under_the_same_message_id(
    quality_manager, smtp, settings, eager_celery, django_capture_on_commit_callbacks
):
    notice = _failed_email_notice(quality_manager, settings)

    with django_capture_on_commit_callbacks(execute=True):
        recall_notice_resend(
            actor=quality_manager, notification=notice, reason="Mail server restored"
        )

    notice.refresh_from_db()
    assert notice.status == NotificationStatus.SENT
    assert notice.last_error == ""
    assert notice.failing_since is None and notice.failed_at is None
    assert smtp.message_ids() == [f"<{notice.message_id}@traceability.example>"]
    (resend,) = NotificationResend.objects.filter(notification=notice)
    assert (resend.resent_by, resend.reason) == (quality_manager, "Mail server restored")
    assert resend.error_before == "gave up after 9 attempts over 72 h"


def test_resend_is_refused_for_every_unmet_rule_at_once_and_changes_nothing(
    quality_manager, smtp, settings
):
    notice = _failed_email_notice(quality_manager, settings)
    Notification.objects.filter(pk=notice.pk).update(status=NotificationStatus.SENT)

    with pytest.raises(DomainError) as refused:
        recall_notice_resend(actor=quality_manager, notification=notice, reason=" ")

    assert set(refused.value.codes) == {"reason_required", "notice_not_failed"}
    assert NotificationResend.objects.count() == 0
    notice.refresh_from_db()
    assert notice.status == NotificationStatus.SENT


def test_a_notice_of_a_closed_recall_is_not_resent(quality_manager, smtp, settings):
    from recalls.services import recall_close
    from tests.factories import PASSWORD

    notice = _failed_email_notice(quality_manager, settings)
    recall_close(
        recall=notice.recall,
        actor=quality_manager,
        password=PASSWORD,
        reason="Closed by override for the test",
        override=True,
    )

    with pytest.raises(DomainError) as refused:
        recall_notice_resend(actor=quality_manager, notification=notice, reason="retry")

    assert refused.value.codes == ["recall_closed"]
    assert refused.value.status == 409


def test_resend_to_a_deactivated_endpoint_is_refused(quality_manager, smtp, webhook_receiver):
    lot = recalled_lot()
    affected_clinic(lot)
    endpoint = webhook_endpoint(webhook_receiver, "network")
    recall = open_recall(quality_manager, lot)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(active=False)
    notice = Notification.objects.get(recall=recall, endpoint=endpoint)
    assert delivery.notification_deliver(notice.pk) == Outcome.FAILED

    with pytest.raises(DomainError) as refused:
        recall_notice_resend(actor=quality_manager, notification=notice, reason="retry")

    assert refused.value.codes == ["webhook_endpoint_inactive"]
    assert refused.value.status == 409


@pytest.mark.parametrize("role", ["auditor", "clinic_administrator", "clinician"])
def test_only_a_quality_manager_resends(quality_manager, smtp, settings, role, request):
    notice = _failed_email_notice(quality_manager, settings)
    user = request.getfixturevalue(role)

    with pytest.raises(DomainError) as refused:
        recall_notice_resend(actor=user, notification=notice, reason="retry")

    assert refused.value.status == 403
    notice.refresh_from_db()
    assert notice.status == NotificationStatus.FAILED


def test_resend_through_the_api(quality_manager, qm_client, smtp, settings, eager_celery):
    notice = _failed_email_notice(quality_manager, settings)

    missing = qm_client.post(f"{API}/notices/{notice.pk}/resend/", {}, format="json")
    assert missing.status_code == 400 and error_fields(missing) == ["reason"]
    response = qm_client.post(
        f"{API}/notices/{notice.pk}/resend/", {"reason": "Mail server restored"}, format="json"
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["message_id"] == str(notice.message_id)
    assert body["resend_count"] == 1
    again = qm_client.post(f"{API}/notices/{notice.pk}/resend/", {"reason": "twice"}, format="json")
    assert again.status_code == 409 and error_codes(again) == ["notice_not_failed"]
    gone = qm_client.post(f"{API}/notices/99999999/resend/", {"reason": "x"}, format="json")
    assert gone.status_code == 404


def test_auditor_may_not_resend_through_the_api(quality_manager, auditor, smtp, settings):
    from rest_framework.test import APIClient

    notice = _failed_email_notice(quality_manager, settings)
    client = APIClient()
    client.force_authenticate(auditor)

    response = client.post(f"{API}/notices/{notice.pk}/resend/", {"reason": "x"}, format="json")

    assert response.status_code == 403 and error_codes(response) == ["role_required"]


def test_resend_from_the_recall_page_in_the_admin(
    quality_manager, smtp, settings, eager_celery, django_capture_on_commit_callbacks
):
    notice = _failed_email_notice(quality_manager, settings)
    client = admin_client(quality_manager)

    page = client.get(f"/admin/recalls/recall/{notice.recall_id}/change/")
    resend_url = f"/admin/recalls/recall/{notice.recall_id}/notices/{notice.pk}/resend/"
    assert resend_url in page.content.decode()
    form = client.get(resend_url)
    assert form.status_code == 200 and "gave up after 9 attempts" in form.content.decode()
    refused = client.post(resend_url, {"reason": ""})
    assert refused.status_code == 200  # shown again with the field's error
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(resend_url, {"reason": "Mail server restored"})

    assert response.status_code == 302
    notice.refresh_from_db()
    assert notice.status == NotificationStatus.SENT
    assert smtp.message_ids() == [f"<{notice.message_id}@traceability.example>"]


def test_auditor_sees_no_resend_control_and_is_refused_the_page(
    quality_manager, auditor, smtp, settings
):
    notice = _failed_email_notice(quality_manager, settings)
    client = admin_client(auditor)
    resend_url = f"/admin/recalls/recall/{notice.recall_id}/notices/{notice.pk}/resend/"

    page = client.get(f"/admin/recalls/recall/{notice.recall_id}/change/")

    assert page.status_code == 200
    assert resend_url not in page.content.decode()
    assert client.post(resend_url, {"reason": "x"}).status_code == 403


# ---------------------------------------------------------------------------------------------
# The notice list


def test_notice_list_shows_failed_notices_to_quality_managers_and_own_ones_to_clinics(
    quality_manager, qm_client, smtp, settings
):
    from rest_framework.test import APIClient

    notice = _failed_email_notice(quality_manager, settings)
    other_lot = recalled_lot(product=ProductFactory())
    affected_clinic(other_lot)
    open_recall(quality_manager, other_lot)
    staff = UserFactory()
    MembershipFactory(user=staff, role="clinic_administrator", clinic=notice.clinic)

    failed = qm_client.get(f"{API}/notices/?status=failed").json()
    assert [row["id"] for row in failed["results"]] == [notice.pk]
    row = failed["results"][0]
    assert row["last_error"].startswith("gave up after")
    assert row["failed_at"] is not None and row["delivery_deadline"] is not None
    client = APIClient()
    client.force_authenticate(staff)
    own = client.get(f"{API}/notices/").json()
    assert {r["clinic"] for r in own["results"]} == {notice.clinic_id}
    bad = qm_client.get(f"{API}/notices/?status=lost")
    assert bad.status_code == 400 and error_fields(bad) == ["status"]


def test_notice_list_runs_a_fixed_number_of_queries(
    quality_manager, qm_client, smtp, django_assert_num_queries
):
    def add_rows(count: int) -> None:
        for _ in range(count):
            lot = recalled_lot(product=ProductFactory())
            affected_clinic(lot)
            open_recall(quality_manager, lot)

    assert_list_queries_fixed(qm_client, f"{API}/notices/", add_rows, django_assert_num_queries)


# ---------------------------------------------------------------------------------------------
# Webhook endpoints through the API


def _register(client, **fields):
    body = {"name": "ERP", "url": "https://erp.example.test/hooks", "reason": "", **fields}
    return client.post(f"{API}/webhook-endpoints/", body, format="json")


def test_registered_endpoint_shows_its_generated_secret_once(qm_client):
    response = _register(qm_client)

    assert response.status_code == 201, response.json()
    assert response["Cache-Control"] == "no-store"
    secret = response.json()["secret"]
    assert secret.startswith("whsec_")
    endpoint = WebhookEndpoint.objects.get(pk=response.json()["id"])
    assert endpoint.secret == secret
    listed = qm_client.get(f"{API}/webhook-endpoints/").json()["results"]
    assert [row["id"] for row in listed] == [endpoint.pk]
    assert "secret" not in listed[0] and secret not in str(listed)
    detail = qm_client.get(f"{API}/webhook-endpoints/{endpoint.pk}/").json()
    assert "secret" not in detail and detail["secret_hint"].endswith(f"{secret[-4:]} (hidden)")


@pytest.mark.parametrize(
    ("fields", "field", "code"),
    [
        ({"url": "ftp://erp.example.test/"}, "url", "webhook_url_scheme"),
        ({"url": "not a url"}, "url", None),
        ({"name": ""}, "name", "blank"),
        ({"clinic": 99999999}, "clinic", "does_not_exist"),
        ({"clinic": "one"}, "clinic", "invalid"),
    ],
)
def test_register_refuses_bad_input_naming_the_field_and_writes_nothing(
    qm_client, fields, field, code
):
    response = _register(qm_client, **fields)

    assert response.status_code == 400, response.json()
    assert field in error_fields(response)
    if code:
        assert code in error_codes(response)
    assert WebhookEndpoint.objects.count() == 0


def test_rotation_shows_the_new_secret_once_and_signs_with_both_until_the_overlap_ends(
    qm_client, settings
):
    first = _register(qm_client).json()
    old_secret = first["secret"]

    missing = qm_client.post(
        f"{API}/webhook-endpoints/{first['id']}/rotate/", {"reason": ""}, format="json"
    )
    assert missing.status_code == 400 and error_codes(missing) == ["reason_required"]
    rotated = qm_client.post(
        f"{API}/webhook-endpoints/{first['id']}/rotate/", {"reason": "yearly"}, format="json"
    )

    assert rotated.status_code == 200, rotated.json()
    new_secret = rotated.json()["secret"]
    assert new_secret != old_secret and rotated.json()["previous_secret_valid_until"]
    endpoint = WebhookEndpoint.objects.get(pk=first["id"])
    now = timezone.now()
    body = '{"type":"recall.opened"}'
    header = delivery.webhook_signature(endpoint=endpoint, webhook_id="msg_1", at=now, body=body)
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": header,
    }
    # A receiver still on the old secret verifies, and so does one on the new secret,
    assert Webhook(old_secret).verify(body, headers) == {"type": "recall.opened"}
    assert Webhook(new_secret).verify(body, headers) == {"type": "recall.opened"}
    # until the overlap has passed: then only the new secret signs.
    later = endpoint.previous_secret_expires_at + datetime.timedelta(seconds=1)
    header = delivery.webhook_signature(endpoint=endpoint, webhook_id="msg_1", at=later, body=body)
    assert len(header.split()) == 1
    assert header == Webhook(new_secret).sign("msg_1", later, body)


def test_deactivate_and_activate_through_the_api(qm_client):
    endpoint_id = _register(qm_client).json()["id"]
    url = f"{API}/webhook-endpoints/{endpoint_id}"

    off = qm_client.post(f"{url}/deactivate/", {"reason": "Integration retired"}, format="json")
    again = qm_client.post(f"{url}/deactivate/", {"reason": "twice"}, format="json")
    on = qm_client.post(f"{url}/activate/", {"reason": "Back"}, format="json")

    assert off.status_code == 200 and off.json()["active"] is False
    assert off.json()["deactivation_reason"] == "Integration retired"
    assert again.status_code == 409
    assert error_codes(again) == ["webhook_endpoint_already_deactivated"]
    assert on.status_code == 200 and on.json()["active"] is True
    assert on.json()["deactivated_at"] is None


def test_auditor_lists_endpoints_but_writes_nothing_and_clinic_staff_see_none(
    qm_client, auditor, clinic_administrator
):
    from rest_framework.test import APIClient

    endpoint_id = _register(qm_client).json()["id"]
    reader = APIClient()
    reader.force_authenticate(auditor)
    staff = APIClient()
    staff.force_authenticate(clinic_administrator)

    assert reader.get(f"{API}/webhook-endpoints/").status_code == 200
    assert _register(reader).status_code == 403
    rotate = reader.post(
        f"{API}/webhook-endpoints/{endpoint_id}/rotate/", {"reason": "x"}, format="json"
    )
    assert rotate.status_code == 403
    for response in (
        staff.get(f"{API}/webhook-endpoints/"),
        staff.get(f"{API}/webhook-endpoints/{endpoint_id}/"),
    ):
        assert response.status_code == 403 and error_codes(response) == ["role_required"]
    assert WebhookEndpoint.objects.get(pk=endpoint_id).secret  # unchanged, still one endpoint
    assert WebhookEndpoint.objects.count() == 1


def test_clinic_scoped_endpoint_is_registered_for_that_clinic(qm_client):
    clinic = ClinicFactory()

    response = _register(qm_client, clinic=clinic.pk)

    assert response.status_code == 201
    assert response.json()["clinic"] == clinic.pk
    assert response.json()["clinic_name"] == clinic.name
