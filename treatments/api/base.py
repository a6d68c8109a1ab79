"""What the treatments API's use cases share: input limits and the caller's treatments."""

from __future__ import annotations

from django.db.models import QuerySet
from rest_framework.request import Request

from treatments.models import Treatment
from treatments.selectors import treatment_list

TEXT_MAX_LENGTH = 5000
SCAN_MAX_LENGTH = 200


def treatments_for(request: Request) -> QuerySet[Treatment]:
    # treatment_list() joins clinic, patient, practitioner and the lines' lots; the output also
    # names who took consent and who recorded it.
    return treatment_list(user=request.user).select_related(
        "consent_text", "consent_taken_by", "recorded_by"
    )
