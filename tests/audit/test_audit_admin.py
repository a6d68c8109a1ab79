"""The admin's audit search page: reachable from the admin index by auditors and quality
managers, never by clinic staff; filters like the API; contact details masked; links the CSV."""

from __future__ import annotations

import pghistory
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from providers.models import Role
from tests.admin_helpers import admin_client
from tests.factories import ManufacturerFactory, MembershipFactory, clinic_ready, released_lot
from treatments.services import patient_create

pytestmark = [pytest.mark.django_db]

SEARCH = "admin:audit_auditevent_changelist"
PHONE = "+1 214 555 0199"


@pytest.fixture
def lot(quality_manager):
    with pghistory.context(user=quality_manager.pk, reason="made for the admin test"):
        return released_lot(lot_number="ADM-1")


def test_auditors_reach_the_search_from_the_admin_index_and_see_who_why_what(auditor, lot):
    client = admin_client(auditor)
    url = reverse(SEARCH)

    assert url in client.get(reverse("admin:index")).content.decode()
    page = client.get(url)

    assert page.status_code == 200
    text = page.content.decode()
    assert "lots.Lot #" in text
    assert "Quinn Manager" in text
    assert "made for the admin test" in text


def test_the_page_shows_one_record_s_history(quality_manager, lot):
    other = released_lot(lot_number="ADM-2")

    page = admin_client(quality_manager).get(
        reverse(SEARCH), {"record_type": "lots.Lot", "record": lot.pk}
    )

    events = page.context["events"]
    assert events
    assert {event["record_id"] for event in events} == {str(lot.pk)}
    assert str(other.pk) not in {event["record_id"] for event in events}


def test_bad_filters_are_shown_on_the_form_not_a_server_error(auditor):
    page = admin_client(auditor).get(
        reverse(SEARCH), {"record_type": "x.Y", "user": "abc", "at_after": "soon"}
    )

    assert page.status_code == 200
    assert set(page.context["form"].errors) == {"record_type", "user", "at_after"}
    assert page.context["page"] is None


def test_the_export_link_carries_the_date_range(auditor, lot):
    params = {"at_after": "2026-01-01T00:00:00Z", "at_before": "2027-01-01T00:00:00Z"}

    text = admin_client(auditor).get(reverse(SEARCH), params).content.decode()

    assert reverse("audit-events-export") + "?at_after=2026-01-01T00" in text


def test_contact_details_are_masked_on_the_page(auditor):
    ready = clinic_ready()
    patient_create(
        actor=ready.clinician,
        clinic=ready.clinic,
        reference="ADM-0042",
        contact={"full_name": "Rosalind Quist", "phone": PHONE},
    )

    text = admin_client(auditor).get(reverse(SEARCH)).content.decode()

    assert "treatments.PatientContact #" in text
    assert PHONE not in text
    assert "Rosalind" not in text


def test_the_page_runs_a_fixed_number_of_queries(auditor, django_assert_num_queries):
    client = admin_client(auditor)
    url = reverse(SEARCH)
    with pghistory.context(user=auditor.pk):
        ManufacturerFactory()
    client.get(url)
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    for _ in range(15):
        with pghistory.context(user=auditor.pk):
            ManufacturerFactory()
    with django_assert_num_queries(len(few)):
        client.get(url)


@pytest.mark.parametrize("role", [Role.CLINIC_ADMINISTRATOR, Role.CLINICIAN])
def test_clinic_staff_neither_see_nor_open_the_search(role):
    ready = clinic_ready()
    user = MembershipFactory(role=role, clinic=ready.clinic).user
    client = admin_client(user)

    assert reverse(SEARCH) not in client.get(reverse("admin:index")).content.decode()
    assert client.get(reverse(SEARCH)).status_code == 403
