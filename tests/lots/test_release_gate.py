"""The release gate (DESIGN rule 1): every requirement both ways, the signature, and what a refusal
leaves behind (nothing)."""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import re
from decimal import Decimal

import pytest
from django.utils import timezone
from pghistory.models import Events

from common.errors import DomainError
from lots.models import (
    CertificateKind,
    Donor,
    Eligibility,
    Lot,
    LotDonor,
    LotStatus,
    LotStatusChange,
    MarkerResultValue,
    QcOutcome,
    QcSpecification,
    QcTest,
    RegulatoryBasis,
    SourceKind,
    Tissue,
)
from lots.selectors import current_certificates, lot_release_check
from lots.services import (
    certificate_upload,
    donor_marker_result_record,
    lot_hold,
    lot_qc_result_record,
    lot_record_digest,
    lot_reject,
    lot_release,
)
from providers.models import Membership, Role
from tests.factories import (
    PASSWORD,
    ManufacturerFactory,
    MembershipFactory,
    ProductFactory,
    UserFactory,
    eligible_donor,
    lot_for_release,
    pdf_bytes,
    releasable_lot,
    store_certificate,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]

# 21 CFR 1271.85: every donor; leukocyte-rich tissue adds HTLV-I/II and CMV.
MARKERS_FOR_EVERY_DONOR = [
    "hiv1_ab",
    "hiv1_nat",
    "hiv2_ab",
    "hbsag",
    "anti_hbc",
    "hcv_ab",
    "hcv_nat",
    "treponema",
    "wnv_nat",
]
MARKERS_FOR_LEUKOCYTE_RICH_TISSUE = ["htlv", "cmv"]


def today() -> datetime.date:
    return timezone.localdate()


def release(actor, lot, **overrides) -> LotStatusChange:
    arguments = {
        "actor": actor,
        "lot_id": lot.pk,
        "password": PASSWORD,
        "meaning": "approval",
        "reason": "Batch record, QC and donor files reviewed against the release criteria.",
    }
    arguments.update(overrides)
    return lot_release(**arguments)


def hold(actor, lot, **overrides) -> LotStatusChange:
    arguments = {
        "actor": actor,
        "lot_id": lot.pk,
        "password": PASSWORD,
        "meaning": "responsibility",
        "reason": "Complaint of injection-site infection under investigation.",
    }
    arguments.update(overrides)
    return lot_hold(**arguments)


def reject(actor, lot, **overrides) -> LotStatusChange:
    arguments = {
        "actor": actor,
        "lot_id": lot.pk,
        "password": PASSWORD,
        "meaning": "rejection",
        "reason": "Sterility failure confirmed on retest.",
    }
    arguments.update(overrides)
    return lot_reject(**arguments)


def refusal(actor, lot) -> DomainError:
    """Release the lot, expecting a 409 refusal, and check the refusal changed nothing."""
    status_before = Lot.objects.get(pk=lot.pk).status
    with pytest.raises(DomainError) as caught:
        release(actor, lot)
    assert caught.value.status == 409
    assert Lot.objects.get(pk=lot.pk).status == status_before
    return caught.value


def refusal_codes(actor, lot) -> list[str]:
    return refusal(actor, lot).codes


def record_qc(actor, lot, code: str, value) -> None:
    """Correct a lot's QC result through the service (a second result needs a reason)."""
    test = QcTest.objects.get(code=code)
    lot_qc_result_record(
        actor=actor,
        lot=lot,
        test=test,
        tested_on=lot.manufactured_on,
        laboratory="QC lab",
        numeric_value=value if isinstance(value, Decimal) else None,
        outcome=value if isinstance(value, str) else "",
        reason="Retest recorded",
    )


# ---------------------------------------------------------------------------------------------
# A lot that meets every requirement


def test_lot_release_releases_a_lot_that_meets_every_requirement(quality_manager):
    lot = releasable_lot(quality_manager=quality_manager)
    assert lot_release_check(lot=lot).problems == []

    change = release(quality_manager, lot)

    lot.refresh_from_db()
    assert lot.status == LotStatus.RELEASED
    assert lot.status_changed_at == change.signed_at
    assert change.from_status == LotStatus.QUARANTINED
    assert change.to_status == LotStatus.RELEASED
    assert change.action == "release"


