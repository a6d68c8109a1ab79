"""Closing a recall (signed), or refused listing every unmet item."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from common.api_fields import WRITE_ERRORS
from common.api_views import Api, validated
from recalls.api.common import RECALL_ID, password_field, recall_or_404, text_field
from recalls.api.opening import RecallDetailOutputSerializer, recall_detail_data
from recalls.services import recall_close


class RecallCloseInputSerializer(serializers.Serializer[Any]):
    password = password_field()
    reason = text_field(allow_blank=True, help_text="Why the recall is closed (and any override).")
    override = serializers.BooleanField(
        default=False,
        help_text="Close although clinics have not acknowledged or stock is not accounted for; "
        "the reason says why, and the override is recorded.",
    )


class RecallCloseApi(Api):
    @extend_schema(
        summary="Close a recall (signed)",
        description="Refused (409) listing every clinic that has not acknowledged "
        "(`clinic_not_acknowledged`) and all stock not accounted for (`stock_not_accounted`), "
        "unless `override` is true; the reason is kept either way. The response's `timing` is "
        "the drill timing report.",
        parameters=[RECALL_ID],
        request=RecallCloseInputSerializer,
        responses={200: RecallDetailOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, recall_id: int) -> Response:
        recall = recall_or_404(request, recall_id)
        data = validated(RecallCloseInputSerializer, request.data)
        recall_close(recall=recall, actor=request.user, **data)
        return Response(recall_detail_data(request, recall.pk))
