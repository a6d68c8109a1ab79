"""REST API for electronic signatures: list them, and verify one against its record as it now
stands. Read-only, for network quality managers and auditors; clinic staff are refused (403):
a signature's content names lots, donors and recalls across the network."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from common.api_fields import LIST_ERRORS, READ_ERRORS
from common.api_views import Api, ListApi, get_or_404
from providers.permissions import NETWORK_PERMISSIONS
from signatures.filters import SignatureFilter
from signatures.models import Signature
from signatures.selectors import signature_list
from signatures.services import signature_verify


class SignatureOutputSerializer(serializers.ModelSerializer[Signature]):
    record = serializers.CharField(
        source="record_label", read_only=True, help_text="The signed record, <app>.<model>:<id>."
    )
    signer = serializers.IntegerField(source="signer_id", read_only=True, help_text="User id.")
    content = serializers.JSONField(read_only=True, help_text="The signed content, as hashed.")
    # Plain strings: a second `meaning` or `status` choice set would collide with the lots' enums.
    meaning = serializers.CharField(
        read_only=True,
        help_text="What the signer meant: approval, rejection, review, responsibility or "
        "authorship.",
    )

    class Meta:
        model = Signature
        fields = [
            "id",
            "kind",
            "record",
            "subject",
            "signer",
            "printed_name",
            "signed_at",
            "meaning",
            "reason",
            "content_sha256",
            "signature_sha256",
            "backfilled",
            "content",
        ]
        read_only_fields = fields


class DifferenceSerializer(serializers.Serializer[Any]):
    path = serializers.CharField(help_text="Where in the signed content, e.g. state.qc.sterility.")
    signed = serializers.JSONField(allow_null=True, help_text="The value signed.")
    now = serializers.JSONField(allow_null=True, help_text="The value the record holds now.")
    signed_present = serializers.BooleanField()
    now_present = serializers.BooleanField()


class VerificationOutputSerializer(serializers.Serializer[Any]):
    signature = SignatureOutputSerializer()
    status = serializers.CharField(help_text="valid, invalid or superseded.")
    valid = serializers.BooleanField()
    recomputed_sha256 = serializers.CharField(allow_null=True)
    superseded_by = serializers.IntegerField(allow_null=True)
    differences = DifferenceSerializer(many=True)


class SignaturesApi(ListApi):
    permission_classes = NETWORK_PERMISSIONS
    serializer_class = SignatureOutputSerializer
    filterset_class = SignatureFilter

    def get_queryset(self) -> QuerySet[Signature]:
        return signature_list()

    @extend_schema(
        summary="Electronic signatures, newest first",
        description="Every signed act (lot release, rejection and hold; donor eligibility; "
        "recall opening, widening and closing) with signer, printed name, time, meaning, "
        "reason, the signed content and its SHA-256. Quality managers and auditors only.",
        responses={200: SignatureOutputSerializer, **LIST_ERRORS},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class SignatureVerifyApi(Api):
    permission_classes = NETWORK_PERMISSIONS

    @extend_schema(
        summary="Verify a signature against its record as it now stands",
        description="Recomputes the signed content from the record and compares: `valid`, "
        "`invalid` (with every difference, by its path in the signed content) or `superseded` "
        "(the record changed and a later signature on it holds). Answers 200 either way.",
        responses={200: VerificationOutputSerializer, **READ_ERRORS},
    )
    def get(self, request: Request, signature_id: int) -> Response:
        signature = get_or_404(signature_list(), signature_id, what="signature")
        verification = signature_verify(signature)
        return Response(
            VerificationOutputSerializer(
                {
                    "signature": signature,
                    "status": verification.status,
                    "valid": verification.valid,
                    "recomputed_sha256": verification.recomputed_sha256,
                    "superseded_by": verification.superseded_by,
                    "differences": [item.as_dict() for item in verification.differences],
                }
            ).data
        )