def test_lot_release_stores_a_signed_record_with_name_time_meaning_and_reason(quality_manager):
    lot = releasable_lot(quality_manager=quality_manager)
    before = timezone.now()

    change = release(quality_manager, lot, meaning="approval", reason="  QA review complete.  ")

    stored = LotStatusChange.objects.get(pk=change.pk)
    assert stored.signed_by == quality_manager
    assert stored.signer_name == "Quinn Manager"
    assert before <= stored.signed_at <= timezone.now()
    assert stored.meaning == "approval"
    assert stored.reason == "QA review complete."
    assert re.fullmatch(r"[0-9a-f]{64}", stored.record_digest)


def test_lot_release_signer_name_falls_back_to_username_without_a_full_name(quality_manager):
    signer = UserFactory(username="qa.night", first_name="", last_name="")
    MembershipFactory(user=signer, role=Role.QUALITY_MANAGER, clinic=None)
    lot = releasable_lot(quality_manager=quality_manager)

    change = release(signer, lot)

    assert change.signer_name == "qa.night"


def test_record_digest_differs_between_lots_signed_alike(quality_manager):
    first = releasable_lot(quality_manager=quality_manager)
    second = releasable_lot(quality_manager=quality_manager)

    digests = {release(quality_manager, lot).record_digest for lot in (first, second)}

    assert len(digests) == 2


def test_record_digest_is_bound_to_the_lot_content_at_signing(quality_manager):
    # given a released lot and the content its signature was computed over
    lot = releasable_lot(quality_manager=quality_manager)
    change = release(quality_manager, lot)

    def recomputed() -> str:
        signed = Lot.objects.get(pk=lot.pk)
        signed.status = change.from_status
        payload = {
            "record": lot_record_digest(signed),
            "action": change.action,
            "to_status": change.to_status,
            "signer": change.signed_by_id,
            "signed_at": change.signed_at.isoformat(),
            "meaning": change.meaning,
            "reason": change.reason,
        }
        encoded = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(encoded).hexdigest()

    # then the stored digest matches the record as it stands
    assert recomputed() == change.record_digest

    # when a QC result behind the decision is changed afterwards
    record_qc(quality_manager, lot, "endotoxin", Decimal("0.45"))

    # then the signature no longer matches: the change is evident
    assert recomputed() != change.record_digest


# ---------------------------------------------------------------------------------------------
# Status and expiry


@pytest.mark.parametrize("status", [LotStatus.RELEASED, LotStatus.REJECTED, LotStatus.RECALLED])
def test_lot_release_refuses_lot_that_is_not_quarantined_or_on_hold(quality_manager, status):
    lot = releasable_lot(quality_manager=quality_manager)
    Lot.objects.filter(pk=lot.pk).update(status=status)

    assert refusal_codes(quality_manager, lot) == ["lot_status_not_releasable"]


def test_lot_release_refuses_expired_lot(quality_manager):
    lot = releasable_lot(quality_manager=quality_manager)
    Lot.objects.filter(pk=lot.pk).update(expires_on=today() - datetime.timedelta(days=1))

    error = refusal(quality_manager, lot)

    assert error.codes == ["lot_expired"]
    assert error.problems[0].field == "expires_on"


def test_lot_release_allows_lot_that_expires_today(quality_manager):
    lot = releasable_lot(quality_manager=quality_manager)
    Lot.objects.filter(pk=lot.pk).update(expires_on=today())

    release(quality_manager, lot)

    assert Lot.objects.get(pk=lot.pk).status == LotStatus.RELEASED


# ---------------------------------------------------------------------------------------------
# Donors


def test_lot_release_refuses_human_derived_lot_without_donors(quality_manager):
    lot = lot_for_release(quality_manager=quality_manager, donors=0)

    assert refusal_codes(quality_manager, lot) == ["donor_missing"]


@pytest.mark.parametrize("source_kind", [SourceKind.SYNTHETIC, SourceKind.PLANT, SourceKind.ANIMAL])
def test_lot_release_needs_no_donors_for_a_product_that_is_not_human_derived(
    quality_manager, source_kind
):
    product = ProductFactory(source_kind=source_kind, tissue="")
    lot = releasable_lot(quality_manager=quality_manager, product=product)
    assert not LotDonor.objects.filter(lot=lot).exists()

    release(quality_manager, lot)

    assert Lot.objects.get(pk=lot.pk).status == LotStatus.RELEASED


