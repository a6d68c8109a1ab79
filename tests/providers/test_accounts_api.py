"""API tests for accounts, roles, practitioner links and API tokens: status codes, permissions,
wiring, tokens' expiry and revocation, and the throttles."""

from __future__ import annotations

import datetime
import io

import pytest
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from providers.models import ClinicPractitioner, Membership, Role
from tests.api_helpers import API, assert_list_queries_fixed, error_codes, error_fields, row_counts
from tests.factories import (
    PASSWORD,
    ClinicFactory,
    MembershipFactory,
    PractitionerFactory,
    UserFactory,
)

pytestmark = [pytest.mark.django_db]

NEW_PASSWORD = "violet tractor umbrella 42"


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def token_client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def obtain(username: str, password: str = PASSWORD):
    return APIClient().post(
        f"{API}/auth/token/", {"username": username, "password": password}, format="json"
    )


@pytest.fixture
def superuser(db):
    """A system administrator: a Django superuser, holding no role."""
    return UserFactory(username="root", is_superuser=True, is_staff=True)


# ---------------------------------------------------------------------------------------------
# Who may read and write accounts


@pytest.mark.parametrize("who", ["quality_manager", "superuser"])
def test_a_quality_manager_or_a_system_administrator_opens_an_account(request, who):
    client = client_for(request.getfixturevalue(who))

    response = client.post(
        f"{API}/users/",
        {"username": "ada.lee", "first_name": "Ada", "password": NEW_PASSWORD},
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["username"] == "ada.lee"
    assert body["has_usable_password"] is True
    assert body["locked_out"] is False
    assert "password" not in body
    assert obtain("ada.lee", NEW_PASSWORD).status_code == 201


@pytest.mark.parametrize("who", ["clinic_administrator", "clinician", "no_role"])
def test_clinic_staff_can_neither_read_nor_write_accounts(request, who):
    user = UserFactory() if who == "no_role" else request.getfixturevalue(who)
    target = UserFactory()
    elsewhere = ClinicFactory()
    client = client_for(user)
    before = row_counts()

    responses = [
        client.get(f"{API}/users/"),
        client.get(f"{API}/users/{target.pk}/"),
        client.post(f"{API}/users/", {"username": "x"}, format="json"),
        client.post(
            f"{API}/users/{target.pk}/memberships/",
            {"role": "clinician", "clinic": elsewhere.pk},
            format="json",
        ),
        client.post(f"{API}/users/{target.pk}/deactivate/", {"reason": "r"}, format="json"),
        client.get(f"{API}/users/{target.pk}/tokens/"),
    ]

    assert [r.status_code for r in responses] == [403] * len(responses)
    assert all(error_codes(r) == ["role_required"] for r in responses)
    assert row_counts() == before


def test_an_auditor_reads_accounts_and_never_writes(auditor):
    target = UserFactory()
    client = client_for(auditor)
    before = row_counts()

    assert client.get(f"{API}/users/").status_code == 200
    assert client.get(f"{API}/users/{target.pk}/").status_code == 200
    writes = [
        client.post(f"{API}/users/", {"username": "x"}, format="json"),
        client.patch(
            f"{API}/users/{target.pk}/", {"first_name": "y", "reason": "r"}, format="json"
        ),
        client.post(f"{API}/users/{target.pk}/deactivate/", {"reason": "r"}, format="json"),
        client.post(f"{API}/users/{target.pk}/memberships/", {"role": "auditor"}, format="json"),
        client.post(f"{API}/users/{target.pk}/tokens/revoke/", format="json"),
    ]

    assert [r.status_code for r in writes] == [403] * len(writes)
    assert row_counts() == before


def test_an_anonymous_caller_is_told_to_sign_in_with_401(api_client):
    response = api_client.get(f"{API}/users/")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert error_codes(response) == ["not_authenticated"]


# ---------------------------------------------------------------------------------------------
# Bad input: 400 naming the field, nothing written


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({}, "required", "username"),
        ({"username": "a b"}, "invalid", "username"),
        ({"username": "qm"}, "username_taken", "username"),
        ({"username": "ok", "email": "nope"}, "invalid", "email"),
        ({"username": "ok", "password": "short"}, "password_too_short", "password"),
        ({"username": "ok", "is_staff": "perhaps"}, "invalid", "is_staff"),
        ({"username": "x" * 151}, "max_length", "username"),
    ],
)
def test_account_create_refuses_bad_input_naming_the_field(qm_client, body, code, field):
    before = row_counts()

    response = qm_client.post(f"{API}/users/", body, format="json")

    assert response.status_code == 400
    assert code in error_codes(response)
    assert field in error_fields(response)
    assert row_counts() == before


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"role": "superuser"}, "invalid_choice", "role"),
        ({"role": "clinician"}, "membership_clinic_required", "clinic"),
        ({"role": "clinician", "clinic": 2**63}, "does_not_exist", "clinic"),
        ({"role": "auditor", "clinic": "one"}, "invalid", "clinic"),
    ],
)
def test_role_grant_refuses_bad_input_naming_the_field(qm_client, body, code, field):
    user = UserFactory()
    before = row_counts()

    response = qm_client.post(f"{API}/users/{user.pk}/memberships/", body, format="json")

    assert response.status_code == 400, response.content
    assert error_codes(response)[0] == code
    assert error_fields(response)[0] == field
    assert row_counts() == before


