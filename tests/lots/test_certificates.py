"""Certificates through `lots.services.certificate_upload`: the PDF is proven, hashed and stored
under its SHA-256, never overwritten; corrections supersede, never replace."""

from __future__ import annotations

import datetime
import hashlib
import io
import os
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone
from pghistory.models import Events
from pypdf import PdfWriter

from common.errors import DomainError
from lots.models import Certificate, CertificateKind
from lots.services import certificate_upload
from tests.factories import LotFactory, ManufacturerFactory, pdf_bytes

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]

TODAY = datetime.date(2026, 6, 1)
PNG_HEADER = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06"


def upload_coa(actor, lot, content: bytes, **overrides) -> Certificate:
    arguments = {
        "actor": actor,
        "kind": CertificateKind.COA,
        "issuer": "Contract QC laboratory",
        "number": "COA-0001",
        "valid_from": TODAY,
        "file": io.BytesIO(content),
        "filename": "coa.pdf",
        "lot": lot,
    }
    arguments.update(overrides)
    return certificate_upload(**arguments)


def upload_gmp(actor, manufacturer, content: bytes, **overrides) -> Certificate:
    arguments = {
        "actor": actor,
        "kind": CertificateKind.GMP,
        "issuer": "Regierungspräsidium Tübingen",
        "number": "DE-BW-01-GMP-2026-0001",
        "valid_from": TODAY,
        "valid_until": TODAY + datetime.timedelta(days=3 * 365),
        "file": io.BytesIO(content),
        "filename": "gmp.pdf",
        "manufacturer": manufacturer,
    }
    arguments.update(overrides)
    return certificate_upload(**arguments)


def refusal(upload) -> DomainError:
    rows_before = Certificate.objects.count()
    with pytest.raises(DomainError) as caught:
        upload()
    assert Certificate.objects.count() == rows_before
    return caught.value


def stored_files() -> list[Path]:
    root = Path(default_storage.location)
    return sorted(path for path in root.rglob("*") if path.is_file())


@pytest.fixture
def lot(db):
    return LotFactory()


# ---------------------------------------------------------------------------------------------
# What is stored


def test_certificate_upload_stores_the_pdf_with_its_sha256_and_size(quality_manager, lot):
    content = pdf_bytes("CoA for EXO-1")

    certificate = upload_coa(quality_manager, lot, content, filename="EXO-1 CoA.pdf")

    certificate.refresh_from_db()
    sha256 = hashlib.sha256(content).hexdigest()
    assert certificate.sha256 == sha256
    assert certificate.size_bytes == len(content)
    assert certificate.file.name == f"certificates/{sha256[:2]}/{sha256}.pdf"
    assert certificate.original_filename == "EXO-1 CoA.pdf"
    assert certificate.uploaded_by == quality_manager
    assert certificate.manufacturer == lot.manufacturer
    with certificate.file.open("rb") as stored:
        assert hashlib.sha256(stored.read()).hexdigest() == certificate.sha256


def test_certificate_upload_of_the_same_content_reuses_the_stored_file(quality_manager, lot):
    # given a stored CoA
    content = pdf_bytes("shared CoA")
    first = upload_coa(quality_manager, lot, content)
    path = Path(default_storage.path(first.file.name))
    written_at = os.stat(path).st_mtime_ns

    # when the same bytes are uploaded for another lot
    second = upload_coa(quality_manager, LotFactory(), content, number="COA-0002")

    # then both rows point at the one file, which was not written again
    assert second.file.name == first.file.name
    assert stored_files() == [path]
    assert os.stat(path).st_mtime_ns == written_at
    assert hashlib.sha256(path.read_bytes()).hexdigest() == first.sha256 == second.sha256


def test_certificate_upload_never_overwrites_a_file_with_other_content(quality_manager, lot):
    first = upload_coa(quality_manager, lot, pdf_bytes("first"))
    second = upload_coa(quality_manager, LotFactory(), pdf_bytes("second"), number="COA-2")

    assert first.file.name != second.file.name
    for certificate in (first, second):
        with certificate.file.open("rb") as stored:
            assert hashlib.sha256(stored.read()).hexdigest() == certificate.sha256


def test_certificate_upload_writes_a_history_event_with_the_actor(quality_manager, lot):
    certificate = upload_coa(quality_manager, lot, pdf_bytes())

    event = Events.objects.get(pgh_obj_model="lots.Certificate", pgh_obj_id=str(certificate.pk))

    assert event.pgh_label == "insert"
    assert event.pgh_context["user"] == quality_manager.pk
    assert event.pgh_context["reason"] == "certificate uploaded"