@pytest.mark.parametrize("eligibility", [Eligibility.INCOMPLETE, Eligibility.INELIGIBLE])
def test_lot_release_refuses_donor_who_is_not_eligible(quality_manager, eligibility):
    lot = releasable_lot(quality_manager=quality_manager)
    donor = lot.donors.get()
    Donor.objects.filter(pk=donor.pk).update(eligibility=eligibility)

    error = refusal(quality_manager, lot)

    assert error.codes == ["donor_not_eligible"]
    assert error.problems[0].field == f"donors.{donor.code}.eligibility"


def test_lot_release_refuses_donor_whose_tissue_differs_from_the_product(quality_manager):
    lot = lot_for_release(quality_manager=quality_manager, donors=0)
    assert lot.product.tissue == Tissue.ADIPOSE
    donor = eligible_donor(decided_by=quality_manager, tissue=Tissue.BONE_MARROW)
    LotDonor.objects.create(lot=lot, donor=donor)

    assert refusal_codes(quality_manager, lot) == ["donor_tissue_mismatch"]


@pytest.mark.parametrize("tissue", [Tissue.UMBILICAL_CORD, Tissue.PLACENTA, Tissue.AMNIOTIC])
def test_lot_release_refuses_neonatal_donor_whose_birth_mother_was_not_tested(
    quality_manager, tissue
):
    product = ProductFactory(tissue=tissue)
    lot = lot_for_release(quality_manager=quality_manager, product=product, donors=0)
    donor = eligible_donor(decided_by=quality_manager, tissue=tissue, birth_mother_tested=False)
    LotDonor.objects.create(lot=lot, donor=donor)

    assert refusal_codes(quality_manager, lot) == ["donor_birth_mother_not_tested"]


def test_lot_release_allows_umbilical_cord_donor_whose_birth_mother_was_tested(quality_manager):
    product = ProductFactory(tissue=Tissue.UMBILICAL_CORD)
    lot = lot_for_release(quality_manager=quality_manager, product=product, donors=0)
    donor = eligible_donor(
        decided_by=quality_manager, tissue=Tissue.UMBILICAL_CORD, birth_mother_tested=True
    )
    LotDonor.objects.create(lot=lot, donor=donor)

    release(quality_manager, lot)

    assert Lot.objects.get(pk=lot.pk).status == LotStatus.RELEASED


@pytest.mark.parametrize("marker", MARKERS_FOR_EVERY_DONOR)
def test_lot_release_refuses_donor_without_a_required_marker_result(quality_manager, marker):
    lot = lot_for_release(quality_manager=quality_manager, donors=0)
    donor = eligible_donor(decided_by=quality_manager, skip_markers=(marker,))
    LotDonor.objects.create(lot=lot, donor=donor)

    error = refusal(quality_manager, lot)

    assert error.codes == ["donor_marker_missing"]
    assert error.problems[0].field == f"donors.{donor.code}.markers.{marker}"


@pytest.mark.parametrize("marker", MARKERS_FOR_LEUKOCYTE_RICH_TISSUE)
def test_lot_release_refuses_bone_marrow_donor_without_htlv_or_cmv(quality_manager, marker):
    product = ProductFactory(tissue=Tissue.BONE_MARROW)
    lot = lot_for_release(quality_manager=quality_manager, product=product, donors=0)
    donor = eligible_donor(
        decided_by=quality_manager, tissue=Tissue.BONE_MARROW, skip_markers=(marker,)
    )
    LotDonor.objects.create(lot=lot, donor=donor)

    error = refusal(quality_manager, lot)

    assert error.codes == ["donor_marker_missing"]
    assert error.problems[0].field == f"donors.{donor.code}.markers.{marker}"


def test_lot_release_allows_bone_marrow_donor_with_the_leukocyte_rich_panel(quality_manager):
    product = ProductFactory(tissue=Tissue.BONE_MARROW)
    lot = releasable_lot(quality_manager=quality_manager, product=product)
    tested = set(lot.donors.get().marker_results.values_list("marker__code", flat=True))
    assert tested == set(MARKERS_FOR_EVERY_DONOR + MARKERS_FOR_LEUKOCYTE_RICH_TISSUE)

    release(quality_manager, lot)

    assert Lot.objects.get(pk=lot.pk).status == LotStatus.RELEASED