# ---------------------------------------------------------------------------------------------
# Changing accounts and roles


def test_a_quality_manager_grants_and_revokes_a_clinic_role(qm_client, clinic):
    user = UserFactory()

    granted = qm_client.post(
        f"{API}/users/{user.pk}/memberships/",
        {"role": "clinician", "clinic": clinic.pk},
        format="json",
    )
    membership_id = granted.json()["id"]
    detail = qm_client.get(f"{API}/users/{user.pk}/").json()
    revoked = qm_client.post(
        f"{API}/users/{user.pk}/memberships/{membership_id}/revoke/",
        {"reason": "moved to another clinic"},
        format="json",
    )

    assert granted.status_code == 201
    assert detail["memberships"][0] | {"created_at": None} == {
        "id": membership_id,
        "role": "clinician",
        "clinic": clinic.pk,
        "clinic_name": clinic.name,
        "active": True,
        "created_at": None,
    }
    assert (revoked.status_code, revoked.json()["active"]) == (200, False)
    assert not Membership.objects.get(pk=membership_id).active


def test_a_role_of_another_user_is_not_found(qm_client, clinician):
    other = UserFactory()
    membership = clinician.memberships.get()

    response = qm_client.post(
        f"{API}/users/{other.pk}/memberships/{membership.pk}/revoke/",
        {"reason": "r"},
        format="json",
    )

    assert response.status_code == 404


def test_account_correction_deactivation_and_reactivation(qm_client, clinician):
    patched = qm_client.patch(
        f"{API}/users/{clinician.pk}/",
        {"last_name": "Rivera", "email": "rivera@example.org", "reason": "married"},
        format="json",
    )
    no_reason = qm_client.post(f"{API}/users/{clinician.pk}/deactivate/", {}, format="json")
    token = obtain("clinician").json()["token"]
    deactivated = qm_client.post(
        f"{API}/users/{clinician.pk}/deactivate/", {"reason": "left"}, format="json"
    )
    refused_token = token_client(token).get(f"{API}/me/")
    refused_sign_in = obtain("clinician")
    reactivated = qm_client.post(
        f"{API}/users/{clinician.pk}/reactivate/", {"reason": "back"}, format="json"
    )

    assert (patched.status_code, patched.json()["last_name"]) == (200, "Rivera")
    assert (no_reason.status_code, error_fields(no_reason)) == (400, ["reason"])
    assert (deactivated.status_code, deactivated.json()["is_active"]) == (200, False)
    assert refused_token.status_code == 401
    assert (refused_sign_in.status_code, error_codes(refused_sign_in)) == (
        400,
        ["invalid_credentials"],
    )
    assert (reactivated.status_code, reactivated.json()["is_active"]) == (200, True)
    assert obtain("clinician").status_code == 201


def test_a_quality_manager_sets_a_password_and_the_user_changes_it(qm_client, clinician):
    set_by_admin = qm_client.post(
        f"{API}/users/{clinician.pk}/password/",
        {"password": NEW_PASSWORD, "reason": "forgotten"},
        format="json",
    )
    own = client_for(clinician)
    wrong = own.post(
        f"{API}/me/password/",
        {"current_password": PASSWORD, "new_password": "another long passphrase"},
        format="json",
    )
    weak = own.post(
        f"{API}/me/password/",
        {"current_password": NEW_PASSWORD, "new_password": "clinician"},
        format="json",
    )
    changed = own.post(
        f"{API}/me/password/",
        {"current_password": NEW_PASSWORD, "new_password": "another long passphrase"},
        format="json",
    )

    assert set_by_admin.status_code == 200
    assert (wrong.status_code, error_codes(wrong)) == (403, ["password_incorrect"])
    assert weak.status_code == 400 and set(error_fields(weak)) == {"new_password"}
    assert changed.status_code == 204
    assert obtain("clinician", "another long passphrase").status_code == 201


