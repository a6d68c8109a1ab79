"""Opening and widening a recall (DESIGN rule 4): one transaction marks the lots recalled, blocks
every clinic's remaining stock, freezes the exposures and writes one outbox row per notice;
delivery is queued only after commit."""

from __future__ import annotations

import datetime
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from common.errors import DomainError, Problem
from common.services import history, stated_moment
from common.signatures import Meaning
from lots.models import Lot, SignatureMeaning
from lots.services import lots_mark_recalled
from providers.models import ClinicContact, Role
from providers.selectors import require_role
from recalls.models import (
    Channel,
    Notification,
    Recall,
    RecallClass,
    RecallDepth,
    RecallExposure,
    RecallLot,
    RecallScope,
    RecallStatus,
    RecallStock,
    WebhookEndpoint,
)
from signatures.services import Signer, sign, signer_authenticate
from stock.models import MovementKind, StockBalance, StockState
from stock.services import Change, apply_changes
from treatments.models import TreatmentLine
from treatments.selectors import ForwardScope

# Stock that must stop being used at once: moved to the blocked bucket. Rejected stock is already
# out of use; it is still counted in what the clinic must account for.
BLOCKABLE_STATES = (StockState.ACCEPTED, StockState.QUARANTINED)


@dataclass(frozen=True)
class RecallScopeRequest:
    lot_ids: list[int] = field(default_factory=list)
    donor_id: int | None = None
    product_id: int | None = None
    manufacturer_id: int | None = None
    manufactured_from: datetime.date | None = None
    manufactured_to: datetime.date | None = None

    def forward_scope(self) -> ForwardScope:
        if self.manufactured_from and self.manufactured_to:
            if self.manufactured_from > self.manufactured_to:
                raise DomainError.single(
                    "scope_dates_reversed",
                    _("manufactured_from is after manufactured_to."),
                    field="scope.manufactured_from",
                    status=400,
                )
        return ForwardScope(
            lot_ids=list(self.lot_ids) or None,
            donor_id=self.donor_id,
            product_id=self.product_id,
            manufacturer_id=self.manufacturer_id,
            manufactured_from=self.manufactured_from,
            manufactured_to=self.manufactured_to,
        )


def _check_opening(
    *, actor: Any, password: str, recall_class: str, depth: str, reason: str, hazard: str
) -> Signer:
    require_role(actor, Role.QUALITY_MANAGER)
    signer = signer_authenticate(actor=actor, password=password)
    problems = []
    if recall_class not in RecallClass.values:
        problems.append(Problem("invalid_choice", _("The class is I, II or III."), "recall_class"))
    if depth not in RecallDepth.values:
        problems.append(Problem("invalid_choice", _("The depth is clinic or patient."), "depth"))
    if not (reason or "").strip():
        problems.append(
            Problem("reason_required", _("State why the product is recalled."), "reason")
        )
    if not (hazard or "").strip():
        problems.append(Problem("hazard_required", _("State the hazard to patients."), "hazard"))
    if problems:
        raise DomainError(problems, status=400)
    return signer


def _scoped_lots(scope: RecallScopeRequest) -> list[Lot]:
    """The lots in scope, locked in primary-key order (no deadlock with another recall).

    FOR NO KEY UPDATE, not FOR UPDATE: a treatment or stock movement in flight inserts rows that
    reference the lot, taking a KEY SHARE lock on it while it holds its stock balance. FOR UPDATE
    would make it wait for the recall while the recall waits for its balance: a deadlock."""
    lot_ids = scope.forward_scope().lots().values("pk")
    return list(
        Lot.objects.select_for_update(of=("self",), no_key=True)
        .filter(pk__in=lot_ids)
        .select_related("product")
        .order_by("pk")
    )


