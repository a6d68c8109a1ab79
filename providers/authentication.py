"""The API's token sign-in: django-rest-knox's tokens, checked in one statement.

knox's `TokenAuthentication` reads the token and its account, then every other token of the
account (to delete those that expired), and `providers.access` then reads the account's roles:
three statements before any request does its work. Here the token, its account and the account's
active roles are read together, by a statement each connection prepares once
(common.postgresql.prepared), and the roles handed to `providers.access` for the request. The
rules are knox's: only the digest of a token is stored and compared in constant time, a token past
its expiry is refused (and deleted, with knox's `token_expired` signal), an inactive account is
refused. The other expired tokens of an account are deleted when it next signs in
(`providers.accounts.token_create`) rather than on every request: none of them authenticates,
counts towards the account's limit or is listed meanwhile.
"""

from __future__ import annotations

import binascii
import functools
from hmac import compare_digest
from typing import Any

from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import timezone
from django.utils.translation import gettext_lazy
from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from knox import auth
from knox.crypto import hash_token
from knox.models import get_token_model
from knox.settings import CONSTANTS, knox_settings
from knox.signals import token_expired
from rest_framework import exceptions

from common.postgresql.prepared import Prepared
from providers.access import access_known
from providers.models import Membership

# Sign-in state is read on the primary, as common.db_routing routes knox's own reads.
_ALIAS = DEFAULT_DB_ALIAS


@functools.cache
def _statement() -> tuple[Prepared, list[str], list[str]]:
    """The statement, and the attribute names of the token's and the account's columns in it.
    The columns are the models' own, in their order, so each row becomes the instances the ORM
    would build (none of these fields converts its value: a test holds it)."""
    token_model, user_model = get_token_model(), get_user_model()
    token_fields = token_model._meta.concrete_fields
    user_fields = user_model._meta.concrete_fields
    columns = ", ".join(
        [f'token."{field.column}"' for field in token_fields]
        + [f'account."{field.column}"' for field in user_fields]
    )
    user_column = token_model._meta.get_field("user").column
    sql = f"""
        SELECT {columns},
            ARRAY(
                SELECT ARRAY[membership.role::text, membership.clinic_id::text]
                FROM {Membership._meta.db_table} membership
                WHERE membership.user_id = account.{user_model._meta.pk.column}
                    AND membership.active
            )
        FROM {token_model._meta.db_table} token
        JOIN {user_model._meta.db_table} account
            ON account.{user_model._meta.pk.column} = token."{user_column}"
        WHERE token.token_key = %s
    """  # noqa: S608 - the table and column names are the models' own; the key is a parameter
    return (
        Prepared(sql, ["varchar"]),
        [field.attname for field in token_fields],
        [field.attname for field in user_fields],
    )


class TokenAuthentication(auth.TokenAuthentication):  # type: ignore[misc]  # knox ships no types
    """knox's token authentication in one statement (see the module's docstring)."""

    def authenticate_credentials(self, token: bytes) -> tuple[Any, Any]:
        message = gettext_lazy("Invalid token.")
        key = token.decode("utf-8")
        statement, token_names, user_names = _statement()
        with connections[_ALIAS].cursor() as cursor:
            statement.execute(cursor, [key[: CONSTANTS.TOKEN_KEY_LENGTH]])
            rows = cursor.fetchall()
        token_model, user_model = get_token_model(), get_user_model()
        for row in rows:
            auth_token = token_model.from_db(_ALIAS, token_names, row[: len(token_names)])
            user = user_model.from_db(
                _ALIAS, user_names, row[len(token_names) : len(token_names) + len(user_names)]
            )
            token_model.user.field.set_cached_value(auth_token, user)
            if self._expired(auth_token):
                continue
            try:
                digest = hash_token(key)
            except (TypeError, binascii.Error) as error:
                raise exceptions.AuthenticationFailed(message) from error
            if compare_digest(digest, auth_token.digest):
                if knox_settings.AUTO_REFRESH and auth_token.expiry:
                    self.renew_token(auth_token)
                authenticated: tuple[Any, Any] = self.validate_user(auth_token)
                access_known(
                    user,
                    [(role, None if clinic is None else int(clinic)) for role, clinic in row[-1]],
                )
                return authenticated
        raise exceptions.AuthenticationFailed(message)

    def _expired(self, auth_token: Any) -> bool:
        """knox's own check of the token presented: past its expiry it is deleted and refused."""
        if auth_token.expiry is None or auth_token.expiry >= timezone.now():
            return False
        username = auth_token.user.get_username()
        auth_token.delete()
        token_expired.send(sender=self.__class__, username=username, source="auth_token")
        return True


class TokenScheme(KnoxTokenScheme):  # type: ignore[no-untyped-call]  # nor does this extension
    """Documents the sign-in in the OpenAPI schema as knox's own (drf-spectacular matches the
    class itself, not its subclasses)."""

    target_class = "providers.authentication.TokenAuthentication"
