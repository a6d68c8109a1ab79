"""A lot's dossier (PDF) and its full treatment list (CSV): what they show, who may read them, that
they never carry a patient's contact details, and that they read a fixed number of queries
however far the lot went."""

from __future__ import annotations

import csv
import datetime
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader
from rest_framework.test import APIClient
from weasyprint import HTML  # type: ignore[import-untyped]

from common.pdf import html_to_pdf
from lots.models import LotQcResult, QcTest
from lots.services import lot_release
from recalls import dossier
from recalls.dossier import TREATMENT_COLUMNS
from recalls.services import RecallScopeRequest, recall_open
from tests.admin_helpers import admin_client
from tests.api_helpers import API, error_codes
from tests.factories import (
    PASSWORD,
    PatientFactory,
    clinic_ready,
    lot_for_release,
    receive,
    releasable_lot,
    treat,
)
from treatments.models import Patient, PatientContact
from treatments.services import adverse_event_record

pytestmark = pytest.mark.django_db

CONTACT_DATA = ("Carla Contact", "+49 30 5550 1234", "carla@patient.example", "1958-02-03")


def client_for(user) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def pdf_text(pdf: bytes) -> str:
    assert pdf.startswith(b"%PDF-")
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    return " ".join(text.split())


def dossier_text(user, lot) -> str:
    response = client_for(user).get(f"{API}/lots/{lot.pk}/dossier.pdf")
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/pdf"
    return pdf_text(response.content)


def csv_rows(user, lot) -> list[dict[str, str]]:
    response = client_for(user).get(f"{API}/lots/{lot.pk}/treatments.csv")
    assert response.status_code == 200, response.content
    assert response.streaming and response["Content-Type"] == "text/csv; charset=utf-8"
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def with_contact(patient: Patient) -> Patient:
    PatientContact.objects.create(
        patient=patient,
        full_name=CONTACT_DATA[0],
        phone=CONTACT_DATA[1],
        email=CONTACT_DATA[2],
        date_of_birth=datetime.date(1958, 2, 3),
    )
    return patient


@pytest.fixture
def released(quality_manager):
    lot = releasable_lot(quality_manager=quality_manager)
    lot_release(
        actor=quality_manager,
        lot_id=lot.pk,
        password=PASSWORD,
        meaning="approval",
        reason="Every release criterion met",
    )
    lot.refresh_from_db()
    return lot


@pytest.fixture
def used(released):
    """The released lot received at a clinic and used on one patient with contact details."""
    ready = clinic_ready()
    receive(ready, released, 10)
    with_contact(ready.patient)
    treatment = treat(ready, released, 2)
    adverse_event_record(
        actor=ready.clinician,
        treatment=treatment,
        onset_on=timezone.localdate(),
        description="Redness at the injection site",
        lot=released,
        hospitalisation=True,
    )
    return ready


def test_the_dossier_shows_what_lies_behind_the_lot_and_where_it_went(
    quality_manager, released, used
):
    recall = recall_open(
        actor=quality_manager,
        password=PASSWORD,
        recall_class="II",
        depth="clinic",
        reason="Sterility failure in a retained sample",
        hazard="Infection",
        scope=RecallScopeRequest(lot_ids=[released.pk]),
    )

    text = dossier_text(quality_manager, released)
    squeezed = "".join(text.split())

    assert f"Lot dossier: {released.lot_number}" in text
    assert f"Lot {released.lot_number} · {released.manufacturer.legal_name} · generated" in text
    assert released.product.name in text and released.manufacturer.legal_name in text
    for certificate in released.certificates.all():
        assert certificate.number in squeezed and certificate.sha256 in squeezed
    gmp = released.manufacturer.certificates.get(kind="gmp")
    assert gmp.sha256 in squeezed
    donor = released.donors.get()
    assert donor.code in text and "Eligible" in text and "Non-reactive" in text
    assert "Endotoxin" in text and "pass" in text and "FAIL" not in text
    assert "Release: quarantined → released" in text
    assert "Quinn Manager" in text and "Every release criterion met" in text
    assert used.clinic.name in text and "Accept" in text
    assert used.patient.reference in text
    assert "Redness at the injection site" in text and "hospitalisation" in text
    assert recall.reference in text and "Sterility failure" in text
    assert "History" in text and "insert" in text
    for secret in CONTACT_DATA:
        assert secret not in text


def test_qc_results_are_judged_against_the_specification_and_missing_tests_named(
    quality_manager,
):
    lot = lot_for_release(
        quality_manager=quality_manager,
        skip_qc=("endotoxin", "sterility"),
        lot_number='Q"</style>1',  # GS1 allows quotes and angle brackets in a lot number
    )
    LotQcResult.objects.create(
        lot=lot,
        test=QcTest.objects.get(code="endotoxin"),
        numeric_value=5,
        tested_on=lot.manufactured_on,
        laboratory="QC lab",
    )

    text = dossier_text(quality_manager, lot)

    assert "FAIL" in text and "missing" in text
    assert f'Lot Q"</style>1 · {lot.manufacturer.legal_name} · generated' in text
    assert "No signed decision yet." in text