@transaction.atomic
def recall_open(
    *,
    actor: Any,
    password: str,
    recall_class: str,
    depth: str,
    reason: str,
    hazard: str,
    scope: RecallScopeRequest,
    instructions: str = "",
    is_drill: bool = False,
    withdrawn_at: datetime.date | datetime.datetime | None = None,
) -> Recall:
    """Open a recall; with `is_drill`, a mock recall that changes no lot and blocks no stock.
    Signed (`signatures.Signature` of kind `recall_open` on the recall) once the round is
    written, so the signed content holds the lots it reached.

    With `withdrawn_at` the recall is entered after the fact: its lots were withdrawn at that
    earlier moment, and its timings count from there. Everything else happens now, as for any
    opening: the lots' status change here, the blocked stock, the notices and the signature."""
    signer = _check_opening(
        actor=actor,
        password=password,
        recall_class=recall_class,
        depth=depth,
        reason=reason,
        hazard=hazard,
    )
    lots = _scoped_lots(scope)
    if not lots:
        raise DomainError.single(
            "recall_scope_empty",
            _("The scope matches no lot; nothing to recall."),
            field="scope",
            status=400,
        )
    if not is_drill:
        _refuse_lots_in_open_recalls(lots)
    now = timezone.now()
    withdrawn = _withdrawn_at(withdrawn_at, lots=lots, now=now, is_drill=is_drill)
    recall = Recall(
        reference=f"TMP-{uuid.uuid4().hex[:16]}",
        recall_class=recall_class,
        depth=depth,
        reason=reason.strip(),
        hazard=hazard.strip(),
        instructions=instructions.strip(),
        is_drill=is_drill,
        status=RecallStatus.OPEN,
        opened_by=actor,
        opened_at=now,
        withdrawn_at=withdrawn,
        opened_signature_digest="0" * 64,
    )
    with history(actor, reason, signature_meaning=SignatureMeaning.RESPONSIBILITY):
        recall.save()
        prefix = "DRILL" if is_drill else "RC"
        recall.reference = f"{prefix}-{now:%Y}-{recall.pk:05d}"
        recall.opened_signature_digest = _digest(
            recall=recall, lots=lots, actor=actor, at=now, meaning="open"
        )
        recall.save(update_fields=["reference", "opened_signature_digest"])
        _add_round(
            recall=recall,
            round_number=1,
            lots=lots,
            scope=scope,
            actor=actor,
            at=now,
            reason=reason,
            digest=recall.opened_signature_digest,
        )
        sign(
            signer=signer,
            kind="recall_open",
            record=recall,
            meaning=Meaning.RESPONSIBILITY,
            reason=reason,
            at=now,
        )
    _queue_delivery(recall.pk, 1)
    return recall


def _withdrawn_at(
    stated: datetime.date | datetime.datetime | None,
    *,
    lots: list[Lot],
    now: datetime.datetime,
    is_drill: bool,
) -> datetime.datetime:
    """When the lots were withdrawn: now, or the earlier moment stated for a recall entered after
    the fact, which cannot be in the future, before a lot in scope was made, or on a drill (a
    drill is rehearsed now)."""
    if stated is None:
        return now
    moment = stated_moment(stated)
    problems = []
    if is_drill:
        problems.append(
            Problem(
                "recall_drill_withdrawn_at",
                _("A drill is rehearsed now; it states no earlier withdrawal."),
                "withdrawn_at",
            )
        )
    if moment > now:
        problems.append(
            Problem(
                "recall_withdrawn_in_future",
                _("The lots cannot have been withdrawn in the future."),
                "withdrawn_at",
            )
        )
    day = moment.astimezone(datetime.UTC).date()
    unmade = [lot.lot_number for lot in lots if day < lot.manufactured_on]
    if unmade:
        problems.append(
            Problem(
                "recall_withdrawn_before_manufacture",
                _("Lots %(lots)s were made after %(day)s, the stated withdrawal.")
                % {"lots": ", ".join(unmade), "day": day.isoformat()},
                "withdrawn_at",
            )
        )
    if problems:
        raise DomainError(problems, status=400)
    return moment


@transaction.atomic
def recall_widen(
    *, actor: Any, password: str, recall: Recall, scope: RecallScopeRequest, reason: str
) -> Recall:
    """Add lots to an open recall: only the new exposures, stock and notices are added. Signed
    (kind `recall_widen`) on the round's `RecallScope` row."""
    require_role(actor, Role.QUALITY_MANAGER)
    signer = signer_authenticate(actor=actor, password=password)
    if not (reason or "").strip():
        raise DomainError.single(
            "reason_required", _("State why the recall is widened."), field="reason", status=400
        )
    recall = Recall.objects.select_for_update().get(pk=recall.pk)
    if recall.status != RecallStatus.OPEN:
        raise DomainError.single(
            "recall_not_open",
            _("%(recall)s is closed.") % {"recall": recall.reference},
            field="recall",
        )
    already = set(RecallLot.objects.filter(recall=recall).values_list("lot_id", flat=True))
    lots = [lot for lot in _scoped_lots(scope) if lot.pk not in already]
    if not lots:
        raise DomainError.single(
            "recall_scope_nothing_new",
            _("Every lot this scope matches is already in the recall."),
            field="scope",
            status=400,
        )
    if not recall.is_drill:
        _refuse_lots_in_open_recalls(lots)
    round_number = (recall.scopes.aggregate(last=Max("round"))["last"] or 0) + 1
    now = timezone.now()
    digest = _digest(
        recall=recall,
        lots=lots,
        actor=actor,
        at=now,
        meaning="widen",
        round_number=round_number,
        reason=reason,
    )
    with history(actor, reason, signature_meaning=SignatureMeaning.RESPONSIBILITY):
        scope_row = _add_round(
            recall=recall,
            round_number=round_number,
            lots=lots,
            scope=scope,
            actor=actor,
            at=now,
            reason=reason,
            digest=digest,
        )
        sign(
            signer=signer,
            kind="recall_widen",
            record=scope_row,
            meaning=Meaning.RESPONSIBILITY,
            reason=reason,
            at=now,
        )
        _reopen_full_acknowledgement(recall)
    _queue_delivery(recall.pk, round_number)
    return recall


