"""The release gate: the release check, and the signed release, rejection and hold of a lot."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from common.api_fields import (
    READ_ERRORS,
    DayOrInstantField,
    ErrorItemSerializer,
    TextChoiceField,
    error_responses,
)
from common.api_views import Api, get_or_404, validated
from lots import services
from lots.api.serializers import LotStatusChangeOutputSerializer, password_field, reason_field
from lots.models import LotStatusChange, SignatureMeaning
from lots.selectors import lot_list, lot_release_check


class ReleaseCheckOutputSerializer(serializers.Serializer[Any]):
    releasable = serializers.BooleanField()
    problems = ErrorItemSerializer(many=True, help_text="Every unmet release requirement.")
    warnings = ErrorItemSerializer(many=True, help_text="Worth knowing; does not block release.")


class LotDecisionOutputSerializer(serializers.Serializer[Any]):
    lot = serializers.IntegerField(help_text="The lot's id.")
    lot_status = serializers.CharField(help_text="The lot's status after the decision.")
    status_change = LotStatusChangeOutputSerializer()


class SignatureInputSerializer(serializers.Serializer[Any]):
    password = password_field()
    meaning = TextChoiceField(
        choices=SignatureMeaning.choices, help_text="What the signature means (21 CFR 11.50)."
    )
    reason = reason_field()


class ReleaseInputSerializer(SignatureInputSerializer):
    effective_date = DayOrInstantField(
        required=False,
        help_text="Release retrospectively, as of this past date: every rule is judged on it, "
        "the signature is given now, and no treatment dated before it is accepted.",
    )


class LotReleaseCheckApi(Api):
    @extend_schema(
        summary="Would the lot be released now? Every unmet requirement, and warnings",
        responses={200: ReleaseCheckOutputSerializer, **READ_ERRORS},
    )
    def get(self, request: Request, lot_id: int) -> Response:
        lot = get_or_404(lot_list(), lot_id, what="lot")
        check = lot_release_check(lot=lot)
        return Response(
            ReleaseCheckOutputSerializer(
                {
                    "releasable": check.releasable,
                    "problems": [problem.as_dict() for problem in check.problems],
                    "warnings": [warning.as_dict() for warning in check.warnings],
                }
            ).data
        )


class _LotDecisionApi(Api):
    decide: Callable[..., LotStatusChange] = staticmethod(services.lot_release)
    input_serializer: type[SignatureInputSerializer] = SignatureInputSerializer

    def post(self, request: Request, lot_id: int) -> Response:
        # 404 before the signature is checked: an unknown lot is not a signing problem.
        get_or_404(lot_list(), lot_id, what="lot")
        data = validated(self.input_serializer, request.data)
        change = type(self).decide(actor=request.user, lot_id=lot_id, **data)
        return Response(
            LotDecisionOutputSerializer(
                {"lot": lot_id, "lot_status": change.to_status, "status_change": change}
            ).data
        )


_DECISION_ERRORS = error_responses(400, 401, 403, 404, 409)


class LotReleaseApi(_LotDecisionApi):
    decide = staticmethod(services.lot_release)
    input_serializer = ReleaseInputSerializer

    @extend_schema(
        summary="Release a lot (signed), now or retrospectively",
        description="Refused with 409 listing every unmet requirement, each with its own code. "
        "With `effective_date` the release is retrospective: judged as of that date (expiry, "
        "certificates, evidence dated no later), signed now, and marked `retrospective` with its "
        "`effective_at`; an effective date in the future or before the lot was made is refused "
        "with 400 (`release_effective_in_future`, `release_effective_before_manufacture`).",
        request=ReleaseInputSerializer,
        responses={200: LotDecisionOutputSerializer, **_DECISION_ERRORS},
    )
    def post(self, request: Request, lot_id: int) -> Response:
        return super().post(request, lot_id)


class LotRejectApi(_LotDecisionApi):
    decide = staticmethod(services.lot_reject)

    @extend_schema(
        summary="Reject a lot (signed)",
        request=SignatureInputSerializer,
        responses={200: LotDecisionOutputSerializer, **_DECISION_ERRORS},
    )
    def post(self, request: Request, lot_id: int) -> Response:
        return super().post(request, lot_id)


class LotHoldApi(_LotDecisionApi):
    decide = staticmethod(services.lot_hold)

    @extend_schema(
        summary="Put a released lot on hold (signed)",
        request=SignatureInputSerializer,
        responses={200: LotDecisionOutputSerializer, **_DECISION_ERRORS},
    )
    def post(self, request: Request, lot_id: int) -> Response:
        return super().post(request, lot_id)
