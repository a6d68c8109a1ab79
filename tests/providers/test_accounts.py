"""Account services: who may keep accounts, what each write records, and what each refuses."""

from __future__ import annotations

import datetime

import pytest
from django.contrib.auth import get_user_model
from knox.models import AuthToken

from common.errors import DomainError
from providers import accounts
from providers.models import AccountEvent, ClinicPractitioner, Membership, MembershipEvent, Role
from providers.selectors import user_has_role
from providers.services import clinic_practitioner_link, clinic_practitioner_unlink
from tests.api_helpers import row_counts
from tests.factories import (
    PASSWORD,
    ClinicFactory,
    MembershipFactory,
    PractitionerFactory,
    UserFactory,
)

pytestmark = [pytest.mark.django_db]

NEW_PASSWORD = "violet tractor umbrella 42"


def refused(call) -> DomainError:
    with pytest.raises(DomainError) as caught:
        call()
    return caught.value


@pytest.fixture
def superuser(db):
    return UserFactory(username="root", is_superuser=True, is_staff=True)


@pytest.fixture(params=["quality_manager", "superuser"])
def keeper(request):
    """Both kinds of account keeper: a network quality manager and a system administrator."""
    return request.getfixturevalue(request.param)


def last_event(model, obj):
    return model.objects.filter(pgh_obj_id=obj.pk).order_by("-pgh_id").first()


# ---------------------------------------------------------------------------------------------
# Who may keep accounts


WRITES = {
    "user_create": lambda actor, user: accounts.user_create(actor=actor, username="new.one"),
    "user_update": lambda actor, user: accounts.user_update(
        actor=actor, user=user, reason="typo", first_name="X"
    ),
    "user_deactivate": lambda actor, user: accounts.user_deactivate(
        actor=actor, user=user, reason="left"
    ),
    "user_password_set": lambda actor, user: accounts.user_password_set(
        actor=actor, user=user, password=NEW_PASSWORD, reason="lost"
    ),
    "user_lockout_reset": lambda actor, user: accounts.user_lockout_reset(
        actor=actor, user=user, reason="verified by phone"
    ),
    "membership_grant": lambda actor, user: accounts.membership_grant(
        actor=actor, user=user, role=Role.AUDITOR
    ),
    "token_revoke": lambda actor, user: accounts.token_revoke(actor=actor, user=user),
}


@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
@pytest.mark.parametrize("who", ["clinician", "clinic_administrator", "auditor", "no_role"])
def test_account_services_refuse_anyone_but_a_quality_manager_or_administrator(request, write, who):
    actor = UserFactory() if who == "no_role" else request.getfixturevalue(who)
    user = UserFactory()
    before = row_counts()

    error = refused(lambda: write(actor, user))

    assert (error.status, error.codes) == (403, ["role_required"])
    assert row_counts() == before


def test_a_deactivated_quality_manager_keeps_no_accounts(quality_manager):
    quality_manager.is_active = False
    quality_manager.save()

    assert not accounts.may_keep_accounts(quality_manager)


def test_a_quality_manager_cannot_change_a_superusers_account(quality_manager, superuser):
    error = refused(
        lambda: accounts.user_deactivate(actor=quality_manager, user=superuser, reason="no")
    )

    assert (error.status, error.codes) == (403, ["superuser_account_protected"])


# ---------------------------------------------------------------------------------------------
# Create and change


def test_user_create_opens_an_account_with_a_validated_password_and_history(keeper):
    user = accounts.user_create(
        actor=keeper,
        username="ada.lee",
        password=NEW_PASSWORD,
        first_name=" Ada ",
        last_name="Lee",
        email="Ada.Lee@Clinic.Example",
    )

    assert user.check_password(NEW_PASSWORD)
    assert user.password.startswith("md5$")  # the tests' fast hasher (settings: Argon2 first)
    assert (user.first_name, user.email) == ("Ada", "ada.lee@clinic.example")
    event = last_event(AccountEvent, user)
    assert event.pgh_label == "insert"
    assert event.pgh_context.metadata == {"user": keeper.pk, "reason": "account created"}
    assert "password" not in {field.name for field in AccountEvent._meta.fields}


def test_user_create_without_a_password_cannot_sign_in_until_one_is_set(quality_manager):
    user = accounts.user_create(actor=quality_manager, username="later")

    assert not user.has_usable_password()

    accounts.user_password_set(
        actor=quality_manager, user=user, password=NEW_PASSWORD, reason="first password"
    )

    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)


