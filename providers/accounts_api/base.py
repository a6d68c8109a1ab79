"""What the account use cases share: the reads, the account as answered, and the shape of a
change to one account (POST /users/{id}/<change>/)."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from common.api_fields import OptionalEmailField
from common.api_views import Api, get_or_404, validated
from common.lockout import locked_usernames
from providers.models import Account, Membership
from providers.permissions import ACCOUNT_PERMISSIONS

REASON_MAX_LENGTH = 2000
PASSWORD_MAX_LENGTH = 128  # Django's own forms' limit; Argon2 hashes any length


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


class AccountReasonInputSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(
        max_length=REASON_MAX_LENGTH, allow_blank=True, help_text="Why; kept in the history."
    )


def account_get(*, user_id: int) -> Account:
    """The account named in the URL, or a 404."""
    return get_or_404(account_list(), user_id, what="user")


def account_response(account: Account, *, status_code: int = status.HTTP_200_OK) -> Response:
    """The account as it now is, with its roles and whether it is locked out."""
    account = account_list().get(pk=account.pk)
    context = {"locked_usernames": locked_usernames([account.username])}
    return Response(AccountOutputSerializer(account, context=context).data, status=status_code)


# One change to an account: validate `input_serializer`, apply it with `change` (an accounts
# service) and answer the account. Each view documents its POST with `extend_schema_view`. (No
# docstring: the schema would take it for the description of every operation without one.)
class AccountChangeApi(Api):
    permission_classes = ACCOUNT_PERMISSIONS
    input_serializer: type[serializers.Serializer[Any]] = AccountReasonInputSerializer

    def change(self, *, actor: Any, account: Account, data: dict[str, Any]) -> Any:
        raise NotImplementedError

    def post(self, request: Request, user_id: int) -> Response:
        account = account_get(user_id=user_id)
        data = validated(self.input_serializer, request.data)
        return account_response(self.change(actor=request.user, account=account, data=data))
