"""Evidence: the exposures and notices CSV (streamed, one query) and the PDF recall report (never
patient contact details)."""

from __future__ import annotations

import csv
import datetime
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from pypdf import PdfReader
from rest_framework.test import APIClient
from weasyprint import HTML  # type: ignore[import-untyped]

from common.csv import csv_lines
from common.pdf import html_to_pdf
from lots.models import Lot, Product
from providers.models import Clinic, Practitioner
from recalls import reports
from recalls.models import Notification, NotificationStatus
from recalls.reports import EXPOSURE_COLUMNS, NOTICE_COLUMNS, duration_text, recall_report_pdf
from recalls.selectors import exposure_list, notification_list
from recalls.services import (
    RecallScopeRequest,
    recall_acknowledge,
    recall_close,
    recall_disposition_record,
    recall_widen,
)
from tests.api_helpers import API, error_codes
from tests.factories import PASSWORD, PatientFactory, receive, released_lot, treat
from tests.recalls.scenario import build_world, mark_sent, open_recall
from treatments.models import Patient

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(quality_manager):
    return build_world(quality_manager)


@pytest.fixture
def recall(world):
    return open_recall(world)


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def csv_rows(response) -> list[dict[str, str]]:
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def pdf_text(pdf: bytes) -> str:
    assert pdf.startswith(b"%PDF-")
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    return " ".join(text.split())  # table cells wrap: compare words, not line breaks


# ---------------------------------------------------------------------------------------------
# CSV


def test_the_exposures_csv_streams_one_line_per_exposure(world, recall):
    response = client_for(world.quality_manager).get(f"{API}/recalls/{recall.pk}/exposures.csv")
    assert f'filename="{recall.reference}-exposures.csv"' in response["Content-Disposition"]
    rows = csv_rows(response)

    assert list(rows[0]) == EXPOSURE_COLUMNS
    assert sorted(row["patient_reference"] for row in rows) == sorted(
        [world.a1.reference, world.a2.reference, world.b1.reference]
    )
    first = next(row for row in rows if row["patient_reference"] == world.a1.reference)
    assert first["recall"] == recall.reference
    assert first["lot_number"] == world.lot.lot_number
    assert first["units"] == "2"
    assert first["clinic"] == world.a.clinic.name
    assert datetime.datetime.fromisoformat(first["performed_at"]).tzinfo is not None


def test_the_exposures_csv_never_carries_contact_details_and_is_scoped(world, recall):
    response = client_for(world.b.clinician).get(f"{API}/recalls/{recall.pk}/exposures.csv")
    text = b"".join(response.streaming_content).decode()
    assert "Alice" not in text and "Bella" not in text and "555 0100" not in text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [row["patient_reference"] for row in rows] == [world.b1.reference]


def test_the_exposures_csv_reads_the_rows_in_a_fixed_number_of_queries(world, recall):
    client = client_for(world.quality_manager)

    def queries_for_download() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as captured:
            rows = csv_rows(client.get(f"{API}/recalls/{recall.pk}/exposures.csv"))
        return len(captured), len(rows)

    queries, rows = queries_for_download()
    assert rows == 3
    lot = released_lot(created_by=world.quality_manager)
    receive(world.a, lot, 20)
    for _ in range(20):
        treat(world.a, lot, 1, patient=PatientFactory(clinic=world.a.clinic))
    recall_widen(
        actor=world.quality_manager,
        password=PASSWORD,
        recall=recall,
        scope=RecallScopeRequest(lot_ids=[lot.pk]),
        reason="more",
    )
    assert queries_for_download() == (queries, 23)


def test_the_notices_csv_lists_each_notice_with_its_status(world, recall):
    mark_sent(recall, clinic=world.a.clinic)
    Notification.objects.filter(recall=recall, clinic=world.b.clinic).update(
        status=NotificationStatus.FAILED, attempts=5, last_error="550 no such mailbox"
    )
    recall_acknowledge(recall=recall, clinic=world.a.clinic, via="api", actor=world.a.administrator)

    rows = csv_rows(client_for(world.quality_manager).get(f"{API}/recalls/{recall.pk}/notices.csv"))

    assert list(rows[0]) == NOTICE_COLUMNS
    by_clinic = {row["clinic"]: row for row in rows}
    sent, failed = by_clinic[world.a.clinic.name], by_clinic[world.b.clinic.name]
    assert (sent["status"], sent["channel"]) == ("sent", "email")
    assert sent["sent_at"] and sent["clinic_acknowledged_at"]
    assert (failed["status"], failed["attempts"], failed["last_error"]) == (
        "failed",
        "5",
        "550 no such mailbox",
    )
    assert failed["clinic_acknowledged_at"] == ""

    own = csv_rows(client_for(world.a.clinician).get(f"{API}/recalls/{recall.pk}/notices.csv"))
    assert [row["clinic"] for row in own] == [world.a.clinic.name]