def _refuse_lots_in_open_recalls(lots: list[Lot]) -> None:
    taken = RecallLot.objects.filter(lot__in=lots, active=True).select_related("recall", "lot")
    problems = [
        Problem(
            "lot_in_open_recall",
            _("Lot %(lot)s is already in open recall %(recall)s; widen that recall instead.")
            % {"lot": row.lot.lot_number, "recall": row.recall.reference},
            f"scope.lots.{row.lot_id}",
        )
        for row in taken
    ]
    if problems:
        raise DomainError(problems, status=409)


def _digest(
    *,
    recall: Recall,
    lots: list[Lot],
    actor: Any,
    at: datetime.datetime,
    meaning: str,
    round_number: int = 1,
    reason: str = "",
) -> str:
    """What the signer commits to. The opening's payload is unchanged since the first release
    (round 1, no round reason), so digests recorded then still verify."""
    payload: dict[str, Any] = {
        "recall": recall.pk,
        "class": recall.recall_class,
        "depth": recall.depth,
        "reason": recall.reason,
        "hazard": recall.hazard,
        "drill": recall.is_drill,
        "lots": [lot.pk for lot in lots],
        "signer": actor.pk,
        "at": at.isoformat(),
        "meaning": meaning,
    }
    if round_number != 1:
        payload["round"] = round_number
        payload["round_reason"] = reason.strip()
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _add_round(
    *,
    recall: Recall,
    round_number: int,
    lots: list[Lot],
    scope: RecallScopeRequest,
    actor: Any,
    at: datetime.datetime,
    reason: str,
    digest: str,
) -> RecallScope:
    scope_row = RecallScope.objects.create(
        recall=recall,
        round=round_number,
        donor_id=scope.donor_id,
        product_id=scope.product_id,
        manufacturer_id=scope.manufacturer_id,
        manufactured_from=scope.manufactured_from,
        manufactured_to=scope.manufactured_to,
        reason=reason.strip(),
        added_by=actor,
        added_at=at,
        signature_digest=digest,
    )
    scope_row.lots.set(lots)
    RecallLot.objects.bulk_create(
        [
            RecallLot(
                recall=recall,
                lot=lot,
                round=round_number,
                status_before=lot.status,
                active=not recall.is_drill,
            )
            for lot in lots
        ]
    )
    if not recall.is_drill:
        _mark_recalled(recall=recall, lots=lots, actor=actor, at=at, digest=digest)
    clinic_ids = _freeze_stock(recall=recall, lots=lots, actor=actor, at=at)
    clinic_ids |= _freeze_exposures(recall=recall, round_number=round_number, lots=lots)
    _write_notifications(recall=recall, round_number=round_number, clinic_ids=clinic_ids, at=at)
    return scope_row


def _mark_recalled(
    *, recall: Recall, lots: list[Lot], actor: Any, at: datetime.datetime, digest: str
) -> None:
    lots_mark_recalled(
        lots=lots,
        actor=actor,
        at=at,
        reason=f"{recall.reference}: {recall.reason}",
        record_digest=digest,
    )


