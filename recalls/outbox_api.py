"""The outbox and its receivers through the API: recall notices with their delivery state, the
resend of a notice that failed for good, and the webhook endpoints (registered, listed, rotated,
deactivated and reactivated; a secret is shown once, when it is made)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from common.api_fields import (
    CREATE_ERRORS,
    LIST_ERRORS,
    READ_ERRORS,
    WRITE_ERRORS,
    id_field,
)
from common.api_views import Api, ListApi, get_or_404, validated
from providers.models import Clinic
from providers.permissions import NETWORK_PERMISSIONS
from recalls.delivery import delivery_window
from recalls.filters import NoticeFilter
from recalls.models import Notification, NotificationStatus, WebhookEndpoint
from recalls.selectors import notice_list, webhook_endpoint_list
from recalls.services import (
    recall_notice_resend,
    webhook_endpoint_activate,
    webhook_endpoint_deactivate,
    webhook_endpoint_register,
    webhook_endpoint_rotate,
)
from recalls.services.webhooks import mask_secret

REASON_MAX_LENGTH = 500

# ---------------------------------------------------------------------------------------------
# Notices


class NoticeOutputSerializer(serializers.ModelSerializer[Notification]):
    recall_reference = serializers.CharField(source="recall.reference", read_only=True)
    clinic_name = serializers.CharField(source="clinic.name", read_only=True, allow_null=True)
    endpoint = serializers.IntegerField(source="endpoint_id", read_only=True, allow_null=True)
    message_id = serializers.UUIDField(
        read_only=True,
        help_text="The e-mail Message-ID (before the @) or the webhook-id; the same on every "
        "attempt and on a resend, so a receiver can drop a duplicate.",
    )
    last_error = serializers.CharField(
        read_only=True, help_text="Why the last attempt failed; empty once the notice is sent."
    )
    delivery_deadline = serializers.SerializerMethodField(
        help_text="While the notice is failing: when its delivery window ends and it is marked "
        "failed if its channel still refuses."
    )
    resend_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Notification
        fields = [
            "id",
            "recall",
            "recall_reference",
            "round",
            "channel",
            "clinic",
            "clinic_name",
            "recipient",
            "endpoint",
            "message_id",
            "status",
            "attempts",
            "created_at",
            "sent_at",
            "failing_since",
            "delivery_deadline",
            "failed_at",
            "last_error",
            "resend_count",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_delivery_deadline(self, notification: Notification) -> Any:
        if notification.failing_since is None or notification.status == NotificationStatus.SENT:
            return None
        deadline = notification.failing_since + delivery_window(notification.recall.recall_class)
        return serializers.DateTimeField().to_representation(deadline)


class ReasonInputSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(max_length=REASON_MAX_LENGTH, allow_blank=True)


NOTICE_ID = OpenApiParameter("notice_id", OpenApiTypes.INT, OpenApiParameter.PATH)


class NoticesApi(ListApi):
    serializer_class = NoticeOutputSerializer
    filterset_class = NoticeFilter

    def get_queryset(self) -> QuerySet[Notification]:
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no user
            return Notification.objects.none()
        return notice_list(user=self.request.user)

    @extend_schema(
        summary="Recall notices with their delivery state (`?status=failed`: those to resend)",
        description="Network roles see every notice; clinic staff their own clinics' notices. A "
        "transient error is retried until the notice's delivery window ends "
        "(`delivery_deadline`); then it is `failed` and can be resent.",
        responses={200: NoticeOutputSerializer, **LIST_ERRORS},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class NoticeResendApi(Api):
    @extend_schema(
        summary="Resend a notice that failed for good (quality manager)",
        description="The notice goes back to the outbox under the same message id, and its "
        "delivery window starts again. Refused (409) for a notice that has not failed "
        "(`notice_not_failed`), a closed recall (`recall_closed`), or a deactivated webhook "
        "endpoint (`webhook_endpoint_inactive`); a reason is required.",
        parameters=[NOTICE_ID],
        request=ReasonInputSerializer,
        responses={200: NoticeOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, notice_id: int) -> Response:
        notice = get_or_404(notice_list(user=request.user), notice_id, what="notice")
        data = validated(ReasonInputSerializer, request.data)
        recall_notice_resend(actor=request.user, notification=notice, reason=data["reason"])
        resent = notice_list(user=request.user).get(pk=notice.pk)
        return Response(NoticeOutputSerializer(resent).data)


# ---------------------------------------------------------------------------------------------
# Webhook endpoints


class WebhookEndpointOutputSerializer(serializers.ModelSerializer[WebhookEndpoint]):
    clinic_name = serializers.CharField(source="clinic.name", read_only=True, allow_null=True)
    secret_hint = serializers.SerializerMethodField(
        help_text="Enough to tell two secrets apart; the secret itself is shown only once."
    )
    previous_secret_valid_until = serializers.DateTimeField(
        source="previous_secret_expires_at",
        read_only=True,
        allow_null=True,
        help_text="After a rotation, the previous secret also signs until then.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "name",
            "url",
            "clinic",
            "clinic_name",
            "active",
            "deactivated_at",
            "deactivation_reason",
            "secret_hint",
            "previous_secret_valid_until",
        ]
        read_only_fields = fields

    def get_secret_hint(self, endpoint: WebhookEndpoint) -> str:
        return mask_secret(endpoint.secret)


class WebhookEndpointWithSecretOutputSerializer(WebhookEndpointOutputSerializer):
    secret = serializers.CharField(
        read_only=True,
        help_text="The signing secret (Standard Webhooks, whsec_...). Shown in this response "
        "only: store it now.",
    )

    class Meta(WebhookEndpointOutputSerializer.Meta):
        fields = [*WebhookEndpointOutputSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class WebhookEndpointInputSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=200)
    url = serializers.CharField(max_length=500, help_text="https:// (or http://) address.")
    clinic = id_field(
        Clinic.objects.all(),
        allow_null=True,
        default=None,
        help_text="Empty: receives every recall; a clinic id: only recalls that reach it.",
    )
    reason = serializers.CharField(max_length=REASON_MAX_LENGTH, allow_blank=True, default="")


ENDPOINT_ID = OpenApiParameter("endpoint_id", OpenApiTypes.INT, OpenApiParameter.PATH)


def _endpoint(endpoint_id: int) -> WebhookEndpoint:
    return get_or_404(webhook_endpoint_list(), endpoint_id, what="webhook endpoint")


def _secret_response(endpoint: WebhookEndpoint, *, status_code: int) -> Response:
    response = Response(WebhookEndpointWithSecretOutputSerializer(endpoint).data, status_code)
    response["Cache-Control"] = "no-store"
    return response


class WebhookEndpointsApi(ListApi):
    permission_classes = NETWORK_PERMISSIONS
    serializer_class = WebhookEndpointOutputSerializer
    filterset_class = None

    def get_queryset(self) -> QuerySet[WebhookEndpoint]:
        return webhook_endpoint_list()

    @extend_schema(
        summary="Webhook endpoints that receive recall notices (quality managers, auditors)",
        responses={200: WebhookEndpointOutputSerializer, **LIST_ERRORS},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Register a webhook endpoint (quality manager); its secret is shown once",
        description="The signing secret is generated here and returned in this response only. "
        "Notices are signed per Standard Webhooks (webhook-id, webhook-timestamp, "
        "webhook-signature).",
        request=WebhookEndpointInputSerializer,
        responses={201: WebhookEndpointWithSecretOutputSerializer, **CREATE_ERRORS},
    )
    def post(self, request: Request) -> Response:
        data = validated(WebhookEndpointInputSerializer, request.data)
        endpoint = webhook_endpoint_register(actor=request.user, **data)
        return _secret_response(endpoint, status_code=status.HTTP_201_CREATED)


class WebhookEndpointDetailApi(Api):
    permission_classes = NETWORK_PERMISSIONS

    @extend_schema(
        summary="One webhook endpoint",
        parameters=[ENDPOINT_ID],
        responses={200: WebhookEndpointOutputSerializer, **READ_ERRORS},
    )
    def get(self, request: Request, endpoint_id: int) -> Response:
        return Response(WebhookEndpointOutputSerializer(_endpoint(endpoint_id)).data)


class WebhookEndpointRotateApi(Api):
    permission_classes = NETWORK_PERMISSIONS

    @extend_schema(
        summary="Rotate an endpoint's secret (quality manager); the new one is shown once",
        description="The previous secret still signs beside the new one for "
        "RECALL_WEBHOOK_ROTATION_OVERLAP_HOURS (the webhook-signature header then carries both), "
        "so the receiver can switch without losing a notice.",
        parameters=[ENDPOINT_ID],
        request=ReasonInputSerializer,
        responses={200: WebhookEndpointWithSecretOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, endpoint_id: int) -> Response:
        endpoint = _endpoint(endpoint_id)
        data = validated(ReasonInputSerializer, request.data)
        endpoint = webhook_endpoint_rotate(actor=request.user, endpoint=endpoint, **data)
        return _secret_response(endpoint, status_code=status.HTTP_200_OK)


class WebhookEndpointDeactivateApi(Api):
    permission_classes = NETWORK_PERMISSIONS

    @extend_schema(
        summary="Deactivate an endpoint (quality manager): nothing more is sent to it",
        description="Its pending notices fail at their next attempt and can be resent later. "
        "409 `webhook_endpoint_already_deactivated`.",
        parameters=[ENDPOINT_ID],
        request=ReasonInputSerializer,
        responses={200: WebhookEndpointOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, endpoint_id: int) -> Response:
        endpoint = _endpoint(endpoint_id)
        data = validated(ReasonInputSerializer, request.data)
        endpoint = webhook_endpoint_deactivate(actor=request.user, endpoint=endpoint, **data)
        return Response(WebhookEndpointOutputSerializer(endpoint).data)


class WebhookEndpointActivateApi(Api):
    permission_classes = NETWORK_PERMISSIONS

    @extend_schema(
        summary="Reactivate an endpoint (quality manager)",
        description="409 `webhook_endpoint_already_active`.",
        parameters=[ENDPOINT_ID],
        request=ReasonInputSerializer,
        responses={200: WebhookEndpointOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, endpoint_id: int) -> Response:
        endpoint = _endpoint(endpoint_id)
        data = validated(ReasonInputSerializer, request.data)
        endpoint = webhook_endpoint_activate(actor=request.user, endpoint=endpoint, **data)
        return Response(WebhookEndpointOutputSerializer(endpoint).data)
