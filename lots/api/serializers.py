"""What several lots endpoints share: the reference serializers (manufacturer, product, donor),
a lot's QC result and signed status change as output, and the reason and password input fields."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from common.api_fields import OptionalChoiceField
from lots.models import Donor, LotQcResult, LotStatusChange, Product, QcOutcome, QcSpecification
from lots.selectors import qc_result_passes
from providers.models import Manufacturer

TEXT_MAX_LENGTH = 2000
PASSWORD_MAX_LENGTH = 4096


def reason_field(
    help_text: str = "Why: kept with the history of the record.", **kwargs: Any
) -> Any:
    return serializers.CharField(
        max_length=TEXT_MAX_LENGTH, allow_blank=True, help_text=help_text, **kwargs
    )


def password_field() -> serializers.CharField:
    return serializers.CharField(
        max_length=PASSWORD_MAX_LENGTH,
        allow_blank=True,
        trim_whitespace=False,
        style={"input_type": "password"},
        help_text="Your own password, re-entered to sign (21 CFR 11.200).",
    )


class ManufacturerRefSerializer(serializers.ModelSerializer[Manufacturer]):
    class Meta:
        model = Manufacturer
        fields = ["id", "legal_name"]
        read_only_fields = fields


class ProductRefSerializer(serializers.ModelSerializer[Product]):
    class Meta:
        model = Product
        fields = ["id", "name", "gtin"]
        read_only_fields = fields


class DonorRefSerializer(serializers.ModelSerializer[Donor]):
    class Meta:
        model = Donor
        fields = ["id", "code"]
        read_only_fields = fields


class LotQcResultOutputSerializer(serializers.ModelSerializer[LotQcResult]):
    test = serializers.CharField(source="test.code", read_only=True)
    test_name = serializers.CharField(source="test.name", read_only=True)
    outcome = OptionalChoiceField(
        choices=QcOutcome.choices,
        read_only=True,
        help_text="For qualitative tests; null for measured ones.",
    )
    specification = serializers.SerializerMethodField(
        help_text="What the result must show (the product's own specification or the default)."
    )
    passes = serializers.SerializerMethodField(
        help_text="Derived from the specification now in force; null when the test has none."
    )

    class Meta:
        model = LotQcResult
        fields = [
            "id",
            "test",
            "test_name",
            "numeric_value",
            "outcome",
            "tested_on",
            "laboratory",
            "method",
            "specification",
            "passes",
        ]
        read_only_fields = fields

    def _spec(self, result: LotQcResult) -> QcSpecification | None:
        specifications: dict[int, QcSpecification] = self.context["specifications"]
        return specifications.get(result.test_id)

    def get_specification(self, result: LotQcResult) -> str | None:
        spec = self._spec(result)
        return spec.describe() if spec is not None else None

    def get_passes(self, result: LotQcResult) -> bool | None:
        spec = self._spec(result)
        return qc_result_passes(spec, result) if spec is not None else None


class LotStatusChangeOutputSerializer(serializers.ModelSerializer[LotStatusChange]):
    class Meta:
        model = LotStatusChange
        fields = [
            "id",
            "action",
            "from_status",
            "to_status",
            "signed_by",
            "signer_name",
            "signed_at",
            "effective_at",
            "retrospective",
            "meaning",
            "reason",
            "record_digest",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "effective_at": {
                "help_text": "From when the change holds: the signing time, or the earlier date "
                "a retrospective release states."
            },
            "retrospective": {
                "help_text": "A release entered after the fact: it holds from `effective_at` and "
                "was signed at `signed_at`."
            },
        }
