"""Signatures on recall openings, widenings and closings."""

from __future__ import annotations

import pytest

from common.errors import DomainError
from recalls.models import Recall, RecallLot, RecallScope
from recalls.services import RecallScopeRequest, recall_close, recall_widen
from signatures.models import Signature
from signatures.services import signature_verify
from tests.factories import PASSWORD, released_lot
from tests.recalls.scenario import build_world, mark_sent, open_recall
from tests.signatures.helpers import tamper

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def world(quality_manager):
    return build_world(quality_manager)


def signature_of(kind: str, record) -> Signature:
    return Signature.objects.get(kind=kind, record_id=record.pk)


def paths(verification) -> list[str]:
    return [difference.path for difference in verification.differences]


def widen(world, recall, lot, **overrides):
    arguments = {
        "actor": world.quality_manager,
        "password": PASSWORD,
        "recall": recall,
        "scope": RecallScopeRequest(lot_ids=[lot.pk]),
        "reason": "Same production run",
    }
    arguments.update(overrides)
    return recall_widen(**arguments)


def close(world, recall, **overrides):
    arguments = {
        "recall": recall,
        "actor": world.quality_manager,
        "password": PASSWORD,
        "reason": "Closed after review of the open items",
        "override": True,
    }
    arguments.update(overrides)
    return recall_close(**arguments)


def test_opening_signs_class_depth_reason_hazard_instructions_scope_and_lots(world):
    recall = open_recall(world)
    signature = signature_of("recall_open", recall)
    assert signature.record_label == f"recalls.recall:{recall.pk}"
    assert signature.subject == f"recalls.recall:{recall.pk}"
    assert signature.printed_name == "Quinn Manager"
    assert signature.meaning == "responsibility"
    assert signature.signed_at == recall.opened_at
    state, act = signature.content["state"], signature.content["act"]
    assert (state["recall_class"], state["depth"]) == ("I", "patient")
    assert state["hazard"] == "Fever, sepsis"
    assert state["instructions"] == "Quarantine remaining vials."
    assert act["opened_signature_digest"] == recall.opened_signature_digest
    assert act["scope"]["lots"] == {
        str(world.lot.pk): {
            "lot__lot_number": world.lot.lot_number,
            "round": 1,
            "status_before": "released",
        }
    }
    assert signature_verify(signature).status == "valid"


def test_what_a_running_recall_changes_leaves_its_signatures_valid(world):
    recall = open_recall(world)
    mark_sent(recall)
    widen(world, recall, released_lot(created_by=world.quality_manager))
    close(world, recall)
    for signature in Signature.objects.filter(subject=f"recalls.recall:{recall.pk}"):
        assert signature_verify(signature).status == "valid", signature.kind
    assert sorted(Signature.objects.values_list("kind", flat=True)) == [
        "recall_close",
        "recall_open",
        "recall_widen",
    ]


@pytest.mark.parametrize(
    ("sql", "path"),
    [
        ("UPDATE recalls_recall SET hazard = 'none' WHERE id = %(recall)s", "state.hazard"),
        (
            "UPDATE recalls_recall SET recall_class = 'III' WHERE id = %(recall)s",
            "state.recall_class",
        ),
        ("UPDATE recalls_recall SET depth = 'clinic' WHERE id = %(recall)s", "state.depth"),
        (
            "UPDATE recalls_recall SET instructions = '' WHERE id = %(recall)s",
            "state.instructions",
        ),
        (
            "UPDATE recalls_recalllot SET status_before = 'quarantined' "
            "WHERE recall_id = %(recall)s",
            "act.scope.lots.{lot}.status_before",
        ),
        (
            "UPDATE recalls_recallscope SET reason = 'other' WHERE recall_id = %(recall)s",
            "act.scope.reason",
        ),
    ],
)
def test_altering_what_the_opening_signed_fails_its_verification(world, sql, path):
    recall = open_recall(world)
    signature = signature_of("recall_open", recall)
    tamper(sql.replace("%(recall)s", "%s"), [recall.pk])
    verification = signature_verify(signature)
    assert verification.status == "invalid"
    assert paths(verification) == [path.format(lot=world.lot.pk)]