@pytest.mark.parametrize(
    ("password", "code"),
    [
        ("short", "password_too_short"),
        ("123456789012345", "password_entirely_numeric"),
        ("michaeljackson", "password_too_common"),
        ("ada.lee.2026", "password_too_similar"),
    ],
)
def test_user_create_refuses_a_weak_password_naming_the_field(quality_manager, password, code):
    before = row_counts()

    error = refused(
        lambda: accounts.user_create(actor=quality_manager, username="ada.lee", password=password)
    )

    assert error.status == 400
    assert code in error.codes
    assert {problem.field for problem in error.problems} == {"password"}
    assert row_counts() == before


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({"username": "no spaces allowed"}, "invalid", "username"),
        ({"username": ""}, "blank", "username"),
        ({"username": "QM"}, "username_taken", "username"),
        ({"username": "fresh", "email": "not-an-email"}, "invalid", "email"),
        ({"username": "fresh", "email": "TAKEN@example.org"}, "email_taken", "email"),
    ],
)
def test_user_create_refuses_bad_input_naming_the_field(quality_manager, fields, code, field):
    UserFactory(email="taken@example.org")
    before = row_counts()

    error = refused(lambda: accounts.user_create(actor=quality_manager, **fields))

    assert error.status == 400
    assert (error.codes[0], error.problems[0].field) == (code, field)
    assert row_counts() == before


def test_user_update_corrects_name_and_email_with_the_reason(keeper):
    user = UserFactory()

    accounts.user_update(
        actor=keeper,
        user=user,
        reason="married name",
        last_name="Rivera",
        email="a.rivera@example.org",
        is_staff=True,
    )

    user.refresh_from_db()
    assert (user.last_name, user.email, user.is_staff) == (
        "Rivera",
        "a.rivera@example.org",
        True,
    )
    event = last_event(AccountEvent, user)
    assert event.pgh_context.metadata == {"user": keeper.pk, "reason": "married name"}


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({"reason": "", "first_name": "X"}, "reason_required", "reason"),
        ({"reason": "r", "is_superuser": True}, "field_not_editable", "is_superuser"),
        ({"reason": "r", "username": "other"}, "field_not_editable", "username"),
        ({"reason": "r", "email": "nope"}, "invalid", "email"),
    ],
)
def test_user_update_refuses_bad_input_and_writes_nothing(quality_manager, fields, code, field):
    user = UserFactory()
    before = row_counts()

    error = refused(lambda: accounts.user_update(actor=quality_manager, user=user, **fields))

    assert error.status == 400
    assert (error.codes[0], error.problems[0].field) == (code, field)
    assert row_counts() == before


# ---------------------------------------------------------------------------------------------
# Deactivation


def test_user_deactivate_ends_sign_in_and_tokens_and_keeps_the_roles(keeper, clinician, clinic):
    AuthToken.objects.create(user=clinician)

    accounts.user_deactivate(actor=keeper, user=clinician, reason="left the clinic")

    clinician.refresh_from_db()
    assert not clinician.is_active
    assert not AuthToken.objects.filter(user=clinician).exists()
    assert Membership.objects.filter(user=clinician, active=True).exists()
    assert not user_has_role(clinician, Role.CLINICIAN, clinic=clinic)
    assert get_user_model().objects.filter(pk=clinician.pk).exists()  # never deleted
    event = last_event(AccountEvent, clinician)
    assert event.is_active is False
    assert event.pgh_context.metadata["reason"] == "left the clinic"


def test_user_reactivate_restores_the_account_and_its_roles(quality_manager, clinician, clinic):
    accounts.user_deactivate(actor=quality_manager, user=clinician, reason="on leave")

    accounts.user_reactivate(actor=quality_manager, user=clinician, reason="back from leave")

    clinician.refresh_from_db()
    assert clinician.is_active
    assert user_has_role(clinician, Role.CLINICIAN, clinic=clinic)


def test_deactivation_refuses_the_own_account_an_inactive_one_and_no_reason(quality_manager):
    other = UserFactory(is_active=False)

    own = refused(
        lambda: accounts.user_deactivate(actor=quality_manager, user=quality_manager, reason="x")
    )
    again = refused(lambda: accounts.user_deactivate(actor=quality_manager, user=other, reason="x"))
    active = refused(
        lambda: accounts.user_reactivate(actor=quality_manager, user=quality_manager, reason="x")
    )
    no_reason = refused(
        lambda: accounts.user_deactivate(actor=quality_manager, user=UserFactory(), reason=" ")
    )

    assert (own.status, own.codes) == (409, ["own_account"])
    assert (again.status, again.codes) == (409, ["account_inactive"])
    assert (active.status, active.codes) == (409, ["account_active"])
    assert (no_reason.status, no_reason.codes) == (400, ["reason_required"])


# ---------------------------------------------------------------------------------------------
# Passwords


def test_user_password_set_validates_and_revokes_every_token(quality_manager, clinician):
    AuthToken.objects.create(user=clinician)
    weak = refused(
        lambda: accounts.user_password_set(
            actor=quality_manager, user=clinician, password="abc", reason="reset"
        )
    )
    assert (weak.status, weak.problems[0].field) == (400, "password")

    accounts.user_password_set(
        actor=quality_manager, user=clinician, password=NEW_PASSWORD, reason="reset"
    )

    clinician.refresh_from_db()
    assert clinician.check_password(NEW_PASSWORD)
    assert not AuthToken.objects.filter(user=clinician).exists()


