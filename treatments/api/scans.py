"""Scan resolution: a vial's GS1 DataMatrix to its lot, with why it must not be used today."""

from __future__ import annotations

from typing import Any, cast

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from common.api_fields import ErrorItemSerializer, error_responses, id_field
from common.api_views import Api, validated
from lots.api import ProductRefSerializer
from lots.models import Lot
from lots.scan import scan_resolve
from providers.models import Clinic
from providers.permissions import HasActiveRole
from providers.selectors import clinic_list
from treatments.api.base import SCAN_MAX_LENGTH
from treatments.selectors import lot_use_warnings, visible_clinic_ids


class ScannedLotSerializer(serializers.ModelSerializer[Lot]):
    product = ProductRefSerializer(read_only=True)

    class Meta:
        model = Lot
        fields = ["id", "lot_number", "status", "expires_on", "product"]
        read_only_fields = fields


class ScanResolutionOutputSerializer(serializers.Serializer[Any]):
    gtin = serializers.CharField(help_text="GTIN-14 of the product.")
    lot_number = serializers.CharField(allow_null=True)
    expiry = serializers.DateField(allow_null=True, help_text="From (17); day 00 is month end.")
    serial = serializers.CharField(allow_null=True)
    lot = ScannedLotSerializer()
    usable = serializers.BooleanField(help_text="Released and not expired today: no warnings.")
    warnings = ErrorItemSerializer(
        many=True, help_text="Why the vial must not be used now; empty when it may."
    )


class ScanInputSerializer(serializers.Serializer[Any]):
    scan = serializers.CharField(
        max_length=SCAN_MAX_LENGTH,
        trim_whitespace=False,
        help_text="The GS1 DataMatrix as scanned (`]d2` and GS as \\u001d) or its "
        "human-readable form `(01)...(17)...(10)...`.",
    )
    clinic = id_field(
        Clinic.objects.none(),
        required=False,
        allow_null=True,
        default=None,
        help_text="Clinic id where the vial is about to be used: expiry is judged on that "
        "clinic's calendar day. Without it, on the day in UTC.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None:
            # A clinic the caller cannot see is "does not exist", as everywhere else.
            clinic = cast(serializers.PrimaryKeyRelatedField[Clinic], self.fields["clinic"])
            clinic.queryset = clinic_list(user=request.user)  # type: ignore[arg-type]


class ScanResolveApi(Api):
    # A lookup that changes nothing: every role may resolve a scan, auditors included. It is a
    # POST because a raw scan carries a GS control character, awkward in a query string.
    permission_classes = [HasActiveRole]

    @extend_schema(
        summary="Resolve a scanned GS1 DataMatrix to its lot, with warnings before use",
        description="Answers the product's GTIN, the lot number, expiry and serial read from "
        "the scan, the lot on record, and `warnings` when the vial must not be used today "
        "(lot_not_released, lot_on_hold, lot_recalled, lot_expired): today at `clinic` (by "
        "default the caller's clinic when they belong to one only), in its time zone, else in "
        "UTC. A scan that is not GS1 is "
        "400 (scan_malformed, scan_gtin_missing, scan_gtin_invalid, scan_lot_missing); an "
        "unknown GTIN or lot is 404; a label expiry that disagrees with the record is 409.",
        request=ScanInputSerializer,
        responses={200: ScanResolutionOutputSerializer, **error_responses(400, 401, 403, 404, 409)},
    )
    def post(self, request: Request) -> Response:
        data = validated(ScanInputSerializer, request.data, context={"request": request})
        resolution = scan_resolve(data["scan"])
        clinic: Clinic | None = data["clinic"]
        if clinic is None:
            # Staff of one clinic scan at that clinic.
            own = visible_clinic_ids(request.user)
            if own is not None and len(own) == 1:
                clinic = Clinic.objects.get(pk=own[0])
        # "Today" is the clinic's calendar day. A scan with no clinic to ask (a quality manager
        # checking a vial, staff of several clinics not naming one) is judged in UTC, the
        # network's day, as the lot release gate is; treatment_record judges again on its own.
        today = clinic.local_date() if clinic is not None else timezone.localdate()
        warnings = [*resolution.warnings, *lot_use_warnings(resolution.lot, on=today)]
        scan = resolution.scan
        return Response(
            ScanResolutionOutputSerializer(
                {
                    "gtin": scan.gtin,
                    "lot_number": scan.lot_number,
                    "expiry": scan.expiry,
                    "serial": scan.serial,
                    "lot": resolution.lot,
                    "usable": not warnings,
                    "warnings": [warning.as_dict() for warning in warnings],
                }
            ).data
        )
