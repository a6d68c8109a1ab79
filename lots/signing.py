"""What the signatures on lots and donors sign (found by `signatures.apps`).

A lot decision (release, rejection, hold) is signed on its `LotStatusChange` row; the subject is
the lot. A retrospective release also signs its effective date. What is signed of the lot:
- identity: number, manufacturer, product (with GTIN, source kind and tissue, which decide the
  release rules), dates, quantity and unit, regulatory basis and number, and the Single European
  Code where the lot carries one;
- every donor with identity, tissue, dates, laboratory, eligibility decision and each marker
  result (result, date, laboratory, method);
- every QC result (value or outcome, date, laboratory, method);
- the certificates on file when it was signed (the lot's CoA and the manufacturer's GMP and
  ISO 13485), by SHA-256 and number. Certificates are immutable; a later upload (next year's GMP
  certificate) is not what was signed and is left out by its upload time.
Left out, because it legitimately changes after signing: the lot's current status and status
time (the act records the from and to status; a later change is a later signature), stock,
treatments and recalls. A correction of a donor result or a QC result after signing does change
what was signed: verification names it, and calls the signature superseded when a later
signature covers the corrected lot.

A donor eligibility determination is signed on the donor: its identity, the marker results and
the decision (eligibility, who, when). A later determination supersedes it.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.db.models import Q, QuerySet

from common.signatures import Meaning
from signatures.registry import (
    Acts,
    Built,
    ModelLookup,
    SignedKind,
    iso,
    one,
    plain,
    register,
    table,
)

_MANUFACTURER_CERTIFICATES = ("gmp", "iso13485")


def _marker_results(donor_ids: list[int], get_model: ModelLookup) -> dict[int, dict[str, Any]]:
    results: dict[int, dict[str, Any]] = {donor_id: {} for donor_id in donor_ids}
    rows = (
        table(get_model, "lots", "DonorMarkerResult")
        .filter(donor_id__in=donor_ids)
        .values("donor_id", "marker__code", "result", "tested_on", "laboratory", "test_method")
    )
    for row in rows:
        donor_id = row.pop("donor_id")
        results[donor_id][row.pop("marker__code")] = plain(row)
    return results


_DONOR_FIELDS = (
    "id",
    "code",
    "isbt_din",
    "tissue",
    "collection_date",
    "specimen_date",
    "birth_mother_tested",
    "testing_laboratory",
)


_SEC_FIELDS = (
    "sec_issuing_country",
    "sec_establishment_code",
    "sec_donation_number",
    "sec_coding_system",
    "sec_product_number",
    "sec_split_number",
)


def lot_state(lot_id: int, signed_at: datetime.datetime, get_model: ModelLookup) -> dict[str, Any]:
    lot = one(
        table(get_model, "lots", "Lot")
        .filter(pk=lot_id)
        .values(
            "lot_number",
            "manufacturer_id",
            "product_id",
            "product__gtin",
            "product__source_kind",
            "product__tissue",
            "manufactured_on",
            "expires_on",
            "quantity",
            "unit",
            "regulatory_basis",
            "regulatory_number",
            *_SEC_FIELDS,
        ),
        f"lot {lot_id}",
    )
    # A lot without a Single European Code signs what lots always signed.
    if not lot["sec_issuing_country"]:
        for name in _SEC_FIELDS:
            del lot[name]
    donor_rows = list(
        table(get_model, "lots", "Donor")
        .filter(lot_donors__lot_id=lot_id)
        .values(*_DONOR_FIELDS, "eligibility")
    )
    markers = _marker_results([row["id"] for row in donor_rows], get_model)
    donors = {row["code"]: {**plain(row), "markers": markers[row["id"]]} for row in donor_rows}
    qc = {
        row.pop("test__code"): plain(row)
        for row in table(get_model, "lots", "LotQcResult")
        .filter(lot_id=lot_id)
        .values("test__code", "numeric_value", "outcome", "tested_on", "laboratory", "method")
    }
    certificates = {
        str(row.pop("id")): plain(row)
        for row in table(get_model, "lots", "Certificate")
        .filter(
            Q(lot_id=lot_id)
            | Q(manufacturer_id=lot["manufacturer_id"], kind__in=_MANUFACTURER_CERTIFICATES),
            uploaded_at__lte=signed_at,
        )
        .values("id", "kind", "sha256", "number", "issuer", "valid_from", "valid_until")
    }
    return {
        "lot": {"id": lot_id, **plain(lot)},
        "donors": donors,
        "qc": qc,
        "certificates": certificates,
    }


def _lot_decision(change_id: int, signed_at: datetime.datetime, get_model: ModelLookup) -> Built:
    change = one(
        table(get_model, "lots", "LotStatusChange")
        .filter(pk=change_id)
        .values(
            "lot_id",
            "action",
            "from_status",
            "to_status",
            "signed_by_id",
            "signer_name",
            "signed_at",
            "meaning",
            "reason",
            "record_digest",
            "effective_at",
            "retrospective",
        ),
        f"lot status change {change_id}",
    )
    lot_id = change.pop("lot_id")
    # A decision that held from its signing signs what it always did; a retrospective release
    # also signs the date it states.
    if not change["retrospective"]:
        del change["effective_at"], change["retrospective"]
    return Built(
        subject=f"lots.lot:{lot_id}",
        state=lot_state(lot_id, signed_at, get_model),
        act=plain(change),
    )


def _donor_determination(
    donor_id: int, signed_at: datetime.datetime, get_model: ModelLookup
) -> Built:
    donor = one(
        table(get_model, "lots", "Donor")
        .filter(pk=donor_id)
        .values(
            *_DONOR_FIELDS, "eligibility", "eligibility_decided_by_id", "eligibility_decided_at"
        ),
        f"donor {donor_id}",
    )
    # The decision is part of the donor's state: a later determination rewrites it (and is a
    # later signature, which supersedes this one).
    return Built(
        subject=f"lots.donor:{donor_id}",
        state={**plain(donor), "markers": _marker_results([donor_id], get_model)[donor_id]},
        act={},
    )


def _decisions(action: str) -> Acts:
    def acts(get_model: ModelLookup) -> QuerySet[Any]:
        return table(get_model, "lots", "LotStatusChange").filter(action=action)

    return acts


LOT_RELEASE = register(
    SignedKind(
        code="lot_release",
        label="lot release",
        record_model="lots.lotstatuschange",
        meanings=frozenset({Meaning.APPROVAL, Meaning.REVIEW, Meaning.RESPONSIBILITY}),
        build=_lot_decision,
        acts=_decisions("release"),
        act_time="signed_at",
    )
)
LOT_REJECTION = register(
    SignedKind(
        code="lot_reject",
        label="lot rejection",
        record_model="lots.lotstatuschange",
        meanings=frozenset({Meaning.REJECTION, Meaning.REVIEW, Meaning.RESPONSIBILITY}),
        build=_lot_decision,
        acts=_decisions("reject"),
        act_time="signed_at",
    )
)
LOT_HOLD = register(
    SignedKind(
        code="lot_hold",
        label="lot hold",
        record_model="lots.lotstatuschange",
        meanings=frozenset({Meaning.REVIEW, Meaning.RESPONSIBILITY}),
        build=_lot_decision,
        acts=_decisions("hold"),
        act_time="signed_at",
    )
)
DONOR_ELIGIBILITY = register(
    SignedKind(
        code="donor_eligibility",
        label="donor eligibility determination",
        record_model="lots.donor",
        meanings=frozenset({Meaning.RESPONSIBILITY}),
        build=_donor_determination,
        acts=lambda get_model: table(get_model, "lots", "Donor").filter(
            eligibility_decided_at__isnull=False
        ),
        act_time="eligibility_decided_at",
    )
)

__all__ = ["iso", "lot_state"]
