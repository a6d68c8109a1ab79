"""Recording source donors, their infectious-disease marker results and the signed eligibility
determination."""

from __future__ import annotations

import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from common.errors import DomainError, Problem
from common.services import history, require_reason, validate_instance
from common.signatures import Meaning
from lots.models import Donor, DonorMarkerResult, Eligibility, Marker, MarkerResultValue
from lots.selectors import required_markers_for
from providers.models import Role
from providers.selectors import require_role
from signatures.services import sign, signer_authenticate


@transaction.atomic
def donor_create(
    *,
    actor: Any,
    code: str,
    tissue: str,
    collection_date: datetime.date,
    specimen_date: datetime.date,
    testing_laboratory: str,
    isbt_din: str | None = None,
    birth_mother_tested: bool = False,
) -> Donor:
    require_role(actor, Role.QUALITY_MANAGER)
    donor = Donor(
        code=code.strip(),
        tissue=tissue,
        collection_date=collection_date,
        specimen_date=specimen_date,
        testing_laboratory=testing_laboratory,
        isbt_din=(isbt_din or "").strip().upper() or None,
        birth_mother_tested=birth_mother_tested,
    )
    validate_instance(donor)
    with history(actor, "donor recorded"):
        donor.save()
    return donor


@transaction.atomic
def donor_marker_result_record(
    *,
    actor: Any,
    donor: Donor,
    marker: Marker,
    result: str,
    tested_on: datetime.date,
    laboratory: str,
    test_method: str = "",
    reason: str = "",
) -> DonorMarkerResult:
    """Record a donor's result for a marker. A second result for the same marker is a correction
    and needs a reason; the earlier value stays in the history."""
    require_role(actor, Role.QUALITY_MANAGER)
    existing = (
        DonorMarkerResult.objects.select_for_update().filter(donor=donor, marker=marker).first()
    )
    if existing is not None:
        reason = require_reason(reason)
    record = existing or DonorMarkerResult(donor=donor, marker=marker)
    record.result = result
    record.tested_on = tested_on
    record.laboratory = laboratory
    record.test_method = test_method
    validate_instance(record)
    with history(actor, reason or "marker result recorded"):
        record.save()
    return record


@transaction.atomic
def donor_eligibility_decide(
    *, actor: Any, donor: Donor, eligibility: str, password: str, reason: str
) -> Donor:
    """The responsible person's signed determination. `eligible` is refused while a required
    marker is missing or reactive, listing every one."""
    require_role(actor, Role.QUALITY_MANAGER)
    signer = signer_authenticate(actor=actor, password=password)
    reason = require_reason(reason)
    if eligibility not in Eligibility.values:
        raise DomainError.single(
            "invalid_choice",
            _("%(eligibility)s is not an eligibility decision.") % {"eligibility": eligibility},
            field="eligibility",
            status=400,
        )
    donor = Donor.objects.select_for_update().get(pk=donor.pk)
    if eligibility == Eligibility.ELIGIBLE:
        markers = list(Marker.objects.filter(active=True))
        results = {r.marker_id: r for r in DonorMarkerResult.objects.filter(donor=donor)}
        problems = []
        for marker in required_markers_for(donor.tissue, markers):
            result = results.get(marker.pk)
            if result is None:
                problems.append(
                    Problem(
                        "donor_marker_missing",
                        _("No %(marker)s result.") % {"marker": marker.name},
                        f"markers.{marker.code}",
                    )
                )
            elif result.result != MarkerResultValue.NON_REACTIVE:
                problems.append(
                    Problem(
                        "donor_marker_reactive",
                        _("%(marker)s is %(result)s.")
                        % {"marker": marker.name, "result": result.get_result_display().lower()},
                        f"markers.{marker.code}",
                    )
                )
        if problems:
            raise DomainError(problems, status=409)
    donor.eligibility = eligibility
    donor.eligibility_decided_by = actor
    donor.eligibility_decided_at = timezone.now()
    with history(actor, reason, signature_meaning="eligibility determination"):
        donor.save(
            update_fields=["eligibility", "eligibility_decided_by", "eligibility_decided_at"]
        )
        sign(
            signer=signer,
            kind="donor_eligibility",
            record=donor,
            meaning=Meaning.RESPONSIBILITY,
            reason=reason,
            at=donor.eligibility_decided_at,
        )
    return donor