def _freeze_stock(
    *, recall: Recall, lots: list[Lot], actor: Any, at: datetime.datetime
) -> set[int]:
    """Record what each clinic holds and, for a real recall, block its usable units."""
    balances = list(
        StockBalance.objects.select_for_update()
        .filter(lot__in=lots, quantity__gt=0)
        .order_by("clinic_id", "lot_id", "state")
    )
    held: dict[tuple[int, int], int] = {}
    changes: list[Change] = []
    for balance in balances:
        key = (balance.clinic_id, balance.lot_id)
        held[key] = held.get(key, 0) + balance.quantity
        if not recall.is_drill and balance.state in BLOCKABLE_STATES:
            changes.append(
                Change(
                    balance.clinic_id,
                    balance.lot_id,
                    balance.state,
                    -balance.quantity,
                    MovementKind.BLOCK,
                )
            )
            changes.append(
                Change(
                    balance.clinic_id,
                    balance.lot_id,
                    StockState.BLOCKED,
                    balance.quantity,
                    MovementKind.BLOCK,
                )
            )
    RecallStock.objects.bulk_create(
        [
            RecallStock(recall=recall, clinic_id=clinic_id, lot_id=lot_id, quantity_held=quantity)
            for (clinic_id, lot_id), quantity in sorted(held.items())
        ]
    )
    if changes:
        apply_changes(changes, actor=actor, reason=f"blocked by {recall.reference}", at=at)
    return {clinic_id for clinic_id, _ in held}


def _freeze_exposures(*, recall: Recall, round_number: int, lots: list[Lot]) -> set[int]:
    """Copy every treatment line of the lots into the recall and return the clinics that used
    them, in one statement whatever the number of lines (10^5 for a manufacturer-wide recall).
    Each line carries its treatment's time and parties, and the lot's covering index holds them:
    the lines are read from the index alone, not from 10^5 treatments scattered over the tables.

    No ON CONFLICT: a round's lots are in no earlier round of the recall, so none of their lines
    is frozen yet, and the unique constraint would refuse it loudly if one were."""
    exposure = RecallExposure._meta.db_table
    line = TreatmentLine._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH frozen AS (
                INSERT INTO {exposure} (recall_id, round, treatment_line_id, treatment_id,
                                        lot_id, clinic_id, patient_id, practitioner_id,
                                        performed_at, units)
                SELECT %s, %s, l.id, l.treatment_id, l.lot_id, l.clinic_id, l.patient_id,
                       l.practitioner_id, l.performed_at, l.units
                FROM {line} l
                WHERE l.lot_id = ANY(%s)
                RETURNING clinic_id
            )
            SELECT DISTINCT clinic_id FROM frozen
            """,  # noqa: S608 - table names are ours; values are parameters
            [recall.pk, round_number, [lot.pk for lot in lots]],
        )
        return {clinic_id for (clinic_id,) in cursor.fetchall()}


def _write_notifications(
    *, recall: Recall, round_number: int, clinic_ids: set[int], at: datetime.datetime
) -> None:
    rows = [
        Notification(
            recall=recall,
            round=round_number,
            clinic_id=contact.clinic_id,
            channel=Channel.EMAIL,
            recipient=contact.email,
            contact=contact,
            created_at=at,
        )
        for contact in ClinicContact.objects.filter(clinic_id__in=clinic_ids, active=True).order_by(
            "clinic_id", "email"
        )
    ]
    endpoints = WebhookEndpoint.objects.filter(active=True).order_by("pk")
    for endpoint in endpoints:
        if endpoint.clinic_id is None or endpoint.clinic_id in clinic_ids:
            rows.append(
                Notification(
                    recall=recall,
                    round=round_number,
                    clinic_id=endpoint.clinic_id,
                    channel=Channel.WEBHOOK,
                    recipient=f"endpoint:{endpoint.pk}",
                    endpoint=endpoint,
                    created_at=at,
                )
            )
    Notification.objects.bulk_create(rows, ignore_conflicts=True)


def _queue_delivery(recall_id: int, round_number: int) -> None:
    from recalls.tasks import recall_notices_send

    recall_notices_send.delay_on_commit(recall_id, round_number)


def _reopen_full_acknowledgement(recall: Recall) -> None:
    """A widening that reaches a clinic which has not acknowledged yet means the recall is no
    longer fully acknowledged: clear the moment, so the last acknowledgement sets it again."""
    from recalls.models import Acknowledgement
    from recalls.selectors import recall_clinic_ids

    if recall.fully_acknowledged_at is None:
        return
    acknowledged = Acknowledgement.objects.filter(recall=recall).values("clinic_id")
    if recall_clinic_ids(recall).exclude(pk__in=acknowledged).exists():
        Recall.objects.filter(pk=recall.pk).update(fully_acknowledged_at=None)
        recall.fully_acknowledged_at = None
