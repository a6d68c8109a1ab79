"""The release gate and the other signed status changes of a lot: release, reject, hold, and
the recall marking a recall signs for."""

from __future__ import annotations

import datetime
import hashlib
import json
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from common.errors import DomainError, Problem
from common.services import history, stated_moment
from lots.models import (
    MANUFACTURER_CERTIFICATE_KINDS,
    Certificate,
    DonorMarkerResult,
    Lot,
    LotAction,
    LotDonor,
    LotQcResult,
    LotStatus,
    LotStatusChange,
    SignatureMeaning,
)
from lots.selectors import RELEASABLE_FROM, lot_release_check
from providers.models import Role
from providers.selectors import require_role
from signatures.services import Signer, sign, signer_authenticate

_MEANINGS = {
    LotAction.RELEASE: {
        SignatureMeaning.APPROVAL,
        SignatureMeaning.REVIEW,
        SignatureMeaning.RESPONSIBILITY,
    },
    LotAction.REJECT: {
        SignatureMeaning.REJECTION,
        SignatureMeaning.REVIEW,
        SignatureMeaning.RESPONSIBILITY,
    },
    LotAction.HOLD: {SignatureMeaning.REVIEW, SignatureMeaning.RESPONSIBILITY},
}


def _signed_preamble(
    *, actor: Any, password: str, action: LotAction, meaning: str, reason: str
) -> tuple[str, Signer]:
    require_role(actor, Role.QUALITY_MANAGER)
    signer = signer_authenticate(actor=actor, password=password)
    problems = []
    if meaning not in _MEANINGS[action]:
        allowed = ", ".join(sorted(_MEANINGS[action]))
        problems.append(
            Problem(
                "signature_meaning_invalid",
                _("A %(action)s is signed with one of these meanings: %(allowed)s.")
                % {"action": action.label.lower(), "allowed": allowed},
                "meaning",
            )
        )
    if not (reason or "").strip():
        problems.append(
            Problem("reason_required", _("State the reason for this decision."), "reason")
        )
    if problems:
        raise DomainError(problems, status=400)
    return reason.strip(), signer


def lot_record_digest(lot: Lot) -> dict[str, Any]:
    """The content a signature on the lot is bound to: its identity, dates, status, its donors
    with their eligibility and marker results, the QC results, and the certificates (lot CoA and
    the manufacturer's GMP / ISO 13485, by hash) on file at signing time."""
    donor_results = DonorMarkerResult.objects.filter(donor__lot_donors__lot=lot).values_list(
        "donor__code", "marker__code", "result", "tested_on"
    )
    return {
        "lot": lot.pk,
        "lot_number": lot.lot_number,
        "manufacturer": lot.manufacturer_id,
        "product": lot.product_id,
        "manufactured_on": lot.manufactured_on.isoformat(),
        "expires_on": lot.expires_on.isoformat(),
        "quantity": lot.quantity,
        "regulatory_basis": lot.regulatory_basis,
        "regulatory_number": lot.regulatory_number,
        "status": lot.status,
        "donors": sorted(
            [code, eligibility]
            for code, eligibility in LotDonor.objects.filter(lot=lot).values_list(
                "donor__code", "donor__eligibility"
            )
        ),
        "donor_markers": sorted(
            [code, marker, result, tested_on.isoformat()]
            for code, marker, result, tested_on in donor_results
        ),
        "qc": sorted(
            [r.test_id, str(r.numeric_value), r.outcome, r.tested_on.isoformat()]
            for r in LotQcResult.objects.filter(lot=lot)
        ),
        "certificates": sorted(
            Certificate.objects.filter(
                Q(lot=lot)
                | Q(manufacturer_id=lot.manufacturer_id, kind__in=MANUFACTURER_CERTIFICATE_KINDS)
            ).values_list("sha256", flat=True)
        ),
    }


