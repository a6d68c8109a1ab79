"""Signing and verifying: the one path every signed act takes.

A signed act is two calls inside the caller's transaction:

    signer = signer_authenticate(actor=actor, password=password)   # first, before any write
    ...the act's own writes...
    sign(signer=signer, kind="lot_release", record=change, meaning=..., reason=..., at=...)

`signer_authenticate` re-checks the password (`common.services.verify_password`, which also
counts failed attempts) and is the only way to get a `Signer`; `sign` reads the signed content
from the database as the act left it, hashes it and writes the `Signature` row.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.db.migrations.recorder import MigrationRecorder
from django.db.models import Exists, Model, OuterRef
from django.utils.translation import gettext as _

from common.errors import DomainError, Problem
from common.services import verify_password
from common.signatures import MISSING, Difference, Meaning, content_hash, differences
from signatures.models import Signature
from signatures.registry import KINDS, RecordMissing, kind_get, record_label, signed_content


@dataclass(frozen=True)
class Signer:
    """A user who has just re-entered their password (21 CFR 11.200(a)(1)): the proof `sign`
    asks for."""

    user: Any
    printed_name: str


def signer_authenticate(*, actor: Any, password: str) -> Signer:
    """Check the re-entered password (403 `signature_password_invalid`; `verify_password` counts
    failures towards the lock-out) and return the signer with the printed name the signature
    will show: full name, else username."""
    verify_password(actor, password)
    return Signer(user=actor, printed_name=actor.get_full_name() or actor.get_username())


def manifest_hash(
    *,
    kind: str,
    record: str,
    subject: str,
    signer_id: int,
    printed_name: str,
    signed_at: datetime.datetime,
    meaning: str,
    reason: str,
    content_sha256: str,
) -> str:
    """SHA-256 over the signature's own parts and the content hash: what binds the signer, the
    time and the meaning to the content and the record."""
    return content_hash(
        {
            "kind": kind,
            "record": record,
            "subject": subject,
            "signer": signer_id,
            "printed_name": printed_name,
            "signed_at": signed_at.astimezone(datetime.UTC).isoformat(),
            "meaning": meaning,
            "reason": reason,
            "content_sha256": content_sha256,
        }
    )


def sign(
    *,
    signer: Signer,
    kind: str,
    record: Model,
    meaning: str,
    reason: str,
    at: datetime.datetime,
) -> Signature:
    """Write the signature of `signer` on `record`. Call it inside the act's transaction, after
    the act's writes, so the content read is the content the act leaves behind."""
    signed_kind = kind_get(kind)
    problems = []
    if meaning not in signed_kind.meanings:
        allowed = ", ".join(sorted(signed_kind.meanings))
        problems.append(
            Problem(
                "signature_meaning_invalid",
                _("A %(kind)s is signed with one of these meanings: %(allowed)s.")
                % {"kind": signed_kind.label, "allowed": allowed},
                "meaning",
            )
        )
    reason = (reason or "").strip()
    if not reason:
        problems.append(
            Problem("reason_required", _("State the reason for this decision."), "reason")
        )
    if problems:
        raise DomainError(problems, status=400)
    record_type = ContentType.objects.get_for_model(record, for_concrete_model=True)
    record_model = f"{record_type.app_label}.{record_type.model}"
    content = signed_content(
        kind=signed_kind, record_model=record_model, record_id=record.pk, signed_at=at
    )
    digest = content_hash(content)
    return Signature.objects.create(
        kind=kind,
        record_type=record_type,
        record_id=record.pk,
        subject=content["subject"],
        signer=signer.user,
        printed_name=signer.printed_name,
        signed_at=at,
        meaning=meaning,
        reason=reason,
        content=content,
        content_sha256=digest,
        signature_sha256=manifest_hash(
            kind=kind,
            record=record_label(record_model, record.pk),
            subject=content["subject"],
            signer_id=signer.user.pk,
            printed_name=signer.printed_name,
            signed_at=at,
            meaning=meaning,
            reason=reason,
            content_sha256=digest,
        ),
    )


# ---------------------------------------------------------------------------------------------
# Verification


class Status:
    VALID = "valid"
    INVALID = "invalid"
    SUPERSEDED = "superseded"


@dataclass
class Verification:
    """The outcome of checking one signature against the record as it now stands.

    `valid`: the record still holds exactly what was signed. `invalid`: something differs (each
    difference named by its path in the signed content), or the signature row itself was
    altered or moved. `superseded`: only the subject's state differs, and the latest later
    signature on the same subject verifies against it: the change was itself signed (a donor
    re-determined, a lot corrected while on hold and released again)."""

    signature: Signature
    status: str
    differences: list[Difference] = field(default_factory=list)
    recomputed_sha256: str | None = None
    superseded_by: int | None = None

    @property
    def valid(self) -> bool:
        return self.status == Status.VALID

    def describe(self) -> str:
        head = f"signature {self.signature.pk} ({self.signature.kind} of " + (
            f"{self.signature.record_label}): {self.status}"
        )
        if self.superseded_by is not None:
            head += f" by signature {self.superseded_by}"
        return "; ".join([head, *(item.describe() for item in self.differences)])


