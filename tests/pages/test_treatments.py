"""The treatments list and one treatment, through Django's test client: scoped by clinic,
filtered, paged, as CSV, in a fixed number of queries."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from providers.models import Role
from tests.factories import MembershipFactory, UserFactory, practitioner_at, receive, treat
from tests.pages.conftest import client_for
from tests.pages.test_chair import chair_ready, text_of

pytestmark = pytest.mark.django_db

LIST = reverse("pages:treatments")


def csv_text(response) -> str:
    return b"".join(response.streaming_content).decode()


def test_clinic_staff_see_their_clinics_treatments_only():
    ready, other = chair_ready(), chair_ready()
    mine, theirs = treat(ready, ready.lot), treat(other, other.lot)
    response = client_for(ready.clinician).get(LIST)
    page = response.content.decode()
    assert response.status_code == 200
    assert reverse("pages:treatment", args=[mine.pk]) in page
    assert reverse("pages:treatment", args=[theirs.pk]) not in page
    assert other.patient.reference not in page
    # The patient's page is linked for the clinic's own staff.
    assert reverse("pages:patient", args=[ready.patient.pk]) in page


@pytest.mark.parametrize("role", [Role.AUDITOR, Role.QUALITY_MANAGER])
def test_network_roles_see_every_clinic_without_patient_links(role):
    ready, other = chair_ready(), chair_ready()
    first, second = treat(ready, ready.lot), treat(other, other.lot)
    user = UserFactory()
    MembershipFactory(user=user, role=role, clinic=None)
    response = client_for(user).get(LIST)
    page = response.content.decode()
    for treatment in (first, second):
        assert reverse("pages:treatment", args=[treatment.pk]) in page
    assert ready.clinic.name in page and other.clinic.name in page
    assert "/patients/" not in page
    assert "Start a treatment" not in page
    assert "Ada Lovelace" not in page


def test_the_list_filters_by_lot_practitioner_and_date():
    ready = chair_ready(stock=10)
    second_lot = ready.lot.__class__.objects.create(
        product=ready.lot.product,
        manufacturer=ready.lot.manufacturer,
        lot_number="OTHER-1",
        manufactured_on=ready.lot.manufactured_on,
        expires_on=ready.lot.expires_on,
        quantity=10,
        unit=ready.lot.unit,
        regulatory_basis=ready.lot.regulatory_basis,
        regulatory_number=ready.lot.regulatory_number,
        status=ready.lot.status,
        status_changed_at=timezone.now(),
        created_by=ready.lot.created_by,
    )
    receive(ready, second_lot, 10)
    colleague = practitioner_at(ready.clinic)
    old = treat(ready, ready.lot, performed_at=timezone.now() - datetime.timedelta(days=10))
    by_colleague = treat(ready, second_lot, practitioner=colleague)
    client = client_for(ready.clinician)

    def shown(**query) -> set[int]:
        page = client.get(LIST, query).content.decode()
        return {
            t.pk for t in (old, by_colleague) if reverse("pages:treatment", args=[t.pk]) in page
        }

    assert shown() == {old.pk, by_colleague.pk}
    assert shown(lot="other-1") == {by_colleague.pk}
    assert shown(practitioner=colleague.pk) == {by_colleague.pk}
    today = timezone.localdate()
    assert shown(performed_from=today.isoformat()) == {by_colleague.pk}
    assert shown(performed_to=(today - datetime.timedelta(days=5)).isoformat()) == {old.pk}
    # A filter not understood is said so, and ignored.
    response = client.get(LIST, {"performed_from": "yesterday"})
    assert "Some filters were not understood" in text_of(response)


def test_the_list_pages_fifty_at_a_time():
    ready = chair_ready(stock=60)
    for _ in range(51):
        treat(ready, ready.lot)
    client = client_for(ready.clinician)
    first = client.get(LIST)
    assert "Page 1 of 2" in text_of(first) and "Next" in text_of(first)
    second = client.get(LIST, {"page": 2})
    assert "Page 2 of 2" in text_of(second) and "Previous" in text_of(second)
    assert text_of(second).count("Lot EXO") == 1


def test_the_csv_holds_what_the_filters_show_and_guards_formulas():
    ready = chair_ready(stock=5)
    treatment = treat(ready, ready.lot, anatomical_site="=HYPERLINK(1)")
    other = chair_ready()
    treat(other, other.lot)
    response = client_for(ready.clinician).get(LIST, {"format": "csv", "lot": ready.lot.lot_number})
    assert response["Content-Type"].startswith("text/csv")
    text = csv_text(response)
    lines = text.strip().splitlines()
    assert lines[0].startswith("treatment,performed_at,clinic,patient_reference")
    assert len(lines) == 2 and lines[1].startswith(f"{treatment.pk},")
    assert "'=HYPERLINK(1)" in text
    assert other.patient.reference not in text


def test_the_list_runs_the_same_queries_for_few_and_many_treatments():
    ready = chair_ready(stock=60)
    client = client_for(ready.clinician)

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(LIST).status_code == 200
        return len(queries)

    treat(ready, ready.lot)
    few = count()
    for _ in range(30):
        treat(ready, ready.lot, practitioner=practitioner_at(ready.clinic))
    assert count() == few


def test_one_treatment_shows_its_lots_and_the_stock_left():
    ready = chair_ready(stock=5)
    treatment = treat(ready, ready.lot, 2)
    response = client_for(ready.clinician).get(reverse("pages:treatment", args=[treatment.pk]))
    words = text_of(response)
    assert f"Lot {ready.lot.lot_number} of Exosome serum A" in words
    assert "Units left here" in words
    assert f'data-left="{ready.lot.pk}">3<' in response.content.decode()


def test_another_clinics_treatment_is_not_found():
    ready, other = chair_ready(), chair_ready()
    theirs = treat(other, other.lot)
    response = client_for(ready.clinician).get(reverse("pages:treatment", args=[theirs.pk]))
    assert response.status_code == 404
    assert other.patient.reference not in response.content.decode()


def test_an_auditor_reads_a_treatment_without_patient_details_or_write_controls():
    ready = chair_ready(stock=5)
    treatment = treat(ready, ready.lot)
    auditor = UserFactory()
    MembershipFactory(user=auditor, role=Role.AUDITOR, clinic=None)
    response = client_for(auditor).get(reverse("pages:treatment", args=[treatment.pk]))
    page = response.content.decode()
    assert response.status_code == 200
    assert ready.patient.reference in page
    assert "Ada Lovelace" not in page
    assert reverse("pages:patient", args=[ready.patient.pk]) not in page
    main = page.split("<main", 1)[1].split("</main>", 1)[0]
    assert "<form" not in main and "Start a treatment" not in main
