"""Records are named for people (a treatment "of patient LS-0001 on 2026-12-03 at Lone Star
Aesthetics"), and the admin pages that list them as inline rows read those names with the rows,
not one query per row."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from lots.models import LotStatus
from tests.admin_helpers import admin_client
from tests.factories import clinic_ready, receive, released_lot, treat
from treatments.services import adverse_event_record

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("reference_data")]


def queries(client, url: str) -> tuple[int, str]:
    client.get(url)  # the first request of a session reads what later ones have cached
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured), response.content.decode()


def test_a_treatment_is_named_by_patient_day_and_clinic():
    ready = clinic_ready()
    lot = released_lot()
    receive(ready, lot, 2)
    at = datetime.datetime(2026, 12, 3, 10, 0, tzinfo=datetime.UTC)
    treatment = treat(ready, lot, 1, performed_at=at)

    assert str(treatment) == (
        f"treatment of patient {ready.patient.reference} on 2026-12-03 at {ready.clinic.name}"
    )
    assert str(treatment.lines.get()) == f"1 of lot {lot.lot_number}"


def test_the_patient_page_reads_its_treatments_names_with_the_rows():
    ready = clinic_ready()
    lot = released_lot()
    receive(ready, lot, 20)
    treat(ready, lot, 1)
    client = admin_client(ready.administrator)
    url = reverse("admin:treatments_patient_change", args=[ready.patient.pk])
    one, _ = queries(client, url)

    for _ in range(5):
        treat(ready, lot, 1)
    many, page = queries(client, url)

    assert many == one
    assert f"treatment of patient {ready.patient.reference}" in page


def test_the_treatment_page_reads_its_adverse_events_names_with_the_rows():
    ready = clinic_ready()
    lot = released_lot()
    receive(ready, lot, 2)
    treatment = treat(ready, lot, 1)

    def report() -> None:
        adverse_event_record(
            actor=ready.clinician,
            treatment=treatment,
            onset_on=timezone.localdate(),
            description="Redness",
            lot=lot,
        )

    report()
    client = admin_client(ready.administrator)
    url = reverse("admin:treatments_treatment_change", args=[treatment.pk])
    one, _ = queries(client, url)
    for _ in range(4):
        report()
    many, page = queries(client, url)

    assert many == one
    assert "adverse event of" in page


def test_the_lot_page_reads_its_status_changes_names_with_the_rows(quality_manager):
    lot = released_lot()
    client = admin_client(quality_manager)
    url = reverse("admin:lots_lot_change", args=[lot.pk])
    for status in (LotStatus.ON_HOLD, LotStatus.RELEASED):
        lot.status_changes.create(
            action="hold" if status == LotStatus.ON_HOLD else "release",
            from_status=lot.status,
            to_status=status,
            signed_by=quality_manager,
            signer_name="Quinn Manager",
            signed_at=timezone.now(),
            meaning="review",
            reason="test",
        )
        if status == LotStatus.ON_HOLD:
            one, _ = queries(client, url)
    many, page = queries(client, url)

    assert many == one
    assert f"lot {lot.lot_number}" in page
