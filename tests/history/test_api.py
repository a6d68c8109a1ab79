"""The history-import API: an upload queues a job a worker runs; the job shows its progress and
report; clinic administrators import for their clinic, auditors read only, and a clinic never
sees another clinic's imports."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from history.models import HistoryImport, ImportStatus
from tests.factories import clinic_ready
from tests.history.conftest import csv_bytes, days_ago, treatment_row
from tests.recalls.conftest import wait_until
from treatments.models import Treatment

URL = "/api/v1/history-imports/"


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def upload(client, ready, rows, *, dry_run=False, kind="treatments"):
    return client.post(
        URL,
        {
            "kind": kind,
            "clinic": ready.clinic.pk,
            "dry_run": "true" if dry_run else "false",
            "file": SimpleUploadedFile("chart.csv", csv_bytes(rows), "text/csv"),
        },
        format="multipart",
    )


@pytest.fixture
def queued(django_capture_on_commit_callbacks, eager_celery):
    """Run what an upload queues once it commits, here and now."""

    def post(*args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return upload(*args, **kwargs)

    return post


@pytest.mark.django_db
def test_an_upload_is_queued_run_and_its_job_shows_the_outcome(ready, lot, queued):
    client = client_for(ready.administrator)
    rows = [treatment_row(ready, lot, patient=f"EMR-{n}") for n in range(3)]
    response = queued(client, ready, rows)
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["kind"] == "treatments" and body["clinic"]["id"] == ready.clinic.pk
    assert body["uploaded_by"] == ready.administrator.username and body["file_name"] == "chart.csv"

    job = client.get(f"{URL}{body['id']}/").json()
    assert job["status"] == ImportStatus.DONE
    assert (job["rows_total"], job["rows_done"], job["rows_written"]) == (3, 3, 3)
    assert job["report"] == [] and job["finished_at"] is not None
    assert Treatment.objects.filter(clinic=ready.clinic).count() == 3


@pytest.mark.django_db
def test_a_refused_import_reports_every_problem_and_writes_nothing(ready, lot, queued):
    client = client_for(ready.administrator)
    rows = [
        treatment_row(ready, lot),
        treatment_row(ready, lot, performed_at=days_ago(5).isoformat()),
    ]
    body = queued(client, ready, rows).json()
    job = client.get(f"{URL}{body['id']}/").json()
    assert job["status"] == ImportStatus.REFUSED and job["rows_written"] == 0
    assert [(p["line"], p["column"], p["code"]) for p in job["report"]] == [
        (3, "lot_number", "lot_expired"),
        (3, "practitioner", "practitioner_not_licensed"),
    ]
    assert Treatment.objects.count() == 0


@pytest.mark.django_db
def test_a_dry_run_job_writes_nothing(ready, lot, queued):
    client = client_for(ready.administrator)
    body = queued(client, ready, [treatment_row(ready, lot)], dry_run=True).json()
    job = client.get(f"{URL}{body['id']}/").json()
    assert (job["status"], job["dry_run"], job["rows_written"]) == (ImportStatus.DONE, True, 0)
    assert Treatment.objects.count() == 0


@pytest.mark.django_db
def test_a_malformed_file_is_a_refused_job_not_an_error(
    ready, eager_celery, django_capture_on_commit_callbacks
):
    client = client_for(ready.administrator)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            URL,
            {
                "kind": "treatments",
                "clinic": ready.clinic.pk,
                "file": SimpleUploadedFile("chart.csv", b"\xff\xfe\x00garbage", "text/csv"),
            },
            format="multipart",
        )
    assert response.status_code == 202
    job = client.get(f"{URL}{response.json()['id']}/").json()
    assert job["status"] == ImportStatus.REFUSED
    assert [p["code"] for p in job["report"]] == ["encoding_invalid"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"kind": "donors"}, "kind"),
        ({"clinic": 999999}, "clinic"),
        ({"file": None}, "file"),
    ],
)
def test_a_bad_upload_is_refused_naming_the_field(ready, lot, fields, field):
    data = {
        "kind": "treatments",
        "clinic": ready.clinic.pk,
        "file": SimpleUploadedFile("chart.csv", csv_bytes([treatment_row(ready, lot)])),
    }
    data.update(fields)
    data = {name: value for name, value in data.items() if value is not None}
    response = client_for(ready.administrator).post(URL, data, format="multipart")
    assert response.status_code == 400
    assert [error["field"] for error in response.json()["errors"]] == [field]
    assert not HistoryImport.objects.exists()


@pytest.mark.django_db
def test_only_the_clinics_administrators_import(ready, lot, auditor, quality_manager):
    other = clinic_ready()
    for user in (ready.clinician, auditor, quality_manager, other.administrator):
        response = upload(client_for(user), ready, [treatment_row(ready, lot)])
        assert response.status_code == 403, (user, response.content)
        assert response.json()["errors"][0]["code"] == "role_required"
    assert not HistoryImport.objects.exists()
    assert (
        upload(client_for(ready.administrator), ready, [treatment_row(ready, lot)]).status_code
        == 202
    )


@pytest.mark.django_db
def test_a_clinic_never_sees_another_clinics_imports(ready, lot, auditor, quality_manager):
    mine = upload(client_for(ready.administrator), ready, [treatment_row(ready, lot)]).json()
    other = clinic_ready()
    outsider = client_for(other.administrator)
    assert outsider.get(URL).json()["results"] == []
    assert outsider.get(f"{URL}{mine['id']}/").status_code == 404
    assert client_for(ready.clinician).get(URL).json()["results"] == []
    for reader in (ready.administrator, auditor, quality_manager):
        listed = client_for(reader).get(URL).json()["results"]
        assert [job["id"] for job in listed] == [mine["id"]]
        assert client_for(reader).get(f"{URL}{mine['id']}/").status_code == 200


@pytest.mark.django_db
def test_the_list_reads_a_fixed_number_of_statements(ready, lot):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = client_for(ready.administrator)

    def statements() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(URL).status_code == 200
        return len(queries)

    upload(client, ready, [treatment_row(ready, lot)])
    one = statements()
    for _n in range(4):
        upload(client, ready, [treatment_row(ready, lot)])
    assert statements() == one


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_the_import(reference_data, ready, lot, celery_worker):
    celery_worker.start()
    client = client_for(ready.administrator)
    rows = [treatment_row(ready, lot, patient=f"EMR-{n}") for n in range(50)]
    job_id = upload(client, ready, rows).json()["id"]
    job = wait_until(
        lambda: (body := client.get(f"{URL}{job_id}/").json())["finished_at"] and body,
        what="the worker to finish the import",
    )
    assert (job["status"], job["rows_written"]) == (ImportStatus.DONE, 50)
    assert Treatment.objects.filter(clinic=ready.clinic).count() == 50


@pytest.mark.django_db
def test_quality_managers_import_lots_which_only_network_roles_see(ready, quality_manager, auditor):
    from lots.models import Lot
    from tests.factories import ProductFactory

    product = ProductFactory()
    row = {
        "product": product.pk,
        "lot_number": "OLD-2023-001",
        "manufactured_on": "2023-01-10",
        "expires_on": "2024-01-10",
        "quantity": 200,
        "unit": "vial",
        "regulatory_basis": "none",
    }

    def post(user, **fields):
        data = {"kind": "lots", "file": SimpleUploadedFile("lots.csv", csv_bytes([row]))}
        data.update(fields)
        return client_for(user).post(URL, data, format="multipart")

    assert post(ready.administrator).status_code == 403
    refused = post(quality_manager, clinic=ready.clinic.pk)
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["code"] == "clinic_not_applicable"

    response = post(quality_manager)
    assert response.status_code == 202 and response.json()["clinic"] is None
    job_id = response.json()["id"]
    assert [job["id"] for job in client_for(auditor).get(URL).json()["results"]] == [job_id]
    assert client_for(ready.administrator).get(f"{URL}{job_id}/").status_code == 404
    assert not Lot.objects.filter(lot_number="OLD-2023-001").exists()  # queued, not yet run

    from history.services import history_import_run

    assert history_import_run(job_id) == ImportStatus.DONE
    assert Lot.objects.get(lot_number="OLD-2023-001").created_by == quality_manager


@pytest.mark.django_db
def test_treatments_and_receipts_name_their_clinic(ready, lot):
    response = client_for(ready.administrator).post(
        URL,
        {
            "kind": "receipts",
            "file": SimpleUploadedFile("receipts.csv", csv_bytes([treatment_row(ready, lot)])),
        },
        format="multipart",
    )
    assert response.status_code == 400
    assert [(e["code"], e["field"]) for e in response.json()["errors"]] == [("required", "clinic")]
