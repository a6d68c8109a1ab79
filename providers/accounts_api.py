"""REST API for user accounts, their roles and API tokens: one view per use case.

Accounts are read by network quality managers, auditors and system administrators (superusers),
and written by quality managers and system administrators only (`providers.accounts`); clinic
staff are refused (403 `role_required`). Tokens: anyone may sign in for one with username and
password (throttled, and locked out after repeated wrong passwords); every signed-in user lists and
revokes their own; account keepers list and revoke anyone's.
"""

from __future__ import annotations

from typing import Any

from axes.helpers import get_cool_off
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import authenticate
from django.db.models import Prefetch, QuerySet
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from knox.models import AuthToken, get_token_model
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from common.api_fields import (
    CREATE_ERRORS,
    LIST_ERRORS,
    READ_ERRORS,
    WRITE_ERRORS,
    OptionalEmailField,
    TextChoiceField,
    error_responses,
    id_field,
    request_text,
)
from common.api_views import Api, ListApi, get_or_404, validated
from common.errors import DomainError, Problem
from common.lockout import lockout_problem
from common.throttling import AnonymousRateThrottle, TokenObtainRateThrottle
from providers import accounts
from providers.models import Account, Clinic, Membership, Role
from providers.permissions import ACCOUNT_PERMISSIONS, SIGNED_IN_PERMISSIONS

REASON_MAX_LENGTH = 2000
PASSWORD_MAX_LENGTH = 128  # Django's own forms' limit; Argon2 hashes any length


# ---------------------------------------------------------------------------------------------
# Reads


def account_list() -> QuerySet[Account]:
    """Every account with its roles (newest grant first) and practitioner record: three queries
    whatever the page length."""
    return (
        Account.objects.select_related("practitioner")
        .prefetch_related(
            Prefetch(
                "memberships",
                queryset=Membership.objects.select_related("clinic").order_by("role", "clinic_id"),
            )
        )
        .order_by("username")
    )


def token_list(*, user: Any) -> QuerySet[AuthToken]:
    """The user's API tokens that have not expired, newest first."""
    tokens: QuerySet[AuthToken] = get_token_model().objects.filter(user_id=user.pk)
    return tokens.exclude(expiry__lt=timezone.now()).order_by("-created")


# ---------------------------------------------------------------------------------------------
# Serializers


class MembershipOutputSerializer(serializers.ModelSerializer[Membership]):
    clinic_name = serializers.CharField(source="clinic.name", default=None, allow_null=True)

    class Meta:
        model = Membership
        fields = ["id", "role", "clinic", "clinic_name", "active", "created_at"]
        read_only_fields = fields


class AccountOutputSerializer(serializers.ModelSerializer[Account]):
    email = OptionalEmailField(help_text="Null when none is on file.")
    memberships = MembershipOutputSerializer(many=True, read_only=True)
    practitioner = serializers.PrimaryKeyRelatedField[Any](read_only=True, allow_null=True)
    has_usable_password = serializers.BooleanField(
        read_only=True, help_text="False until a password is set: the account cannot sign in."
    )
    locked_out = serializers.SerializerMethodField(
        help_text="Locked out after repeated wrong passwords (POST .../unlock/ lifts it)."
    )

    class Meta:
        model = Account
        fields = [
            "id",
            "username",
            "first_name",
            "last_name",
            "email",
            "is_active",
            "is_staff",
            "is_superuser",
            "has_usable_password",
            "locked_out",
            "date_joined",
            "last_login",
            "practitioner",
            "memberships",
        ]
        read_only_fields = fields

    def get_locked_out(self, account: Account) -> bool:
        locked: set[str] = self.context.get("locked_usernames", set())
        return account.username in locked


def _locked_usernames(usernames: list[str]) -> set[str]:
    """Which of these accounts are locked out now (one query)."""
    attempts = AccessAttempt.objects.filter(username__in=usernames)
    cool_off = get_cool_off()
    if cool_off:
        attempts = attempts.filter(attempt_time__gte=timezone.now() - cool_off)
    totals: dict[str, int] = {}
    for username, failures in attempts.values_list("username", "failures_since_start"):
        totals[username] = totals.get(username, 0) + failures
    return {name for name, total in totals.items() if total >= settings.AXES_FAILURE_LIMIT}


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


class AccountReasonInputSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(
        max_length=REASON_MAX_LENGTH, allow_blank=True, help_text="Why; kept in the history."
    )


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