def test_lot_release_does_not_ask_adipose_donor_for_htlv_or_cmv(quality_manager):
    lot = releasable_lot(quality_manager=quality_manager)
    tested = set(lot.donors.get().marker_results.values_list("marker__code", flat=True))
    assert tested == set(MARKERS_FOR_EVERY_DONOR)

    release(quality_manager, lot)

    assert Lot.objects.get(pk=lot.pk).status == LotStatus.RELEASED


@pytest.mark.parametrize("result", [MarkerResultValue.REACTIVE, MarkerResultValue.INDETERMINATE])
def test_lot_release_refuses_donor_with_reactive_or_indeterminate_marker(quality_manager, result):
    lot = lot_for_release(quality_manager=quality_manager, donors=0)
    donor = eligible_donor(decided_by=quality_manager, marker_results={"hcv_nat": result})
    LotDonor.objects.create(lot=lot, donor=donor)

    error = refusal(quality_manager, lot)

    assert error.codes == ["donor_marker_reactive"]
    assert error.problems[0].field == f"donors.{donor.code}.markers.hcv_nat"


def test_lot_release_checks_every_donor_of_a_pooled_lot(quality_manager):
    # given a lot pooled from three donors, two of them with different problems
    lot = lot_for_release(quality_manager=quality_manager, donors=1)
    missing = eligible_donor(decided_by=quality_manager, skip_markers=("treponema",))
    reactive = eligible_donor(decided_by=quality_manager, marker_results={"hbsag": "reactive"})
    LotDonor.objects.create(lot=lot, donor=missing)
    LotDonor.objects.create(lot=lot, donor=reactive)

    # when it is released, then both donors are named
    error = refusal(quality_manager, lot)
    assert sorted(error.codes) == ["donor_marker_missing", "donor_marker_reactive"]
    fields = {problem.field for problem in error.problems}
    assert fields == {
        f"donors.{missing.code}.markers.treponema",
        f"donors.{reactive.code}.markers.hbsag",
    }


# ---------------------------------------------------------------------------------------------
# Lot QC


@pytest.mark.parametrize(
    "test_code",
    [
        "sterility",
        "mycoplasma",
        "endotoxin",
        "particle_concentration",
        "particle_size",
        "ev_marker_membrane",
        "ev_marker_cytosolic",
        "ev_negative_marker",
    ],
)
def test_lot_release_refuses_lot_without_a_required_qc_result(quality_manager, test_code):
    lot = lot_for_release(quality_manager=quality_manager, skip_qc=(test_code,))

    error = refusal(quality_manager, lot)

    assert error.codes == ["qc_result_missing"]
    assert error.problems[0].field == f"qc.{test_code}"


@pytest.mark.parametrize(
    ("test_code", "value"),
    [
        ("endotoxin", Decimal("0.6")),
        ("endotoxin", Decimal("0.5001")),
        ("particle_size", Decimal("29.9")),
        ("particle_size", Decimal("200.1")),
        ("particle_concentration", Decimal("999999999")),
        ("sterility", QcOutcome.DETECTED),
        ("mycoplasma", QcOutcome.DETECTED),
        ("ev_marker_membrane", QcOutcome.NOT_DETECTED),
        ("ev_marker_cytosolic", QcOutcome.NOT_DETECTED),
        ("ev_negative_marker", QcOutcome.DETECTED),
    ],
)
def test_lot_release_refuses_qc_result_out_of_specification(quality_manager, test_code, value):
    lot = releasable_lot(quality_manager=quality_manager)
    record_qc(quality_manager, lot, test_code, value)

    error = refusal(quality_manager, lot)

    assert error.codes == ["qc_out_of_spec"]
    assert error.problems[0].field == f"qc.{test_code}"


