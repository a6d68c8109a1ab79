"""The account admin is a thin client of the account services: every change has a reason in the
history, nothing is written past a refusal, and only account keepers write."""

from __future__ import annotations

import datetime

import pytest
from axes.models import AccessAttempt
from django.contrib import admin
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from common.lockout import is_locked_out
from providers.models import Account, ClinicPractitioner, Membership, Role
from tests.admin_helpers import admin_client
from tests.factories import MembershipFactory, PractitionerFactory, UserFactory

pytestmark = [pytest.mark.django_db]

NEW_PASSWORD = "violet tractor umbrella 42"


def url(view: str, *args) -> str:
    return reverse(f"admin:providers_account_{view}", args=args)


def lock_out(username: str, *, failures: int, ago=datetime.timedelta(0), address="10.0.0.1"):
    """An axes attempt row, as a sign-in from `address` leaves it, `ago` before now."""
    attempt = AccessAttempt.objects.create(
        username=username,
        ip_address=address,
        user_agent="test",
        failures_since_start=failures,
        get_data="",
        post_data="",
        http_accept="",
        path_info="/admin/login/",
    )
    # attempt_time is auto_now_add: only an update sets it in the past.
    AccessAttempt.objects.filter(pk=attempt.pk).update(attempt_time=timezone.now() - ago)


def change_data(user, **changes) -> dict:
    data = {
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_staff": "on" if user.is_staff else "",
        "is_active": "on" if user.is_active else "",
        "new_password": "",
        "reason": "",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value != ""}


def test_djangos_own_user_admin_is_replaced():
    assert not admin.site.is_registered(User)
    assert admin.site.is_registered(Account)


@pytest.mark.parametrize("who", ["quality_manager", "superuser"])
def test_an_account_keeper_opens_an_account_in_the_admin(request, who):
    actor = (
        UserFactory(username="root", is_superuser=True)
        if who == "superuser"
        else request.getfixturevalue(who)
    )
    browser = admin_client(actor)

    response = browser.post(
        url("add"),
        {"username": "ada.lee", "first_name": "Ada", "password": NEW_PASSWORD},
    )

    assert response.status_code == 302, response.content
    account = Account.objects.get(username="ada.lee")
    assert account.check_password(NEW_PASSWORD)


def test_a_weak_initial_password_is_shown_on_the_form_and_nothing_written(quality_manager):
    response = admin_client(quality_manager).post(
        url("add"), {"username": "ada.lee", "password": "1234"}
    )

    assert response.status_code == 200
    assert "password_too_short" in str(response.context["adminform"].form.errors["password"])
    assert not Account.objects.filter(username="ada.lee").exists()


def test_deactivation_in_the_admin_needs_a_reason_and_goes_through_the_service(
    quality_manager, clinician
):
    browser = admin_client(quality_manager)

    without = browser.post(url("change", clinician.pk), change_data(clinician, is_active=""))
    with_reason = browser.post(
        url("change", clinician.pk), change_data(clinician, is_active="", reason="left")
    )

    assert without.status_code == 200
    assert "reason" in without.context["adminform"].form.errors
    assert with_reason.status_code == 302
    clinician.refresh_from_db()
    assert not clinician.is_active
    assert browser.get(url("audit_trail", clinician.pk)).status_code == 200


