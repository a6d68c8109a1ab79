"""Shared by the recall API's views: field helpers, the recall lookup, the path parameter."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.request import Request

from common.api_views import get_or_404
from providers.models import Clinic
from recalls.models import Recall
from recalls.selectors import recall_list

TEXT_MAX_LENGTH = 5000
PASSWORD_MAX_LENGTH = 4096


def user_name(user: Any) -> str | None:
    if user is None:
        return None
    return str(user.get_full_name() or user.get_username())


class RecallClinicRefSerializer(serializers.ModelSerializer[Clinic]):
    class Meta:
        model = Clinic
        fields = ["id", "name"]
        read_only_fields = fields


def text_field(**kwargs: Any) -> serializers.CharField:
    return serializers.CharField(max_length=TEXT_MAX_LENGTH, **kwargs)


def password_field() -> serializers.CharField:
    return serializers.CharField(
        max_length=PASSWORD_MAX_LENGTH,
        allow_blank=True,
        trim_whitespace=False,
        style={"input_type": "password"},
        help_text="Your own password, re-entered to sign (21 CFR 11.200).",
    )


def recall_or_404(request: Request, recall_id: int) -> Recall:
    return get_or_404(recall_list(user=request.user), recall_id, what="recall")


RECALL_ID = OpenApiParameter("recall_id", OpenApiTypes.INT, OpenApiParameter.PATH)