def test_a_heavy_lot_gives_totals_per_clinic_and_the_full_list_in_the_csv(
    quality_manager, auditor, released, used, monkeypatch
):
    monkeypatch.setattr(dossier, "TREATMENT_LINES_LISTED", 2)
    other = clinic_ready()
    receive(other, released, 10)
    patients = [PatientFactory(clinic=other.clinic) for _ in range(3)]
    for patient in patients:
        treat(other, released, 1, patient=patient)

    text = dossier_text(auditor, released)

    assert "4 treatment lines, 4 patients, 5 units used." in text
    assert "More than 2 lines" in text and f"/api/v1/lots/{released.pk}/treatments.csv" in text
    assert other.clinic.name in text and used.clinic.name in text
    for patient in patients:
        assert patient.reference not in text
    rows = csv_rows(auditor, released)
    assert list(rows[0]) == TREATMENT_COLUMNS
    assert sorted(row["patient_reference"] for row in rows) == sorted(
        [used.patient.reference, *(patient.reference for patient in patients)]
    )
    assert {row["lot_number"] for row in rows} == {released.lot_number}


def test_the_treatment_csv_quotes_cells_a_spreadsheet_would_run_and_names_no_contact(
    quality_manager, released, used
):
    Patient.objects.filter(pk=used.patient.pk).update(reference='=HYPERLINK("x")')

    rows = csv_rows(quality_manager, released)

    assert [row["patient_reference"] for row in rows] == ['\'=HYPERLINK("x")']
    for secret in CONTACT_DATA:
        assert all(secret not in value for row in rows for value in row.values())


@pytest.mark.parametrize("download", ["dossier.pdf", "treatments.csv"])
def test_only_quality_managers_and_auditors_read_a_lots_dossier(
    quality_manager, auditor, released, used, download
):
    url = f"{API}/lots/{released.pk}/{download}"
    elsewhere = clinic_ready()

    assert client_for(quality_manager).get(url).status_code == 200
    assert client_for(auditor).get(url).status_code == 200
    for clinic_staff in (used.administrator, used.clinician, elsewhere.administrator):
        refused = client_for(clinic_staff).get(url)
        assert refused.status_code == 403
        assert error_codes(refused) == ["role_required"]
    anonymous = client_for(None).get(url)
    assert anonymous.status_code in (401, 403)
    assert error_codes(anonymous) == ["not_authenticated"]
    unknown = client_for(auditor).get(f"{API}/lots/987654/{download}")
    assert unknown.status_code == 404 and error_codes(unknown) == ["not_found"]


def test_the_dossier_reads_a_fixed_number_of_queries_however_far_the_lot_went(
    quality_manager, released, used, django_assert_num_queries
):
    url = f"{API}/lots/{released.pk}/dossier.pdf"
    client = client_for(quality_manager)
    with CaptureQueriesContext(connection) as small:
        assert client.get(url).status_code == 200
    with CaptureQueriesContext(connection) as small_csv:
        assert len(csv_rows(quality_manager, released)) == 1

    for _ in range(3):
        ready = clinic_ready()
        receive(ready, released, 6)
        for _ in range(4):
            treatment = treat(ready, released, 1, patient=PatientFactory(clinic=ready.clinic))
        adverse_event_record(
            actor=ready.clinician,
            treatment=treatment,
            onset_on=timezone.localdate(),
            description="Swelling",
            lot=released,
        )

    with django_assert_num_queries(len(small)):
        assert client.get(url).status_code == 200
    with django_assert_num_queries(len(small_csv)):
        assert len(csv_rows(quality_manager, released)) == 13


def test_the_lot_page_links_the_dossier_for_quality_managers_and_auditors_only(
    quality_manager, auditor, released, used
):
    page = reverse("admin:lots_lot_change", args=[released.pk])
    dossier_url = f"{API}/lots/{released.pk}/dossier.pdf"

    for reader in (quality_manager, auditor):
        client = admin_client(reader)
        content = client.get(page).content.decode()
        assert dossier_url in content and f"{API}/lots/{released.pk}/treatments.csv" in content
        download = client.get(dossier_url)  # the admin session signs the download in
        assert download.status_code == 200 and download["Content-Type"] == "application/pdf"
    clinic_page = admin_client(used.administrator).get(page)
    assert clinic_page.status_code == 200
    assert dossier_url not in clinic_page.content.decode()


def test_the_dossier_renders_as_with_weasyprints_whole_stylesheet(quality_manager, released, used):
    """common.pdf leaves out the footnote rules, which the dossier never uses: same bytes."""
    html = dossier.lot_dossier_html(lot=released)
    whole = HTML(string=html, url_fetcher=dossier._no_fetching).write_pdf()
    assert html_to_pdf(html, url_fetcher=dossier._no_fetching) == whole