@pytest.mark.parametrize(
    ("test_code", "value"),
    [
        ("endotoxin", Decimal("0.5")),
        ("endotoxin", Decimal("0")),
        ("particle_size", Decimal("30")),
        ("particle_size", Decimal("200")),
        ("particle_concentration", Decimal("1000000000")),
    ],
)
def test_lot_release_allows_qc_result_at_the_specification_boundary(
    quality_manager, test_code, value
):
    lot = releasable_lot(quality_manager=quality_manager)
    record_qc(quality_manager, lot, test_code, value)

    release(quality_manager, lot)

    assert Lot.objects.get(pk=lot.pk).status == LotStatus.RELEASED


def test_out_of_spec_message_names_the_value_and_the_specification(quality_manager):
    lot = releasable_lot(quality_manager=quality_manager)
    record_qc(quality_manager, lot, "endotoxin", Decimal("0.6"))

    (problem,) = refusal(quality_manager, lot).problems

    assert "0.6" in problem.message
    assert "<= 0.5" in problem.message
    assert "EU/mL" in problem.message


def test_product_specific_specification_overrides_the_default(quality_manager):
    # given a product with a tighter endotoxin limit than the network default of 0.5 EU/mL
    strict_product = ProductFactory()
    QcSpecification.objects.create(
        test=QcTest.objects.get(code="endotoxin"), product=strict_product, max_value=Decimal("0.25")
    )
    strict_lot = releasable_lot(quality_manager=quality_manager, product=strict_product)
    ordinary_lot = releasable_lot(quality_manager=quality_manager)

    # when both lots measure 0.3 EU/mL, within the default but above the product's own limit
    record_qc(quality_manager, strict_lot, "endotoxin", Decimal("0.3"))
    record_qc(quality_manager, ordinary_lot, "endotoxin", Decimal("0.3"))

    # then only the product with the stricter specification is refused
    error = refusal(quality_manager, strict_lot)
    assert error.codes == ["qc_out_of_spec"]
    assert "0.25" in error.problems[0].message
    release(quality_manager, ordinary_lot)
    assert Lot.objects.get(pk=ordinary_lot.pk).status == LotStatus.RELEASED


def test_product_specific_specification_can_waive_a_default_test(quality_manager):
    product = ProductFactory()
    QcSpecification.objects.create(
        test=QcTest.objects.get(code="particle_concentration"),
        product=product,
        required=False,
        min_value=Decimal("1000000000"),
    )
    lot = lot_for_release(
        quality_manager=quality_manager, product=product, skip_qc=("particle_concentration",)
    )

    release(quality_manager, lot)

    assert Lot.objects.get(pk=lot.pk).status == LotStatus.RELEASED


# ---------------------------------------------------------------------------------------------
# Certificates


def test_lot_release_refuses_lot_without_certificate_of_analysis(quality_manager):
    lot = lot_for_release(quality_manager=quality_manager, coa=False)

    assert refusal_codes(quality_manager, lot) == ["coa_missing"]


def test_certificate_of_analysis_of_another_lot_does_not_count(quality_manager):
    lot = lot_for_release(quality_manager=quality_manager, coa=False)
    other = releasable_lot(quality_manager=quality_manager, product=lot.product)
    assert other.certificates.filter(kind=CertificateKind.COA).exists()

    assert refusal_codes(quality_manager, lot) == ["coa_missing"]


def test_superseded_certificate_of_analysis_still_counts_through_its_newest_version(
    quality_manager,
):
    # given a lot whose CoA was replaced by a corrected version
    lot = releasable_lot(quality_manager=quality_manager)
    original = lot.certificates.get(kind=CertificateKind.COA)
    correction = certificate_upload(
        actor=quality_manager,
        kind=CertificateKind.COA,
        issuer="QC lab",
        number="COA-corrected",
        valid_from=today(),
        file=io.BytesIO(pdf_bytes("corrected CoA")),
        lot=lot,
        supersedes=original,
        reason="Particle size transcribed wrongly on the first version.",
    )
    assert list(current_certificates().filter(lot=lot)) == [correction]

    # when the gate runs, then the newest version satisfies the CoA requirement
    release(quality_manager, lot)
    assert Lot.objects.get(pk=lot.pk).status == LotStatus.RELEASED


def test_lot_release_refuses_manufacturer_without_gmp_certificate(quality_manager):
    lot = lot_for_release(quality_manager=quality_manager, gmp=False)

    assert refusal_codes(quality_manager, lot) == ["gmp_certificate_missing"]


