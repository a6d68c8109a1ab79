"""The patient pages, through Django's test client: finding a patient, the patient's page with the
backward trace and recalls, registering a patient; only the patient's own clinic's
administrators and clinicians, and every showing of contact details recorded."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import ContactDataRead
from providers.models import Role
from tests.factories import (
    MembershipFactory,
    PatientFactory,
    UserFactory,
    clinic_ready,
    receive,
    released_lot,
    treat,
)
from tests.pages.conftest import client_for
from tests.pages.test_chair import chair_ready, text_of
from tests.recalls.conftest import open_recall
from treatments.models import Patient, PatientContact

pytestmark = pytest.mark.django_db


def with_contact(patient, name):
    PatientContact.objects.create(patient=patient, full_name=name, phone="+1 512 555 0100")
    return patient


# --------------------------------------------------------------------------------------------
# Finding a patient


def test_a_clinician_finds_a_patient_by_name_and_the_read_is_recorded():
    ready = clinic_ready()
    with_contact(ready.patient, "Ada Lovelace")
    with_contact(PatientFactory(clinic=ready.clinic), "Grace Hopper")
    response = client_for(ready.clinician).get(reverse("pages:patients"), {"q": "lovel"})
    words = text_of(response)
    assert response.status_code == 200
    assert "Ada Lovelace" in words and "Grace Hopper" not in words
    assert ready.patient.reference in words
    chair = reverse("pages:chair") + f"?patient={ready.patient.pk}"
    assert chair in response.content.decode()
    read = ContactDataRead.objects.get()
    assert (read.via, read.patient_ids, read.user) == ("page", [ready.patient.pk], ready.clinician)


def test_a_patient_is_found_by_reference_and_htmx_gets_only_the_results():
    ready = clinic_ready()
    with_contact(ready.patient, "Ada Lovelace")
    response = client_for(ready.administrator).get(
        reverse("pages:patients"), {"q": ready.patient.reference.lower()}, HTTP_HX_REQUEST="true"
    )
    page = response.content.decode()
    assert "Ada Lovelace" in page
    assert "<html" not in page


def test_a_patient_without_contact_details_is_found_and_shown_with_dashes():
    ready = clinic_ready()
    bare = PatientFactory(clinic=ready.clinic)
    response = client_for(ready.clinician).get(reverse("pages:patients"), {"q": bare.reference})
    assert response.status_code == 200
    words = text_of(response)
    assert bare.reference in words
    assert "—" in words


def test_the_search_page_shows_no_names_before_a_search():
    ready = clinic_ready()
    with_contact(ready.patient, "Ada Lovelace")
    response = client_for(ready.clinician).get(reverse("pages:patients"))
    assert response.status_code == 200
    assert "Ada Lovelace" not in response.content.decode()
    assert not ContactDataRead.objects.exists()


def test_another_clinics_patients_are_never_found():
    ready, other = clinic_ready(), clinic_ready()
    with_contact(other.patient, "Ada Lovelace")
    response = client_for(ready.clinician).get(reverse("pages:patients"), {"q": "Ada"})
    assert "Ada Lovelace" not in response.content.decode()
    assert "No patient matches" in text_of(response)
    assert not ContactDataRead.objects.exists()


@pytest.mark.parametrize("role", [Role.AUDITOR, Role.QUALITY_MANAGER])
def test_network_roles_and_clinic_quality_managers_see_no_patients(role):
    ready = clinic_ready()
    with_contact(ready.patient, "Ada Lovelace")
    network = UserFactory()
    MembershipFactory(user=network, role=role, clinic=None)
    clinic_quality = UserFactory()
    MembershipFactory(user=clinic_quality, role=Role.QUALITY_MANAGER, clinic=ready.clinic)
    for user in (network, clinic_quality):
        client = client_for(user)
        for url in (
            reverse("pages:patients") + "?q=Ada",
            reverse("pages:patient", args=[ready.patient.pk]),
            reverse("pages:patient-new"),
        ):
            response = client.get(url)
            assert response.status_code == 403
            assert "Ada Lovelace" not in response.content.decode()
    assert not ContactDataRead.objects.exists()


def test_a_visitor_not_signed_in_is_sent_to_sign_in():
    response = client_for(UserFactory()).get(reverse("pages:patients"))
    assert response.status_code == 403
    from django.test import Client

    anonymous = Client().get(reverse("pages:patients"))
    assert anonymous.status_code == 302 and "/sign-in/" in anonymous.url


def test_the_search_runs_the_same_queries_for_few_and_many_patients():
    ready = clinic_ready()
    client = client_for(ready.clinician)

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(reverse("pages:patients"), {"q": "Pat"}).status_code == 200
        return len(queries)

    for number in range(2):
        with_contact(PatientFactory(clinic=ready.clinic), f"Pat {number}")
    few = count()
    for number in range(2, 30):
        with_contact(PatientFactory(clinic=ready.clinic), f"Pat {number}")
    assert count() == few


# --------------------------------------------------------------------------------------------
# The patient's page


def test_the_patient_page_shows_contact_trace_recall_and_links(quality_manager):
    ready = chair_ready(stock=5)
    treat(ready, ready.lot, 1)
    recall = open_recall(quality_manager, ready.lot)
    client = client_for(ready.clinician)
    response = client.get(reverse("pages:patient", args=[ready.patient.pk]))
    assert response.status_code == 200
    words, page = text_of(response), response.content.decode()
    assert "Ada Lovelace" in words
    assert f"Lot {ready.lot.lot_number} of Exosome serum A" in words
    assert ready.lot.donors.first() is None or ready.lot.donors.first().code in words
    assert f"Recall {recall.reference}" in words
    csv_url = reverse("trace-backward") + f"?patient={ready.patient.pk}&amp;format=csv"
    pdf_url = reverse("patient-trace-pdf", args=[ready.patient.pk])
    assert csv_url in page and pdf_url in page
    assert reverse("pages:chair") + f"?patient={ready.patient.pk}" in page
    read = ContactDataRead.objects.get()
    assert (read.via, read.patient_ids) == ("page", [ready.patient.pk])
    # The signed-in session opens the trace's CSV (the API takes the session).
    download = client.get(csv_url.replace("&amp;", "&"))
    assert download.status_code == 200
    assert download["Content-Type"].startswith("text/csv")
    assert ready.lot.lot_number in b"".join(download.streaming_content).decode()
    pdf = client.get(pdf_url)
    assert pdf.status_code == 200
    assert pdf["Content-Type"] == "application/pdf"


def test_another_clinics_patient_page_is_not_found():
    ready, other = clinic_ready(), clinic_ready()
    with_contact(other.patient, "Ada Lovelace")
    response = client_for(ready.clinician).get(reverse("pages:patient", args=[other.patient.pk]))
    assert response.status_code == 404
    assert "Ada Lovelace" not in response.content.decode()
    assert "No such patient at your clinic" in text_of(response)
    assert not ContactDataRead.objects.exists()


def test_the_patient_page_runs_the_same_queries_for_one_and_many_treatments():
    ready = chair_ready(stock=40)
    with_contact_lot = released_lot(product=ready.lot.product)
    receive(ready, with_contact_lot, 40)
    client = client_for(ready.clinician)

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(reverse("pages:patient", args=[ready.patient.pk]))
            assert response.status_code == 200
        return len(queries)

    treat(ready, ready.lot, 1)
    one = count()
    for _ in range(6):
        treat(ready, [ready.lot, with_contact_lot], 1)
    assert count() == one


# --------------------------------------------------------------------------------------------
# Registering a patient


def test_a_clinician_registers_a_patient_with_contact_details():
    ready = clinic_ready()
    response = client_for(ready.clinician).post(
        reverse("pages:patient-new"),
        {
            "clinic": ready.clinic.pk,
            "reference": "NEW-001",
            "full_name": "Grace Hopper",
            "date_of_birth": "1906-12-09",
            "phone": "+1 512 555 0199",
            "email": "grace@example.com",
        },
    )
    patient = Patient.objects.get(reference="NEW-001")
    assert response.status_code == 302
    assert response.url == reverse("pages:patient", args=[patient.pk])
    assert patient.clinic == ready.clinic
    assert patient.contact.full_name == "Grace Hopper"
    assert str(patient.contact.date_of_birth) == "1906-12-09"


def test_a_reference_already_taken_is_an_inline_error_and_nothing_is_saved():
    ready = clinic_ready()
    response = client_for(ready.clinician).post(
        reverse("pages:patient-new"),
        {"clinic": ready.clinic.pk, "reference": ready.patient.reference, "full_name": "X"},
    )
    assert response.status_code == 200
    assert 'class="field-error"' in response.content.decode()
    assert Patient.objects.count() == 1
    assert not PatientContact.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [("reference", ""), ("full_name", ""), ("email", "not-an-address"), ("date_of_birth", "x")],
)
def test_bad_input_is_marked_on_its_field_and_nothing_is_saved(field, value):
    ready = clinic_ready()
    data = {"clinic": ready.clinic.pk, "reference": "NEW-002", "full_name": "Grace Hopper"}
    data[field] = value
    response = client_for(ready.clinician).post(reverse("pages:patient-new"), data)
    assert response.status_code == 200
    assert 'class="field invalid"' in response.content.decode()
    assert Patient.objects.count() == 1


def test_a_patient_cannot_be_registered_at_another_clinic():
    ready, other = clinic_ready(), clinic_ready()
    response = client_for(ready.clinician).post(
        reverse("pages:patient-new"),
        {"clinic": other.clinic.pk, "reference": "NEW-003", "full_name": "Grace Hopper"},
    )
    assert response.status_code == 200
    assert not Patient.objects.filter(reference="NEW-003").exists()
