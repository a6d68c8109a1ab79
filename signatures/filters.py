"""Query-string filters for the signature list."""

from __future__ import annotations

import re

import django_filters
from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _
from rest_framework.exceptions import ValidationError

from common.api_fields import IdFilter, IsoDateFilter
from signatures.models import Signature

REFERENCE = re.compile(r"^([a-z_][a-z0-9_]{0,99})\.([a-z_][a-z0-9_]{0,99}):([1-9][0-9]{0,18})$")


def _reference(value: str, field: str) -> tuple[str, str, int]:
    match = REFERENCE.fullmatch(value)
    if match is None:
        raise ValidationError(
            {field: [_("Give <app>.<model>:<id>, for example lots.lot:12.")]}, code="invalid"
        )
    return match.group(1), match.group(2), int(match.group(3))


class SignatureFilter(django_filters.FilterSet):
    kind = django_filters.CharFilter(
        field_name="kind",
        max_length=40,
        help_text="lot_release, lot_reject, lot_hold, "
        "donor_eligibility, recall_open, recall_widen or recall_close.",
    )
    record = django_filters.CharFilter(
        method="filter_record",
        max_length=220,
        help_text="The signed record as <app>.<model>:<id> (lots.lotstatuschange:7, "
        "lots.donor:3, recalls.recall:2, recalls.recallscope:5).",
    )
    subject = django_filters.CharFilter(
        method="filter_subject",
        max_length=220,
        help_text="What the signature is about, as <app>.<model>:<id>: lots.lot:12 lists every "
        "signed decision on lot 12; recalls.recall:2 the opening, widenings and closing.",
    )
    signer = IdFilter(field_name="signer_id", help_text="User id of the signer.")
    signed_from = IsoDateFilter(
        field_name="signed_at", lookup_expr="date__gte", help_text="Signed on or after (UTC)."
    )
    signed_to = IsoDateFilter(
        field_name="signed_at", lookup_expr="date__lte", help_text="Signed on or before (UTC)."
    )

    class Meta:
        model = Signature
        fields: list[str] = []

    def filter_record(
        self, queryset: QuerySet[Signature], name: str, value: str
    ) -> QuerySet[Signature]:
        app_label, model, record_id = _reference(value, "record")
        return queryset.filter(
            Q(record_type__app_label=app_label, record_type__model=model), record_id=record_id
        )

    def filter_subject(
        self, queryset: QuerySet[Signature], name: str, value: str
    ) -> QuerySet[Signature]:
        _reference(value, "subject")
        return queryset.filter(subject=value)
