"""A clinic's calendar day is the day on its own clock (Clinic.time_zone), not the day in UTC.

The treatment services take the instant of the treatment; the tests pass instants either side of
a clinic's midnight. 22:30 UTC on 31 March 2026 is 00:30 on 1 April in Berlin (CEST, UTC+2) and
still 31 March in UTC; 03:00 UTC on 1 April is 22:00 on 31 March in Chicago (CDT, UTC-5).

Where a rule needs "today" and the service reads the clock itself (the adverse-event onset), two
clinics at the far ends of the clock are compared: Kiritimati (UTC+14) is always a day or two
ahead of Pago Pago (UTC-11), whatever the time the test runs.
"""

from __future__ import annotations

import datetime
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from common.errors import DomainError
from lots.models import Lot
from providers.models import Role
from stock.models import StockBalance, StockState
from tests.api_helpers import API, error_codes, error_fields
from tests.factories import (
    ConsentTextFactory,
    MembershipFactory,
    ProductFactory,
    clinic_ready,
    practitioner_at,
    receive,
    released_lot,
    treat,
)
from treatments.models import AdverseEvent, Treatment
from treatments.services import ConsentRequest, adverse_event_record

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("reference_data")]

BERLIN_AFTER_MIDNIGHT = datetime.datetime(2026, 3, 31, 22, 30, tzinfo=datetime.UTC)
CHICAGO_BEFORE_MIDNIGHT = datetime.datetime(2026, 4, 1, 3, 0, tzinfo=datetime.UTC)
MARCH_31 = datetime.date(2026, 3, 31)
APRIL_1 = datetime.date(2026, 4, 1)
AHEAD, BEHIND = "Pacific/Kiritimati", "Pacific/Pago_Pago"


def refused(call) -> DomainError:
    with pytest.raises(DomainError) as caught:
        call()
    return caught.value


def accepted_units(ready, lot: Lot) -> int:
    balance = StockBalance.objects.filter(
        clinic=ready.clinic, lot=lot, state=StockState.ACCEPTED
    ).first()
    return balance.quantity if balance else 0


def clinic_with_stock(time_zone: str, lot: Lot, *, consent_required: bool = False):
    ready = clinic_ready(jurisdiction="DE", time_zone=time_zone, consent_required=consent_required)
    receive(ready, lot, 5)
    return ready


def today_in(zone: str) -> datetime.date:
    return datetime.datetime.now(ZoneInfo(zone)).date()


# ---------------------------------------------------------------------------------------------
# Lot expiry on the day of treatment


def test_a_lot_expiring_on_31_march_is_expired_at_00_30_on_1_april_in_berlin():
    lot = released_lot(manufactured_on=datetime.date(2025, 9, 1), expires_on=MARCH_31)
    berlin = clinic_with_stock("Europe/Berlin", lot)

    error = refused(lambda: treat(berlin, lot, performed_at=BERLIN_AFTER_MIDNIGHT))

    assert error.codes == ["lot_expired"]
    assert error.problems[0].field == "lines[0].lot"
    assert not Treatment.objects.filter(clinic=berlin.clinic).exists()
    assert accepted_units(berlin, lot) == 5


def test_the_same_instant_is_still_31_march_at_a_clinic_on_utc():
    lot = released_lot(manufactured_on=datetime.date(2025, 9, 1), expires_on=MARCH_31)
    utc = clinic_with_stock("UTC", lot)

    treatment = treat(utc, lot, performed_at=BERLIN_AFTER_MIDNIGHT)

    assert treatment.performed_at == BERLIN_AFTER_MIDNIGHT
    assert accepted_units(utc, lot) == 4


def test_a_chicago_clinic_may_use_the_lot_at_22_00_local_on_its_expiry_day():
    lot = released_lot(manufactured_on=datetime.date(2025, 9, 1), expires_on=MARCH_31)
    chicago = clinic_with_stock("America/Chicago", lot)
    utc = clinic_with_stock("UTC", lot)

    # 03:00 UTC on 1 April: the lot expired in UTC, but it is 31 March in Chicago.
    assert refused(lambda: treat(utc, lot, performed_at=CHICAGO_BEFORE_MIDNIGHT)).codes == [
        "lot_expired"
    ]
    treat(chicago, lot, performed_at=CHICAGO_BEFORE_MIDNIGHT)
    assert accepted_units(chicago, lot) == 4


# ---------------------------------------------------------------------------------------------
# The other day-based rules of the treatment: lot made, licence valid