def test_gmp_certificate_of_another_manufacturer_does_not_count(quality_manager):
    lot = lot_for_release(quality_manager=quality_manager, gmp=False)
    store_certificate(
        kind=CertificateKind.GMP,
        manufacturer=ManufacturerFactory(),
        uploaded_by=quality_manager,
        valid_until=today() + datetime.timedelta(days=365),
    )

    assert refusal_codes(quality_manager, lot) == ["gmp_certificate_missing"]


def test_lot_release_refuses_manufacturer_whose_gmp_certificate_expired(quality_manager):
    lot = lot_for_release(quality_manager=quality_manager, gmp=False)
    store_certificate(
        kind=CertificateKind.GMP,
        manufacturer=lot.manufacturer,
        uploaded_by=quality_manager,
        valid_from=today() - datetime.timedelta(days=400),
        valid_until=today() - datetime.timedelta(days=1),
    )

    assert refusal_codes(quality_manager, lot) == ["gmp_certificate_expired"]


def test_lot_release_allows_gmp_certificate_valid_until_today(quality_manager):
    lot = lot_for_release(quality_manager=quality_manager, gmp=False)
    store_certificate(
        kind=CertificateKind.GMP,
        manufacturer=lot.manufacturer,
        uploaded_by=quality_manager,
        valid_until=today(),
    )

    release(quality_manager, lot)

    assert Lot.objects.get(pk=lot.pk).status == LotStatus.RELEASED


def test_lot_release_refuses_manufacturer_whose_gmp_certificate_is_not_yet_valid(
    quality_manager,
):
    lot = lot_for_release(quality_manager=quality_manager, gmp=False)
    store_certificate(
        kind=CertificateKind.GMP,
        manufacturer=lot.manufacturer,
        uploaded_by=quality_manager,
        valid_from=today() + datetime.timedelta(days=1),
        valid_until=today() + datetime.timedelta(days=366),
    )

    assert refusal_codes(quality_manager, lot) == ["gmp_certificate_not_yet_valid"]


def test_lot_release_accepts_iso_13485_certificate_as_equivalent_to_gmp(quality_manager):
    lot = lot_for_release(quality_manager=quality_manager, gmp=False)
    store_certificate(
        kind=CertificateKind.ISO_13485,
        manufacturer=lot.manufacturer,
        uploaded_by=quality_manager,
        valid_until=today() + datetime.timedelta(days=365),
    )

    release(quality_manager, lot)

    assert Lot.objects.get(pk=lot.pk).status == LotStatus.RELEASED


# ---------------------------------------------------------------------------------------------
# Several problems at once; warnings


def test_lot_release_lists_every_unmet_requirement_and_changes_nothing(quality_manager):
    # given an expired lot without donors, without a sterility result, with endotoxin out of
    # specification, without a CoA and with a manufacturer that has no GMP certificate
    lot = lot_for_release(
        quality_manager=quality_manager, donors=0, skip_qc=("sterility",), coa=False, gmp=False
    )
    record_qc(quality_manager, lot, "endotoxin", Decimal("0.9"))
    Lot.objects.filter(pk=lot.pk).update(expires_on=today() - datetime.timedelta(days=1))
    events_before = Events.objects.count()
    changes_before = LotStatusChange.objects.count()

    # when the quality manager tries to release it
    error = refusal(quality_manager, lot)

    # then every problem is listed, each with its own code
    assert sorted(error.codes) == sorted(
        [
            "lot_expired",
            "donor_missing",
            "qc_result_missing",
            "qc_out_of_spec",
            "coa_missing",
            "gmp_certificate_missing",
        ]
    )
    # and nothing was written: no status change, no signature, no history
    assert Lot.objects.get(pk=lot.pk).status == LotStatus.QUARANTINED
    assert LotStatusChange.objects.count() == changes_before
    assert Events.objects.count() == events_before


def test_no_regulatory_basis_is_a_warning_not_a_refusal(quality_manager):
    lot = releasable_lot(quality_manager=quality_manager)
    Lot.objects.filter(pk=lot.pk).update(
        regulatory_basis=RegulatoryBasis.NONE, regulatory_number=""
    )
    lot.refresh_from_db()

    check = lot_release_check(lot=lot)

    assert check.releasable
    assert [warning.code for warning in check.warnings] == ["regulatory_basis_none"]
    release(quality_manager, lot)
    assert Lot.objects.get(pk=lot.pk).status == LotStatus.RELEASED