# ---------------------------------------------------------------------------------------------
# Only real PDFs, within the limit


def _encrypted_pdf() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.encrypt("secret")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def _pdf_without_pages() -> bytes:
    buffer = io.BytesIO()
    PdfWriter().write(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"Certificate of analysis\nLot EXO-1: PASS\n", id="plain text"),
        pytest.param(PNG_HEADER + b"\x00" * 200, id="png"),
        pytest.param(b"%PDF-1.7\nthis is not really a pdf at all\n", id="pdf header, garbage"),
        pytest.param(b"%PDF-", id="pdf header only"),
        pytest.param(pdf_bytes()[:200], id="truncated pdf"),
        # pypdf raised AttributeError (not one of its own errors) on this one-byte corruption.
        pytest.param(pdf_bytes().replace(b"trailer\n<<", b"trailer8<<"), id="damaged pdf trailer"),
        pytest.param(_encrypted_pdf(), id="encrypted pdf"),
        pytest.param(_pdf_without_pages(), id="pdf without pages"),
    ],
)
def test_certificate_upload_refuses_a_file_that_is_not_a_readable_pdf(
    quality_manager, lot, content
):
    error = refusal(lambda: upload_coa(quality_manager, lot, content))

    assert error.status == 400
    assert error.codes == ["certificate_not_pdf"]
    assert error.problems[0].field == "file"
    assert stored_files() == []


def test_certificate_upload_refuses_an_empty_file(quality_manager, lot):
    error = refusal(lambda: upload_coa(quality_manager, lot, b""))

    assert error.codes == ["certificate_empty"]
    assert error.status == 400


def test_certificate_upload_refuses_a_file_over_the_size_limit(settings, quality_manager, lot):
    content = pdf_bytes()
    settings.CERTIFICATE_MAX_BYTES = len(content) - 1

    error = refusal(lambda: upload_coa(quality_manager, lot, content))

    assert error.codes == ["certificate_too_large"]
    assert f"{len(content) - 1} bytes" in error.problems[0].message
    assert stored_files() == []


def test_certificate_upload_allows_a_file_exactly_at_the_size_limit(settings, quality_manager, lot):
    content = pdf_bytes()
    settings.CERTIFICATE_MAX_BYTES = len(content)

    certificate = upload_coa(quality_manager, lot, content)

    assert certificate.size_bytes == len(content)


def test_size_limit_message_names_whole_mebibytes(settings, quality_manager, lot):
    settings.CERTIFICATE_MAX_BYTES = 1024 * 1024
    content = b"%PDF-1.7\n" + b"0" * (1024 * 1024)

    error = refusal(lambda: upload_coa(quality_manager, lot, content))

    assert "1 MiB" in error.problems[0].message


def test_certificate_upload_refuses_a_user_who_is_not_a_quality_manager(clinician, lot):
    error = refusal(lambda: upload_coa(clinician, lot, pdf_bytes()))

    assert error.status == 403
    assert error.codes == ["role_required"]


# ---------------------------------------------------------------------------------------------
# What each kind needs


def test_certificate_of_analysis_needs_a_lot(quality_manager):
    error = refusal(
        lambda: upload_coa(quality_manager, None, pdf_bytes(), manufacturer=ManufacturerFactory())
    )

    assert error.codes == ["certificate_lot_required"]
    assert error.problems[0].field == "lot"


@pytest.mark.parametrize("kind", [CertificateKind.GMP, CertificateKind.ISO_13485])
def test_manufacturer_certificate_needs_a_manufacturer_and_no_lot(quality_manager, lot, kind):
    without = refusal(lambda: upload_gmp(quality_manager, None, pdf_bytes(), kind=kind))
    with_lot = refusal(
        lambda: upload_gmp(quality_manager, lot.manufacturer, pdf_bytes(), kind=kind, lot=lot)
    )

    assert without.codes == with_lot.codes == ["certificate_manufacturer_required"]


def test_gmp_certificate_needs_a_valid_until_date(quality_manager):
    error = refusal(
        lambda: upload_gmp(quality_manager, ManufacturerFactory(), pdf_bytes(), valid_until=None)
    )

    assert error.codes == ["certificate_validity_required"]
    assert error.problems[0].field == "valid_until"


def test_gmp_certificate_valid_until_before_valid_from_is_refused(quality_manager):
    error = refusal(
        lambda: upload_gmp(
            quality_manager,
            ManufacturerFactory(),
            pdf_bytes(),
            valid_until=TODAY - datetime.timedelta(days=1),
        )
    )

    assert error.status == 400
    assert error.codes == ["certificate_dates_reversed"]