def test_removing_a_lot_from_a_recall_fails_its_opening(world):
    recall = open_recall(world)
    signature = signature_of("recall_open", recall)
    tamper("DELETE FROM recalls_recalllot WHERE recall_id = %s", [recall.pk])
    verification = signature_verify(signature)
    assert paths(verification) == [f"act.scope.lots.{world.lot.pk}"]


def test_widening_is_signed_on_its_round_and_bound_to_it(world):
    recall = open_recall(world)
    other = released_lot(created_by=world.quality_manager)
    widen(world, recall, other)
    scope = RecallScope.objects.get(recall=recall, round=2)
    signature = signature_of("recall_widen", scope)
    assert signature.record_label == f"recalls.recallscope:{scope.pk}"
    assert signature.subject == f"recalls.recall:{recall.pk}"
    assert signature.reason == "Same production run"
    assert list(signature.content["act"]["scope"]["lots"]) == [str(other.pk)]
    assert signature_verify(signature).status == "valid"

    tamper(
        "UPDATE recalls_recalllot SET round = 1 WHERE recall_id = %s AND lot_id = %s",
        [recall.pk, other.pk],
    )
    verification = signature_verify(signature)
    assert verification.status == "invalid"
    assert f"act.scope.lots.{other.pk}" in paths(verification)


def test_closing_is_signed_and_bound_to_its_reason_and_lots(world):
    recall = open_recall(world)
    close(world, recall)
    recall.refresh_from_db()
    signature = signature_of("recall_close", recall)
    act = signature.content["act"]
    assert act["status"] == "closed"
    assert act["close_override"] is True
    assert act["close_reason"] == "Closed after review of the open items"
    assert signature.signed_at == recall.closed_at
    assert signature_verify(signature).status == "valid"

    tamper("UPDATE recalls_recall SET close_reason = 'x' WHERE id = %s", [recall.pk])
    assert paths(signature_verify(signature)) == ["act.close_reason"]


def test_an_opening_signature_moved_to_another_recall_fails(world):
    first = open_recall(world)
    second = open_recall(world, is_drill=True)
    signature = signature_of("recall_open", first)
    tamper(
        "UPDATE signatures_signature SET record_id = %s WHERE id = %s", [second.pk, signature.pk]
    )
    verification = signature_verify(Signature.objects.get(pk=signature.pk))
    assert verification.status == "invalid"
    assert {"signature", "record", "subject", "state.reference"} <= set(paths(verification))


@pytest.mark.parametrize("act", ["open", "widen", "close"])
def test_a_wrong_password_signs_no_recall_act_and_changes_nothing(world, act):
    recall = open_recall(world) if act != "open" else None
    before = (
        Signature.objects.count(),
        Recall.objects.count(),
        RecallLot.objects.count(),
        RecallScope.objects.count(),
    )
    with pytest.raises(DomainError) as caught:
        if act == "open":
            from recalls.services import recall_open

            recall_open(
                actor=world.quality_manager,
                password="wrong",
                recall_class="I",
                depth="clinic",
                reason="r",
                hazard="h",
                scope=RecallScopeRequest(lot_ids=[world.lot.pk]),
            )
        elif act == "widen":
            widen(world, recall, released_lot(created_by=world.quality_manager), password="wrong")
        else:
            close(world, recall, password="wrong")
    assert "signature_password_invalid" in caught.value.codes
    after = (
        Signature.objects.count(),
        Recall.objects.count(),
        RecallLot.objects.count(),
        RecallScope.objects.count(),
    )
    assert after == before
    if recall is not None:
        recall.refresh_from_db()
        assert recall.status == "open"
