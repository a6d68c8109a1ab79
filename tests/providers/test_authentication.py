"""The API's token sign-in (providers.authentication): knox's rules, in one statement that reads the
token, its account and the account's active roles."""

from __future__ import annotations

import datetime

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import RequestFactory
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from knox.models import AuthToken
from knox.signals import token_expired
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request
from rest_framework.test import APIClient

from providers.access import access_cache, access_for
from providers.authentication import TokenAuthentication
from providers.models import Role
from tests.api_helpers import API, error_codes
from tests.factories import PASSWORD, ClinicFactory, MembershipFactory, UserFactory

pytestmark = [pytest.mark.django_db]


def token_request(token: str) -> Request:
    return Request(RequestFactory().get("/", HTTP_AUTHORIZATION=f"Token {token}"))


def token_client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def test_a_token_its_account_and_the_accounts_roles_are_read_in_one_statement(
    django_assert_num_queries,
):
    # given an account with a network role, a role at a clinic and a role no longer held
    user = UserFactory()
    clinic = ClinicFactory()
    MembershipFactory(user=user, role=Role.AUDITOR, clinic=None)
    MembershipFactory(user=user, role=Role.CLINICIAN, clinic=clinic)
    MembershipFactory(user=user, role=Role.CLINIC_ADMINISTRATOR, clinic=clinic, active=False)
    _, token = AuthToken.objects.create(user)

    with access_cache():
        # when a request presents its token
        with django_assert_num_queries(1):
            authenticated, auth_token = TokenAuthentication().authenticate(token_request(token))
            # then the account's access is known without reading its roles again
            access = access_for(authenticated)

    assert (authenticated.pk, auth_token.user_id) == (user.pk, user.pk)
    assert access == access_for(user)  # outside a request: read afresh
    assert access.memberships == {(Role.AUDITOR, None), (Role.CLINICIAN, clinic.pk)}


@pytest.mark.django_db(transaction=True)  # the column's type is changed and changed back
def test_a_token_signs_in_after_a_migration_changed_a_column_the_sign_in_reads(clinician):
    """A deployment migrates while the running processes keep their connections, each with the
    sign-in's statement prepared: the next request on such a connection still signs in."""
    _, token = AuthToken.objects.create(clinician)
    client = token_client(token)
    assert client.get(f"{API}/me/").status_code == 200
    table, length = AuthToken._meta.db_table, AuthToken._meta.get_field("digest").max_length
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {table} ALTER COLUMN digest TYPE varchar({length + 1})")
    try:
        answer = client.get(f"{API}/me/")
        assert answer.status_code == 200, answer.content
        assert answer.json()["username"] == clinician.username
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {table} ALTER COLUMN digest TYPE varchar({length})")


def test_an_account_without_a_role_signs_in_with_no_role(django_assert_num_queries):
    user = UserFactory()
    _, token = AuthToken.objects.create(user)

    with access_cache(), django_assert_num_queries(1):
        authenticated, _ = TokenAuthentication().authenticate(token_request(token))
        access = access_for(authenticated)

    assert (access.user_id, access.has_role) == (user.pk, False)


def test_a_wrong_token_with_a_real_tokens_first_characters_is_refused():
    _, token = AuthToken.objects.create(UserFactory())
    forged = token[:15] + ("0" if token[15] != "0" else "1") + token[16:]

    with pytest.raises(AuthenticationFailed):
        TokenAuthentication().authenticate(token_request(forged))


def test_an_inactive_accounts_token_is_refused_with_401(clinician):
    _, token = AuthToken.objects.create(clinician)
    get_user_model().objects.filter(pk=clinician.pk).update(is_active=False)

    response = token_client(token).get(f"{API}/me/")

    assert response.status_code == 401
    assert error_codes(response) == ["authentication_failed"]


def test_an_expired_token_is_refused_and_deleted_as_knox_does(clinician):
    _, token = AuthToken.objects.create(clinician, expiry=datetime.timedelta(seconds=-1))
    kept, _ = AuthToken.objects.create(clinician)
    told = []

    def note(sender, username, source, **kwargs):
        told.append((username, source))

    token_expired.connect(note)
    try:
        response = token_client(token).get(f"{API}/me/")
    finally:
        token_expired.disconnect(note)

    assert response.status_code == 401
    assert told == [(clinician.username, "auth_token")]
    assert list(AuthToken.objects.filter(user=clinician)) == [kept]


def test_an_accounts_expired_tokens_are_deleted_when_it_signs_in(clinician):
    # given an account with two expired tokens and one that is still valid
    for _ in range(2):
        AuthToken.objects.create(clinician, expiry=datetime.timedelta(seconds=-1))
    valid, valid_token = AuthToken.objects.create(clinician)

    # when it uses its valid token, the expired ones stay (no request sweeps them) ...
    assert token_client(valid_token).get(f"{API}/me/").status_code == 200
    assert AuthToken.objects.filter(user=clinician).count() == 3

    # ... and when it signs in for a new token they are gone
    response = APIClient().post(
        f"{API}/auth/token/", {"username": "clinician", "password": PASSWORD}, format="json"
    )

    assert response.status_code == 201
    left = AuthToken.objects.filter(user=clinician)
    assert valid in left
    assert left.count() == 2
    assert not left.filter(expiry__lt=timezone.now()).exists()


@pytest.mark.parametrize("model", [AuthToken, get_user_model()], ids=lambda m: m.__name__)
def test_the_rows_the_sign_in_reads_in_sql_need_no_conversion(model):
    # The statement builds the token and its account from the columns as they come: a field
    # that converts its database value would need the ORM's converters there.
    converting = [
        field.name
        for field in model._meta.concrete_fields
        if field.get_db_converters(connection) or hasattr(field, "from_db_value")
    ]
    assert converting == []


def test_the_schema_documents_the_sign_in_as_knoxs_token():
    scheme = OpenApiAuthenticationExtension.get_match(TokenAuthentication())

    assert scheme is not None
    assert scheme.name == "knoxApiToken"