def _current_content(signature: Signature) -> dict[str, Any] | None:
    """The content as the record now stands; None when the record (or the kind) is gone."""
    try:
        kind = kind_get(signature.kind)
    except LookupError:
        return None
    record_type = signature.record_type
    try:
        return signed_content(
            kind=kind,
            record_model=f"{record_type.app_label}.{record_type.model}",
            record_id=signature.record_id,
            signed_at=signature.signed_at,
        )
    except RecordMissing:
        return None


def signature_verify(signature: Signature) -> Verification:
    """Recompute the signed content from the record as it now stands and compare.

    Three checks, every failure listed: the signature's own parts still hash to
    `signature_sha256` (path `signature`); the stored content still hashes to `content_sha256`
    (path `content_sha256`); the content read now equals the content signed (one difference per
    changed leaf, e.g. `state.qc.sterility.outcome`). A row moved to another record fails the
    first and names `record` in the third, since the record's identity is part of the content."""
    found: list[Difference] = []
    stored = signature.content
    record = signature.record_label
    expected_manifest = manifest_hash(
        kind=signature.kind,
        record=record,
        subject=signature.subject,
        signer_id=signature.signer_id,
        printed_name=signature.printed_name,
        signed_at=signature.signed_at,
        meaning=signature.meaning,
        reason=signature.reason,
        content_sha256=signature.content_sha256,
    )
    if expected_manifest != signature.signature_sha256:
        found.append(Difference("signature", signature.signature_sha256, expected_manifest))
    try:
        stored_hash = content_hash(stored)
    except TypeError:
        stored_hash = None
    if stored_hash != signature.content_sha256:
        found.append(Difference("content_sha256", signature.content_sha256, stored_hash))
    current = _current_content(signature)
    if current is None:
        found.append(Difference("record", record, MISSING))
        return Verification(signature, Status.INVALID, found)
    content_differences = differences(stored, current)
    found += content_differences
    recomputed = content_hash(current)
    if not found:
        return Verification(signature, Status.VALID, [], recomputed)
    superseding = None
    if len(found) == len(content_differences) and all(
        item.path.startswith("state.") or item.path == "state" for item in found
    ):
        superseding = _superseding_signature(signature)
    if superseding is not None:
        return Verification(signature, Status.SUPERSEDED, found, recomputed, superseding)
    return Verification(signature, Status.INVALID, found, recomputed)


def _superseding_signature(signature: Signature) -> int | None:
    """The latest later signature on the same subject, when it holds on the subject's state as it
    now stands (its own stored state equals the state read now)."""
    latest = (
        Signature.objects.filter(subject=signature.subject, signed_at__gt=signature.signed_at)
        .select_related("record_type")
        .order_by("-signed_at", "-pk")
        .first()
    )
    if latest is None:
        return None
    current = _current_content(latest)
    if current is None or not isinstance(latest.content, dict):
        return None
    if content_hash(latest.content) != latest.content_sha256:
        return None
    return latest.pk if latest.content.get("state") == current["state"] else None


# ---------------------------------------------------------------------------------------------
# Acts without a signature


@dataclass(frozen=True)
class MissingSignature:
    """A signed act (a lot decision, a determination, a recall opening...) with no Signature
    row: deleted, or signed before this record existed (`legacy`)."""

    kind: str
    record: str
    at: datetime.datetime
    legacy: bool

    def describe(self) -> str:
        when = self.at.astimezone(datetime.UTC).isoformat()
        what = "signed before signatures were recorded" if self.legacy else "missing"
        return f"{self.record}: the {self.kind} of {when} has no signature ({what})"


def _cutover() -> datetime.datetime | None:
    """When the Signature record was installed: acts before it were signed with digests only."""
    applied: datetime.datetime | None = (
        MigrationRecorder.Migration.objects.filter(app="signatures", name="0001_initial")
        .values_list("applied", flat=True)
        .first()
    )
    return applied


def signatures_missing(*, kind: str | None = None) -> Iterator[MissingSignature]:
    """Every act that must carry a signature and carries none (same kind, record and time), one
    indexed anti-join per kind, read in chunks."""
    cutover = _cutover()
    for signed_kind in KINDS.values():
        if kind is not None and signed_kind.code != kind:
            continue
        app_label, model = signed_kind.record_model.split(".")
        record_type = ContentType.objects.get_by_natural_key(app_label, model)
        signed = Signature.objects.filter(
            kind=signed_kind.code,
            record_type=record_type,
            record_id=OuterRef("pk"),
            signed_at=OuterRef(signed_kind.act_time),
        )
        rows = (
            signed_kind.acts(apps.get_model)
            .filter(~Exists(signed))
            .order_by("pk")
            .values_list("pk", signed_kind.act_time)
        )
        for record_id, at in rows.iterator(chunk_size=1000):
            yield MissingSignature(
                kind=signed_kind.code,
                record=record_label(signed_kind.record_model, record_id),
                at=at,
                legacy=cutover is not None and at < cutover,
            )


__all__ = ["Meaning", "Signer", "Status", "Verification", "sign", "signature_verify"]