def test_lot_with_an_ind_number_has_no_warning(quality_manager):
    lot = releasable_lot(quality_manager=quality_manager)

    assert lot_release_check(lot=lot).warnings == []


# ---------------------------------------------------------------------------------------------
# Who may sign, and how


@pytest.mark.parametrize("who", ["clinician", "auditor", "clinic_administrator", "no_role"])
def test_lot_release_refuses_user_who_is_not_a_quality_manager(request, quality_manager, who):
    signer = UserFactory() if who == "no_role" else request.getfixturevalue(who)
    lot = releasable_lot(quality_manager=quality_manager)

    with pytest.raises(DomainError) as caught:
        release(signer, lot)

    assert caught.value.status == 403
    assert caught.value.codes == ["role_required"]
    assert Lot.objects.get(pk=lot.pk).status == LotStatus.QUARANTINED


def test_lot_release_refuses_quality_manager_whose_membership_is_inactive(quality_manager):
    lot = releasable_lot(quality_manager=quality_manager)
    Membership.objects.filter(user=quality_manager).update(active=False)

    with pytest.raises(DomainError) as caught:
        release(quality_manager, lot)

    assert caught.value.codes == ["role_required"]


@pytest.mark.parametrize("password", ["wrong password", ""])
def test_lot_release_refuses_wrong_signature_password(quality_manager, password):
    lot = releasable_lot(quality_manager=quality_manager)

    with pytest.raises(DomainError) as caught:
        release(quality_manager, lot, password=password)

    assert caught.value.status == 403
    assert caught.value.codes == ["signature_password_invalid"]
    assert caught.value.problems[0].field == "password"
    assert not LotStatusChange.objects.filter(lot=lot).exists()


def test_lot_release_without_reason_and_with_wrong_meaning_reports_both(quality_manager):
    lot = releasable_lot(quality_manager=quality_manager)

    with pytest.raises(DomainError) as caught:
        release(quality_manager, lot, meaning="rejection", reason="   ")

    assert caught.value.status == 400
    assert sorted(caught.value.codes) == ["reason_required", "signature_meaning_invalid"]
    assert {problem.field for problem in caught.value.problems} == {"reason", "meaning"}
    assert Lot.objects.get(pk=lot.pk).status == LotStatus.QUARANTINED


@pytest.mark.parametrize("meaning", ["review", "responsibility"])
def test_lot_release_accepts_review_and_responsibility_meanings(quality_manager, meaning):
    lot = releasable_lot(quality_manager=quality_manager)

    change = release(quality_manager, lot, meaning=meaning)

    assert change.meaning == meaning


def test_lot_release_of_unknown_lot_is_not_found(quality_manager):
    with pytest.raises(DomainError) as caught:
        lot_release(
            actor=quality_manager, lot_id=999_999, password=PASSWORD, meaning="approval", reason="x"
        )

    assert caught.value.status == 404
    assert caught.value.codes == ["not_found"]


# ---------------------------------------------------------------------------------------------
# Hold, release from hold, reject


def test_lot_hold_takes_a_released_lot_out_of_use(quality_manager):
    lot = releasable_lot(quality_manager=quality_manager)
    release(quality_manager, lot)

    change = hold(quality_manager, lot)

    assert Lot.objects.get(pk=lot.pk).status == LotStatus.ON_HOLD
    assert (change.action, change.from_status, change.to_status) == (
        "hold",
        LotStatus.RELEASED,
        LotStatus.ON_HOLD,
    )


@pytest.mark.parametrize(
    "status",
    [LotStatus.QUARANTINED, LotStatus.ON_HOLD, LotStatus.REJECTED, LotStatus.RECALLED],
)
def test_lot_hold_refuses_lot_that_is_not_released(quality_manager, status):
    lot = releasable_lot(quality_manager=quality_manager)
    Lot.objects.filter(pk=lot.pk).update(status=status)

    with pytest.raises(DomainError) as caught:
        hold(quality_manager, lot)

    assert caught.value.codes == ["lot_status_not_holdable"]
    assert caught.value.status == 409
    assert Lot.objects.get(pk=lot.pk).status == status