def test_csv_cells_a_spreadsheet_would_run_as_formulas_are_quoted(world, recall):
    Notification.objects.filter(recall=recall).update(last_error='=HYPERLINK("x")')
    rows = csv_rows(client_for(world.quality_manager).get(f"{API}/recalls/{recall.pk}/notices.csv"))
    assert {row["last_error"] for row in rows} == {'\'=HYPERLINK("x")'}


def test_an_unknown_recall_has_no_csv_and_answers_json(qm_client):
    response = qm_client.get(f"{API}/recalls/987654/exposures.csv", HTTP_ACCEPT="text/csv")
    assert response.status_code == 404
    assert error_codes(response) == ["not_found"]


# ---------------------------------------------------------------------------------------------
# PDF


def test_the_report_pdf_names_the_recall_and_never_a_patients_contact_details(world, recall):
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

    response = client_for(world.quality_manager).get(f"{API}/recalls/{recall.pk}/report.pdf")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    text = pdf_text(response.content)
    assert recall.reference in text
    assert "URGENT" in text
    assert "Endotoxin above specification" in text and "Fever, sepsis" in text
    assert world.lot.lot_number in text
    assert world.a.clinic.name in text and world.b.clinic.name in text
    assert "not acknowledged" in text
    assert "Destroyed" in text
    assert "Level" in text and "C" in text
    for secret in ("Alice Anders", "Arthur Ames", "Bella Berg", "555 0100", "patient.example"):
        assert secret not in text
    for reference in (world.a1.reference, world.b1.reference):
        assert reference not in text


def test_clinic_staff_get_a_report_of_their_own_clinic(world, recall):
    response = client_for(world.b.administrator).get(f"{API}/recalls/{recall.pk}/report.pdf")
    text = pdf_text(response.content)
    assert world.b.clinic.name in text
    assert world.a.clinic.name not in text


def test_a_closed_drill_report_carries_the_timing_report(world):
    drill = open_recall(world, is_drill=True)
    mark_sent(drill, at=drill.opened_at + datetime.timedelta(minutes=2))
    for ready, held in ((world.a, 2), (world.b, 3)):
        recall_acknowledge(recall=drill, clinic=ready.clinic, via="api", actor=ready.administrator)
        recall_disposition_record(
            recall=drill,
            clinic=ready.clinic,
            lot=world.lot,
            kind="returned",
            quantity=held,
            actor=ready.administrator,
        )
    recall_close(recall=drill, actor=world.quality_manager, password=PASSWORD, reason="Drill over")
    drill.refresh_from_db()

    text = pdf_text(recall_report_pdf(recall=drill))

    assert drill.reference in text
    assert "DRILL" in text
    assert "Drill timing report" in text
    assert "All notices sent" in text and "2 min 00 s" in text
    assert "All clinics acknowledged" in text
    assert "Closed" in text


def test_durations_read_as_a_person_would_write_them():
    assert duration_text(None) == ""
    assert duration_text(75) == "1 min 15 s"
    assert duration_text(2 * 3600 + 5 * 60) == "2 h 05 min"
    assert duration_text(3 * 86400 + 4 * 3600 + 60) == "3 d 04 h 01 min"


# The exposures CSV as the Python writer wrote it before PostgreSQL wrote it (COPY): one row per
# exposure through csv_cell and csv.writer. The download must keep these bytes.
def exposures_written_by_python(recall, clinic_ids) -> bytes:
    return "".join(
        csv_lines(
            EXPOSURE_COLUMNS,
            (
                [
                    recall.reference,
                    exposure.round,
                    exposure.clinic_id,
                    exposure.clinic.name,
                    exposure.patient_id,
                    exposure.patient.reference,
                    exposure.treatment_id,
                    exposure.treatment_line_id,
                    exposure.performed_at,
                    exposure.practitioner.name,
                    exposure.lot_id,
                    exposure.lot.lot_number,
                    exposure.lot.product.name,
                    exposure.units,
                ]
                for exposure in exposure_list(recall=recall, clinic_ids=clinic_ids)
            ),
        )
    ).encode()