def test_unknown_certificate_kind_is_refused(quality_manager, lot):
    error = refusal(lambda: upload_coa(quality_manager, lot, pdf_bytes(), kind="fda_letter"))

    assert error.codes == ["invalid_choice"]


def test_iso_13485_certificate_is_stored_for_the_manufacturer(quality_manager):
    manufacturer = ManufacturerFactory()

    certificate = upload_gmp(
        quality_manager, manufacturer, pdf_bytes("iso"), kind=CertificateKind.ISO_13485
    )

    assert (certificate.kind, certificate.manufacturer, certificate.lot) == (
        CertificateKind.ISO_13485,
        manufacturer,
        None,
    )


# ---------------------------------------------------------------------------------------------
# Superseding


def test_new_version_supersedes_the_old_one_which_stays(quality_manager):
    # given a GMP certificate
    manufacturer = ManufacturerFactory()
    old = upload_gmp(quality_manager, manufacturer, pdf_bytes("v1"))

    # when a corrected version is uploaded
    new = upload_gmp(
        quality_manager,
        manufacturer,
        pdf_bytes("v2"),
        number="DE-BW-01-GMP-2026-0001-A1",
        supersedes=old,
        reason="Scope extended to aseptic filling.",
    )

    # then the new one points at the old one, and the old one is kept unchanged
    assert new.supersedes == old
    old.refresh_from_db()
    assert old.superseded_by == new
    assert old.number == "DE-BW-01-GMP-2026-0001"
    with old.file.open("rb") as stored:
        assert hashlib.sha256(stored.read()).hexdigest() == old.sha256
    event = Events.objects.get(pgh_obj_model="lots.Certificate", pgh_obj_id=str(new.pk))
    assert event.pgh_context["reason"] == "Scope extended to aseptic filling."


def test_superseding_needs_a_reason(quality_manager):
    manufacturer = ManufacturerFactory()
    old = upload_gmp(quality_manager, manufacturer, pdf_bytes("v1"))

    error = refusal(
        lambda: upload_gmp(quality_manager, manufacturer, pdf_bytes("v2"), supersedes=old)
    )

    assert error.codes == ["reason_required"]


def test_superseding_an_already_superseded_certificate_is_refused(quality_manager):
    manufacturer = ManufacturerFactory()
    first = upload_gmp(quality_manager, manufacturer, pdf_bytes("v1"))
    upload_gmp(quality_manager, manufacturer, pdf_bytes("v2"), supersedes=first, reason="v2")

    error = refusal(
        lambda: upload_gmp(
            quality_manager, manufacturer, pdf_bytes("v3"), supersedes=first, reason="v3"
        )
    )

    assert error.status == 409
    assert error.codes == ["certificate_already_superseded"]


def test_superseding_with_another_kind_is_refused(quality_manager):
    manufacturer = ManufacturerFactory()
    gmp = upload_gmp(quality_manager, manufacturer, pdf_bytes("gmp"))

    error = refusal(
        lambda: upload_gmp(
            quality_manager,
            manufacturer,
            pdf_bytes("iso"),
            kind=CertificateKind.ISO_13485,
            supersedes=gmp,
            reason="replace",
        )
    )

    assert error.status == 400
    assert error.codes == ["certificate_supersede_mismatch"]


def test_superseding_another_manufacturers_certificate_is_refused(quality_manager):
    gmp = upload_gmp(quality_manager, ManufacturerFactory(), pdf_bytes("theirs"))

    error = refusal(
        lambda: upload_gmp(
            quality_manager,
            ManufacturerFactory(),
            pdf_bytes("ours"),
            supersedes=gmp,
            reason="replace",
        )
    )

    assert error.codes == ["certificate_supersede_mismatch"]


def test_superseding_another_lots_coa_is_refused(quality_manager, lot):
    coa = upload_coa(quality_manager, lot, pdf_bytes("lot one"))
    other_lot = LotFactory(product=lot.product)

    error = refusal(
        lambda: upload_coa(
            quality_manager, other_lot, pdf_bytes("lot two"), supersedes=coa, reason="replace"
        )
    )

    assert error.codes == ["certificate_supersede_mismatch"]


def test_uploaded_at_is_the_time_of_upload(quality_manager, lot):
    before = timezone.now()

    certificate = upload_coa(quality_manager, lot, pdf_bytes())

    assert before <= certificate.uploaded_at <= timezone.now()
