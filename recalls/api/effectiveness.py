"""Following a recall: its live effectiveness (acknowledgements, patients contacted, stock, notices,
timing)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from common.api_fields import READ_ERRORS
from common.api_views import Api
from recalls.api.common import RECALL_ID, recall_or_404
from recalls.selectors import RecallEffectiveness, recall_effectiveness
from treatments.selectors import visible_clinic_ids


class RecallTimingOutputSerializer(serializers.Serializer[Any]):
    withdrawn_at = serializers.DateTimeField(
        help_text="When the lots were withdrawn; every seconds_to_* counts from here."
    )
    opened_at = serializers.DateTimeField()
    first_notice_sent_at = serializers.DateTimeField(allow_null=True)
    all_notices_sent_at = serializers.DateTimeField(
        allow_null=True, help_text="When the last notice went out; null while any is unsent."
    )
    fully_acknowledged_at = serializers.DateTimeField(allow_null=True)
    closed_at = serializers.DateTimeField(allow_null=True)
    seconds_to_open = serializers.FloatField(
        help_text="From the withdrawal to the opening here: 0 unless entered after the fact."
    )
    seconds_to_first_notice = serializers.FloatField(allow_null=True)
    seconds_to_all_notices_sent = serializers.FloatField(allow_null=True)
    seconds_to_full_acknowledgement = serializers.FloatField(allow_null=True)
    seconds_to_close = serializers.FloatField(allow_null=True)


class ClinicProgressOutputSerializer(serializers.Serializer[Any]):
    clinic_id = serializers.IntegerField()
    clinic_name = serializers.CharField()
    acknowledged = serializers.BooleanField()
    acknowledged_at = serializers.DateTimeField(allow_null=True)
    acknowledged_by_name = serializers.CharField()
    acknowledged_via = serializers.CharField()
    patients_exposed = serializers.IntegerField()
    patients_contacted = serializers.IntegerField()
    patients_attempted = serializers.IntegerField()
    units_held = serializers.IntegerField()
    units_accounted = serializers.IntegerField()


class NoticeCountsOutputSerializer(serializers.Serializer[Any]):
    total = serializers.IntegerField()
    pending = serializers.IntegerField()
    sending = serializers.IntegerField()
    sent = serializers.IntegerField()
    failed = serializers.IntegerField()


class FailedNoticeOutputSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    clinic_id = serializers.IntegerField(allow_null=True)
    channel = serializers.CharField()
    recipient = serializers.CharField()
    attempts = serializers.IntegerField()
    last_error = serializers.CharField()


class EffectivenessOutputSerializer(serializers.Serializer[Any]):
    recall = serializers.IntegerField(source="recall.pk")
    reference = serializers.CharField(source="recall.reference")
    is_drill = serializers.BooleanField(source="recall.is_drill")
    recall_status = serializers.CharField(source="recall.status")
    level = serializers.CharField(
        allow_null=True,
        help_text="A (100 % of consignees acknowledged), B (>= 75 %), C (>= 50 %), D (>= 25 %), "
        "E; in a patient-level recall the lower of that share and the share of exposed patients "
        "contacted counts. A configurable default (RECALL_EFFECTIVENESS_LEVELS), not a legal rule.",
    )
    clinics_total = serializers.IntegerField(
        help_text="Consignees: clinics with exposures or stock."
    )
    clinics_acknowledged = serializers.IntegerField()
    clinics_acknowledged_share = serializers.FloatField(allow_null=True, help_text="0 to 1.")
    patients_exposed = serializers.IntegerField()
    patients_contacted = serializers.IntegerField(help_text="A final outcome: reached or deceased.")
    patients_attempted = serializers.IntegerField(help_text="Any attempt, unreachable included.")
    patients_contacted_share = serializers.FloatField(allow_null=True)
    patients_attempted_share = serializers.FloatField(allow_null=True)
    units_held = serializers.IntegerField()
    units_accounted = serializers.IntegerField()
    units_outstanding = serializers.IntegerField()
    units_accounted_share = serializers.FloatField(allow_null=True)
    notices = NoticeCountsOutputSerializer()
    failed_notices = FailedNoticeOutputSerializer(many=True)
    timing = RecallTimingOutputSerializer()
    clinics = ClinicProgressOutputSerializer(many=True)


class RecallEffectivenessApi(Api):
    @extend_schema(
        summary="Live effectiveness: acknowledgements, patients contacted, stock, notices, timing",
        description="Clinic staff get the figures of their own clinics.",
        parameters=[RECALL_ID],
        responses={200: EffectivenessOutputSerializer, **READ_ERRORS},
    )
    def get(self, request: Request, recall_id: int) -> Response:
        recall = recall_or_404(request, recall_id)
        effectiveness: RecallEffectiveness = recall_effectiveness(
            recall=recall, clinic_ids=visible_clinic_ids(request.user)
        )
        return Response(EffectivenessOutputSerializer(effectiveness).data)
