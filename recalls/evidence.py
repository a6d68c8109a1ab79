"""A recall's evidence pack: one ZIP an auditor can take away and check.

It holds the recall report (PDF), the exposures and notices (the same CSV as their own endpoints),
the clinics' acknowledgements, the stock dispositions, the patient contact attempts (outcome, who
and when: never the patient's contact details nor the attempt's free-text note, which may quote
them), and the signatures (opening, each widening, closing, and the lots' signed status changes;
and the recall's electronic signature records with their content and signature hashes),
plus `manifest.json` and `SHA256SUMS` with the SHA-256 and size of every other file, so
`sha256sum -c SHA256SUMS` proves the pack whole.

The ZIP is written to a spooled temporary file (in memory up to `SPOOL_BYTES`, then on disk) and
each CSV is streamed into it row by row from chunked queries, so memory stays flat however many
exposures a recall has. Scoped like every recall read: clinic staff get their own clinics' part.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from django.conf import settings
from django.utils import timezone

from common.csv import csv_lines
from lots.models import LotAction, LotStatusChange
from recalls.models import PatientContactAttempt, Recall, RecallLot
from recalls.reports import CSV_CHUNK_SIZE, exposures_csv, notices_csv, recall_report_pdf
from recalls.selectors import acknowledgement_list, disposition_list
from signatures.models import Signature

SPOOL_BYTES = 8 * 1024 * 1024
READ_BLOCK = 64 * 1024

ACKNOWLEDGEMENT_COLUMNS = [
    "recall",
    "clinic_id",
    "clinic",
    "acknowledged_at",
    "via",
    "acknowledged_by_user",
    "acknowledged_by_name",
]
DISPOSITION_COLUMNS = [
    "recall",
    "clinic_id",
    "clinic",
    "lot_id",
    "lot_number",
    "kind",
    "quantity",
    "recorded_at",
    "recorded_by",
]
CONTACT_ATTEMPT_COLUMNS = [
    "recall",
    "clinic_id",
    "clinic",
    "patient_id",
    "patient_reference",
    "outcome",
    "attempted_at",
    "attempted_by",
]
SIGNATURE_COLUMNS = [
    "recall",
    "act",
    "round",
    "lot_number",
    "signed_by",
    "signed_at",
    "meaning",
    "reason",
    "digest",
]

ELECTRONIC_SIGNATURE_COLUMNS = [
    "signature_id",
    "kind",
    "subject",
    "printed_name",
    "signed_at",
    "meaning",
    "reason",
    "content_sha256",
    "signature_sha256",
    "backfilled",
]


def _user(user: Any) -> str:
    if user is None:
        return ""
    return str(user.get_full_name() or user.get_username())


@dataclass(frozen=True)
class PackedFile:
    name: str
    sha256: str
    size: int


def acknowledgements_csv(*, recall: Recall, clinic_ids: list[int] | None) -> Iterator[str]:
    rows = acknowledgement_list(recall=recall, clinic_ids=clinic_ids)
    return csv_lines(
        ACKNOWLEDGEMENT_COLUMNS,
        (
            [
                recall.reference,
                row.clinic_id,
                row.clinic.name,
                row.acknowledged_at,
                row.via,
                _user(row.acknowledged_by),
                row.acknowledged_by_name,
            ]
            for row in rows.iterator(chunk_size=CSV_CHUNK_SIZE)
        ),
    )


def dispositions_csv(*, recall: Recall, clinic_ids: list[int] | None) -> Iterator[str]:
    rows = disposition_list(recall=recall, clinic_ids=clinic_ids)
    return csv_lines(
        DISPOSITION_COLUMNS,
        (
            [
                recall.reference,
                row.clinic_id,
                row.clinic.name,
                row.lot_id,
                row.lot.lot_number,
                row.kind,
                row.quantity,
                row.recorded_at,
                _user(row.recorded_by),
            ]
            for row in rows.iterator(chunk_size=CSV_CHUNK_SIZE)
        ),
    )


def contact_attempts_csv(*, recall: Recall, clinic_ids: list[int] | None) -> Iterator[str]:
    """Outcomes only: the note is free text a clinic may have written a telephone number into."""
    rows = PatientContactAttempt.objects.filter(recall=recall).select_related(
        "patient__clinic", "attempted_by"
    )
    if clinic_ids is not None:
        rows = rows.filter(patient__clinic_id__in=clinic_ids)
    return csv_lines(
        CONTACT_ATTEMPT_COLUMNS,
        (
            [
                recall.reference,
                row.patient.clinic_id,
                row.patient.clinic.name,
                row.patient_id,
                row.patient.reference,
                row.outcome,
                row.attempted_at,
                _user(row.attempted_by),
            ]
            for row in rows.order_by("attempted_at", "pk").iterator(chunk_size=CSV_CHUNK_SIZE)
        ),
    )


def signature_rows(recall: Recall) -> list[list[Any]]:
    """Every signed act of the recall, in time order: opening, each widening, the lots' recall
    status changes (which carry their round's digest) and the closing. Three queries."""
    rows: list[list[Any]] = [
        [
            recall.reference,
            "open",
            1,
            "",
            _user(recall.opened_by),
            recall.opened_at,
            "responsibility",
            recall.reason,
            recall.opened_signature_digest,
        ]
    ]
    for scope in recall.scopes.select_related("added_by").filter(round__gt=1).order_by("round"):
        rows.append(
            [
                recall.reference,
                "widen",
                scope.round,
                "",
                _user(scope.added_by),
                scope.added_at,
                "responsibility",
                scope.reason,
                scope.signature_digest,
            ]
        )
    lot_ids = RecallLot.objects.filter(recall=recall).values("lot_id")
    changes = (
        LotStatusChange.objects.filter(lot_id__in=lot_ids, action=LotAction.RECALL)
        .filter(signed_at__gte=recall.opened_at)
        .select_related("lot")
        .order_by("signed_at", "pk")
    )
    if recall.closed_at is not None:
        changes = changes.filter(signed_at__lte=recall.closed_at)
    for change in changes:
        rows.append(
            [
                recall.reference,
                "lot_status_change",
                "",
                change.lot.lot_number,
                change.signer_name,
                change.signed_at,
                change.meaning,
                change.reason,
                change.record_digest,
            ]
        )
    if recall.closed_at is not None:
        rows.append(
            [
                recall.reference,
                "close_override" if recall.close_override else "close",
                "",
                "",
                _user(recall.closed_by),
                recall.closed_at,
                "responsibility",
                recall.close_reason,
                "",
            ]
        )
    return rows


def signatures_csv(*, recall: Recall) -> Iterator[str]:
    return csv_lines(SIGNATURE_COLUMNS, signature_rows(recall))


def electronic_signatures_csv(*, recall: Recall) -> Iterator[str]:
    """The recall's `signatures.Signature` records (opening, widening, closing), each with the
    SHA-256 of the signed content and of the signature, to check with
    `GET /api/v1/signatures/{id}/verify/` or `manage.py signatures_verify`. One query."""
    rows = Signature.objects.filter(subject=f"recalls.recall:{recall.pk}").order_by(
        "signed_at", "pk"
    )
    return csv_lines(
        ELECTRONIC_SIGNATURE_COLUMNS,
        (
            [
                row.pk,
                row.kind,
                row.subject,
                row.printed_name,
                row.signed_at,
                row.meaning,
                row.reason,
                row.content_sha256,
                row.signature_sha256,
                row.backfilled,
            ]
            for row in rows.iterator(chunk_size=CSV_CHUNK_SIZE)
        ),
    )


class _HashingWriter:
    """Counts and hashes what goes into one member of the ZIP."""

    def __init__(self, target: IO[bytes]) -> None:
        self.target = target
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self.digest.update(data)
        self.size += len(data)
        self.target.write(data)


def _add(archive: zipfile.ZipFile, name: str, chunks: Iterable[bytes]) -> PackedFile:
    with archive.open(name, "w", force_zip64=True) as member:
        writer = _HashingWriter(member)
        for chunk in chunks:
            writer.write(chunk)
    return PackedFile(name=name, sha256=writer.digest.hexdigest(), size=writer.size)


def _encoded(lines: Iterable[str]) -> Iterator[bytes]:
    for line in lines:
        yield line.encode("utf-8")


def evidence_pack_name(recall: Recall) -> str:
    return f"{recall.reference}-evidence.zip"


def recall_evidence_pack(
    *, recall: Recall, clinic_ids: list[int] | None, generated_by: Any
) -> IO[bytes]:
    """The ZIP as a file positioned at its start; the caller streams it out and closes it."""
    folder = recall.reference

    def _short(name: str) -> str:
        return name.removeprefix(f"{folder}/")

    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
    with zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        files = [
            _add(
                archive,
                f"{folder}/report.pdf",
                [recall_report_pdf(recall=recall, clinic_ids=clinic_ids)],
            ),
            _add(
                archive,
                f"{folder}/exposures.csv",
                exposures_csv(recall=recall, clinic_ids=clinic_ids),
            ),
            _add(
                archive,
                f"{folder}/notices.csv",
                _encoded(notices_csv(recall=recall, clinic_ids=clinic_ids)),
            ),
            _add(
                archive,
                f"{folder}/acknowledgements.csv",
                _encoded(acknowledgements_csv(recall=recall, clinic_ids=clinic_ids)),
            ),
            _add(
                archive,
                f"{folder}/dispositions.csv",
                _encoded(dispositions_csv(recall=recall, clinic_ids=clinic_ids)),
            ),
            _add(
                archive,
                f"{folder}/contact-attempts.csv",
                _encoded(contact_attempts_csv(recall=recall, clinic_ids=clinic_ids)),
            ),
            _add(archive, f"{folder}/signatures.csv", _encoded(signatures_csv(recall=recall))),
            _add(
                archive,
                f"{folder}/electronic-signatures.csv",
                _encoded(electronic_signatures_csv(recall=recall)),
            ),
        ]
        manifest = {
            "recall": recall.reference,
            "generated_at": timezone.now().isoformat(),
            "generated_by": _user(generated_by),
            "site": settings.SITE_URL,
            "scope": "all clinics" if clinic_ids is None else {"clinic_ids": clinic_ids},
            "files": [
                {
                    "name": item.name.removeprefix(f"{folder}/"),
                    "sha256": item.sha256,
                    "bytes": item.size,
                }
                for item in files
            ],
        }
        archive.writestr(
            f"{folder}/manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
        )
        archive.writestr(
            f"{folder}/SHA256SUMS",
            "".join(f"{item.sha256}  {_short(item.name)}\n" for item in files),
        )
    spool.seek(0)
    return spool


def file_chunks(handle: IO[bytes]) -> Iterator[bytes]:
    """Read a file out in blocks, then close it (for a streaming response)."""
    try:
        while block := handle.read(READ_BLOCK):
            yield block
    finally:
        handle.close()
