"""User accounts: list and open them, correct one, deactivate and reactivate it (never
deleted)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from common.api_fields import CREATE_ERRORS, LIST_ERRORS, READ_ERRORS, WRITE_ERRORS
from common.api_views import Api, ListApi, validated
from common.lockout import locked_usernames
from providers import accounts
from providers.accounts_api.base import (
    PASSWORD_MAX_LENGTH,
    REASON_MAX_LENGTH,
    AccountChangeApi,
    AccountOutputSerializer,
    AccountReasonInputSerializer,
    account_get,
    account_list,
    account_response,
)
from providers.models import Account
from providers.permissions import ACCOUNT_PERMISSIONS


class AccountCreateInputSerializer(serializers.Serializer[Any]):
    username = serializers.CharField(max_length=150)
    first_name = serializers.CharField(max_length=150, required=False, default="", allow_blank=True)
    last_name = serializers.CharField(max_length=150, required=False, default="", allow_blank=True)
    email = serializers.EmailField(max_length=254, required=False, default="", allow_blank=True)
    is_staff = serializers.BooleanField(
        required=False, default=False, help_text="May sign in to the admin."
    )
    password = serializers.CharField(
        max_length=PASSWORD_MAX_LENGTH,
        required=False,
        default=None,
        allow_null=True,
        write_only=True,
        style={"input_type": "password"},
        help_text="Initial password, checked by the password validators. Left out, the account "
        "cannot sign in until one is set (POST /users/{id}/password/).",
    )


class AccountUpdateInputSerializer(serializers.Serializer[Any]):
    first_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    email = serializers.EmailField(max_length=254, required=False, allow_blank=True)
    is_staff = serializers.BooleanField(required=False, help_text="May sign in to the admin.")
    reason = serializers.CharField(
        max_length=REASON_MAX_LENGTH, allow_blank=True, help_text="Why the account changes."
    )


class AccountsApi(ListApi):
    permission_classes = ACCOUNT_PERMISSIONS
    serializer_class = AccountOutputSerializer

    def get_queryset(self) -> QuerySet[Account]:
        return account_list()

    def get_serializer_context(self) -> dict[str, Any]:
        context = dict(super().get_serializer_context())
        page = getattr(self, "_page_usernames", None)
        context["locked_usernames"] = locked_usernames(page) if page else set()
        return context

    def paginate_queryset(self, queryset: Any) -> Any:
        page = super().paginate_queryset(queryset)
        self._page_usernames = [account.username for account in page or []]
        return page

    @extend_schema(
        summary="List user accounts with their roles",
        responses={200: AccountOutputSerializer, **LIST_ERRORS},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Open a user account",
        description="Quality managers and system administrators. The initial password is "
        "optional; without it the account cannot sign in until one is set.",
        request=AccountCreateInputSerializer,
        responses={201: AccountOutputSerializer, **CREATE_ERRORS},
    )
    def post(self, request: Request) -> Response:
        data = validated(AccountCreateInputSerializer, request.data)
        account = accounts.user_create(actor=request.user, **data)
        return account_response(account, status_code=status.HTTP_201_CREATED)


class AccountDetailApi(Api):
    permission_classes = ACCOUNT_PERMISSIONS

    @extend_schema(
        summary="One user account with its roles",
        responses={200: AccountOutputSerializer, **READ_ERRORS},
    )
    def get(self, request: Request, user_id: int) -> Response:
        return account_response(account_get(user_id=user_id))

    @extend_schema(
        summary="Correct a user account (with the reason)",
        request=AccountUpdateInputSerializer,
        responses={200: AccountOutputSerializer, **WRITE_ERRORS},
    )
    def patch(self, request: Request, user_id: int) -> Response:
        account = account_get(user_id=user_id)
        data = validated(AccountUpdateInputSerializer, request.data)
        reason = data.pop("reason")
        account = accounts.user_update(actor=request.user, user=account, reason=reason, **data)
        return account_response(account)


@extend_schema_view(
    post=extend_schema(
        summary="Deactivate a user account (never deleted)",
        description="Ends sign-in, API tokens (all revoked) and signatures; the account's "
        "records and roles stay and it can be reactivated.",
        request=AccountReasonInputSerializer,
        responses={200: AccountOutputSerializer, **WRITE_ERRORS},
    )
)
class AccountDeactivateApi(AccountChangeApi):
    def change(self, *, actor: Any, account: Account, data: dict[str, Any]) -> Any:
        return accounts.user_deactivate(actor=actor, user=account, **data)


@extend_schema_view(
    post=extend_schema(
        summary="Reactivate a deactivated user account",
        request=AccountReasonInputSerializer,
        responses={200: AccountOutputSerializer, **WRITE_ERRORS},
    )
)
class AccountReactivateApi(AccountChangeApi):
    def change(self, *, actor: Any, account: Account, data: dict[str, Any]) -> Any:
        return accounts.user_reactivate(actor=actor, user=account, **data)
