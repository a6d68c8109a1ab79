"""A receipt's date is the receiving clinic's calendar day (Clinic.time_zone): a lot made on
1 April can arrive at 00:30 on 1 April in Berlin (22:30 UTC on 31 March), and a lot made on 1 April
cannot have arrived at 22:00 on 31 March in Chicago (03:00 UTC on 1 April)."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest

from common.errors import DomainError
from stock.models import Receipt, StockBalance, StockMovement
from stock.services import stock_receive
from tests.factories import clinic_ready, released_lot

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("reference_data")]

BERLIN_AFTER_MIDNIGHT = datetime.datetime(2026, 3, 31, 22, 30, tzinfo=datetime.UTC)
CHICAGO_BEFORE_MIDNIGHT = datetime.datetime(2026, 4, 1, 3, 0, tzinfo=datetime.UTC)
APRIL_1 = datetime.date(2026, 4, 1)


def receive_at(ready, lot, received_at: datetime.datetime) -> Receipt:
    return stock_receive(
        actor=ready.administrator,
        clinic=ready.clinic,
        lot=lot,
        quantity=10,
        decision="accept",
        package_intact=True,
        label_readable=True,
        transport_min_celsius=Decimal("-75.0"),
        transport_max_celsius=Decimal("-65.0"),
        storage_location="Freezer 1",
        received_at=received_at,
    )


def refused(call) -> DomainError:
    with pytest.raises(DomainError) as caught:
        call()
    return caught.value


def assert_nothing_received(ready) -> None:
    assert not Receipt.objects.filter(clinic=ready.clinic).exists()
    assert not StockMovement.objects.filter(clinic=ready.clinic).exists()
    assert not StockBalance.objects.filter(clinic=ready.clinic).exists()


@pytest.fixture
def lot_made_on_1_april():
    return released_lot(manufactured_on=APRIL_1, expires_on=datetime.date(2027, 4, 1))


def test_a_berlin_clinic_receives_at_00_30_local_a_lot_made_that_day(lot_made_on_1_april):
    berlin = clinic_ready(jurisdiction="DE", time_zone="Europe/Berlin")

    receipt = receive_at(berlin, lot_made_on_1_april, BERLIN_AFTER_MIDNIGHT)

    assert receipt.received_at == BERLIN_AFTER_MIDNIGHT
    assert StockBalance.objects.get(clinic=berlin.clinic).quantity == 10


def test_a_utc_clinic_at_the_same_instant_is_refused_and_nothing_changes(lot_made_on_1_april):
    utc = clinic_ready(time_zone="UTC")

    error = refused(lambda: receive_at(utc, lot_made_on_1_april, BERLIN_AFTER_MIDNIGHT))

    assert error.codes == ["receipt_before_lot_made"]
    assert error.problems[0].field == "received_at"
    assert error.status == 400
    assert_nothing_received(utc)


def test_a_chicago_clinic_is_refused_a_receipt_dated_the_evening_before_manufacture(
    lot_made_on_1_april,
):
    chicago = clinic_ready(time_zone="America/Chicago")
    utc = clinic_ready(time_zone="UTC")

    # 03:00 UTC on 1 April is 22:00 on 31 March in Chicago: before the lot was made there.
    error = refused(lambda: receive_at(chicago, lot_made_on_1_april, CHICAGO_BEFORE_MIDNIGHT))
    assert error.codes == ["receipt_before_lot_made"]
    assert_nothing_received(chicago)

    receive_at(utc, lot_made_on_1_april, CHICAGO_BEFORE_MIDNIGHT)
    assert StockBalance.objects.get(clinic=utc.clinic).quantity == 10
