import pytest

from lots.models import LotStatus
from lots.services import lot_release
from tests.factories import PASSWORD, releasable_lot


@pytest.mark.django_db
def test_lot_release_releases_a_complete_lot(quality_manager):
    lot = releasable_lot(quality_manager=quality_manager)
    change = lot_release(
        actor=quality_manager, lot_id=lot.pk, password=PASSWORD, meaning="approval", reason="ok"
    )
    lot.refresh_from_db()
    assert lot.status == LotStatus.RELEASED
    assert change.signer_name == "Quinn Manager"
    assert len(change.record_digest) == 64
