"""API tokens: sign in for one, and list and revoke tokens, my own (any signed-in user) or anyone's
(account keepers). The own and the anyone's views of each action share one body."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, extend_schema_view
from knox.models import AuthToken, get_token_model
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from common.api_fields import READ_ERRORS, WRITE_ERRORS, error_responses, request_text
from common.api_views import Api, validated
from common.errors import DomainError, Problem
from common.lockout import lockout_problem
from common.throttling import AnonymousRateThrottle, TokenObtainRateThrottle
from providers import accounts
from providers.accounts_api.base import PASSWORD_MAX_LENGTH, account_get
from providers.permissions import ACCOUNT_PERMISSIONS, SIGNED_IN_PERMISSIONS


def token_list(*, user: Any) -> QuerySet[AuthToken]:
    """The user's API tokens that have not expired, newest first."""
    tokens: QuerySet[AuthToken] = get_token_model().objects.filter(user_id=user.pk)
    return tokens.exclude(expiry__lt=timezone.now()).order_by("-created")


class TokenObtainInputSerializer(serializers.Serializer[Any]):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(
        max_length=PASSWORD_MAX_LENGTH, write_only=True, style={"input_type": "password"}
    )


class TokenOutputSerializer(serializers.Serializer[Any]):
    token_key = serializers.CharField(
        help_text="The token's first characters: names it in lists and revocations."
    )
    created = serializers.DateTimeField()
    expiry = serializers.DateTimeField(allow_null=True)


class TokenCreatedOutputSerializer(TokenOutputSerializer):
    token = serializers.CharField(
        help_text="Send as `Authorization: Token <token>`. Shown once; only its hash is stored."
    )


class RevokedOutputSerializer(serializers.Serializer[Any]):
    revoked = serializers.IntegerField(help_text="How many tokens were revoked.")


class TokenObtainApi(Api):
    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []
    throttle_classes = [AnonymousRateThrottle, TokenObtainRateThrottle]

    @extend_schema(
        summary="Sign in for an API token",
        description="With username and password. The token is shown once (only its hash is "
        "stored) and expires after API_TOKEN_TTL_HOURS. Wrong passwords are refused with 400 "
        "`invalid_credentials`; after AXES_FAILURE_LIMIT of them in a row the account is locked "
        "(403 `account_locked`) for the cool-off, the right password too; more than "
        "API_THROTTLE_TOKEN_OBTAIN sign-ins from one address are refused with 429.",
        request=TokenObtainInputSerializer,
        responses={201: TokenCreatedOutputSerializer, **error_responses(400, 403, 429)},
    )
    def post(self, request: Request) -> Response:
        data = validated(TokenObtainInputSerializer, request.data)
        django_request = request._request
        user = authenticate(django_request, username=data["username"], password=data["password"])
        if user is None:
            if getattr(django_request, "axes_locked_out", False):
                # AxesMiddleware would answer the same; said here so the view owns its answer.
                django_request.axes_locked_out = False  # type: ignore[attr-defined]
                raise DomainError(lockout_problem(), status=403)
            raise DomainError(
                Problem(
                    "invalid_credentials",
                    _("The username or password is not correct, or the account is deactivated."),
                    None,
                ),
                status=400,
            )
        instance, token = accounts.token_create(user=user)
        payload = {
            "token": token,
            "token_key": instance.token_key,
            "created": instance.created,
            "expiry": instance.expiry,
        }
        return Response(TokenCreatedOutputSerializer(payload).data, status=status.HTTP_201_CREATED)


# ---------------------------------------------------------------------------------------------
# One body per action; each view below sets who may call it and documents its method.


# The tokens of one user: a URL naming `user_id` means that account's (a 404 when there is none),
# any other the caller's own. No docstring, which the schema would take for a description.
class TokensApi(Api):
    def token_owner(self) -> Any:
        user_id = self.kwargs.get("user_id")
        return self.request.user if user_id is None else account_get(user_id=user_id)


class TokensListApi(TokensApi):
    def get(self, request: Request, **kwargs: Any) -> Response:
        return Response(TokenOutputSerializer(token_list(user=self.token_owner()), many=True).data)


class TokensRevokeApi(TokensApi):
    def post(self, request: Request, **kwargs: Any) -> Response:
        revoked = accounts.token_revoke(actor=request.user, user=self.token_owner())
        return Response(RevokedOutputSerializer({"revoked": revoked}).data)


class TokenRevokeApi(TokensApi):
    def delete(self, request: Request, token_key: str, **kwargs: Any) -> Response:
        owner = self.token_owner()
        key = request_text(token_key, field="token_key", max_length=25)
        accounts.token_revoke(actor=request.user, user=owner, token_key=key)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    get=extend_schema(
        summary="List my API tokens",
        description="Each token's first characters, creation and expiry; never the token.",
        responses={200: TokenOutputSerializer(many=True), **error_responses(401, 403)},
    )
)
class OwnTokensApi(TokensListApi):
    permission_classes = SIGNED_IN_PERMISSIONS


@extend_schema_view(
    post=extend_schema(
        summary="Revoke all my API tokens",
        request=None,
        responses={200: RevokedOutputSerializer, **error_responses(401, 403)},
    )
)
class OwnTokensRevokeApi(TokensRevokeApi):
    permission_classes = SIGNED_IN_PERMISSIONS


@extend_schema_view(
    delete=extend_schema(
        summary="Revoke one of my API tokens",
        responses={204: None, **error_responses(401, 403, 404)},
    )
)
class OwnTokenDetailApi(TokenRevokeApi):
    permission_classes = SIGNED_IN_PERMISSIONS


@extend_schema_view(
    get=extend_schema(
        summary="List a user's API tokens",
        responses={200: TokenOutputSerializer(many=True), **READ_ERRORS},
    )
)
class AccountTokensApi(TokensListApi):
    permission_classes = ACCOUNT_PERMISSIONS


@extend_schema_view(
    post=extend_schema(
        summary="Revoke all of a user's API tokens",
        request=None,
        responses={200: RevokedOutputSerializer, **WRITE_ERRORS},
    )
)
class AccountTokensRevokeApi(TokensRevokeApi):
    permission_classes = ACCOUNT_PERMISSIONS


@extend_schema_view(
    delete=extend_schema(
        summary="Revoke one of a user's API tokens",
        responses={204: None, **error_responses(401, 403, 404)},
    )
)
class AccountTokenDetailApi(TokenRevokeApi):
    permission_classes = ACCOUNT_PERMISSIONS