def _sign_status_change(
    *,
    lot: Lot,
    signer: Signer,
    action: LotAction,
    to_status: str,
    meaning: str,
    reason: str,
    signed_at: datetime.datetime | None = None,
    effective_at: datetime.datetime | None = None,
) -> LotStatusChange:
    """Change the lot's status and sign the change: the `LotStatusChange` row (with its legacy
    `record_digest`) and the `signatures.Signature` on it, whose content is `lots.signing`'s.
    A retrospective release is signed now and holds from its `effective_at`."""
    actor = signer.user
    signed_at = signed_at or timezone.now()
    effective_at = effective_at or signed_at
    retrospective = effective_at < signed_at
    content = lot_record_digest(lot)
    payload = {
        "record": content,
        "action": action.value,
        "to_status": to_status,
        "signer": actor.pk,
        "signed_at": signed_at.isoformat(),
        "meaning": meaning,
        "reason": reason,
    }
    if retrospective:
        payload["effective_at"] = effective_at.isoformat()
    digest = hashlib.sha256(
        json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    from_status = lot.status
    # Conditional update: only the status we read under the row lock may change.
    released = {"release_effective_at": effective_at} if action == LotAction.RELEASE else {}
    context = {"effective_at": effective_at.isoformat()} if retrospective else {}
    with history(actor, reason, signature_meaning=meaning, action=action.value, **context):
        changed = Lot.objects.filter(pk=lot.pk, status=from_status).update(
            status=to_status, status_changed_at=signed_at, **released
        )
        if changed != 1:
            raise DomainError.single(
                "lot_status_changed",
                _("The lot changed while you were signing; reload it."),
                field="status",
            )
        change = LotStatusChange.objects.create(
            lot=lot,
            action=action,
            from_status=from_status,
            to_status=to_status,
            signed_by=actor,
            signer_name=signer.printed_name,
            signed_at=signed_at,
            effective_at=effective_at,
            retrospective=retrospective,
            meaning=meaning,
            reason=reason,
            record_digest=digest,
        )
        sign(
            signer=signer,
            kind=f"lot_{action.value}",
            record=change,
            meaning=meaning,
            reason=reason,
            at=signed_at,
        )
    lot.status = to_status
    lot.status_changed_at = signed_at
    if released:
        lot.release_effective_at = effective_at
    return change


def _locked_lot(lot_id: int) -> Lot:
    """NO KEY UPDATE: a status change must not block treatments and stock movements that only
    reference the lot (they take KEY SHARE locks), nor deadlock with them."""
    try:
        return Lot.objects.select_for_update(no_key=True).get(pk=lot_id)
    except Lot.DoesNotExist as error:
        raise DomainError.single("not_found", _("No such lot."), field="lot", status=404) from error


@transaction.atomic
def lot_release(
    *,
    actor: Any,
    lot_id: int,
    password: str,
    meaning: str,
    reason: str,
    effective_date: datetime.date | datetime.datetime | None = None,
) -> LotStatusChange:
    """Release a quarantined or on-hold lot into clinical use.

    Refuses, listing every unmet requirement with its own code, unless all of DESIGN rule 1 holds.
    A refusal changes nothing.

    With `effective_date` the release is retrospective: a lot released long ago is entered with
    its real release date. Every rule is judged as of that date (not expired then, certificates
    valid then, no evidence dated after it), the signature is given now, and no treatment dated
    before it is accepted.
    """
    reason, signer = _signed_preamble(
        actor=actor, password=password, action=LotAction.RELEASE, meaning=meaning, reason=reason
    )
    lot = _locked_lot(lot_id)
    signed_at = timezone.now()
    effective_at = stated_moment(effective_date) if effective_date is not None else signed_at
    _check_effective_at(lot, effective_at, signed_at)
    check = lot_release_check(
        lot=lot,
        on=effective_at.astimezone(datetime.UTC).date(),
        retrospective=effective_at < signed_at,
    )
    if not check.releasable:
        raise DomainError(check.problems, status=409)
    return _sign_status_change(
        lot=lot,
        signer=signer,
        action=LotAction.RELEASE,
        to_status=LotStatus.RELEASED,
        meaning=meaning,
        reason=reason,
        signed_at=signed_at,
        effective_at=effective_at,
    )


def _check_effective_at(
    lot: Lot, effective_at: datetime.datetime, signed_at: datetime.datetime
) -> None:
    """A release cannot hold from the future, before the lot was made, or before the lot's
    latest signed status change took effect (the history of a lot runs forward)."""
    problems = []
    day = effective_at.astimezone(datetime.UTC).date()
    if effective_at > signed_at:
        problems.append(
            Problem(
                "release_effective_in_future",
                _("A release cannot take effect in the future."),
                "effective_date",
            )
        )
    if day < lot.manufactured_on:
        problems.append(
            Problem(
                "release_effective_before_manufacture",
                _("The lot was made on %(manufactured_on)s, after the effective date %(day)s.")
                % {"manufactured_on": lot.manufactured_on.isoformat(), "day": day.isoformat()},
                "effective_date",
            )
        )
    latest = (
        LotStatusChange.objects.filter(lot=lot)
        .order_by("-effective_at")
        .values_list("effective_at", flat=True)
        .first()
        if effective_at < signed_at
        else None
    )
    if latest is not None and effective_at < latest:
        problems.append(
            Problem(
                "release_effective_before_last_change",
                _(
                    "The lot's latest status change took effect on %(latest)s, after the "
                    "effective date %(day)s."
                )
                % {"latest": latest.date().isoformat(), "day": day.isoformat()},
                "effective_date",
            )
        )
    if problems:
        raise DomainError(problems, status=400)


@transaction.atomic
def lot_reject(
    *, actor: Any, lot_id: int, password: str, meaning: str, reason: str
) -> LotStatusChange:
    """Reject a quarantined or on-hold lot: it can never be used."""
    reason, signer = _signed_preamble(
        actor=actor, password=password, action=LotAction.REJECT, meaning=meaning, reason=reason
    )
    lot = _locked_lot(lot_id)
    if lot.status not in RELEASABLE_FROM:
        raise DomainError.single(
            "lot_status_not_rejectable",
            _("A %(status)s lot cannot be rejected; only quarantined or on-hold lots can.")
            % {"status": lot.get_status_display().lower()},
            field="status",
        )
    return _sign_status_change(
        lot=lot,
        signer=signer,
        action=LotAction.REJECT,
        to_status=LotStatus.REJECTED,
        meaning=meaning,
        reason=reason,
    )


@transaction.atomic
def lot_hold(
    *, actor: Any, lot_id: int, password: str, meaning: str, reason: str
) -> LotStatusChange:
    """Take a released lot out of use while something is investigated. `lot_release` lifts the
    hold, checking every requirement again."""
    reason, signer = _signed_preamble(
        actor=actor, password=password, action=LotAction.HOLD, meaning=meaning, reason=reason
    )
    lot = _locked_lot(lot_id)
    if lot.status != LotStatus.RELEASED:
        raise DomainError.single(
            "lot_status_not_holdable",
            _("Only a released lot can be put on hold; this one is %(status)s.")
            % {"status": lot.get_status_display()},
            field="status",
        )
    return _sign_status_change(
        lot=lot,
        signer=signer,
        action=LotAction.HOLD,
        to_status=LotStatus.ON_HOLD,
        meaning=meaning,
        reason=reason,
    )


def lots_mark_recalled(
    *, lots: list[Lot], actor: Any, at: datetime.datetime, reason: str, record_digest: str
) -> None:
    """Mark lots recalled, each with a status change that carries the recall's signature digest.

    Called by a recall (recalls.services) inside its transaction, with the lots locked; the
    recall's own signature covers these lots, so no password is asked again here."""
    Lot.objects.filter(pk__in=[lot.pk for lot in lots]).update(
        status=LotStatus.RECALLED, status_changed_at=at
    )
    LotStatusChange.objects.bulk_create(
        [
            LotStatusChange(
                lot=lot,
                action=LotAction.RECALL,
                from_status=lot.status,
                to_status=LotStatus.RECALLED,
                signed_by=actor,
                signer_name=actor.get_full_name() or actor.get_username(),
                signed_at=at,
                effective_at=at,
                meaning=SignatureMeaning.RESPONSIBILITY,
                reason=reason,
                record_digest=record_digest,
            )
            for lot in lots
        ]
    )
    for lot in lots:
        lot.status = LotStatus.RECALLED
