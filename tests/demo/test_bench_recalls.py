"""The recalls benchmark section at a tiny size: a smoke run that keeps it from rotting. Its
figures are printed by `manage.py benchmark_scale`, never asserted here."""

from __future__ import annotations

import pytest

from demo.bench import recalls
from recalls.models import Notification, NotificationStatus, RecallExposure


@pytest.mark.django_db(transaction=True)
def test_recall_section_opens_committed_recalls_and_delivers_every_notice_once():
    rows = recalls.measure(exposures=300, notices=20)

    opening, delivery = rows
    assert opening.unit == "s"
    assert opening.floor is not None and opening.ratio is not None
    assert opening.statements is not None and opening.statements > 0
    assert delivery.unit == "notices/s"
    assert delivery.higher_is_better
    assert delivery.floor is not None and delivery.ratio is not None
    assert "0 lost, 0 doubled" in delivery.note
    # The timed openings were committed: one warm-up and the repetitions, each over 300 lines.
    assert RecallExposure.objects.filter(treatment__patient__reference__startswith="BR-").exclude(
        clinic__name__contains="delivery"
    ).count() == 300 * (1 + recalls.REPETITIONS)
    # Every delivery round's notices went out, the untimed first one too: 20 per round.
    delivered = Notification.objects.filter(
        clinic__name__contains="delivery", status=NotificationStatus.SENT
    )
    assert delivered.count() == 20 * (1 + recalls.DELIVERY_REPETITIONS)
