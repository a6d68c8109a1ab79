"""Passwords and lock-outs: set a user's password, lift a lock-out, change my own password."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from common.api_fields import WRITE_ERRORS, error_responses
from common.api_views import Api, validated
from providers import accounts
from providers.accounts_api.base import (
    PASSWORD_MAX_LENGTH,
    AccountChangeApi,
    AccountOutputSerializer,
    AccountReasonInputSerializer,
    account_get,
)
from providers.models import Account
from providers.permissions import ACCOUNT_PERMISSIONS, SIGNED_IN_PERMISSIONS


class PasswordSetInputSerializer(AccountReasonInputSerializer):
    password = serializers.CharField(
        max_length=PASSWORD_MAX_LENGTH,
        write_only=True,
        style={"input_type": "password"},
        help_text="The new password, checked by the password validators.",
    )


class OwnPasswordInputSerializer(serializers.Serializer[Any]):
    current_password = serializers.CharField(
        max_length=PASSWORD_MAX_LENGTH, write_only=True, style={"input_type": "password"}
    )
    new_password = serializers.CharField(
        max_length=PASSWORD_MAX_LENGTH, write_only=True, style={"input_type": "password"}
    )


class LockoutResetOutputSerializer(serializers.Serializer[Any]):
    cleared = serializers.IntegerField(help_text="How many records of failed attempts cleared.")


@extend_schema_view(
    post=extend_schema(
        summary="Set a user's password (a first one, or a reset)",
        description="Checked by the password validators; every API token of the account is "
        "revoked.",
        request=PasswordSetInputSerializer,
        responses={200: AccountOutputSerializer, **WRITE_ERRORS},
    )
)
class AccountPasswordSetApi(AccountChangeApi):
    input_serializer = PasswordSetInputSerializer

    def change(self, *, actor: Any, account: Account, data: dict[str, Any]) -> Any:
        return accounts.user_password_set(actor=actor, user=account, **data)


class AccountUnlockApi(Api):
    permission_classes = ACCOUNT_PERMISSIONS

    @extend_schema(
        summary="Lift a lock-out after repeated wrong passwords",
        request=AccountReasonInputSerializer,
        responses={200: LockoutResetOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, user_id: int) -> Response:
        account = account_get(user_id=user_id)
        data = validated(AccountReasonInputSerializer, request.data)
        cleared = accounts.user_lockout_reset(actor=request.user, user=account, **data)
        return Response(LockoutResetOutputSerializer({"cleared": cleared}).data)


class OwnPasswordApi(Api):
    permission_classes = SIGNED_IN_PERMISSIONS

    @extend_schema(
        summary="Change my password",
        description="Proves the current password (a wrong one counts towards the lock-out); the "
        "new one is checked by the password validators.",
        request=OwnPasswordInputSerializer,
        responses={204: None, **error_responses(400, 401, 403)},
    )
    def post(self, request: Request) -> Response:
        data = validated(OwnPasswordInputSerializer, request.data)
        accounts.own_password_change(user=request.user, **data)
        return Response(status=status.HTTP_204_NO_CONTENT)
