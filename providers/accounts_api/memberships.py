"""Roles: grant a user a role at a clinic or network-wide, and revoke one (kept, inactive)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from common.api_fields import WRITE_ERRORS, TextChoiceField, id_field
from common.api_views import Api, get_or_404, validated
from providers import accounts
from providers.accounts_api.base import (
    AccountReasonInputSerializer,
    MembershipOutputSerializer,
    account_get,
)
from providers.models import Clinic, Membership, Role
from providers.permissions import ACCOUNT_PERMISSIONS


class MembershipGrantInputSerializer(serializers.Serializer[Any]):
    role = TextChoiceField(choices=Role.choices)
    clinic = id_field(
        Clinic.objects.all(),
        allow_null=True,
        default=None,
        help_text="The clinic for a clinic role; empty for a network-wide quality manager or "
        "auditor.",
    )


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
        account = account_get(user_id=user_id)
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
        account = account_get(user_id=user_id)
        membership = get_or_404(
            Membership.objects.filter(user=account).select_related("user", "clinic"),
            membership_id,
            what="role of this user",
        )
        data = validated(AccountReasonInputSerializer, request.data)
        membership = accounts.membership_revoke(actor=request.user, membership=membership, **data)
        return Response(MembershipOutputSerializer(membership).data)
