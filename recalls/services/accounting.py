"""What a clinic accounts for once a recall reached it: its stock (returned or destroyed, every
unit it held) and, in a patient-level recall, each patient it tried to contact and the outcome."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from common.errors import DomainError
from common.services import history
from lots.models import Lot
from providers.models import Clinic, Role
from providers.selectors import require_any_role
from recalls.models import (
    ContactOutcome,
    DispositionKind,
    PatientContactAttempt,
    Recall,
    RecallDepth,
    RecallExposure,
    RecallLot,
    RecallStock,
    StockDisposition,
)
from recalls.services.acknowledgements import recall_lock, require_open
from stock.models import MovementKind, StockBalance, StockState
from stock.services import Change, apply_changes
from treatments.models import Patient

DISPOSING_ROLES = (Role.CLINIC_ADMINISTRATOR, Role.QUALITY_MANAGER)
CONTACTING_ROLES = (Role.CLINIC_ADMINISTRATOR, Role.CLINICIAN, Role.QUALITY_MANAGER)
MOVEMENT_KIND: dict[str, str] = {
    DispositionKind.RETURNED: MovementKind.RETURN,
    DispositionKind.DESTROYED: MovementKind.DESTRUCTION,
}
# What the recall counted as held, in the order units leave: first the usable stock it blocked,
# then stock already rejected at receipt, which it counted too
# (recalls.services.opening._freeze_stock).
DISPOSABLE_STATES = (StockState.BLOCKED, StockState.REJECTED)
NOTE_MAX_LENGTH = 5000
QUANTITY_MAX = 2**31 - 1  # StockDisposition.quantity is a PostgreSQL integer


def units_left_to_account_for(*, recall: Recall, clinic: Clinic, lot: Lot) -> tuple[int, int]:
    """(held when the recall reached the clinic, returned or destroyed since)."""
    held = (
        RecallStock.objects.filter(recall=recall, clinic=clinic, lot=lot)
        .values_list("quantity_held", flat=True)
        .first()
    ) or 0
    accounted = (
        StockDisposition.objects.filter(recall=recall, clinic=clinic, lot=lot).aggregate(
            total=Sum("quantity")
        )["total"]
        or 0
    )
    return held, accounted


@transaction.atomic
def recall_disposition_record(
    *, recall: Recall, clinic: Clinic, lot: Lot, kind: str, quantity: int, actor: Any
) -> StockDisposition:
    """Record units of a recalled lot returned to the manufacturer or destroyed by the clinic.

    A real recall moves them out of the clinic's stock (the blocked bucket first, then rejected
    stock) through the ledger; a drill records the disposition only and touches no stock. Refused
    beyond what is left to account for (`disposition_exceeds_held`)."""
    require_any_role(actor, DISPOSING_ROLES, clinic=clinic)
    if kind not in DispositionKind.values:
        raise DomainError.single(
            "invalid_choice",
            _("A disposition is returned or destroyed."),
            field="kind",
            status=400,
        )
    if (
        isinstance(quantity, bool)
        or not isinstance(quantity, int)
        or not 0 < quantity <= QUANTITY_MAX
    ):
        raise DomainError.single(
            "quantity_not_positive",
            _("Give a whole number of units above zero."),
            field="quantity",
            status=400,
        )
    recall = recall_lock(recall.pk)
    require_open(recall)
    if not RecallLot.objects.filter(recall=recall, lot=lot).exists():
        raise DomainError.single(
            "lot_not_in_recall",
            _("Lot %(lot)s is not in %(recall)s.")
            % {"lot": lot.lot_number, "recall": recall.reference},
            field="lot",
        )
    held, accounted = units_left_to_account_for(recall=recall, clinic=clinic, lot=lot)
    left = held - accounted
    if quantity > left:
        raise DomainError.single(
            "disposition_exceeds_held",
            _(
                "%(clinic)s has %(left)s unit(s) of lot %(lot)s left to account for (held "
                "%(held)s when %(recall)s reached it, %(accounted)s returned or destroyed since); "
                "%(quantity)s is too many."
            )
            % {
                "clinic": clinic.name,
                "left": left,
                "lot": lot.lot_number,
                "held": held,
                "recall": recall.reference,
                "accounted": accounted,
                "quantity": quantity,
            },
            field="quantity",
        )
    now = timezone.now()
    disposition = StockDisposition(
        recall=recall,
        clinic=clinic,
        lot=lot,
        kind=kind,
        quantity=quantity,
        recorded_by=actor,
        recorded_at=now,
    )
    reason = f"{recall.reference}: {quantity} unit(s) {kind}"
    with history(actor, reason):
        disposition.save()
        if not recall.is_drill:
            changes = _take_from_held(
                clinic=clinic, lot=lot, quantity=quantity, kind=MOVEMENT_KIND[kind]
            )
            apply_changes(changes, actor=actor, reason=reason, at=now)
    return disposition


def _take_from_held(*, clinic: Clinic, lot: Lot, quantity: int, kind: str) -> list[Change]:
    """The ledger changes that take `quantity` units out of the disposable buckets. Balance rows
    are locked in (clinic, lot, state) order, as apply_changes touches them."""
    balances = dict(
        StockBalance.objects.select_for_update()
        .filter(clinic=clinic, lot=lot, state__in=DISPOSABLE_STATES)
        .order_by("state")
        .values_list("state", "quantity")
    )
    changes = []
    still = quantity
    for state in DISPOSABLE_STATES:
        taken = min(still, balances.get(state, 0))
        if taken:
            changes.append(Change(clinic.pk, lot.pk, state, -taken, kind))
            still -= taken
    if still:
        # Fewer units on the shelves than the recall counted (written off outside the recall):
        # ask for them from the blocked bucket so the ledger refuses with stock_insufficient.
        changes.append(Change(clinic.pk, lot.pk, StockState.BLOCKED, -still, kind))
    return changes


@transaction.atomic
def recall_contact_attempt_record(
    *, recall: Recall, patient: Patient, outcome: str, note: str = "", actor: Any
) -> PatientContactAttempt:
    """Record one attempt to contact an exposed patient of a patient-level recall, and its
    outcome. Only staff of the patient's clinic (or a quality manager) record it, and only for a
    patient the recall's exposures name at that clinic."""
    require_any_role(actor, CONTACTING_ROLES, clinic=patient.clinic)
    if outcome not in ContactOutcome.values:
        raise DomainError.single(
            "invalid_choice",
            _("The outcome is reached, unreachable or deceased."),
            field="outcome",
            status=400,
        )
    note = (note or "").strip()
    if len(note) > NOTE_MAX_LENGTH or "\x00" in note:
        raise DomainError.single(
            "note_invalid",
            _("Keep the note to %(limit)s characters of text.") % {"limit": NOTE_MAX_LENGTH},
            field="note",
            status=400,
        )
    recall = recall_lock(recall.pk)
    require_open(recall)
    if recall.depth != RecallDepth.PATIENT:
        raise DomainError.single(
            "recall_not_patient_level",
            _("%(recall)s is a clinic-level recall: patients are not contacted.")
            % {"recall": recall.reference},
            field="recall",
        )
    if not RecallExposure.objects.filter(
        recall=recall, patient=patient, clinic_id=patient.clinic_id
    ).exists():
        raise DomainError.single(
            "patient_not_exposed",
            _("Patient %(patient)s received none of the lots in %(recall)s.")
            % {"patient": patient.reference, "recall": recall.reference},
            field="patient",
        )
    attempt = PatientContactAttempt(
        recall=recall,
        patient=patient,
        outcome=outcome,
        note=note,
        attempted_by=actor,
        attempted_at=timezone.now(),
    )
    with history(actor, f"{recall.reference}: patient contact attempt, {outcome}"):
        attempt.save()
    return attempt
