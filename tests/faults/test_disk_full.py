"""The file store fills up during a certificate upload: the client is told so with a stable code,
and neither a certificate without its file nor a file without its certificate is left.

The store is a real, small tmpfs mounted for the test (mounting needs root, as CI runs), so the
write fails with the operating system's own ENOSPC."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from lots.models import Certificate
from tests.factories import LotFactory, pdf_bytes

pytestmark = pytest.mark.django_db

STORE_KIBIBYTES = 64


@pytest.fixture
def small_media_root(settings, tmp_path) -> Iterator[Path]:
    """MEDIA_ROOT on a tmpfs of STORE_KIBIBYTES."""
    root = tmp_path / "media"
    root.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={STORE_KIBIBYTES}k", "tmpfs", str(root)],
        check=True,
        capture_output=True,
    )
    settings.MEDIA_ROOT = str(root)
    try:
        yield root
    finally:
        subprocess.run(["umount", str(root)], check=True, capture_output=True)


def _upload(client, lot_id: int, content: bytes, **fields):
    body = {
        "kind": "coa",
        "lot": lot_id,
        "issuer": "Eurofins",
        "number": "COA-1",
        "valid_from": "2025-01-01",
        "file": SimpleUploadedFile("coa.pdf", content, content_type="application/pdf"),
        **fields,
    }
    return client.post("/api/v1/certificates/", body, format="multipart")


def _files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


def test_a_full_file_store_refuses_the_upload_with_507_and_leaves_nothing(
    qm_client, small_media_root
):
    # Given a file store with 64 KiB and a certificate PDF of about 100 KiB,
    lot = LotFactory()
    content = pdf_bytes("x" * 100 * 1024)
    assert len(content) > STORE_KIBIBYTES * 1024

    # when it is uploaded,
    response = _upload(qm_client, lot.pk, content)

    # then the answer says the store is full, naming the file, and nothing is left behind:
    # no certificate, no file, not even part of one;
    assert response.status_code == 507, response.content
    [problem] = response.json()["errors"]
    assert (problem["code"], problem["field"]) == ("storage_full", "file")
    assert not Certificate.objects.exists()
    assert _files(small_media_root) == []

    # and a certificate that fits is stored whole, with its row.
    small = pdf_bytes("coa that fits")
    response = _upload(qm_client, lot.pk, small, number="COA-2")
    assert response.status_code == 201, response.content
    certificate = Certificate.objects.get()
    [stored] = _files(small_media_root)
    assert stored == small_media_root / certificate.file.name
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == certificate.sha256


def test_a_certificate_refused_after_its_file_was_stored_takes_the_file_with_it(
    qm_client, settings
):
    # Given a lot's certificate of analysis,
    lot = LotFactory()
    first = _upload(qm_client, lot.pk, pdf_bytes("first"))
    assert first.status_code == 201, first.content
    root = Path(settings.MEDIA_ROOT)
    before = _files(root)

    # when a new version is refused once its PDF is on disk (it names another lot),
    response = _upload(
        qm_client,
        LotFactory().pk,
        pdf_bytes("second"),
        supersedes=first.json()["id"],
        reason="new version",
    )

    # then the refusal names the rule and the new PDF is gone with it.
    assert response.status_code == 400, response.content
    assert [p["code"] for p in response.json()["errors"]] == ["certificate_supersede_mismatch"]
    assert Certificate.objects.count() == 1
    assert _files(root) == before


def test_an_upload_of_content_already_stored_keeps_the_file_the_other_certificate_uses(
    qm_client, settings
):
    # Given a certificate whose PDF is stored,
    lot = LotFactory()
    content = pdf_bytes("shared")
    first = _upload(qm_client, lot.pk, content)
    assert first.status_code == 201, first.content
    root = Path(settings.MEDIA_ROOT)
    before = _files(root)

    # when the same PDF comes again with a refused supersede,
    response = _upload(
        qm_client,
        LotFactory().pk,
        content,
        supersedes=first.json()["id"],
        reason="new version",
    )

    # then the first certificate keeps its file.
    assert response.status_code == 400, response.content
    assert _files(root) == before
    assert Path(root / Certificate.objects.get().file.name).read_bytes() == content