class MembershipGrantInputSerializer(serializers.Serializer[Any]):
    role = TextChoiceField(choices=Role.choices)
    clinic = id_field(
        Clinic.objects.all(),
        allow_null=True,
        default=None,
        help_text="The clinic for a clinic role; empty for a network-wide quality manager or "
        "auditor.",
    )


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


class LockoutResetOutputSerializer(serializers.Serializer[Any]):
    cleared = serializers.IntegerField(help_text="How many records of failed attempts cleared.")


# ---------------------------------------------------------------------------------------------
# Accounts


def _account(user_id: int) -> Account:
    return get_or_404(account_list(), user_id, what="user")


def _account_response(account: Account, *, status_code: int = status.HTTP_200_OK) -> Response:
    account = account_list().get(pk=account.pk)
    context = {"locked_usernames": _locked_usernames([account.username])}
    return Response(AccountOutputSerializer(account, context=context).data, status=status_code)


class AccountsApi(ListApi):
    permission_classes = ACCOUNT_PERMISSIONS
    serializer_class = AccountOutputSerializer

    def get_queryset(self) -> QuerySet[Account]:
        return account_list()

    def get_serializer_context(self) -> dict[str, Any]:
        context = dict(super().get_serializer_context())
        page = getattr(self, "_page_usernames", None)
        context["locked_usernames"] = _locked_usernames(page) if page else set()
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
        return _account_response(account, status_code=status.HTTP_201_CREATED)


class AccountDetailApi(Api):
    permission_classes = ACCOUNT_PERMISSIONS

    @extend_schema(
        summary="One user account with its roles",
        responses={200: AccountOutputSerializer, **READ_ERRORS},
    )
    def get(self, request: Request, user_id: int) -> Response:
        return _account_response(_account(user_id))

    @extend_schema(
        summary="Correct a user account (with the reason)",
        request=AccountUpdateInputSerializer,
        responses={200: AccountOutputSerializer, **WRITE_ERRORS},
    )
    def patch(self, request: Request, user_id: int) -> Response:
        account = _account(user_id)
        data = validated(AccountUpdateInputSerializer, request.data)
        reason = data.pop("reason")
        account = accounts.user_update(actor=request.user, user=account, reason=reason, **data)
        return _account_response(account)