def test_a_lot_made_on_1_april_may_be_used_at_00_30_on_1_april_in_berlin():
    lot = released_lot(manufactured_on=APRIL_1, expires_on=datetime.date(2027, 4, 1))
    berlin = clinic_with_stock("Europe/Berlin", lot)
    utc = clinic_with_stock("UTC", lot)

    error = refused(lambda: treat(utc, lot, performed_at=BERLIN_AFTER_MIDNIGHT))
    assert error.codes == ["treatment_before_lot_made"]

    treat(berlin, lot, performed_at=BERLIN_AFTER_MIDNIGHT)
    assert accepted_units(berlin, lot) == 4


@pytest.mark.parametrize(("time_zone", "licensed"), [("UTC", True), ("Europe/Berlin", False)])
def test_a_licence_valid_until_31_march_is_judged_on_the_clinic_day(time_zone, licensed):
    lot = released_lot(manufactured_on=datetime.date(2025, 9, 1))
    ready = clinic_with_stock(time_zone, lot)
    practitioner = practitioner_at(
        ready.clinic, valid_from=datetime.date(2025, 1, 1), valid_until=MARCH_31
    )

    def record():
        return treat(ready, lot, performed_at=BERLIN_AFTER_MIDNIGHT, practitioner=practitioner)

    if licensed:
        assert record().practitioner == practitioner
    else:
        error = refused(record)
        assert error.codes == ["practitioner_not_licensed"]
        assert "2026-04-01" in error.problems[0].message


# ---------------------------------------------------------------------------------------------
# Rules between two instants need no calendar: consent before treatment, nothing ahead of time


@pytest.mark.parametrize("time_zone", ["UTC", "Europe/Berlin", "America/Chicago"])
def test_consent_must_precede_the_treatment_instant_whatever_the_clinic_day(time_zone):
    lot = released_lot(manufactured_on=datetime.date(2025, 9, 1))
    ready = clinic_with_stock(time_zone, lot, consent_required=True)
    consent_text = ConsentTextFactory()

    def consented_at(taken_at: datetime.datetime):
        consent = ConsentRequest(
            consent_text=consent_text, taken_by=ready.clinician, taken_at=taken_at
        )
        return lambda: treat(ready, lot, performed_at=BERLIN_AFTER_MIDNIGHT, consent=consent)

    # Ten minutes after the treatment: on the same day in UTC, still refused.
    after = BERLIN_AFTER_MIDNIGHT + datetime.timedelta(minutes=10)
    assert refused(consented_at(after)).codes == ["consent_after_treatment"]
    # Forty minutes before: the previous day in Berlin, still before the treatment.
    before = BERLIN_AFTER_MIDNIGHT - datetime.timedelta(minutes=40)
    assert consented_at(before)().consent_taken_at == before


@pytest.mark.parametrize("time_zone", ["UTC", AHEAD, BEHIND])
def test_a_treatment_ahead_of_time_is_refused_whatever_the_clinic_day(time_zone):
    lot = released_lot()
    ready = clinic_with_stock(time_zone, lot)

    in_an_hour = timezone.now() + datetime.timedelta(hours=1)

    assert refused(lambda: treat(ready, lot, performed_at=in_an_hour)).codes == [
        "treatment_in_future"
    ]


# ---------------------------------------------------------------------------------------------
# Adverse-event onset, a day on the treating clinic's calendar


@pytest.mark.parametrize(
    ("time_zone", "day_of_treatment"), [("UTC", MARCH_31), ("Europe/Berlin", APRIL_1)]
)
def test_an_onset_before_the_treatment_day_at_the_clinic_is_refused(time_zone, day_of_treatment):
    lot = released_lot(manufactured_on=datetime.date(2025, 9, 1))
    ready = clinic_with_stock(time_zone, lot)
    treatment = treat(ready, lot, performed_at=BERLIN_AFTER_MIDNIGHT)

    def report(onset_on: datetime.date):
        return lambda: adverse_event_record(
            actor=ready.clinician, treatment=treatment, onset_on=onset_on, description="Redness"
        )

    the_day_before = day_of_treatment - datetime.timedelta(days=1)
    error = refused(report(the_day_before))
    assert error.codes == ["adverse_event_before_treatment"]
    assert error.problems[0].field == "onset_on"
    assert not AdverseEvent.objects.exists()

    assert report(day_of_treatment)().onset_on == day_of_treatment