def test_the_account_list_runs_a_fixed_number_of_queries(
    qm_client, clinic, django_assert_num_queries
):
    def add(count: int) -> None:
        for _ in range(count):
            user = UserFactory()
            MembershipFactory(user=user, role=Role.CLINICIAN, clinic=clinic)
            PractitionerFactory(user=user)

    assert_list_queries_fixed(qm_client, f"{API}/users/", add, django_assert_num_queries)


# ---------------------------------------------------------------------------------------------
# Practitioners at clinics


def test_a_clinic_administrator_links_and_unlinks_a_practitioner_at_their_clinic(
    clinic_administrator, clinic, auditor
):
    practitioner = PractitionerFactory()
    client = client_for(clinic_administrator)

    linked = client.post(
        f"{API}/practitioners/{practitioner.pk}/clinics/", {"clinic": clinic.pk}, format="json"
    )
    by_auditor = client_for(auditor).post(
        f"{API}/practitioners/{practitioner.pk}/clinics/{clinic.pk}/unlink/",
        {"reason": "r"},
        format="json",
    )
    elsewhere = client.post(
        f"{API}/practitioners/{practitioner.pk}/clinics/",
        {"clinic": ClinicFactory().pk},
        format="json",
    )
    unlinked = client.post(
        f"{API}/practitioners/{practitioner.pk}/clinics/{clinic.pk}/unlink/",
        {"reason": "left the clinic"},
        format="json",
    )

    assert (linked.status_code, linked.json()["active"]) == (201, True)
    assert by_auditor.status_code == 403
    assert (elsewhere.status_code, error_codes(elsewhere)) == (403, ["role_required"])
    assert (unlinked.status_code, unlinked.json()["active"]) == (200, False)
    assert not ClinicPractitioner.objects.get(clinic=clinic, practitioner=practitioner).active


# ---------------------------------------------------------------------------------------------
# API tokens


def test_a_token_is_obtained_with_username_and_password_and_stored_hashed(clinician):
    response = obtain("clinician")

    assert response.status_code == 201
    body = response.json()
    token = body["token"]
    stored = AuthToken.objects.get(user=clinician)
    assert token not in (stored.digest, stored.token_key)
    assert token.startswith(stored.token_key)
    expiry = datetime.datetime.fromisoformat(body["expiry"])
    assert (
        datetime.timedelta(hours=9, minutes=59)
        < expiry - timezone.now()
        <= datetime.timedelta(hours=10)
    )
    me = token_client(token).get(f"{API}/me/")
    assert (me.status_code, me.json()["username"]) == (200, "clinician")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"username": "clinician", "password": "wrong"}, 400, "invalid_credentials"),
        ({"username": "nobody", "password": PASSWORD}, 400, "invalid_credentials"),
        ({"username": "clinician"}, 400, "required"),
        ({"password": PASSWORD}, 400, "required"),
    ],
)
def test_a_token_sign_in_refuses_wrong_or_missing_credentials(clinician, body, status, code):
    response = APIClient().post(f"{API}/auth/token/", body, format="json")

    assert response.status_code == status
    assert error_codes(response) == [code]
    assert not AuthToken.objects.exists()


def test_a_token_past_its_expiry_is_refused_with_401(clinician):
    token = obtain("clinician").json()["token"]
    AuthToken.objects.filter(user=clinician).update(
        expiry=timezone.now() - datetime.timedelta(seconds=1)
    )

    response = token_client(token).get(f"{API}/me/")

    assert response.status_code == 401
    assert error_codes(response) == ["authentication_failed"]


def test_the_token_lifetime_is_configurable(clinician, settings):
    settings.REST_KNOX = {**settings.REST_KNOX, "TOKEN_TTL": datetime.timedelta(minutes=5)}

    expiry = datetime.datetime.fromisoformat(obtain("clinician").json()["expiry"])

    assert expiry - timezone.now() <= datetime.timedelta(minutes=5)