def test_lot_hold_refuses_approval_meaning(quality_manager):
    lot = releasable_lot(quality_manager=quality_manager)
    release(quality_manager, lot)

    with pytest.raises(DomainError) as caught:
        hold(quality_manager, lot, meaning="approval")

    assert caught.value.codes == ["signature_meaning_invalid"]


def test_release_from_hold_checks_every_requirement_again(quality_manager):
    # given a released lot put on hold
    lot = releasable_lot(quality_manager=quality_manager)
    release(quality_manager, lot)
    hold(quality_manager, lot)

    # when, during the hold, a donor's HIV-1 NAT is corrected to reactive and the lot expires
    donor = lot.donors.get()
    donor_marker_result_record(
        actor=quality_manager,
        donor=donor,
        marker=donor.marker_results.get(marker__code="hiv1_nat").marker,
        result=MarkerResultValue.REACTIVE,
        tested_on=donor.specimen_date,
        laboratory="Reference lab",
        reason="Confirmatory NAT reactive",
    )
    Lot.objects.filter(pk=lot.pk).update(expires_on=today() - datetime.timedelta(days=1))

    # then lifting the hold is refused for both reasons and the lot stays on hold
    assert sorted(refusal_codes(quality_manager, lot)) == ["donor_marker_reactive", "lot_expired"]
    assert Lot.objects.get(pk=lot.pk).status == LotStatus.ON_HOLD


def test_release_from_hold_succeeds_when_requirements_are_still_met(quality_manager):
    lot = releasable_lot(quality_manager=quality_manager)
    release(quality_manager, lot)
    hold(quality_manager, lot)

    change = release(quality_manager, lot, reason="Investigation closed: no product defect.")

    assert (change.from_status, change.to_status) == (LotStatus.ON_HOLD, LotStatus.RELEASED)
    assert list(
        LotStatusChange.objects.filter(lot=lot)
        .order_by("signed_at")
        .values_list("action", flat=True)
    ) == ["release", "hold", "release"]


@pytest.mark.parametrize("from_status", [LotStatus.QUARANTINED, LotStatus.ON_HOLD])
def test_lot_reject_rejects_quarantined_or_on_hold_lot(quality_manager, from_status):
    lot = releasable_lot(quality_manager=quality_manager)
    Lot.objects.filter(pk=lot.pk).update(status=from_status)

    change = reject(quality_manager, lot)

    assert Lot.objects.get(pk=lot.pk).status == LotStatus.REJECTED
    assert (change.action, change.from_status, change.meaning) == (
        "reject",
        from_status,
        "rejection",
    )


def test_lot_reject_does_not_need_the_release_requirements(quality_manager):
    lot = lot_for_release(quality_manager=quality_manager, donors=0, coa=False, gmp=False)

    reject(quality_manager, lot)

    assert Lot.objects.get(pk=lot.pk).status == LotStatus.REJECTED


@pytest.mark.parametrize("status", [LotStatus.RELEASED, LotStatus.REJECTED, LotStatus.RECALLED])
def test_lot_reject_refuses_lot_that_is_not_quarantined_or_on_hold(quality_manager, status):
    lot = releasable_lot(quality_manager=quality_manager)
    Lot.objects.filter(pk=lot.pk).update(status=status)

    with pytest.raises(DomainError) as caught:
        reject(quality_manager, lot)

    assert caught.value.codes == ["lot_status_not_rejectable"]
    assert Lot.objects.get(pk=lot.pk).status == status
    assert not LotStatusChange.objects.filter(lot=lot).exists()


def test_lot_reject_refuses_approval_meaning(quality_manager):
    lot = releasable_lot(quality_manager=quality_manager)

    with pytest.raises(DomainError) as caught:
        reject(quality_manager, lot, meaning="approval")

    assert caught.value.status == 400
    assert caught.value.codes == ["signature_meaning_invalid"]


def test_lot_reject_refuses_clinician(quality_manager, clinician):
    lot = releasable_lot(quality_manager=quality_manager)

    with pytest.raises(DomainError) as caught:
        reject(clinician, lot)

    assert caught.value.status == 403
    assert caught.value.codes == ["role_required"]
