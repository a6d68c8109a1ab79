"""Writes about products, donors, tests, lots and certificates, and the release gate.

Every write checks the quality-manager role, validates, and runs inside one transaction with the
acting user and reason attached to the history rows that PostgreSQL's triggers write.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
from decimal import Decimal
from typing import Any, BinaryIO

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from pypdf import PdfReader
from pypdf.errors import PyPdfError

from common.errors import DomainError, Problem
from common.services import history, require_reason, validate_instance
from common.signatures import Meaning
from common.validators import normalise_gtin, validate_jurisdiction
from lots.models import (
    MANUFACTURER_CERTIFICATE_KINDS,
    AuthorisationStatus,
    Certificate,
    CertificateKind,
    Donor,
    DonorMarkerResult,
    Eligibility,
    Lot,
    LotAction,
    LotDonor,
    LotQcResult,
    LotStatus,
    LotStatusChange,
    Marker,
    MarkerResultValue,
    Product,
    ProductAuthorisation,
    QcKind,
    QcTest,
    SignatureMeaning,
    certificate_upload_to,
)
from lots.selectors import RELEASABLE_FROM, lot_release_check, required_markers_for
from providers.models import Manufacturer, Role
from providers.selectors import require_role
from signatures.services import Signer, sign, signer_authenticate

# ---------------------------------------------------------------------------------------------
# Products


@transaction.atomic
def product_create(
    *,
    actor: Any,
    manufacturer: Manufacturer,
    name: str,
    source_kind: str,
    permitted_routes: list[str],
    storage_min_celsius: Decimal,
    storage_max_celsius: Decimal,
    tissue: str = "",
    gtin: str | None = None,
) -> Product:
    require_role(actor, Role.QUALITY_MANAGER)
    product = Product(
        manufacturer=manufacturer,
        name=name.strip(),
        source_kind=source_kind,
        tissue=tissue,
        permitted_routes=sorted(set(permitted_routes)),
        storage_min_celsius=storage_min_celsius,
        storage_max_celsius=storage_max_celsius,
        gtin=_gtin_or_none(gtin),
    )
    validate_instance(product)
    with history(actor, "product created"):
        product.save()
    return product


def _gtin_or_none(gtin: str | None) -> str | None:
    if not gtin:
        return None
    try:
        return normalise_gtin(gtin)
    except ValidationError as error:
        raise DomainError.single(
            error.code or "gtin_invalid", error.messages[0], field="gtin", status=400
        ) from error


@transaction.atomic
def product_authorisation_set(
    *, actor: Any, product: Product, jurisdiction: str, status: str, note: str = "", reason: str
) -> ProductAuthorisation:
    """Record whether a product may be used in a jurisdiction; replaces the earlier decision."""
    require_role(actor, Role.QUALITY_MANAGER)
    reason = require_reason(reason)
    if status not in AuthorisationStatus.values:
        raise DomainError.single(
            "invalid_choice",
            f"{status} is not an authorisation status.",
            field="status",
            status=400,
        )
    # Check the code before it reaches a query: a malformed one (a NUL, say) is a 400 here, not a
    # database error.
    try:
        validate_jurisdiction(jurisdiction)
    except ValidationError as error:
        raise DomainError.single(
            error.code or "jurisdiction_invalid",
            error.messages[0],
            field="jurisdiction",
            status=400,
        ) from error
    authorisation = (
        ProductAuthorisation.objects.select_for_update()
        .filter(product=product, jurisdiction=jurisdiction)
        .first()
    ) or ProductAuthorisation(product=product, jurisdiction=jurisdiction)
    authorisation.status = status
    authorisation.note = note
    validate_instance(authorisation)
    with history(actor, reason):
        authorisation.save()
    return authorisation


# ---------------------------------------------------------------------------------------------
# Donors and their infectious-disease markers


@transaction.atomic
def donor_create(
    *,
    actor: Any,
    code: str,
    tissue: str,
    collection_date: datetime.date,
    specimen_date: datetime.date,
    testing_laboratory: str,
    isbt_din: str | None = None,
    birth_mother_tested: bool = False,
) -> Donor:
    require_role(actor, Role.QUALITY_MANAGER)
    donor = Donor(
        code=code.strip(),
        tissue=tissue,
        collection_date=collection_date,
        specimen_date=specimen_date,
        testing_laboratory=testing_laboratory,
        isbt_din=(isbt_din or "").strip().upper() or None,
        birth_mother_tested=birth_mother_tested,
    )
    validate_instance(donor)
    with history(actor, "donor recorded"):
        donor.save()
    return donor


@transaction.atomic
def donor_marker_result_record(
    *,
    actor: Any,
    donor: Donor,
    marker: Marker,
    result: str,
    tested_on: datetime.date,
    laboratory: str,
    test_method: str = "",
    reason: str = "",
) -> DonorMarkerResult:
    """Record a donor's result for a marker. A second result for the same marker is a correction
    and needs a reason; the earlier value stays in the history."""
    require_role(actor, Role.QUALITY_MANAGER)
    existing = (
        DonorMarkerResult.objects.select_for_update().filter(donor=donor, marker=marker).first()
    )
    if existing is not None:
        reason = require_reason(reason)
    record = existing or DonorMarkerResult(donor=donor, marker=marker)
    record.result = result
    record.tested_on = tested_on
    record.laboratory = laboratory
    record.test_method = test_method
    validate_instance(record)
    with history(actor, reason or "marker result recorded"):
        record.save()
    return record


@transaction.atomic
def donor_eligibility_decide(
    *, actor: Any, donor: Donor, eligibility: str, password: str, reason: str
) -> Donor:
    """The responsible person's signed determination. `eligible` is refused while a required
    marker is missing or reactive, listing every one."""
    require_role(actor, Role.QUALITY_MANAGER)
    signer = signer_authenticate(actor=actor, password=password)
    reason = require_reason(reason)
    if eligibility not in Eligibility.values:
        raise DomainError.single(
            "invalid_choice",
            f"{eligibility} is not an eligibility decision.",
            field="eligibility",
            status=400,
        )
    donor = Donor.objects.select_for_update().get(pk=donor.pk)
    if eligibility == Eligibility.ELIGIBLE:
        markers = list(Marker.objects.filter(active=True))
        results = {r.marker_id: r for r in DonorMarkerResult.objects.filter(donor=donor)}
        problems = []
        for marker in required_markers_for(donor.tissue, markers):
            result = results.get(marker.pk)
            if result is None:
                problems.append(
                    Problem(
                        "donor_marker_missing",
                        f"No {marker.name} result.",
                        f"markers.{marker.code}",
                    )
                )
            elif result.result != MarkerResultValue.NON_REACTIVE:
                problems.append(
                    Problem(
                        "donor_marker_reactive",
                        f"{marker.name} is {result.get_result_display().lower()}.",
                        f"markers.{marker.code}",
                    )
                )
        if problems:
            raise DomainError(problems, status=409)
    donor.eligibility = eligibility
    donor.eligibility_decided_by = actor
    donor.eligibility_decided_at = timezone.now()
    with history(actor, reason, signature_meaning="eligibility determination"):
        donor.save(
            update_fields=["eligibility", "eligibility_decided_by", "eligibility_decided_at"]
        )
        sign(
            signer=signer,
            kind="donor_eligibility",
            record=donor,
            meaning=Meaning.RESPONSIBILITY,
            reason=reason,
            at=donor.eligibility_decided_at,
        )
    return donor


# ---------------------------------------------------------------------------------------------
# Lots and their QC results


@transaction.atomic
def lot_create(
    *,
    actor: Any,
    product: Product,
    lot_number: str,
    manufactured_on: datetime.date,
    expires_on: datetime.date,
    quantity: int,
    unit: str,
    regulatory_basis: str,
    regulatory_number: str = "",
    donors: list[Donor] | None = None,
) -> Lot:
    """A new lot always starts quarantined (DESIGN rule 1)."""
    require_role(actor, Role.QUALITY_MANAGER)
    # A donor named twice is still one donor; inserting it twice would break lot_donor_unique.
    donors = list({donor.pk: donor for donor in donors or []}.values())
    if donors and not product.is_human_derived:
        raise DomainError.single(
            "lot_donors_not_applicable",
            f"{product.get_source_kind_display()} products have no human donors.",
            field="donors",
            status=400,
        )
    lot = Lot(
        product=product,
        manufacturer_id=product.manufacturer_id,
        lot_number=lot_number.strip(),
        manufactured_on=manufactured_on,
        expires_on=expires_on,
        quantity=quantity,
        unit=unit,
        regulatory_basis=regulatory_basis,
        regulatory_number=regulatory_number.strip(),
        status=LotStatus.QUARANTINED,
        status_changed_at=timezone.now(),
        created_by=actor,
    )
    try:
        validate_instance(lot, exclude=["created_by"])
    except DomainError as error:
        if any(problem.code in ("unique", "unique_together") for problem in error.problems):
            raise DomainError.single(
                "lot_number_taken",
                f"{product.manufacturer} already has a lot {lot.lot_number}.",
                field="lot_number",
            ) from error
        raise
    with history(actor, "lot recorded"):
        lot.save()
        LotDonor.objects.bulk_create(
            [LotDonor(lot=lot, donor=donor) for donor in sorted(donors, key=lambda d: d.pk)]
        )
    return lot


@transaction.atomic
def lot_donor_add(*, actor: Any, lot: Lot, donor: Donor, reason: str) -> Lot:
    require_role(actor, Role.QUALITY_MANAGER)
    reason = require_reason(reason)
    lot = (
        Lot.objects.select_for_update(of=("self",), no_key=True)
        .select_related("product")
        .get(pk=lot.pk)
    )
    if lot.status not in RELEASABLE_FROM:
        raise DomainError.single(
            "lot_not_editable",
            "Donors can only be added while the lot is quarantined or on hold.",
            field="donors",
        )
    if not lot.product.is_human_derived:
        raise DomainError.single(
            "lot_donors_not_applicable",
            "This product has no human donors.",
            field="donors",
            status=400,
        )
    with history(actor, reason):
        LotDonor.objects.get_or_create(lot=lot, donor=donor)
    return lot


@transaction.atomic
def lot_qc_result_record(
    *,
    actor: Any,
    lot: Lot,
    test: QcTest,
    tested_on: datetime.date,
    laboratory: str,
    numeric_value: Decimal | None = None,
    outcome: str = "",
    method: str = "",
    reason: str = "",
) -> LotQcResult:
    """Record a lot's result for a QC test. Pass or fail is derived from the specification, never
    stored. A second result for the same test is a correction and needs a reason."""
    require_role(actor, Role.QUALITY_MANAGER)
    if test.kind == QcKind.QUANTITATIVE and (numeric_value is None or outcome):
        raise DomainError.single(
            "qc_numeric_value_required",
            f"{test.name} is measured: give numeric_value ({test.unit or 'number'}), not outcome.",
            field="numeric_value",
            status=400,
        )
    if test.kind == QcKind.QUALITATIVE and (not outcome or numeric_value is not None):
        raise DomainError.single(
            "qc_outcome_required",
            f"{test.name} is qualitative: give outcome (detected / not_detected), not a number.",
            field="outcome",
            status=400,
        )
    existing = LotQcResult.objects.select_for_update().filter(lot=lot, test=test).first()
    if existing is not None:
        reason = require_reason(reason)
    record = existing or LotQcResult(lot=lot, test=test)
    record.numeric_value = numeric_value
    record.outcome = outcome
    record.tested_on = tested_on
    record.laboratory = laboratory
    record.method = method
    validate_instance(record)
    with history(actor, reason or "QC result recorded"):
        record.save()
    return record


# ---------------------------------------------------------------------------------------------
# Certificates


PDF_MAGIC = b"%PDF-"


def _read_pdf(upload: BinaryIO, *, field: str = "file") -> bytes:
    """Read an upload and prove it is a PDF within the size limit; raise DomainError(400)."""
    limit = settings.CERTIFICATE_MAX_BYTES
    content = upload.read(limit + 1)
    if not content:
        raise DomainError.single("certificate_empty", "The file is empty.", field=field, status=400)
    if len(content) > limit:
        mebibyte = 1024 * 1024
        shown = f"{limit // mebibyte} MiB" if limit % mebibyte == 0 else f"{limit} bytes"
        raise DomainError.single(
            "certificate_too_large",
            f"The file is larger than the {shown} limit.",
            field=field,
            status=400,
        )
    if not content.startswith(PDF_MAGIC):
        raise DomainError.single(
            "certificate_not_pdf", "The file is not a PDF document.", field=field, status=400
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
            "The file starts like a PDF but cannot be read as one (damaged, encrypted or empty).",
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
    stored under its SHA-256, so a failed transaction leaves at most an unreferenced copy and a
    stored file is never overwritten by different content."""
    require_role(actor, Role.QUALITY_MANAGER)
    content = _read_pdf(file)
    sha256 = hashlib.sha256(content).hexdigest()
    _certificate_scope_check(kind=kind, lot=lot, manufacturer=manufacturer, valid_until=valid_until)
    if supersedes is not None:
        reason = require_reason(reason)
    path = certificate_upload_to_path(sha256)
    if not default_storage.exists(path):
        default_storage.save(path, ContentFile(content))
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