def test_the_owner_lists_and_revokes_their_tokens_never_seeing_a_key(clinician):
    first = obtain("clinician").json()
    second = obtain("clinician").json()
    third = obtain("clinician").json()
    client = token_client(second["token"])

    listed = client.get(f"{API}/auth/tokens/")
    revoked = client.delete(f"{API}/auth/tokens/{first['token_key']}/")
    again = client.delete(f"{API}/auth/tokens/{first['token_key']}/")

    assert listed.status_code == 200
    assert {row["token_key"] for row in listed.json()} == {
        first["token_key"],
        second["token_key"],
        third["token_key"],
    }
    assert all(set(row) == {"token_key", "created", "expiry"} for row in listed.json())
    assert revoked.status_code == 204
    assert again.status_code == 404
    assert token_client(first["token"]).get(f"{API}/me/").status_code == 401
    assert token_client(third["token"]).get(f"{API}/me/").status_code == 200

    revoked_all = client.post(f"{API}/auth/tokens/revoke/")

    assert (revoked_all.status_code, revoked_all.json()) == (200, {"revoked": 2})
    assert token_client(third["token"]).get(f"{API}/me/").status_code == 401
    assert token_client(second["token"]).get(f"{API}/me/").status_code == 401


def test_a_user_cannot_revoke_another_users_token_through_their_own_list(clinician, auditor):
    theirs = obtain("auditor").json()

    response = client_for(clinician).delete(f"{API}/auth/tokens/{theirs['token_key']}/")

    assert response.status_code == 404
    assert token_client(theirs["token"]).get(f"{API}/me/").status_code == 200


def test_an_administrator_lists_and_revokes_a_users_tokens(qm_client, clinician):
    first = obtain("clinician").json()
    second = obtain("clinician").json()

    listed = qm_client.get(f"{API}/users/{clinician.pk}/tokens/")
    one = qm_client.delete(f"{API}/users/{clinician.pk}/tokens/{first['token_key']}/")
    rest = qm_client.post(f"{API}/users/{clinician.pk}/tokens/revoke/")

    assert [row["token_key"] for row in listed.json()] == [
        second["token_key"],
        first["token_key"],
    ]
    assert one.status_code == 204
    assert rest.json() == {"revoked": 1}
    for token in (first["token"], second["token"]):
        assert token_client(token).get(f"{API}/me/").status_code == 401


# ---------------------------------------------------------------------------------------------
# Throttles


def test_the_token_sign_in_is_throttled_per_address(clinician, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "token_obtain": "2/minute",
        },
    }
    cache.clear()

    answers = [obtain("clinician").status_code for _ in range(3)]
    throttled = obtain("clinician")

    assert answers == [201, 201, 429]
    assert error_codes(throttled) == ["throttled"]
    assert int(throttled["Retry-After"]) > 0


def test_signed_in_and_anonymous_callers_are_throttled(clinician, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "user": "3/minute",
            "anonymous": "2/minute",
        },
    }
    cache.clear()
    signed_in = client_for(clinician)

    user_answers = [signed_in.get(f"{API}/me/").status_code for _ in range(4)]
    # Anonymous callers reach only the token sign-in (everything else is a 401 first).
    anonymous_answers = [obtain("clinician", "wrong").status_code for _ in range(3)]

    assert user_answers == [200, 200, 200, 429]
    assert anonymous_answers == [400, 400, 429]
    cache.clear()


def test_the_token_command_prints_a_working_token(clinician):
    out, err = io.StringIO(), io.StringIO()

    call_command("api_token_create", "clinician", stdout=out, stderr=err)

    token = out.getvalue().strip()
    assert token_client(token).get(f"{API}/me/").status_code == 200
    assert "expires" in err.getvalue()
    with pytest.raises(CommandError):
        call_command("api_token_create", "nobody", stdout=out, stderr=err)


def test_an_account_holds_at_most_the_configured_number_of_tokens(clinician, settings):
    settings.REST_KNOX = {**settings.REST_KNOX, "TOKEN_LIMIT_PER_USER": 2}
    first = obtain("clinician").json()
    obtain("clinician")

    refused = obtain("clinician")
    token_client(first["token"]).delete(f"{API}/auth/tokens/{first['token_key']}/")

    assert (refused.status_code, error_codes(refused)) == (403, ["token_limit_reached"])
    assert obtain("clinician").status_code == 201


def test_an_account_without_an_e_mail_address_answers_null_as_the_schema_says(quality_manager):
    from tests.openapi_helpers import assert_matches_schema

    nobody = UserFactory(username="no.mail", email="")
    client = client_for(quality_manager)

    listed = client.get(f"{API}/users/")
    detail = client.get(f"{API}/users/{nobody.pk}/")

    assert {a["username"]: a["email"] for a in listed.json()["results"]}["no.mail"] is None
    assert detail.json()["email"] is None
    assert_matches_schema(listed, "get", "/api/v1/users/")
    assert_matches_schema(detail, "get", "/api/v1/users/{user_id}/")