def test_a_new_password_and_a_lifted_lock_out_in_the_admin(quality_manager, clinician, settings):
    AccessAttempt.objects.create(
        username="clinician",
        ip_address="10.0.0.1",
        user_agent="test",
        failures_since_start=settings.AXES_FAILURE_LIMIT,
        get_data="",
        post_data="",
        http_accept="",
        path_info="/admin/login/",
    )
    browser = admin_client(quality_manager)
    page = browser.get(url("changelist"))
    assert page.status_code == 200

    response = browser.post(
        url("change", clinician.pk),
        change_data(
            clinician, new_password=NEW_PASSWORD, lift_lockout="on", reason="help desk call"
        ),
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    clinician.refresh_from_db()
    assert clinician.check_password(NEW_PASSWORD)
    assert not AccessAttempt.objects.filter(username="clinician").exists()


def test_an_unchanged_account_form_is_refused(quality_manager, clinician):
    response = admin_client(quality_manager).post(
        url("change", clinician.pk), change_data(clinician, reason="nothing")
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.non_field_errors()


@pytest.mark.parametrize("who", ["clinic_administrator", "clinician"])
def test_clinic_staff_do_not_reach_the_account_admin(request, who, quality_manager):
    browser = admin_client(request.getfixturevalue(who))

    assert browser.get(url("changelist")).status_code == 403
    assert browser.post(url("add"), {"username": "x"}).status_code == 403
    assert browser.get(url("change", quality_manager.pk)).status_code == 403


def test_an_auditor_reads_accounts_in_the_admin_and_never_writes(auditor, clinician):
    browser = admin_client(auditor)

    assert browser.get(url("changelist")).status_code == 200
    assert browser.get(url("change", clinician.pk)).status_code == 200
    assert browser.post(url("add"), {"username": "x"}).status_code == 403
    denied = browser.post(url("change", clinician.pk), change_data(clinician, reason="x"))
    assert denied.status_code == 403


def test_a_role_is_revoked_and_granted_again_in_the_membership_admin(quality_manager, clinic):
    membership = MembershipFactory(role=Role.CLINICIAN, clinic=clinic)
    browser = admin_client(quality_manager)
    change = reverse("admin:providers_membership_change", args=[membership.pk])

    revoked = browser.post(change, {"reason": "moved away"})
    membership.refresh_from_db()
    assert revoked.status_code == 302
    assert not membership.active

    granted = browser.post(change, {"active": "on", "reason": "came back"})
    membership.refresh_from_db()
    assert granted.status_code == 302
    assert membership.active
    assert Membership.objects.filter(user=membership.user).count() == 1


def test_a_clinic_administrator_ends_a_practitioners_link_at_their_clinic(
    clinic_administrator, clinic
):
    link = ClinicPractitioner.objects.create(clinic=clinic, practitioner=PractitionerFactory())
    browser = admin_client(clinic_administrator)

    response = browser.post(
        reverse("admin:providers_clinicpractitioner_change", args=[link.pk]),
        {"reason": "left the clinic"},
    )

    assert response.status_code == 302
    link.refresh_from_db()
    assert not link.active


def changelist_statements(browser, **query) -> int:
    with CaptureQueriesContext(connection) as statements:
        response = browser.get(url("changelist"), query)
    assert response.status_code == 200
    return len(statements.captured_queries)


def test_the_account_list_sends_as_many_statements_for_twenty_accounts_as_for_two(
    quality_manager, settings
):
    browser = admin_client(quality_manager)
    accounts = UserFactory.create_batch(2)
    lock_out(accounts[0].username, failures=settings.AXES_FAILURE_LIMIT)
    for_two = changelist_statements(browser)
    more = UserFactory.create_batch(18)
    lock_out(more[0].username, failures=settings.AXES_FAILURE_LIMIT)

    for_twenty = changelist_statements(browser)

    assert Account.objects.count() == 21  # the quality manager too
    assert for_twenty == for_two
    assert changelist_statements(browser, memberships__role=Role.QUALITY_MANAGER) == for_two


COOL_OFF = datetime.timedelta(minutes=30)
MINUTE = datetime.timedelta(minutes=1)
# Each account's attempt rows (failures, how long ago, address), and whether the account is
# locked out with a 30-minute cool-off and with none, at a limit of 3. Sign-in and signing leave
# rows of their own, and an account is locked whatever address the attempts come from.
LOCK_OUT_CASES = {
    "never_tried": ([], False, False),
    "below_the_limit": ([(2, MINUTE, "10.0.0.1")], False, False),
    "at_the_limit": ([(3, MINUTE, "10.0.0.1")], True, True),
    "past_the_limit": ([(7, 29 * MINUTE, "10.0.0.1")], True, True),
    "cool_off_passed": ([(3, 31 * MINUTE, "10.0.0.1")], False, True),
    "at_the_limit_from_two_addresses": (
        [(2, MINUTE, "10.0.0.1"), (1, 0 * MINUTE, "127.0.0.1")],
        True,
        True,
    ),
    "part_of_it_before_the_cool_off": (
        [(2, MINUTE, "10.0.0.1"), (1, 120 * MINUTE, "::1")],
        False,
        True,
    ),
}


@pytest.mark.parametrize("cool_off", [COOL_OFF, None], ids=["cool_off", "no_cool_off"])
def test_the_locked_out_column_answers_as_the_per_account_check(
    quality_manager, settings, cool_off
):
    settings.AXES_FAILURE_LIMIT = 3
    settings.AXES_COOLOFF_TIME = cool_off
    # Signed in first: a sign-in deletes the attempts older than the cool-off, which the column
    # must leave out by itself (they stay until the next sign-in or failure).
    browser = admin_client(quality_manager)
    for name, (attempts, _, _) in LOCK_OUT_CASES.items():
        UserFactory(username=name)
        for failures, ago, address in attempts:
            lock_out(name, failures=failures, ago=ago, address=address)

    page = browser.get(url("changelist"))

    model_admin = admin.site.get_model_admin(Account)
    column = {
        account.username: model_admin.locked_out(account)
        for account in page.context["cl"].result_list
        if account.username in LOCK_OUT_CASES
    }
    one_by_one = {name: is_locked_out(username=name) for name in LOCK_OUT_CASES}
    expected = {
        name: locked if cool_off else locked_for_good
        for name, (_, locked, locked_for_good) in LOCK_OUT_CASES.items()
    }
    assert column == one_by_one == expected
