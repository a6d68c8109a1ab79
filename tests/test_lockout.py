"""Lock-out after repeated wrong passwords (django-axes): the admin's sign-in, the API's token
sign-in and the password re-entered to sign, whether a request, the admin or a command asks.

Given AXES_FAILURE_LIMIT wrong passwords in a row, the account is locked: the right password is
refused too, until an administrator lifts the lock-out or the cool-off period has passed."""

from __future__ import annotations

import datetime

import pytest
from axes.models import AccessAttempt
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from common.errors import DomainError
from common.lockout import SIGNING_AGENT
from common.services import verify_password
from lots.models import Eligibility
from lots.services import donor_eligibility_decide
from providers import accounts
from tests.api_helpers import API, error_codes
from tests.factories import PASSWORD, DonorFactory

pytestmark = [pytest.mark.django_db]

LIMIT = 3


@pytest.fixture(autouse=True)
def _limit(settings):
    settings.AXES_FAILURE_LIMIT = LIMIT
    settings.AXES_COOLOFF_TIME = datetime.timedelta(minutes=30)


def admin_login(username: str, password: str):
    return Client().post("/admin/login/?next=/admin/", {"username": username, "password": password})


def sign(actor, password: str) -> list[str]:
    """Verify a signing password the way a command does (no request); the codes of a refusal."""
    try:
        verify_password(actor, password)
    except DomainError as error:
        return error.codes
    return []


def cool_off_passes() -> None:
    AccessAttempt.objects.update(attempt_time=timezone.now() - datetime.timedelta(minutes=31))


# ---------------------------------------------------------------------------------------------
# The admin's sign-in


def test_the_admin_sign_in_locks_the_account_after_repeated_wrong_passwords(quality_manager):
    quality_manager.is_staff = True
    quality_manager.save()

    answers = [admin_login("qm", "wrong").status_code for _ in range(LIMIT)]
    locked = admin_login("qm", PASSWORD)

    assert answers == [200] * (LIMIT - 1) + [403]
    assert locked.status_code == 403
    assert "locked" in locked.content.decode()
    assert AccessAttempt.objects.get(username="qm").failures_since_start == LIMIT + 1

    call_command("axes_reset_username", "qm")

    assert admin_login("qm", PASSWORD).status_code == 302


def test_the_admin_sign_in_works_again_after_the_cool_off(quality_manager):
    quality_manager.is_staff = True
    quality_manager.save()
    for _ in range(LIMIT):
        admin_login("qm", "wrong")
    assert admin_login("qm", PASSWORD).status_code == 403

    cool_off_passes()

    assert admin_login("qm", PASSWORD).status_code == 302


def test_a_right_password_ends_the_run_of_wrong_ones(quality_manager):
    quality_manager.is_staff = True
    quality_manager.save()
    for _ in range(LIMIT - 1):
        admin_login("qm", "wrong")

    assert admin_login("qm", PASSWORD).status_code == 302
    assert [admin_login("qm", "wrong").status_code for _ in range(LIMIT - 1)] == [200] * (LIMIT - 1)


# ---------------------------------------------------------------------------------------------
# The API's token sign-in


def test_the_token_sign_in_locks_the_account_and_says_so(clinician, qm_client):
    client = Client()

    def obtain(password: str):
        return client.post(
            f"{API}/auth/token/",
            {"username": "clinician", "password": password},
            content_type="application/json",
        )

    answers = [obtain("wrong") for _ in range(LIMIT)]
    locked = obtain(PASSWORD)

    assert [a.status_code for a in answers] == [400] * (LIMIT - 1) + [403]
    assert error_codes(answers[-1]) == ["account_locked"]
    assert (locked.status_code, error_codes(locked)) == (403, ["account_locked"])
    detail = qm_client.get(f"{API}/users/{clinician.pk}/").json()
    assert detail["locked_out"] is True

    lifted = qm_client.post(
        f"{API}/users/{clinician.pk}/unlock/", {"reason": "called the help desk"}, format="json"
    )

    assert lifted.status_code == 200
    assert obtain(PASSWORD).status_code == 201


