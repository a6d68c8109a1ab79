"""A patient's backward trace as PDF: what it shows, who may read it (the patient's own clinic,
quality managers, auditors; another clinic gets a 404), never contact details, and a fixed number
of queries however long the patient's history."""

from __future__ import annotations

import datetime
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader
from rest_framework.test import APIClient

from lots.models import Lot, LotStatus
from tests.admin_helpers import admin_client
from tests.api_helpers import API, error_codes
from tests.factories import clinic_ready, receive, releasable_lot, treat
from treatments.models import PatientContact
from treatments.services import adverse_event_record

pytestmark = pytest.mark.django_db

CONTACT_DATA = ("Petra Private", "+49 30 5550 9876", "petra@patient.example", "1970-05-06")


def client_for(user) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def pdf_text(pdf: bytes) -> str:
    assert pdf.startswith(b"%PDF-")
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    return " ".join(text.split())


def released_lot_with_evidence(quality_manager) -> Lot:
    lot = releasable_lot(quality_manager=quality_manager)
    Lot.objects.filter(pk=lot.pk).update(status=LotStatus.RELEASED)
    lot.refresh_from_db()
    return lot


@pytest.fixture
def treated(quality_manager):
    lot = released_lot_with_evidence(quality_manager)
    ready = clinic_ready()
    receive(ready, lot, 10)
    PatientContact.objects.create(
        patient=ready.patient,
        full_name=CONTACT_DATA[0],
        phone=CONTACT_DATA[1],
        email=CONTACT_DATA[2],
        date_of_birth=timezone.datetime(1970, 5, 6).date(),
    )
    treatment = treat(ready, lot, 2)
    adverse_event_record(
        actor=ready.clinician,
        treatment=treatment,
        onset_on=timezone.localdate(),
        description="Itching on the cheek",
        lot=lot,
    )
    return ready, lot


def url_for(patient) -> str:
    return f"{API}/patients/{patient.pk}/trace.pdf"


def test_the_trace_pdf_shows_every_lot_and_the_evidence_behind_it(quality_manager, treated):
    ready, lot = treated

    response = client_for(ready.clinician).get(url_for(ready.patient))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert "trace-backward.pdf" in response["Content-Disposition"]
    text = pdf_text(response.content)
    squeezed = "".join(text.split())
    assert f"Backward trace: patient {ready.patient.reference}" in text
    assert ready.clinic.name in text and ready.practitioner.name in text
    assert lot.lot_number in text and lot.product.name in text
    assert lot.donors.get().code in text and "Non-reactive" in text
    assert "Endotoxin" in text and "pass" in text
    assert "Itching on the cheek" in text
    for certificate in lot.certificates.all():
        assert certificate.sha256 in squeezed
    assert lot.manufacturer.certificates.get(kind="gmp").sha256 in squeezed
    for secret in CONTACT_DATA:
        assert secret not in text


def pdf_lines(pdf: bytes) -> list[str]:
    return [
        line
        for page in PdfReader(io.BytesIO(pdf)).pages
        for line in page.extract_text().split("\n")
    ]


def test_the_trace_pdf_of_a_patient_with_several_lots_shows_all_of_it_with_whole_digests(
    quality_manager, treated
):
    """Given a patient treated four times with four lots, each with its donor, markers, QC and
    certificates, when the trace is exported as PDF, then every treatment, lot, donor, marker and
    QC test is in it, and every certificate's SHA-256 stands whole on one line."""
    ready, _ = treated
    for _ in range(3):
        lot = released_lot_with_evidence(quality_manager)
        receive(ready, lot, 5)
        treat(ready, lot, 1)

    pdf = client_for(quality_manager).get(url_for(ready.patient)).content

    text = pdf_text(pdf)
    lines = pdf_lines(pdf)
    lots = list(Lot.objects.filter(treatment_lines__treatment__patient=ready.patient).distinct())
    assert len(lots) == 4 and "4 treatments using 4 lots" in text
    for treatment in ready.patient.treatments.all():
        assert f"{treatment.performed_at.astimezone(datetime.UTC):%Y-%m-%d %H:%M}" in text
    for lot in lots:
        assert lot.lot_number in text and lot.product.name in text
        for donor in lot.donors.all():
            assert donor.code in text
            for result in donor.marker_results.all():
                assert f"{result.marker.code}:" in text
        for result in lot.qc_results.all():
            assert result.test.name in text
        certificates = [
            *lot.certificates.all(),
            *lot.manufacturer.certificates.filter(lot__isnull=True),
        ]
        for certificate in certificates:
            assert any(certificate.sha256 in line for line in lines), certificate.sha256


def test_who_may_read_a_patients_trace_pdf(quality_manager, auditor, treated):
    ready, _ = treated
    elsewhere = clinic_ready()
    url = url_for(ready.patient)

    for reader in (ready.administrator, ready.clinician, quality_manager, auditor):
        assert client_for(reader).get(url).status_code == 200
    other_clinic = client_for(elsewhere.administrator).get(url)
    assert other_clinic.status_code == 404 and error_codes(other_clinic) == ["not_found"]
    anonymous = client_for(None).get(url)
    assert anonymous.status_code in (401, 403)
    assert error_codes(anonymous) == ["not_authenticated"]


def test_the_trace_pdf_reads_a_fixed_number_of_queries_however_long_the_history(
    quality_manager, treated, django_assert_num_queries
):
    ready, _ = treated
    client = client_for(quality_manager)
    with CaptureQueriesContext(connection) as one_treatment:
        assert client.get(url_for(ready.patient)).status_code == 200

    for _ in range(3):
        lot = released_lot_with_evidence(quality_manager)
        receive(ready, lot, 5)
        treat(ready, lot, 1)
        treat(ready, lot, 1)

    with django_assert_num_queries(len(one_treatment)):
        response = client.get(url_for(ready.patient))
    assert response.status_code == 200
    assert "7 treatments using 4 lots" in pdf_text(response.content)


def test_the_patients_trace_page_links_the_pdf_and_the_csv(treated):
    ready, _ = treated
    client = admin_client(ready.administrator)
    page = client.get(reverse("admin:treatments_patient_trace_back", args=[ready.patient.pk]))

    content = page.content.decode()
    assert url_for(ready.patient) in content
    assert f"{API}/traces/backward/?patient={ready.patient.pk}&amp;format=csv" in content
    assert client.get(url_for(ready.patient)).status_code == 200