def certificate_upload_to_path(sha256: str) -> str:
    return certificate_upload_to(Certificate(sha256=sha256), "")


def _certificate_scope_check(
    *, kind: str, lot: Lot | None, manufacturer: Manufacturer | None, valid_until: Any
) -> None:
    if kind not in CertificateKind.values:
        raise DomainError.single(
            "invalid_choice", f"{kind} is not a certificate kind.", field="kind", status=400
        )
    if kind == CertificateKind.COA and lot is None:
        raise DomainError.single(
            "certificate_lot_required",
            "A certificate of analysis belongs to a lot: give the lot.",
            field="lot",
            status=400,
        )
    if kind in MANUFACTURER_CERTIFICATE_KINDS:
        if lot is not None or manufacturer is None:
            raise DomainError.single(
                "certificate_manufacturer_required",
                "GMP and ISO 13485 certificates belong to a manufacturer, not to a lot.",
                field="manufacturer",
                status=400,
            )
        if valid_until is None:
            raise DomainError.single(
                "certificate_validity_required",
                "A GMP or ISO 13485 certificate needs the date it is valid until.",
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
                f"Certificate {supersedes.number} has already been superseded; supersede the "
                "newest version instead.",
                field="supersedes",
            )
        if (
            supersedes.kind != kind
            or supersedes.manufacturer_id != getattr(manufacturer, "pk", None)
            or supersedes.lot_id != getattr(lot, "pk", None)
        ):
            raise DomainError.single(
                "certificate_supersede_mismatch",
                "A new version must be of the same kind, for the same manufacturer and lot.",
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


# ---------------------------------------------------------------------------------------------
# The release gate and other signed status decisions


_MEANINGS = {
    LotAction.RELEASE: {
        SignatureMeaning.APPROVAL,
        SignatureMeaning.REVIEW,
        SignatureMeaning.RESPONSIBILITY,
    },
    LotAction.REJECT: {
        SignatureMeaning.REJECTION,
        SignatureMeaning.REVIEW,
        SignatureMeaning.RESPONSIBILITY,
    },
    LotAction.HOLD: {SignatureMeaning.REVIEW, SignatureMeaning.RESPONSIBILITY},
}


def _signed_preamble(
    *, actor: Any, password: str, action: LotAction, meaning: str, reason: str
) -> tuple[str, Signer]:
    require_role(actor, Role.QUALITY_MANAGER)
    signer = signer_authenticate(actor=actor, password=password)
    problems = []
    if meaning not in _MEANINGS[action]:
        allowed = ", ".join(sorted(_MEANINGS[action]))
        problems.append(
            Problem(
                "signature_meaning_invalid",
                f"A {action.label.lower()} is signed with one of these meanings: {allowed}.",
                "meaning",
            )
        )
    if not (reason or "").strip():
        problems.append(Problem("reason_required", "State the reason for this decision.", "reason"))
    if problems:
        raise DomainError(problems, status=400)
    return reason.strip(), signer


def lot_record_digest(lot: Lot) -> dict[str, Any]:
    """The content a signature on the lot is bound to: its identity, dates, status, its donors
    with their eligibility and marker results, the QC results, and the certificates (lot CoA and
    the manufacturer's GMP / ISO 13485, by hash) on file at signing time."""
    donor_results = DonorMarkerResult.objects.filter(donor__lot_donors__lot=lot).values_list(
        "donor__code", "marker__code", "result", "tested_on"
    )
    return {
        "lot": lot.pk,
        "lot_number": lot.lot_number,
        "manufacturer": lot.manufacturer_id,
        "product": lot.product_id,
        "manufactured_on": lot.manufactured_on.isoformat(),
        "expires_on": lot.expires_on.isoformat(),
        "quantity": lot.quantity,
        "regulatory_basis": lot.regulatory_basis,
        "regulatory_number": lot.regulatory_number,
        "status": lot.status,
        "donors": sorted(
            [code, eligibility]
            for code, eligibility in LotDonor.objects.filter(lot=lot).values_list(
                "donor__code", "donor__eligibility"
            )
        ),
        "donor_markers": sorted(
            [code, marker, result, tested_on.isoformat()]
            for code, marker, result, tested_on in donor_results
        ),
        "qc": sorted(
            [r.test_id, str(r.numeric_value), r.outcome, r.tested_on.isoformat()]
            for r in LotQcResult.objects.filter(lot=lot)
        ),
        "certificates": sorted(
            Certificate.objects.filter(
                Q(lot=lot)
                | Q(manufacturer_id=lot.manufacturer_id, kind__in=MANUFACTURER_CERTIFICATE_KINDS)
            ).values_list("sha256", flat=True)
        ),
    }


def _sign_status_change(
    *,
    lot: Lot,
    signer: Signer,
    action: LotAction,
    to_status: str,
    meaning: str,
    reason: str,
) -> LotStatusChange:
    """Change the lot's status and sign the change: the `LotStatusChange` row (with its legacy
    `record_digest`) and the `signatures.Signature` on it, whose content is `lots.signing`'s."""
    actor = signer.user
    signed_at = timezone.now()
    content = lot_record_digest(lot)
    payload = {
        "record": content,
        "action": action.value,
        "to_status": to_status,
        "signer": actor.pk,
        "signed_at": signed_at.isoformat(),
        "meaning": meaning,
        "reason": reason,
    }
    digest = hashlib.sha256(
        json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    from_status = lot.status
    # Conditional update: only the status we read under the row lock may change.
    with history(actor, reason, signature_meaning=meaning, action=action.value):
        changed = Lot.objects.filter(pk=lot.pk, status=from_status).update(
            status=to_status, status_changed_at=signed_at
        )
        if changed != 1:
            raise DomainError.single(
                "lot_status_changed",
                "The lot changed while you were signing; reload it.",
                field="status",
            )
        change = LotStatusChange.objects.create(
            lot=lot,
            action=action,
            from_status=from_status,
            to_status=to_status,
            signed_by=actor,
            signer_name=signer.printed_name,
            signed_at=signed_at,
            meaning=meaning,
            reason=reason,
            record_digest=digest,
        )
        sign(
            signer=signer,
            kind=f"lot_{action.value}",
            record=change,
            meaning=meaning,
            reason=reason,
            at=signed_at,
        )
    lot.status = to_status
    lot.status_changed_at = signed_at
    return change


def _locked_lot(lot_id: int) -> Lot:
    """NO KEY UPDATE: a status change must not block treatments and stock movements that only
    reference the lot (they take KEY SHARE locks), nor deadlock with them."""
    try:
        return Lot.objects.select_for_update(no_key=True).get(pk=lot_id)
    except Lot.DoesNotExist as error:
        raise DomainError.single("not_found", "No such lot.", field="lot", status=404) from error


@transaction.atomic
def lot_release(
    *, actor: Any, lot_id: int, password: str, meaning: str, reason: str
) -> LotStatusChange:
    """Release a quarantined or on-hold lot into clinical use.

    Refuses, listing every unmet requirement with its own code, unless all of DESIGN rule 1 holds.
    A refusal changes nothing.
    """
    reason, signer = _signed_preamble(
        actor=actor, password=password, action=LotAction.RELEASE, meaning=meaning, reason=reason
    )
    lot = _locked_lot(lot_id)
    check = lot_release_check(lot=lot)
    if not check.releasable:
        raise DomainError(check.problems, status=409)
    return _sign_status_change(
        lot=lot,
        signer=signer,
        action=LotAction.RELEASE,
        to_status=LotStatus.RELEASED,
        meaning=meaning,
        reason=reason,
    )


@transaction.atomic
def lot_reject(
    *, actor: Any, lot_id: int, password: str, meaning: str, reason: str
) -> LotStatusChange:
    """Reject a quarantined or on-hold lot: it can never be used."""
    reason, signer = _signed_preamble(
        actor=actor, password=password, action=LotAction.REJECT, meaning=meaning, reason=reason
    )
    lot = _locked_lot(lot_id)
    if lot.status not in RELEASABLE_FROM:
        raise DomainError.single(
            "lot_status_not_rejectable",
            f"A {lot.get_status_display().lower()} lot cannot be rejected; only quarantined or "
            "on-hold lots can.",
            field="status",
        )
    return _sign_status_change(
        lot=lot,
        signer=signer,
        action=LotAction.REJECT,
        to_status=LotStatus.REJECTED,
        meaning=meaning,
        reason=reason,
    )


@transaction.atomic
def lot_hold(
    *, actor: Any, lot_id: int, password: str, meaning: str, reason: str
) -> LotStatusChange:
    """Take a released lot out of use while something is investigated. `lot_release` lifts the
    hold, checking every requirement again."""
    reason, signer = _signed_preamble(
        actor=actor, password=password, action=LotAction.HOLD, meaning=meaning, reason=reason
    )
    lot = _locked_lot(lot_id)
    if lot.status != LotStatus.RELEASED:
        raise DomainError.single(
            "lot_status_not_holdable",
            f"Only a released lot can be put on hold; this one is {lot.get_status_display()}.",
            field="status",
        )
    return _sign_status_change(
        lot=lot,
        signer=signer,
        action=LotAction.HOLD,
        to_status=LotStatus.ON_HOLD,
        meaning=meaning,
        reason=reason,
    )


def lots_mark_recalled(
    *, lots: list[Lot], actor: Any, at: datetime.datetime, reason: str, record_digest: str
) -> None:
    """Mark lots recalled, each with a status change that carries the recall's signature digest.

    Called by a recall (recalls.services) inside its transaction, with the lots locked; the
    recall's own signature covers these lots, so no password is asked again here."""
    Lot.objects.filter(pk__in=[lot.pk for lot in lots]).update(
        status=LotStatus.RECALLED, status_changed_at=at
    )
    LotStatusChange.objects.bulk_create(
        [
            LotStatusChange(
                lot=lot,
                action=LotAction.RECALL,
                from_status=lot.status,
                to_status=LotStatus.RECALLED,
                signed_by=actor,
                signer_name=actor.get_full_name() or actor.get_username(),
                signed_at=at,
                meaning=SignatureMeaning.RESPONSIBILITY,
                reason=reason,
                record_digest=record_digest,
            )
            for lot in lots
        ]
    )
    for lot in lots:
        lot.status = LotStatus.RECALLED
