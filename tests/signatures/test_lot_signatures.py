"""Signatures on lot decisions (release, rejection, hold) and donor eligibility determinations:
what is recorded, and that verification holds for the untouched record and fails, naming the
difference, after any change to what was signed."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.db import InternalError, ProgrammingError, transaction
from django.utils import timezone

from common.errors import DomainError
from common.signatures import content_hash
from lots.models import (
    CertificateKind,
    Donor,
    DonorMarkerResult,
    Lot,
    LotQcResult,
    LotStatus,
    LotStatusChange,
    QcTest,
)
from lots.services import (
    donor_eligibility_decide,
    lot_hold,
    lot_qc_result_record,
    lot_reject,
    lot_release,
)
from signatures.models import Signature
from signatures.services import signature_verify
from tests.factories import (
    PASSWORD,
    DonorFactory,
    eligible_donor,
    releasable_lot,
    store_certificate,
)
from tests.signatures.helpers import tamper

pytestmark = [pytest.mark.django_db]

REASON = "Batch record, QC and donor files reviewed against the release criteria."


def release(actor, lot, **overrides) -> LotStatusChange:
    arguments = {
        "actor": actor,
        "lot_id": lot.pk,
        "password": PASSWORD,
        "meaning": "approval",
        "reason": REASON,
    }
    arguments.update(overrides)
    return lot_release(**arguments)


def hold(actor, lot) -> LotStatusChange:
    return lot_hold(
        actor=actor, lot_id=lot.pk, password=PASSWORD, meaning="responsibility", reason="Complaint"
    )


def reject(actor, lot) -> LotStatusChange:
    return lot_reject(
        actor=actor, lot_id=lot.pk, password=PASSWORD, meaning="rejection", reason="Sterility"
    )


def signature_on(record) -> Signature:
    return Signature.objects.get(record_type__model=record._meta.model_name, record_id=record.pk)


def paths(verification) -> list[str]:
    return [difference.path for difference in verification.differences]


@pytest.fixture
def released(quality_manager):
    lot = releasable_lot(quality_manager=quality_manager)
    change = release(quality_manager, lot)
    return lot, change, signature_on(change)


# ---------------------------------------------------------------------------------------------
# Signing


@pytest.mark.parametrize(
    ("act", "kind", "meaning", "to_status"),
    [
        ("release", "lot_release", "approval", LotStatus.RELEASED),
        ("reject", "lot_reject", "rejection", LotStatus.REJECTED),
        ("hold", "lot_hold", "responsibility", LotStatus.ON_HOLD),
    ],
)
def test_each_lot_decision_records_a_signature_with_every_part(
    quality_manager, act, kind, meaning, to_status
):
    lot = releasable_lot(quality_manager=quality_manager)
    if act == "hold":
        release(quality_manager, lot)
    change = {"release": release, "reject": reject, "hold": hold}[act](quality_manager, lot)

    signature = signature_on(change)
    assert signature.kind == kind
    assert signature.record_label == f"lots.lotstatuschange:{change.pk}"
    assert signature.subject == f"lots.lot:{lot.pk}"
    assert signature.signer == quality_manager
    assert signature.printed_name == "Quinn Manager"
    assert signature.signed_at == change.signed_at
    assert signature.meaning == meaning
    assert signature.reason == change.reason
    assert signature.content_sha256 == content_hash(signature.content)
    assert signature.content["record"] == signature.record_label
    assert signature.content["act"]["to_status"] == to_status
    assert signature.content["state"]["lot"]["lot_number"] == lot.lot_number
    assert len(signature.content["state"]["certificates"]) == 2
    assert signature_verify(signature).status == "valid"


def test_release_signs_donors_results_qc_and_certificates_by_hash(released):
    lot, _, signature = released
    state = signature.content["state"]
    donor = lot.donors.get()
    assert state["donors"][donor.code]["eligibility"] == "eligible"
    assert state["donors"][donor.code]["markers"]["hiv1_nat"]["result"] == "non_reactive"
    assert state["qc"]["sterility"]["outcome"] == "not_detected"
    assert state["qc"]["endotoxin"]["numeric_value"] == "0.1000"
    hashes = {item["sha256"] for item in state["certificates"].values()}
    assert hashes == set(lot.certificates.values_list("sha256", flat=True)) | {
        c.sha256 for c in lot.manufacturer.certificates.filter(kind=CertificateKind.GMP)
    }


def test_a_wrong_password_signs_nothing_and_changes_nothing(quality_manager):
    lot = releasable_lot(quality_manager=quality_manager)
    with pytest.raises(DomainError) as caught:
        release(quality_manager, lot, password="wrong")
    assert "signature_password_invalid" in caught.value.codes
    assert Signature.objects.count() == 0
    assert LotStatusChange.objects.count() == 0
    assert Lot.objects.get(pk=lot.pk).status == LotStatus.QUARANTINED


def test_a_signature_row_cannot_be_updated_or_deleted(released):
    _, _, signature = released
    for statement in (
        Signature.objects.filter(pk=signature.pk).update,
        Signature.objects.filter(pk=signature.pk).delete,
    ):
        with pytest.raises((InternalError, ProgrammingError)), transaction.atomic():
            if statement.__name__ == "update":
                statement(reason="rewritten")
            else:
                statement()


# ---------------------------------------------------------------------------------------------
# What legitimately changes later leaves the signature valid


def test_later_status_changes_and_a_later_certificate_leave_the_release_valid(
    quality_manager, released
):
    lot, _, signature = released
    hold(quality_manager, lot)
    release(quality_manager, lot)
    store_certificate(
        kind=CertificateKind.GMP,
        manufacturer=lot.manufacturer,
        uploaded_by=quality_manager,
        valid_until=timezone.localdate() + datetime.timedelta(days=700),
        number="GMP-next-year",
    )
    assert signature_verify(signature).status == "valid"
    assert Signature.objects.filter(subject=f"lots.lot:{lot.pk}").count() == 3


# ---------------------------------------------------------------------------------------------
# Altering what was signed fails verification, naming the difference


def _donor_result(lot: Lot) -> DonorMarkerResult:
    return DonorMarkerResult.objects.get(donor=lot.donors.get(), marker__code="hiv1_nat")


ALTERATIONS = {
    "expiry": (
        lambda lot: tamper(
            "UPDATE lots_lot SET expires_on = expires_on + 30 WHERE id = %s", [lot.pk]
        ),
        "state.lot.expires_on",
    ),
    "quantity": (
        lambda lot: tamper("UPDATE lots_lot SET quantity = 999 WHERE id = %s", [lot.pk]),
        "state.lot.quantity",
    ),
    "donor result": (
        lambda lot: tamper(
            "UPDATE lots_donormarkerresult SET result = 'reactive' WHERE id = %s",
            [_donor_result(lot).pk],
        ),
        "state.donors.{donor}.markers.hiv1_nat.result",
    ),
    "donor eligibility": (
        lambda lot: tamper(
            "UPDATE lots_donor SET eligibility = 'ineligible' WHERE id = %s",
            [lot.donors.get().pk],
        ),
        "state.donors.{donor}.eligibility",
    ),
    "qc result": (
        lambda lot: tamper(
            "UPDATE lots_lotqcresult SET outcome = 'detected' WHERE lot_id = %s AND test_id = %s",
            [lot.pk, QcTest.objects.get(code="sterility").pk],
        ),
        "state.qc.sterility.outcome",
    ),
    "certificate hash": (
        lambda lot: tamper(
            "UPDATE lots_certificate SET sha256 = repeat('a', 64) WHERE lot_id = %s", [lot.pk]
        ),
        "state.certificates.{coa}.sha256",
    ),
    "decision reason": (
        lambda lot: tamper(
            "UPDATE lots_lotstatuschange SET reason = 'something else' WHERE lot_id = %s",
            [lot.pk],
        ),
        "act.reason",
    ),
    "decision target": (
        lambda lot: tamper(
            "UPDATE lots_lotstatuschange SET to_status = 'rejected' WHERE lot_id = %s", [lot.pk]
        ),
        "act.to_status",
    ),
}


@pytest.mark.parametrize("alteration", sorted(ALTERATIONS))
def test_release_verification_fails_after_each_alteration_of_the_signed_content(
    released, alteration
):
    lot, _, signature = released
    alter, path = ALTERATIONS[alteration]
    path = path.format(
        donor=lot.donors.get().code, coa=lot.certificates.get(kind=CertificateKind.COA).pk
    )
    assert signature_verify(signature).status == "valid"

    alter(lot)

    verification = signature_verify(signature)
    assert verification.status == "invalid"
    assert paths(verification) == [path]
    assert path in verification.describe()


def test_a_later_correction_of_a_qc_result_fails_the_release_verification(
    quality_manager, released
):
    lot, _, signature = released
    lot_qc_result_record(
        actor=quality_manager,
        lot=lot,
        test=QcTest.objects.get(code="particle_size"),
        tested_on=lot.manufactured_on,
        laboratory="QC lab",
        numeric_value=Decimal("120"),
        reason="Transcription error",
    )
    verification = signature_verify(signature)
    assert verification.status == "invalid"
    [difference] = verification.differences
    assert difference.path == "state.qc.particle_size.numeric_value"
    assert (difference.signed, difference.now) == ("110.0000", "120.0000")


def test_a_correction_signed_again_later_supersedes_the_earlier_signatures(
    quality_manager, released
):
    lot, _, first = released
    held = signature_on(hold(quality_manager, lot))
    LotQcResult.objects.filter(lot=lot, test__code="particle_size").update(
        numeric_value=Decimal("120")
    )
    again = signature_on(release(quality_manager, lot))

    assert signature_verify(again).status == "valid"
    for earlier in (first, held):
        verification = signature_verify(earlier)
        assert verification.status == "superseded"
        assert verification.superseded_by == again.pk
        assert paths(verification) == ["state.qc.particle_size.numeric_value"]


def test_a_signature_moved_to_another_record_fails(quality_manager, released):
    _, _, signature = released
    other_lot = releasable_lot(quality_manager=quality_manager)
    other_change = release(quality_manager, other_lot)
    tamper(
        "UPDATE signatures_signature SET record_id = %s WHERE id = %s",
        [other_change.pk, signature.pk],
    )
    moved = Signature.objects.get(pk=signature.pk)
    verification = signature_verify(moved)
    assert verification.status == "invalid"
    assert {"signature", "record", "subject", "state.lot.lot_number"} <= set(paths(verification))


def test_a_rewritten_signature_row_fails(released):
    _, _, signature = released
    tamper("UPDATE signatures_signature SET meaning = 'review' WHERE id = %s", [signature.pk])
    assert paths(signature_verify(Signature.objects.get(pk=signature.pk))) == ["signature"]


def test_rewritten_stored_content_fails(released):
    _, _, signature = released
    tamper(
        "UPDATE signatures_signature SET content = jsonb_set(content, '{state,lot,quantity}', "
        "'1') WHERE id = %s",
        [signature.pk],
    )
    verification = signature_verify(Signature.objects.get(pk=signature.pk))
    assert set(paths(verification)) == {"content_sha256", "state.lot.quantity"}


# ---------------------------------------------------------------------------------------------
# Donor eligibility


def decide(actor, donor: Donor, eligibility: str = "eligible", **overrides) -> Donor:
    arguments = {
        "actor": actor,
        "donor": donor,
        "eligibility": eligibility,
        "password": PASSWORD,
        "reason": "Panel complete and non-reactive",
    }
    arguments.update(overrides)
    return donor_eligibility_decide(**arguments)


def test_donor_eligibility_is_signed_on_the_donor(quality_manager):
    donor = eligible_donor(decided_by=quality_manager)
    decide(quality_manager, donor)
    signature = signature_on(donor)
    assert signature.kind == "donor_eligibility"
    assert signature.subject == f"lots.donor:{donor.pk}"
    assert signature.meaning == "responsibility"
    assert signature.printed_name == "Quinn Manager"
    assert signature.reason == "Panel complete and non-reactive"
    assert signature.content["state"]["eligibility"] == "eligible"
    assert "hiv1_ab" in signature.content["state"]["markers"]
    assert signature_verify(signature).status == "valid"

    tamper(
        "UPDATE lots_donormarkerresult SET tested_on = tested_on - 1 "
        "WHERE donor_id = %s AND marker_id = (SELECT id FROM lots_marker WHERE code = 'hcv_ab')",
        [donor.pk],
    )
    verification = signature_verify(signature)
    assert verification.status == "invalid"
    assert paths(verification) == ["state.markers.hcv_ab.tested_on"]


def test_a_later_determination_supersedes_the_earlier_one(quality_manager):
    donor = eligible_donor(decided_by=quality_manager)
    decide(quality_manager, donor)
    decide(quality_manager, donor, "ineligible", reason="Travel history")
    first, second = Signature.objects.filter(kind="donor_eligibility").order_by("signed_at")
    assert signature_verify(second).status == "valid"
    verification = signature_verify(first)
    assert verification.status == "superseded"
    assert "state.eligibility" in paths(verification)


def test_a_wrong_password_decides_nothing_about_a_donor(quality_manager):
    donor = DonorFactory()
    with pytest.raises(DomainError):
        decide(quality_manager, donor, "ineligible", password="nope")
    assert Signature.objects.count() == 0
    assert Donor.objects.get(pk=donor.pk).eligibility == "incomplete"


def test_signed_time_is_the_decision_time(quality_manager):
    before = timezone.now()
    donor = decide(quality_manager, eligible_donor(decided_by=quality_manager))
    signature = signature_on(donor)
    assert before <= signature.signed_at == donor.eligibility_decided_at
