"""The home page of each role: what it has to act on today, and nothing it may not see."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from lots.models import LotStatus
from pages.home import expiry_bands
from providers.models import Role
from tests.factories import (
    LotFactory,
    MembershipFactory,
    PatientFactory,
    clinic_ready,
    receive,
    released_lot,
    store_certificate,
    treat,
)
from tests.pages.conftest import client_for
from tests.recalls.conftest import affected_clinic, open_recall, recalled_lot

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("reference_data")]


def home(user) -> str:
    response = client_for(user).get("/")
    assert response.status_code == 200
    return response.content.decode()


def expiring_in(days: int):
    return released_lot(expires_on=timezone.localdate() + datetime.timedelta(days=days))


def test_clinic_staff_see_what_their_clinic_owes_in_an_open_recall(quality_manager):
    lot = recalled_lot()
    mine, theirs = affected_clinic(lot), affected_clinic(lot)
    recall = open_recall(quality_manager, lot, depth="patient")

    page = home(mine.ready.clinician)

    assert recall.reference in page
    assert "Acknowledge the recall" in page
    assert "Contact the patients who received it" in page
    assert "Return or destroy the units held, and record it" in page
    assert "(0 / 1)" in page  # one clinic, one patient: this clinic's, not the network's 2
    assert theirs.patient_name not in page and mine.patient_name not in page


def test_clinic_staff_see_usable_stock_by_the_window_it_expires_in():
    ready = clinic_ready()
    soon, later, last, beyond = (expiring_in(days) for days in (10, 45, 80, 200))
    for lot in (soon, later, last, beyond):
        receive(ready, lot, 3)

    bands = dict(expiry_bands(ready.clinician))

    assert [row.lot for row in bands[30]] == [soon]
    assert [row.lot for row in bands[60]] == [later]
    assert [row.lot for row in bands[90]] == [last]
    page = home(ready.clinician)
    assert soon.lot_number in page and beyond.lot_number not in page


def test_stock_that_must_not_be_used_is_never_shown_as_usable(quality_manager):
    ready = clinic_ready()
    on_hold = released_lot()
    receive(ready, on_hold, 4)
    on_hold.status = LotStatus.ON_HOLD
    on_hold.save(update_fields=["status"])

    page = home(ready.clinician)

    section = page.split("Stock that must not be used")[1].split("</section>")[0]
    assert on_hold.lot_number in section
    assert "On hold" in section
    assert "usable" not in section.lower().replace("must not be used", "")


def test_clinic_staff_see_only_their_own_clinics_treatments():
    mine, theirs = clinic_ready(), clinic_ready()
    lot = released_lot()
    for ready in (mine, theirs):
        receive(ready, lot, 2)
        treat(ready, lot, 1)

    page = home(mine.clinician)

    assert mine.patient.reference in page
    assert theirs.patient.reference not in page


def test_a_quality_manager_sees_every_unmet_requirement_of_a_lot_awaiting_release(
    quality_manager,
):
    waiting = LotFactory(status=LotStatus.QUARANTINED)

    page = home(quality_manager)

    assert "Lots awaiting release" in page
    assert waiting.lot_number in page
    assert "requirements unmet" in page
    assert "Open a recall" in page


def test_an_expired_manufacturer_certificate_is_raised(quality_manager):
    lot = LotFactory(status=LotStatus.QUARANTINED)
    expired = store_certificate(
        manufacturer=lot.manufacturer,
        uploaded_by=quality_manager,
        number="GMP-OLD-1",
        kind="gmp",
        valid_from=timezone.localdate() - datetime.timedelta(days=400),
        valid_until=timezone.localdate() - datetime.timedelta(days=35),
    )

    page = home(quality_manager)

    section = page.split("Manufacturer certificates")[1].split("</section>")[0]
    assert expired.number in section
    assert "expired" in section


def test_an_auditor_reads_the_network_with_links_to_evidence_and_no_write_control(auditor):
    LotFactory(status=LotStatus.QUARANTINED)

    page = home(auditor)

    assert "Lots awaiting release" in page
    assert "Evidence" in page and "/api/v1/audit/events/export/" in page
    assert "Open a recall" not in page
    assert "Receive a delivery" not in page
    assert "<form" not in page.split("<main")[1].split("</main>")[0]


def test_the_home_page_runs_the_same_queries_whatever_the_number_of_rows(quality_manager):
    def count(user) -> int:
        client = client_for(user)
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/").status_code == 200
        return len(queries)

    ready = clinic_ready()
    MembershipFactory(user=ready.clinician, role=Role.CLINICIAN, clinic=clinic_ready().clinic)
    lot = recalled_lot()
    receive(ready, lot, 30)
    treat(ready, lot, 1)
    open_recall(quality_manager, lot)
    # The lots awaiting release are checked ten at most (each check reads its lot's records):
    # the section is as full here as it can be.
    for _ in range(10):
        LotFactory(status=LotStatus.QUARANTINED)
    small_clinic, small_network = count(ready.clinician), count(quality_manager)

    for _ in range(12):
        patient = PatientFactory(clinic=ready.clinic)
        other = released_lot()
        receive(ready, other, 5)
        treat(ready, other, 1, patient=patient)
        LotFactory(status=LotStatus.QUARANTINED)
        expiring_in(20)

    assert count(ready.clinician) == small_clinic
    assert count(quality_manager) == small_network
