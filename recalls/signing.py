"""What the signatures on recalls sign (found by `signatures.apps`).

The subject of each is the recall; its state is what the quality manager set at opening and
what nothing changes afterwards: reference, class, depth, reason, hazard, instructions, drill
flag, who opened it and when, and when its lots were withdrawn if that was earlier.
- Opening (signed on the recall): round 1 of the scope (its criteria, its reason, the lots it
  reached with their status before the recall, and the digest written then).
- Widening (signed on the `RecallScope` row of its round): that round, alike.
- Closing (signed on the recall): the closing fields (who, when, reason, override) and the lots
  of every round.
Left out, because they legitimately change while the recall runs: its status (for the opening
and widening), the notice and acknowledgement times, whether a lot is still held by the open
recall (`RecallLot.active`), exposures' clinics' stock and every notice.
"""

from __future__ import annotations

import datetime
from typing import Any

from common.signatures import Meaning
from signatures.registry import Built, ModelLookup, SignedKind, one, plain, register, table


def recall_state(recall_id: int, get_model: ModelLookup) -> dict[str, Any]:
    recall = one(
        table(get_model, "recalls", "Recall")
        .filter(pk=recall_id)
        .values(
            "reference",
            "recall_class",
            "depth",
            "reason",
            "hazard",
            "instructions",
            "is_drill",
            "opened_by_id",
            "opened_at",
            "withdrawn_at",
        ),
        f"recall {recall_id}",
    )
    # The stated withdrawal is signed where it differs from the opening (a recall entered after
    # the fact); a recall withdrawn when opened signs what recalls signed before the field was
    # added, so their signatures still verify.
    if recall["withdrawn_at"] in (None, recall["opened_at"]):
        del recall["withdrawn_at"]
    return {"id": recall_id, **plain(recall)}


def _lots(recall_id: int, get_model: ModelLookup, **rounds: Any) -> dict[str, Any]:
    return {
        str(row.pop("lot_id")): plain(row)
        for row in table(get_model, "recalls", "RecallLot")
        .filter(recall_id=recall_id, **rounds)
        .values("lot_id", "lot__lot_number", "round", "status_before")
    }


def _round(scope: dict[str, Any], get_model: ModelLookup) -> dict[str, Any]:
    recall_id = scope.pop("recall_id")
    return {**plain(scope), "lots": _lots(recall_id, get_model, round=scope["round"])}


_SCOPE_FIELDS = (
    "id",
    "recall_id",
    "round",
    "donor_id",
    "product_id",
    "manufacturer_id",
    "manufactured_from",
    "manufactured_to",
    "reason",
    "added_by_id",
    "added_at",
    "signature_digest",
)


def _opening(recall_id: int, signed_at: datetime.datetime, get_model: ModelLookup) -> Built:
    state = recall_state(recall_id, get_model)
    digest = one(
        table(get_model, "recalls", "Recall")
        .filter(pk=recall_id)
        .values("opened_signature_digest"),
        f"recall {recall_id}",
    )
    scope = one(
        table(get_model, "recalls", "RecallScope")
        .filter(recall_id=recall_id, round=1)
        .values(*_SCOPE_FIELDS),
        f"round 1 of recall {recall_id}",
    )
    return Built(
        subject=f"recalls.recall:{recall_id}",
        state=state,
        act={**digest, "scope": _round(scope, get_model)},
    )


def _widening(scope_id: int, signed_at: datetime.datetime, get_model: ModelLookup) -> Built:
    scope = one(
        table(get_model, "recalls", "RecallScope").filter(pk=scope_id).values(*_SCOPE_FIELDS),
        f"recall scope {scope_id}",
    )
    recall_id = scope["recall_id"]
    return Built(
        subject=f"recalls.recall:{recall_id}",
        state=recall_state(recall_id, get_model),
        act={"scope": _round(scope, get_model)},
    )


def _closing(recall_id: int, signed_at: datetime.datetime, get_model: ModelLookup) -> Built:
    closing = one(
        table(get_model, "recalls", "Recall")
        .filter(pk=recall_id)
        .values("status", "closed_by_id", "closed_at", "close_reason", "close_override"),
        f"recall {recall_id}",
    )
    return Built(
        subject=f"recalls.recall:{recall_id}",
        state=recall_state(recall_id, get_model),
        act={**plain(closing), "lots": _lots(recall_id, get_model)},
    )


_RESPONSIBILITY = frozenset({Meaning.RESPONSIBILITY})

RECALL_OPENING = register(
    SignedKind(
        code="recall_open",
        label="recall opening",
        record_model="recalls.recall",
        meanings=_RESPONSIBILITY,
        build=_opening,
        acts=lambda get_model: table(get_model, "recalls", "Recall").all(),
        act_time="opened_at",
    )
)
RECALL_WIDENING = register(
    SignedKind(
        code="recall_widen",
        label="recall widening",
        record_model="recalls.recallscope",
        meanings=_RESPONSIBILITY,
        build=_widening,
        acts=lambda get_model: table(get_model, "recalls", "RecallScope").filter(round__gt=1),
        act_time="added_at",
    )
)
RECALL_CLOSING = register(
    SignedKind(
        code="recall_close",
        label="recall closing",
        record_model="recalls.recall",
        meanings=_RESPONSIBILITY,
        build=_closing,
        acts=lambda get_model: table(get_model, "recalls", "Recall").filter(
            closed_at__isnull=False
        ),
        act_time="closed_at",
    )
)
