"""Uploading certificates: the PDF is proven, hashed, stored under its SHA-256 and recorded."""

from __future__ import annotations

import datetime
import errno
import hashlib
import io
import logging
import os
import uuid
from pathlib import Path
from typing import Any, BinaryIO

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import DatabaseError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from pypdf import PdfReader
from pypdf.errors import PyPdfError

from common.errors import DomainError
from common.services import history, require_reason, validate_instance
from lots.models import (
    MANUFACTURER_CERTIFICATE_KINDS,
    Certificate,
    CertificateKind,
    Lot,
    certificate_upload_to,
)
from providers.models import Manufacturer, Role
from providers.selectors import require_role

logger = logging.getLogger(__name__)

PDF_MAGIC = b"%PDF-"
# What the operating system answers when the disk (or the account's quota) has no room left.
DISK_FULL = {errno.ENOSPC, errno.EDQUOT}


def _read_pdf(upload: BinaryIO, *, field: str = "file") -> bytes:
    """Read an upload and prove it is a PDF within the size limit; raise DomainError(400)."""
    limit = settings.CERTIFICATE_MAX_BYTES
    content = upload.read(limit + 1)
    if not content:
        raise DomainError.single(
            "certificate_empty", _("The file is empty."), field=field, status=400
        )
    if len(content) > limit:
        mebibyte = 1024 * 1024
        too_large = (
            _("The file is larger than the %(mebibytes)s MiB limit.")
            % {"mebibytes": limit // mebibyte}
            if limit % mebibyte == 0
            else _("The file is larger than the %(bytes)s bytes limit.") % {"bytes": limit}
        )
        raise DomainError.single(
            "certificate_too_large",
            too_large,
            field=field,
            status=400,
        )
    if not content.startswith(PDF_MAGIC):
        raise DomainError.single(
            "certificate_not_pdf", _("The file is not a PDF document."), field=field, status=400
        )
    try:
        reader = PdfReader(io.BytesIO(content), strict=False)
        if reader.is_encrypted or len(reader.pages) < 1:
            raise PyPdfError("encrypted or without pages")
    # pypdf raises more than its own error types on damaged input (AttributeError, IndexError, ...
    # from a corrupted trailer or page tree); any failure to read it means "not a usable PDF".
    except Exception as error:
        raise DomainError.single(
            "certificate_not_pdf",
            _(
                "The file starts like a PDF but cannot be read as one (damaged, encrypted or "
                "empty)."
            ),
            field=field,
            status=400,
        ) from error
    return content


def certificate_upload(
    *,
    actor: Any,
    kind: str,
    issuer: str,
    number: str,
    valid_from: datetime.date,
    file: BinaryIO,
    filename: str = "",
    valid_until: datetime.date | None = None,
    manufacturer: Manufacturer | None = None,
    lot: Lot | None = None,
    supersedes: Certificate | None = None,
    reason: str = "",
) -> Certificate:
    """Store a certificate and its PDF. The file is checked and hashed before the transaction and
    stored under its SHA-256, so a stored file is never overwritten by different content; a
    certificate that is not recorded takes the file it stored with it, so neither is ever kept
    without the other."""
    require_role(actor, Role.QUALITY_MANAGER)
    content = _read_pdf(file)
    sha256 = hashlib.sha256(content).hexdigest()
    _certificate_scope_check(kind=kind, lot=lot, manufacturer=manufacturer, valid_until=valid_until)
    if supersedes is not None:
        reason = require_reason(reason)
    path = certificate_upload_to_path(sha256)
    stored = _file_store(path, content)
    try:
        return _certificate_insert(
            actor=actor,
            kind=kind,
            issuer=issuer,
            number=number,
            valid_from=valid_from,
            valid_until=valid_until,
            manufacturer=lot.manufacturer if lot is not None else manufacturer,
            lot=lot,
            supersedes=supersedes,
            reason=reason or "certificate uploaded",
            path=path,
            sha256=sha256,
            size=len(content),
            filename=filename,
        )
    except BaseException:
        if stored:
            _file_discard(path, sha256)
        raise


def _file_store(path: str, content: bytes) -> bool:
    """Store the PDF at `path` unless a copy is there already; True when this call stored it.
    The file is written and flushed to disk under a name of its own, then renamed into place, so
    `path` never holds part of a file. A full disk answers 507 (`storage_full`) and leaves
    nothing behind."""
    target = Path(default_storage.path(path))
    if target.exists():
        return False
    partial = target.with_name(f"{target.name}.{uuid.uuid4().hex}.partial")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with partial.open("xb") as written:
            written.write(content)
            written.flush()
            os.fsync(written.fileno())
        partial.replace(target)
    except OSError as error:
        partial.unlink(missing_ok=True)
        if error.errno in DISK_FULL:
            logger.error("certificate file store full: %s", error)
            raise DomainError.single(
                "storage_full",
                _("The file store is full, so the certificate was not saved. Tell the operator."),
                field="file",
                status=507,
            ) from error
        raise
    return True


def _file_discard(path: str, sha256: str) -> None:
    """Remove the PDF this upload stored when its certificate was not recorded (a refused
    supersede, a lost database), unless a certificate with the same content was recorded
    meanwhile: no file is kept without its row."""
    try:
        if not Certificate.objects.filter(sha256=sha256).exists():
            default_storage.delete(path)
    except DatabaseError:
        logger.warning("certificate file %s kept: the database could not be asked", path)


def certificate_upload_to_path(sha256: str) -> str:
    return certificate_upload_to(Certificate(sha256=sha256), "")


def _certificate_scope_check(
    *, kind: str, lot: Lot | None, manufacturer: Manufacturer | None, valid_until: Any
) -> None:
    if kind not in CertificateKind.values:
        raise DomainError.single(
            "invalid_choice",
            _("%(kind)s is not a certificate kind.") % {"kind": kind},
            field="kind",
            status=400,
        )
    if kind == CertificateKind.COA and lot is None:
        raise DomainError.single(
            "certificate_lot_required",
            _("A certificate of analysis belongs to a lot: give the lot."),
            field="lot",
            status=400,
        )
    if kind in MANUFACTURER_CERTIFICATE_KINDS:
        if lot is not None or manufacturer is None:
            raise DomainError.single(
                "certificate_manufacturer_required",
                _("GMP and ISO 13485 certificates belong to a manufacturer, not to a lot."),
                field="manufacturer",
                status=400,
            )
        if valid_until is None:
            raise DomainError.single(
                "certificate_validity_required",
                _("A GMP or ISO 13485 certificate needs the date it is valid until."),
                field="valid_until",
                status=400,
            )


@transaction.atomic
def _certificate_insert(
    *,
    actor: Any,
    kind: str,
    issuer: str,
    number: str,
    valid_from: datetime.date,
    valid_until: datetime.date | None,
    manufacturer: Manufacturer | None,
    lot: Lot | None,
    supersedes: Certificate | None,
    reason: str,
    path: str,
    sha256: str,
    size: int,
    filename: str,
) -> Certificate:
    if supersedes is not None:
        supersedes = Certificate.objects.select_for_update().get(pk=supersedes.pk)
        if Certificate.objects.filter(supersedes=supersedes).exists():
            raise DomainError.single(
                "certificate_already_superseded",
                _(
                    "Certificate %(number)s has already been superseded; supersede the newest "
                    "version instead."
                )
                % {"number": supersedes.number},
                field="supersedes",
            )
        if (
            supersedes.kind != kind
            or supersedes.manufacturer_id != getattr(manufacturer, "pk", None)
            or supersedes.lot_id != getattr(lot, "pk", None)
        ):
            raise DomainError.single(
                "certificate_supersede_mismatch",
                _("A new version must be of the same kind, for the same manufacturer and lot."),
                field="supersedes",
                status=400,
            )
    certificate = Certificate(
        kind=kind,
        manufacturer=manufacturer,
        lot=lot,
        issuer=issuer.strip(),
        number=number.strip(),
        valid_from=valid_from,
        valid_until=valid_until,
        sha256=sha256,
        size_bytes=size,
        original_filename=filename[:255],
        supersedes=supersedes,
        uploaded_by=actor,
        uploaded_at=timezone.now(),
    )
    certificate.file.name = path
    validate_instance(certificate, exclude=["uploaded_by", "file"])
    with history(actor, reason):
        certificate.save()
    return certificate