def test_own_password_change_needs_the_current_password(clinician):
    wrong = refused(
        lambda: accounts.own_password_change(
            user=clinician, current_password="guess", new_password=NEW_PASSWORD
        )
    )
    weak = refused(
        lambda: accounts.own_password_change(
            user=clinician, current_password=PASSWORD, new_password="1234"
        )
    )

    accounts.own_password_change(
        user=clinician, current_password=PASSWORD, new_password=NEW_PASSWORD
    )

    assert (wrong.status, wrong.codes) == (403, ["password_incorrect"])
    assert (weak.status, {p.field for p in weak.problems}) == (400, {"new_password"})
    clinician.refresh_from_db()
    assert clinician.check_password(NEW_PASSWORD)


# ---------------------------------------------------------------------------------------------
# Roles


def test_membership_grant_and_revoke_keep_one_membership_with_its_history(keeper, clinic):
    user = UserFactory()

    membership = accounts.membership_grant(
        actor=keeper, user=user, role=Role.CLINICIAN, clinic=clinic
    )
    accounts.membership_revoke(actor=keeper, membership=membership, reason="moved away")

    assert not user_has_role(user, Role.CLINICIAN, clinic=clinic)
    again = accounts.membership_grant(actor=keeper, user=user, role=Role.CLINICIAN, clinic=clinic)

    assert again.pk == membership.pk
    assert user_has_role(user, Role.CLINICIAN, clinic=clinic)
    reasons = [
        event.pgh_context.metadata["reason"]
        for event in MembershipEvent.objects.filter(pgh_obj_id=membership.pk).order_by("pgh_id")
    ]
    assert reasons == ["role granted", "moved away", "role granted again"]


def test_membership_revoke_refuses_a_revoked_role_and_no_reason(quality_manager, clinic):
    membership = MembershipFactory(role=Role.CLINICIAN, clinic=clinic, active=False)

    revoked = refused(
        lambda: accounts.membership_revoke(actor=quality_manager, membership=membership, reason="x")
    )
    membership.active = True
    membership.save()
    no_reason = refused(
        lambda: accounts.membership_revoke(actor=quality_manager, membership=membership, reason="")
    )

    assert (revoked.status, revoked.codes) == (409, ["membership_inactive"])
    assert (no_reason.status, no_reason.codes) == (400, ["reason_required"])


def test_a_clinic_administrator_cannot_grant_roles_even_at_their_clinic(
    clinic_administrator, clinic
):
    error = refused(
        lambda: accounts.membership_grant(
            actor=clinic_administrator, user=UserFactory(), role=Role.CLINICIAN, clinic=clinic
        )
    )

    assert (error.status, error.codes) == (403, ["role_required"])


# ---------------------------------------------------------------------------------------------
# Practitioners at clinics


def test_clinic_practitioner_unlink_ends_the_link_and_keeps_it(quality_manager, clinic):
    practitioner = PractitionerFactory()
    clinic_practitioner_link(actor=quality_manager, clinic=clinic, practitioner=practitioner)

    link = clinic_practitioner_unlink(
        actor=quality_manager, clinic=clinic, practitioner=practitioner, reason="moved"
    )

    assert not link.active
    assert ClinicPractitioner.objects.filter(pk=link.pk).exists()
    relinked = clinic_practitioner_link(
        actor=quality_manager, clinic=clinic, practitioner=practitioner
    )
    assert relinked.pk == link.pk and relinked.active


def test_clinic_practitioner_unlink_by_the_clinic_administrator_of_that_clinic_only(
    clinic_administrator, clinic
):
    practitioner = PractitionerFactory()
    other = ClinicFactory()
    for place in (clinic, other):
        ClinicPractitioner.objects.create(
            clinic=place, practitioner=practitioner, since=datetime.date(2026, 1, 1)
        )

    clinic_practitioner_unlink(
        actor=clinic_administrator, clinic=clinic, practitioner=practitioner, reason="left"
    )
    error = refused(
        lambda: clinic_practitioner_unlink(
            actor=clinic_administrator, clinic=other, practitioner=practitioner, reason="left"
        )
    )

    assert (error.status, error.codes) == (403, ["role_required"])


def test_clinic_practitioner_unlink_refuses_a_practitioner_not_linked(quality_manager, clinic):
    error = refused(
        lambda: clinic_practitioner_unlink(
            actor=quality_manager, clinic=clinic, practitioner=PractitionerFactory(), reason="x"
        )
    )

    assert (error.status, error.codes, error.problems[0].field) == (
        409,
        ["practitioner_not_linked"],
        "practitioner",
    )


# ---------------------------------------------------------------------------------------------
# Tokens


def test_token_revoke_one_or_all_by_the_owner_or_a_keeper(quality_manager, clinician):
    first, _ = AuthToken.objects.create(user=clinician)
    AuthToken.objects.create(user=clinician)
    AuthToken.objects.create(user=clinician)

    assert accounts.token_revoke(actor=clinician, user=clinician, token_key=first.token_key) == 1
    missing = refused(
        lambda: accounts.token_revoke(actor=clinician, user=clinician, token_key=first.token_key)
    )
    assert (missing.status, missing.codes) == (404, ["token_not_found"])
    assert accounts.token_revoke(actor=quality_manager, user=clinician) == 2
    assert not AuthToken.objects.filter(user=clinician).exists()