# ---------------------------------------------------------------------------------------------
# The signing password


def test_signing_locks_the_account_after_repeated_wrong_passwords_without_a_request(
    quality_manager,
):
    refusals = [sign(quality_manager, "wrong") for _ in range(LIMIT)]

    assert refusals == [["signature_password_invalid"]] * (LIMIT - 1) + [
        ["signature_password_invalid", "account_locked"]
    ]
    assert sign(quality_manager, PASSWORD) == ["account_locked"]
    attempt = AccessAttempt.objects.get(username="qm")
    assert (attempt.user_agent, attempt.failures_since_start) == (SIGNING_AGENT, LIMIT)

    accounts.user_lockout_reset(
        actor=_superuser(), user=quality_manager, reason="identity checked in person"
    )

    assert sign(quality_manager, PASSWORD) == []


def test_signing_works_again_after_the_cool_off(quality_manager):
    for _ in range(LIMIT):
        sign(quality_manager, "wrong")
    assert sign(quality_manager, PASSWORD) == ["account_locked"]

    cool_off_passes()

    assert sign(quality_manager, PASSWORD) == []


def test_a_right_signing_password_ends_the_run_of_wrong_ones(quality_manager):
    for _ in range(LIMIT - 1):
        sign(quality_manager, "wrong")

    assert sign(quality_manager, PASSWORD) == []
    assert not AccessAttempt.objects.filter(username="qm").exists()
    assert sign(quality_manager, "wrong") == ["signature_password_invalid"]


def test_wrong_signing_passwords_count_although_each_refused_service_rolls_back(
    quality_manager,
):
    """Each refusal rolls back the service's transaction; the failures are kept all the same."""
    donor = DonorFactory()

    def decide(password: str) -> list[str]:
        try:
            donor_eligibility_decide(
                actor=quality_manager,
                donor=donor,
                eligibility=Eligibility.INELIGIBLE,
                password=password,
                reason="reactive marker",
            )
        except DomainError as error:
            return error.codes
        return []

    assert [decide("wrong")[-1] for _ in range(LIMIT)][-1] == "account_locked"
    assert decide(PASSWORD) == ["account_locked"]
    donor.refresh_from_db()
    assert donor.eligibility == Eligibility.INCOMPLETE


def test_signing_through_the_api_is_locked_out_and_answers_403(quality_manager, qm_client):
    donor = DonorFactory()

    def decide(password: str):
        return qm_client.post(
            f"{API}/donors/{donor.pk}/eligibility/",
            {"eligibility": "ineligible", "password": password, "reason": "reactive"},
            format="json",
        )

    wrong = [decide("wrong") for _ in range(LIMIT)]
    right = decide(PASSWORD)

    assert [r.status_code for r in wrong] == [403] * LIMIT
    assert error_codes(wrong[0]) == ["signature_password_invalid"]
    assert error_codes(wrong[-1]) == ["signature_password_invalid", "account_locked"]
    assert (right.status_code, error_codes(right)) == (403, ["account_locked"])


def test_wrong_sign_ins_and_wrong_signing_passwords_count_together(quality_manager):
    quality_manager.is_staff = True
    quality_manager.save()
    for _ in range(LIMIT - 1):
        admin_login("qm", "wrong")

    assert sign(quality_manager, "wrong") == ["signature_password_invalid", "account_locked"]
    assert admin_login("qm", PASSWORD).status_code == 403


def test_an_account_locked_by_signing_is_listed_in_the_axes_admin(quality_manager):
    for _ in range(LIMIT):
        sign(quality_manager, "wrong")
    root = _superuser()
    client = Client()
    client.force_login(root)

    page = client.get("/admin/axes/accessattempt/")

    assert page.status_code == 200
    assert "qm" in page.content.decode()
    assert SIGNING_AGENT in page.content.decode()


def _superuser():
    from tests.factories import UserFactory

    return UserFactory(username="root", is_superuser=True, is_staff=True)
