"""The migrations that write Signature rows for acts signed before the record existed: only where
the legacy digest proves the signed content unchanged."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps

from lots.services import lot_hold, lot_release
from recalls.services import RecallScopeRequest, recall_widen
from signatures.models import Signature
from signatures.services import signature_verify
from tests.factories import PASSWORD, releasable_lot, released_lot
from tests.recalls.scenario import build_world, open_recall
from tests.signatures.helpers import tamper

pytestmark = [pytest.mark.django_db]

lots_backfill = importlib.import_module("lots.migrations.0007_signatures_backfill").backfill
recalls_backfill = importlib.import_module("recalls.migrations.0006_signatures_backfill").backfill


def forget_signatures() -> None:
    """Back to the state before the Signature record: the legacy digests only."""
    tamper("DELETE FROM signatures_signature", [])


def test_lot_decisions_whose_legacy_digest_still_matches_get_a_valid_signature(quality_manager):
    kept = releasable_lot(quality_manager=quality_manager)
    changed = releasable_lot(quality_manager=quality_manager)
    for lot in (kept, changed):
        lot_release(
            actor=quality_manager, lot_id=lot.pk, password=PASSWORD, meaning="approval", reason="r"
        )
    lot_hold(actor=quality_manager, lot_id=kept.pk, password=PASSWORD, meaning="review", reason="h")
    forget_signatures()
    tamper("UPDATE lots_lot SET quantity = 7 WHERE id = %s", [changed.pk])

    lots_backfill(apps, None)

    backfilled = list(Signature.objects.order_by("signed_at"))
    assert [(s.kind, s.subject) for s in backfilled] == [
        ("lot_release", f"lots.lot:{kept.pk}"),
        ("lot_hold", f"lots.lot:{kept.pk}"),
    ]
    for signature in backfilled:
        assert signature.backfilled
        assert signature.printed_name == "Quinn Manager"
        assert signature_verify(signature).status == "valid"


def test_recall_openings_and_widenings_whose_digest_matches_get_a_valid_signature(
    quality_manager,
):
    world = build_world(quality_manager)
    recall = open_recall(world)
    recall_widen(
        actor=quality_manager,
        password=PASSWORD,
        recall=recall,
        scope=RecallScopeRequest(lot_ids=[released_lot(created_by=quality_manager).pk]),
        reason="Same run",
    )
    altered = open_recall(world, is_drill=True)
    forget_signatures()
    tamper("UPDATE recalls_recall SET hazard = 'other' WHERE id = %s", [altered.pk])

    recalls_backfill(apps, None)

    kinds = sorted(Signature.objects.values_list("kind", "subject"))
    assert kinds == [
        ("recall_open", f"recalls.recall:{recall.pk}"),
        ("recall_widen", f"recalls.recall:{recall.pk}"),
    ]
    for signature in Signature.objects.all():
        assert signature.backfilled
        assert signature_verify(signature).status == "valid"