class AccountDeactivateApi(Api):
    permission_classes = ACCOUNT_PERMISSIONS

    @extend_schema(
        summary="Deactivate a user account (never deleted)",
        description="Ends sign-in, API tokens (all revoked) and signatures; the account's "
        "records and roles stay and it can be reactivated.",
        request=AccountReasonInputSerializer,
        responses={200: AccountOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, user_id: int) -> Response:
        account = _account(user_id)
        data = validated(AccountReasonInputSerializer, request.data)
        account = accounts.user_deactivate(actor=request.user, user=account, **data)
        return _account_response(account)


class AccountReactivateApi(Api):
    permission_classes = ACCOUNT_PERMISSIONS

    @extend_schema(
        summary="Reactivate a deactivated user account",
        request=AccountReasonInputSerializer,
        responses={200: AccountOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, user_id: int) -> Response:
        account = _account(user_id)
        data = validated(AccountReasonInputSerializer, request.data)
        account = accounts.user_reactivate(actor=request.user, user=account, **data)
        return _account_response(account)


class AccountPasswordSetApi(Api):
    permission_classes = ACCOUNT_PERMISSIONS

    @extend_schema(
        summary="Set a user's password (a first one, or a reset)",
        description="Checked by the password validators; every API token of the account is "
        "revoked.",
        request=PasswordSetInputSerializer,
        responses={200: AccountOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, user_id: int) -> Response:
        account = _account(user_id)
        data = validated(PasswordSetInputSerializer, request.data)
        account = accounts.user_password_set(actor=request.user, user=account, **data)
        return _account_response(account)


class AccountUnlockApi(Api):
    permission_classes = ACCOUNT_PERMISSIONS

    @extend_schema(
        summary="Lift a lock-out after repeated wrong passwords",
        request=AccountReasonInputSerializer,
        responses={200: LockoutResetOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, user_id: int) -> Response:
        account = _account(user_id)
        data = validated(AccountReasonInputSerializer, request.data)
        cleared = accounts.user_lockout_reset(actor=request.user, user=account, **data)
        return Response(LockoutResetOutputSerializer({"cleared": cleared}).data)


class AccountMembershipsApi(Api):
    permission_classes = ACCOUNT_PERMISSIONS

    @extend_schema(
        summary="Grant a user a role at a clinic or network-wide",
        description="A clinic role (clinic administrator, clinician) needs the clinic; a quality "
        "manager or auditor role without a clinic is network-wide.",
        request=MembershipGrantInputSerializer,
        responses={201: MembershipOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, user_id: int) -> Response:
        account = _account(user_id)
        data = validated(MembershipGrantInputSerializer, request.data)
        membership = accounts.membership_grant(actor=request.user, user=account, **data)
        return Response(MembershipOutputSerializer(membership).data, status=status.HTTP_201_CREATED)


class AccountMembershipRevokeApi(Api):
    permission_classes = ACCOUNT_PERMISSIONS

    @extend_schema(
        summary="Revoke a user's role (kept, inactive, with the reason)",
        request=AccountReasonInputSerializer,
        responses={200: MembershipOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, user_id: int, membership_id: int) -> Response:
        account = _account(user_id)
        membership = get_or_404(
            Membership.objects.filter(user=account).select_related("user", "clinic"),
            membership_id,
            what="role of this user",
        )
        data = validated(AccountReasonInputSerializer, request.data)
        membership = accounts.membership_revoke(actor=request.user, membership=membership, **data)
        return Response(MembershipOutputSerializer(membership).data)


# ---------------------------------------------------------------------------------------------
# Passwords and tokens of the signed-in user


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
                    "The username or password is not correct, or the account is deactivated.",
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


class OwnTokensApi(Api):
    permission_classes = SIGNED_IN_PERMISSIONS

    @extend_schema(
        summary="List my API tokens",
        description="Each token's first characters, creation and expiry; never the token.",
        responses={200: TokenOutputSerializer(many=True), **error_responses(401, 403)},
    )
    def get(self, request: Request) -> Response:
        return Response(TokenOutputSerializer(token_list(user=request.user), many=True).data)


class OwnTokensRevokeApi(Api):
    permission_classes = SIGNED_IN_PERMISSIONS

    @extend_schema(
        summary="Revoke all my API tokens",
        request=None,
        responses={200: RevokedOutputSerializer, **error_responses(401, 403)},
    )
    def post(self, request: Request) -> Response:
        revoked = accounts.token_revoke(actor=request.user, user=request.user)
        return Response(RevokedOutputSerializer({"revoked": revoked}).data)


class OwnTokenDetailApi(Api):
    permission_classes = SIGNED_IN_PERMISSIONS

    @extend_schema(
        summary="Revoke one of my API tokens",
        responses={204: None, **error_responses(401, 403, 404)},
    )
    def delete(self, request: Request, token_key: str) -> Response:
        key = request_text(token_key, field="token_key", max_length=25)
        accounts.token_revoke(actor=request.user, user=request.user, token_key=key)
        return Response(status=status.HTTP_204_NO_CONTENT)


class AccountTokensApi(Api):
    permission_classes = ACCOUNT_PERMISSIONS

    @extend_schema(
        summary="List a user's API tokens",
        responses={200: TokenOutputSerializer(many=True), **READ_ERRORS},
    )
    def get(self, request: Request, user_id: int) -> Response:
        account = _account(user_id)
        return Response(TokenOutputSerializer(token_list(user=account), many=True).data)


class AccountTokensRevokeApi(Api):
    permission_classes = ACCOUNT_PERMISSIONS

    @extend_schema(
        summary="Revoke all of a user's API tokens",
        request=None,
        responses={200: RevokedOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, user_id: int) -> Response:
        account = _account(user_id)
        revoked = accounts.token_revoke(actor=request.user, user=account)
        return Response(RevokedOutputSerializer({"revoked": revoked}).data)


class AccountTokenDetailApi(Api):
    permission_classes = ACCOUNT_PERMISSIONS

    @extend_schema(
        summary="Revoke one of a user's API tokens",
        responses={204: None, **error_responses(401, 403, 404)},
    )
    def delete(self, request: Request, user_id: int, token_key: str) -> Response:
        account = _account(user_id)
        key = request_text(token_key, field="token_key", max_length=25)
        accounts.token_revoke(actor=request.user, user=account, token_key=key)
        return Response(status=status.HTTP_204_NO_CONTENT)