def test_an_onset_on_today_at_berlin_is_not_before_a_treatment_at_00_30_local():
    lot = released_lot(manufactured_on=datetime.date(2025, 9, 1))
    berlin = clinic_with_stock("Europe/Berlin", lot)
    treatment = treat(berlin, lot, performed_at=BERLIN_AFTER_MIDNIGHT)

    # 31 March is the treatment's day in UTC, but the day before it in Berlin.
    error = refused(
        lambda: adverse_event_record(
            actor=berlin.clinician, treatment=treatment, onset_on=MARCH_31, description="Redness"
        )
    )
    assert error.codes == ["adverse_event_before_treatment"]


def test_an_onset_on_the_clinic_today_is_accepted_where_it_is_today_and_in_the_future_elsewhere():
    lot = released_lot()
    ahead = clinic_with_stock(AHEAD, lot)
    behind = clinic_with_stock(BEHIND, lot)
    treated_ahead, treated_behind = treat(ahead, lot), treat(behind, lot)
    onset_on = today_in(AHEAD)  # a day or two after today in Pago Pago

    error = refused(
        lambda: adverse_event_record(
            actor=behind.clinician,
            treatment=treated_behind,
            onset_on=onset_on,
            description="Redness",
        )
    )
    assert error.codes == ["adverse_event_onset_in_future"]
    assert not AdverseEvent.objects.exists()

    event = adverse_event_record(
        actor=ahead.clinician, treatment=treated_ahead, onset_on=onset_on, description="Redness"
    )
    assert event.onset_on == onset_on


# ---------------------------------------------------------------------------------------------
# Scan warnings: "expired today" at the clinic named in the request

GTIN = "09506000134352"


def scanned_lot(expires_on: datetime.date) -> Lot:
    return released_lot(
        product=ProductFactory(gtin=GTIN),
        lot_number="TZ-LOT-1",
        manufactured_on=expires_on - datetime.timedelta(days=300),
        expires_on=expires_on,
    )


def resolve(user, **body):
    client = APIClient()
    client.force_authenticate(user)
    return client.post(
        f"{API}/scans/resolve/", {"scan": f"(01){GTIN}(10)TZ-LOT-1", **body}, format="json"
    )


def test_scan_warnings_judge_expiry_on_the_named_clinic_day(quality_manager):
    lot = scanned_lot(expires_on=today_in(BEHIND))
    ahead = clinic_ready(time_zone=AHEAD).clinic
    behind = clinic_ready(time_zone=BEHIND).clinic

    at_behind = resolve(quality_manager, clinic=behind.pk)
    at_ahead = resolve(quality_manager, clinic=ahead.pk)

    assert at_behind.status_code == 200, at_behind.content
    assert at_behind.json()["warnings"] == []
    assert at_behind.json()["usable"] is True
    assert [w["code"] for w in at_ahead.json()["warnings"]] == ["lot_expired"]
    assert at_ahead.json()["usable"] is False
    assert at_ahead.json()["lot"]["id"] == lot.pk


@pytest.mark.parametrize(("days", "expired"), [(0, False), (-1, True)])
def test_scan_without_a_clinic_judges_expiry_on_the_day_in_utc(quality_manager, days, expired):
    scanned_lot(expires_on=timezone.localdate() + datetime.timedelta(days=days))

    body = resolve(quality_manager).json()

    assert body["usable"] is not expired
    assert [w["code"] for w in body["warnings"]] == (["lot_expired"] if expired else [])


def test_scan_naming_a_clinic_the_caller_does_not_belong_to_is_refused():
    scanned_lot(expires_on=datetime.date(2027, 6, 30))
    own = clinic_ready(time_zone="Europe/Berlin")
    elsewhere = clinic_ready(time_zone=AHEAD).clinic
    clinician = MembershipFactory(role=Role.CLINICIAN, clinic=own.clinic).user

    response = resolve(clinician, clinic=elsewhere.pk)

    assert response.status_code == 400
    assert error_codes(response) == ["does_not_exist"]
    assert error_fields(response) == ["clinic"]
    assert resolve(clinician, clinic=own.clinic.pk).status_code == 200


def test_a_scan_by_staff_of_one_clinic_is_judged_on_that_clinics_day():
    scanned_lot(expires_on=today_in(BEHIND))
    ahead = clinic_ready(time_zone=AHEAD)
    behind = clinic_ready(time_zone=BEHIND)

    at_ahead = resolve(ahead.clinician).json()
    at_behind = resolve(behind.clinician).json()

    assert [w["code"] for w in at_ahead["warnings"]] == ["lot_expired"]
    assert at_behind["warnings"] == [] and at_behind["usable"] is True