def test_the_exposures_csv_is_byte_for_byte_what_the_python_writer_wrote(world):
    # Given free text a spreadsheet would run, quotes, commas, line breaks and non-ASCII in every
    # named column, an empty name, and times with and without a fraction of a second in a
    # session that is not on UTC
    Clinic.objects.filter(pk=world.a.clinic.pk).update(name='=cmd|" /C calc"!A0, Zürich')
    Clinic.objects.filter(pk=world.b.clinic.pk).update(name='Praxis "Mitte"\nNord — 東京')
    Patient.objects.filter(pk=world.a1.pk).update(reference="+1")
    Patient.objects.filter(pk=world.a2.pk).update(reference="-2")
    Patient.objects.filter(pk=world.b1.pk).update(reference="@x")
    Practitioner.objects.filter(pk=world.a.practitioner.pk).update(name="\tDr. O'Brien, Jr.")
    Practitioner.objects.filter(pk=world.b.practitioner.pk).update(name="")
    Lot.objects.filter(pk=world.lot.pk).update(lot_number="=1+2")
    Product.objects.filter(pk=world.lot.product_id).update(name='Serum "A", 5 ml\r\nß')
    second = released_lot(created_by=world.quality_manager, lot_number="\rLOT")
    receive(world.b, second, 5)
    today = timezone.now().replace(hour=0, minute=30, second=5)
    with_fraction = (today - datetime.timedelta(days=2)).replace(microsecond=120)
    whole = (today - datetime.timedelta(days=1)).replace(microsecond=0)
    in_berlin = whole.astimezone(datetime.timezone(datetime.timedelta(hours=2)))
    treat(
        world.b,
        second,
        2,
        patient=PatientFactory(clinic=world.b.clinic),
        performed_at=with_fraction,
    )
    treat(world.b, [world.lot, second], 1, performed_at=in_berlin)
    recall = open_recall(world, lots=[world.lot, second])
    with connection.cursor() as cursor:
        cursor.execute("SET TIME ZONE 'America/New_York'")

    # When the network and one clinic download the exposures
    with CaptureQueriesContext(connection) as statements:
        network = client_for(world.quality_manager).get(f"{API}/recalls/{recall.pk}/exposures.csv")
        content = b"".join(network.streaming_content)
        # Read now: the next request empties the log the capture reads from.
        sent = [query["sql"] for query in statements.captured_queries]
    clinic = client_for(world.b.clinician).get(f"{API}/recalls/{recall.pk}/exposures.csv")

    # Then PostgreSQL wrote the rows, and each download is what the Python writer wrote for the
    # same scope
    assert [statement.startswith("COPY (SELECT ") for statement in sent].count(True) == 1
    assert content == exposures_written_by_python(recall, None)
    assert b"".join(clinic.streaming_content) == exposures_written_by_python(
        recall, [world.b.clinic.pk]
    )
    assert len(list(csv.reader(io.StringIO(content.decode(), newline="")))) == 1 + 6
    for guarded in (b"'=cmd", b",'+1,", b",'-2,", b",'@x,", b"'\tDr.", b"'=1+2", b"'\rLOT"):
        assert guarded in content
    assert f"{with_fraction:%Y-%m-%dT%H:%M:%S}.000120+00:00".encode() in content
    assert f"{whole:%Y-%m-%dT%H:%M:%S}+00:00,".encode() in content
    assert "Zürich".encode() in content and "東京".encode() in content


def test_the_report_renders_as_with_weasyprints_whole_stylesheet(world, recall):
    """common.pdf leaves out the footnote rules, which the report never uses: same bytes."""
    mark_sent(recall)
    html = reports.recall_report_html(recall=recall, clinic_ids=None)
    whole = HTML(string=html, url_fetcher=reports._no_fetching).write_pdf()
    assert html_to_pdf(html, url_fetcher=reports._no_fetching) == whole


def test_the_report_lists_at_most_so_many_notices_and_says_where_the_rest_are(
    world, recall, monkeypatch
):
    mark_sent(recall)
    every = list(notification_list(recall=recall, clinic_ids=None))
    assert len(every) > 1
    monkeypatch.setattr(reports, "REPORT_NOTICES", len(every) - 1)

    context = reports.recall_report_context(recall=recall, clinic_ids=None)
    assert context["notices"] == every[:-1]
    text = pdf_text(recall_report_pdf(recall=recall))
    assert f"The first {len(every) - 1} of {len(every)} notices" in text

    monkeypatch.setattr(reports, "REPORT_NOTICES", len(every))
    assert reports.recall_report_context(recall=recall, clinic_ids=None)["notices"] == every
    assert "notices CSV" not in pdf_text(recall_report_pdf(recall=recall))
