"""The recall evidence pack: one ZIP with the report, the CSVs and the signatures, whose manifest
proves every file whole; scoped like every recall read; never a patient's contact details."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from pypdf import PdfReader
from rest_framework.test import APIClient

from recalls.evidence import (
    ACKNOWLEDGEMENT_COLUMNS,
    CONTACT_ATTEMPT_COLUMNS,
    DISPOSITION_COLUMNS,
    ELECTRONIC_SIGNATURE_COLUMNS,
    SIGNATURE_COLUMNS,
)
from recalls.reports import EXPOSURE_COLUMNS, NOTICE_COLUMNS
from recalls.services import (
    recall_acknowledge,
    recall_close,
    recall_contact_attempt_record,
    recall_disposition_record,
)
from tests.admin_helpers import admin_client
from tests.api_helpers import API, error_codes
from tests.factories import PASSWORD, PatientFactory, clinic_ready, receive, released_lot, treat
from tests.recalls.scenario import build_world, mark_sent, open_recall
from treatments.models import Patient

pytestmark = pytest.mark.django_db

CONTACT_DATA = ("Alice Anders", "Arthur Ames", "Bella Berg", "555 0100", "patient.example")
FILES = {
    "report.pdf",
    "exposures.csv",
    "notices.csv",
    "acknowledgements.csv",
    "dispositions.csv",
    "contact-attempts.csv",
    "signatures.csv",
    "electronic-signatures.csv",
    "manifest.json",
    "SHA256SUMS",
}


@pytest.fixture
def world(quality_manager):
    return build_world(quality_manager)


@pytest.fixture
def recall(world):
    recall = open_recall(world)
    mark_sent(recall)
    recall_acknowledge(recall=recall, clinic=world.a.clinic, via="api", actor=world.a.administrator)
    recall_disposition_record(
        recall=recall,
        clinic=world.a.clinic,
        lot=world.lot,
        kind="destroyed",
        quantity=2,
        actor=world.a.administrator,
    )
    recall_contact_attempt_record(
        recall=recall,
        patient=world.a1,
        outcome="reached",
        note="Called Alice Anders on +1 512 555 0100",
        actor=world.a.clinician,
    )
    return recall


def client_for(user) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def pack(user, recall) -> dict[str, bytes]:
    response = client_for(user).get(f"{API}/recalls/{recall.pk}/evidence.zip")
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/zip"
    assert f'filename="{recall.reference}-evidence.zip"' in response["Content-Disposition"]
    body = b"".join(response.streaming_content)
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert archive.testzip() is None
        files = {}
        for name in archive.namelist():
            folder, _, short = name.partition("/")
            assert folder == recall.reference
            files[short] = archive.read(name)
    return files


def rows(files: dict[str, bytes], name: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(files[name].decode())))


def pdf_text(pdf: bytes) -> str:
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    return " ".join(text.split())


def test_the_pack_holds_every_file_and_its_manifest_proves_each_whole(world, recall):
    files = pack(world.quality_manager, recall)

    assert set(files) == FILES
    manifest = json.loads(files["manifest.json"])
    assert manifest["recall"] == recall.reference
    assert manifest["scope"] == "all clinics"
    assert manifest["generated_by"] == "Quinn Manager"
    listed = {item["name"]: item for item in manifest["files"]}
    assert set(listed) == FILES - {"manifest.json", "SHA256SUMS"}
    for name, item in listed.items():
        assert item["sha256"] == hashlib.sha256(files[name]).hexdigest()
        assert item["bytes"] == len(files[name])
    sums = dict(reversed(line.split("  ", 1)) for line in files["SHA256SUMS"].decode().splitlines())
    assert sums == {name: item["sha256"] for name, item in listed.items()}


def test_the_pack_carries_the_report_and_each_record_of_the_recall(world, recall, auditor):
    recall_close(
        recall=recall, actor=world.quality_manager, password=PASSWORD, reason="Done", override=True
    )
    files = pack(auditor, recall)

    text = pdf_text(files["report.pdf"])
    assert recall.reference in text and world.lot.lot_number in text
    exposures = rows(files, "exposures.csv")
    assert list(exposures[0]) == EXPOSURE_COLUMNS
    assert sorted(row["patient_reference"] for row in exposures) == sorted(
        [world.a1.reference, world.a2.reference, world.b1.reference]
    )
    assert list(rows(files, "notices.csv")[0]) == NOTICE_COLUMNS
    [acknowledgement] = rows(files, "acknowledgements.csv")
    assert list(acknowledgement) == ACKNOWLEDGEMENT_COLUMNS
    assert acknowledgement["clinic"] == world.a.clinic.name
    [disposition] = rows(files, "dispositions.csv")
    assert list(disposition) == DISPOSITION_COLUMNS
    assert (disposition["kind"], disposition["quantity"]) == ("destroyed", "2")
    [attempt] = rows(files, "contact-attempts.csv")
    assert list(attempt) == CONTACT_ATTEMPT_COLUMNS
    assert (attempt["patient_reference"], attempt["outcome"]) == (world.a1.reference, "reached")
    signatures = rows(files, "signatures.csv")
    assert list(signatures[0]) == SIGNATURE_COLUMNS
    acts = [row["act"] for row in signatures]
    assert acts[0] == "open" and acts[-1] == "close_override"
    assert "lot_status_change" in acts
    assert signatures[0]["digest"] == recall.opened_signature_digest
    assert signatures[-1]["reason"] == "Done"
    signed = rows(files, "electronic-signatures.csv")
    assert list(signed[0]) == ELECTRONIC_SIGNATURE_COLUMNS
    assert {row["subject"] for row in signed} == {f"recalls.recall:{recall.pk}"}
    assert len(signed) == 2  # opening and closing
    assert all(len(row["content_sha256"]) == 64 for row in signed)


def test_no_file_of_the_pack_carries_a_patients_contact_details(world, recall):
    files = pack(world.quality_manager, recall)

    texts = {name: content.decode() for name, content in files.items() if name != "report.pdf"}
    texts["report.pdf"] = pdf_text(files["report.pdf"])
    for name, text in texts.items():
        for secret in CONTACT_DATA:
            assert secret not in text, name


def test_clinic_staff_get_the_pack_of_their_own_clinic(world, recall):
    files = pack(world.b.administrator, recall)

    assert json.loads(files["manifest.json"])["scope"] == {"clinic_ids": [world.b.clinic.pk]}
    assert [row["patient_reference"] for row in rows(files, "exposures.csv")] == [
        world.b1.reference
    ]
    assert {row["clinic"] for row in rows(files, "notices.csv")} == {world.b.clinic.name}
    assert rows(files, "acknowledgements.csv") == []
    assert rows(files, "dispositions.csv") == []
    assert rows(files, "contact-attempts.csv") == []
    assert world.a.clinic.name not in pdf_text(files["report.pdf"])


def test_who_may_download_the_pack(world, recall, auditor):
    url = f"{API}/recalls/{recall.pk}/evidence.zip"
    elsewhere = clinic_ready()

    assert client_for(world.quality_manager).get(url).status_code == 200
    assert client_for(auditor).get(url).status_code == 200
    assert client_for(world.a.administrator).get(url).status_code == 200
    not_reached = client_for(elsewhere.administrator).get(url)
    assert not_reached.status_code == 404 and error_codes(not_reached) == ["not_found"]
    anonymous = client_for(None).get(url)
    assert anonymous.status_code in (401, 403)
    assert error_codes(anonymous) == ["not_authenticated"]


def test_csv_cells_of_the_pack_a_spreadsheet_would_run_are_quoted(world, recall):
    Patient.objects.filter(pk=world.b1.pk).update(reference="=1+2")
    files = pack(world.quality_manager, recall)
    references = {row["patient_reference"] for row in rows(files, "exposures.csv")}
    assert "'=1+2" in references and "=1+2" not in references


def test_the_pack_reads_a_fixed_number_of_queries_whatever_the_recall_size(world, recall):
    def queries_for(recall) -> int:
        with CaptureQueriesContext(connection) as captured:
            pack(world.quality_manager, recall)
        return len(captured)

    small = queries_for(recall)
    lot = released_lot(created_by=world.quality_manager)
    receive(world.a, lot, 30)
    patients = [PatientFactory(clinic=world.a.clinic) for _ in range(25)]
    for patient in patients:
        treat(world.a, lot, 1, patient=patient)
    larger = open_recall(world, lots=[lot])
    mark_sent(larger)
    recall_acknowledge(recall=larger, clinic=world.a.clinic, via="api", actor=world.a.administrator)
    for patient in patients[:10]:
        recall_contact_attempt_record(
            recall=larger, patient=patient, outcome="unreachable", actor=world.a.clinician
        )
    recall_disposition_record(
        recall=larger,
        clinic=world.a.clinic,
        lot=lot,
        kind="returned",
        quantity=5,
        actor=world.a.administrator,
    )
    assert queries_for(larger) == small


def test_the_recall_page_links_the_pack_and_the_admin_session_downloads_it(world, recall):
    client = admin_client(world.a.administrator)
    page = client.get(reverse("admin:recalls_recall_change", args=[recall.pk]))

    url = f"{API}/recalls/{recall.pk}/evidence.zip"
    assert f'href="{url}" id="recall-evidence-zip"' in page.content.decode()
    download = client.get(url)
    assert download.status_code == 200 and download["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content))) as archive:
        manifest = json.loads(archive.read(f"{recall.reference}/manifest.json"))
    assert manifest["scope"] == {"clinic_ids": [world.a.clinic.pk]}
