"""Writes about products, donors, markers, lots and QC results (the release gate, certificates and
history have their own modules)."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from common.errors import DomainError
from lots.models import (
    AuthorisationStatus,
    Donor,
    Eligibility,
    Lot,
    LotDonor,
    LotQcResult,
    LotStatus,
    Marker,
    MarkerResultValue,
    Product,
    ProductAuthorisation,
    QcTest,
    RegulatoryBasis,
    Route,
    SourceKind,
    Tissue,
)
from lots.services import (
    donor_create,
    donor_eligibility_decide,
    donor_marker_result_record,
    lot_create,
    lot_donor_add,
    lot_qc_result_record,
    product_authorisation_set,
    product_create,
)
from tests.factories import (
    PASSWORD,
    DonorFactory,
    LotFactory,
    ManufacturerFactory,
    ProductFactory,
    UserFactory,
    eligible_donor,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]

TODAY = datetime.date(2026, 6, 1)
# GS1's example GTIN typed in full-width digits (U+FF10..U+FF19), which str.isdigit() accepts.
FULL_WIDTH_GTIN = "".join(chr(ord(digit) + 0xFEE0) for digit in "09506000134352")


def refused(call) -> DomainError:
    with pytest.raises(DomainError) as caught:
        call()
    return caught.value


# ---------------------------------------------------------------------------------------------
# Products


def make_product(actor, **overrides) -> Product:
    arguments = {
        "actor": actor,
        "manufacturer": overrides.pop("manufacturer", None) or ManufacturerFactory(),
        "name": "ExoSerum ADSC",
        "source_kind": SourceKind.HUMAN,
        "tissue": Tissue.ADIPOSE,
        "permitted_routes": [Route.TOPICAL, Route.MICRONEEDLING],
        "storage_min_celsius": Decimal("-80"),
        "storage_max_celsius": Decimal("-60"),
    }
    arguments.update(overrides)
    return product_create(**arguments)


def test_product_create_stores_a_gtin_13_as_gtin_14(quality_manager):
    product = make_product(quality_manager, gtin="9506000134352")

    product.refresh_from_db()
    assert product.gtin == "09506000134352"


def test_product_create_sorts_and_deduplicates_routes(quality_manager):
    product = make_product(
        quality_manager, permitted_routes=[Route.TOPICAL, Route.INJECTION, Route.TOPICAL]
    )

    assert product.permitted_routes == [Route.INJECTION, Route.TOPICAL]


@pytest.mark.parametrize(
    ("gtin", "code"),
    [
        ("09506000134353", "gtin_check_digit"),
        ("0950600013435A", "gtin_invalid"),
        (FULL_WIDTH_GTIN, "gtin_invalid"),
    ],
)
def test_product_create_refuses_an_invalid_gtin(quality_manager, gtin, code):
    error = refused(lambda: make_product(quality_manager, gtin=gtin))

    assert error.status == 400
    assert error.codes == [code]
    assert error.problems[0].field == "gtin"
    assert not Product.objects.exists()


def test_product_create_refuses_a_gtin_another_product_has(quality_manager):
    make_product(quality_manager, gtin="09506000134352")

    error = refused(lambda: make_product(quality_manager, name="Other", gtin="9506000134352"))

    assert error.codes == ["unique"]
    assert error.problems[0].field == "gtin"


@pytest.mark.parametrize(
    ("source_kind", "tissue"),
    [(SourceKind.HUMAN, ""), (SourceKind.SYNTHETIC, Tissue.ADIPOSE)],
)
def test_product_create_refuses_tissue_that_does_not_match_the_source(
    quality_manager, source_kind, tissue
):
    error = refused(lambda: make_product(quality_manager, source_kind=source_kind, tissue=tissue))

    assert error.status == 400
    assert error.codes == ["product_tissue_mismatch"]


def test_product_create_refuses_a_reversed_storage_range(quality_manager):
    error = refused(
        lambda: make_product(
            quality_manager, storage_min_celsius=Decimal("8"), storage_max_celsius=Decimal("2")
        )
    )

    assert (error.status, error.codes) == (400, ["product_storage_range_reversed"])


def test_product_create_refuses_a_product_without_routes(quality_manager):
    error = refused(lambda: make_product(quality_manager, permitted_routes=[]))

    assert error.status == 400
    assert error.problems[0].field == "permitted_routes"


def test_product_create_refuses_an_unknown_route(quality_manager):
    error = refused(lambda: make_product(quality_manager, permitted_routes=["oral"]))

    assert error.status == 400
    assert error.problems[0].field == "permitted_routes"


def test_product_authorisation_set_replaces_the_earlier_decision(quality_manager):
    product = ProductFactory()
    product_authorisation_set(
        actor=quality_manager,
        product=product,
        jurisdiction="DE",
        status=AuthorisationStatus.ALLOWED,
        reason="Initial assessment",
    )

    product_authorisation_set(
        actor=quality_manager,
        product=product,
        jurisdiction="DE",
        status=AuthorisationStatus.BANNED,
        reason="Human-origin material banned in cosmetics.",
    )

    assert list(ProductAuthorisation.objects.values_list("jurisdiction", "status")) == [
        ("DE", AuthorisationStatus.BANNED)
    ]


@pytest.mark.parametrize(
    ("jurisdiction", "status", "reason", "code"),
    [
        ("DE", "allowed", "", "reason_required"),
        ("DE", "maybe", "assessment", "invalid_choice"),
        ("XX", "allowed", "assessment", "jurisdiction_unknown"),
        ("de", "allowed", "assessment", "jurisdiction_invalid"),
    ],
)
def test_product_authorisation_set_refuses_bad_input(
    quality_manager, jurisdiction, status, reason, code
):
    error = refused(
        lambda: product_authorisation_set(
            actor=quality_manager,
            product=ProductFactory(),
            jurisdiction=jurisdiction,
            status=status,
            reason=reason,
        )
    )

    assert error.status == 400
    assert error.codes == [code]
    assert not ProductAuthorisation.objects.exists()


# ---------------------------------------------------------------------------------------------
# Donors and markers


def make_donor(actor, **overrides) -> Donor:
    arguments = {
        "actor": actor,
        "code": "DN-100001",
        "tissue": Tissue.ADIPOSE,
        "collection_date": TODAY,
        "specimen_date": TODAY,
        "testing_laboratory": "Viracor Eurofins",
    }
    arguments.update(overrides)
    return donor_create(**arguments)


def test_donor_create_records_an_incomplete_donor_with_an_upper_case_din(quality_manager):
    donor = make_donor(quality_manager, isbt_din=" g123498654321h ")

    donor.refresh_from_db()
    assert donor.isbt_din == "G123498654321H"
    assert donor.eligibility == Eligibility.INCOMPLETE
    assert donor.eligibility_decided_by is None


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"code": "JANEDOE"}, "donor_code_invalid"),
        ({"isbt_din": "G123498654321A"}, "isbt_din_check_character"),
        ({"isbt_din": "G1234"}, "isbt_din_invalid"),
        ({"specimen_date": TODAY + datetime.timedelta(days=8)}, "donor_specimen_out_of_window"),
        ({"specimen_date": TODAY - datetime.timedelta(days=8)}, "donor_specimen_out_of_window"),
        ({"tissue": "blood"}, "invalid_choice"),
    ],
)
def test_donor_create_refuses_bad_input(quality_manager, overrides, code):
    error = refused(lambda: make_donor(quality_manager, **overrides))

    assert error.status == 400
    assert error.codes == [code]
    assert not Donor.objects.exists()


def test_donor_create_accepts_a_specimen_seven_days_from_collection(quality_manager):
    donor = make_donor(quality_manager, specimen_date=TODAY - datetime.timedelta(days=7))

    assert donor.pk


def test_donor_create_refuses_a_code_already_used(quality_manager):
    make_donor(quality_manager)

    error = refused(lambda: make_donor(quality_manager))

    assert error.codes == ["unique"]
    assert error.problems[0].field == "code"


def record_marker(actor, donor, code: str, result=MarkerResultValue.NON_REACTIVE, reason=""):
    return donor_marker_result_record(
        actor=actor,
        donor=donor,
        marker=Marker.objects.get(code=code),
        result=result,
        tested_on=TODAY,
        laboratory="Viracor Eurofins",
        reason=reason,
    )


def test_donor_marker_result_record_refuses_an_unknown_result(quality_manager):
    donor = DonorFactory()

    error = refused(lambda: record_marker(quality_manager, donor, "hbsag", result="positive"))

    assert error.codes == ["invalid_choice"]
    assert error.problems[0].field == "result"


def decide(actor, donor, eligibility: str, **overrides) -> Donor:
    arguments = {
        "actor": actor,
        "donor": donor,
        "eligibility": eligibility,
        "password": PASSWORD,
        "reason": "Donor file reviewed.",
    }
    arguments.update(overrides)
    return donor_eligibility_decide(**arguments)


def test_donor_eligibility_decide_signs_an_eligible_decision(quality_manager):
    donor = DonorFactory()
    for marker in Marker.objects.filter(required_for_tissues__contains=[Tissue.ADIPOSE]):
        record_marker(quality_manager, donor, marker.code)
    before = timezone.now()

    decide(quality_manager, donor, Eligibility.ELIGIBLE)

    donor.refresh_from_db()
    assert donor.eligibility == Eligibility.ELIGIBLE
    assert donor.eligibility_decided_by == quality_manager
    assert before <= donor.eligibility_decided_at <= timezone.now()


def test_donor_eligibility_decide_lists_every_missing_and_reactive_marker(quality_manager):
    # given an adipose donor with one reactive result and every other marker missing
    donor = DonorFactory()
    record_marker(quality_manager, donor, "treponema", MarkerResultValue.REACTIVE)

    # when the donor is declared eligible
    error = refused(lambda: decide(quality_manager, donor, Eligibility.ELIGIBLE))

    # then each of the nine required markers is named once
    assert error.status == 409
    assert sorted(problem.field for problem in error.problems) == sorted(
        f"markers.{code}"
        for code in [
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
    )
    assert error.codes.count("donor_marker_reactive") == 1
    assert error.codes.count("donor_marker_missing") == 8
    donor.refresh_from_db()
    assert donor.eligibility == Eligibility.INCOMPLETE


def test_donor_eligibility_decide_allows_ineligible_without_a_complete_panel(quality_manager):
    donor = DonorFactory()
    record_marker(quality_manager, donor, "hiv1_nat", MarkerResultValue.REACTIVE)

    decide(quality_manager, donor, Eligibility.INELIGIBLE, reason="HIV-1 NAT reactive.")

    donor.refresh_from_db()
    assert donor.eligibility == Eligibility.INELIGIBLE


@pytest.mark.parametrize(
    ("eligibility", "overrides", "status", "code"),
    [
        (Eligibility.INELIGIBLE, {"password": "guess"}, 403, "signature_password_invalid"),
        (Eligibility.INELIGIBLE, {"reason": ""}, 400, "reason_required"),
        ("probably", {}, 400, "invalid_choice"),
    ],
)
def test_donor_eligibility_decide_refuses_bad_signature_or_input(
    quality_manager, eligibility, overrides, status, code
):
    donor = DonorFactory()

    error = refused(lambda: decide(quality_manager, donor, eligibility, **overrides))

    assert (error.status, error.codes) == (status, [code])
    donor.refresh_from_db()
    assert donor.eligibility == Eligibility.INCOMPLETE


# ---------------------------------------------------------------------------------------------
# Lots


def make_lot(actor, **overrides) -> Lot:
    arguments = {
        "actor": actor,
        "product": overrides.pop("product", None) or ProductFactory(),
        "lot_number": "EXO-2026-001",
        "manufactured_on": TODAY,
        "expires_on": TODAY + datetime.timedelta(days=365),
        "quantity": 200,
        "unit": "vial",
        "regulatory_basis": RegulatoryBasis.IND,
        "regulatory_number": "IND 012345",
    }
    arguments.update(overrides)
    return lot_create(**arguments)


def test_lot_create_starts_a_lot_quarantined_with_its_donors(quality_manager):
    donors = [DonorFactory(), DonorFactory()]
    before = timezone.now()

    lot = make_lot(quality_manager, donors=donors, lot_number=" EXO-2026-001 ")

    lot.refresh_from_db()
    assert lot.status == LotStatus.QUARANTINED
    assert before <= lot.status_changed_at <= timezone.now()
    assert lot.lot_number == "EXO-2026-001"
    assert lot.manufacturer_id == lot.product.manufacturer_id
    assert lot.created_by == quality_manager
    assert set(lot.donors.all()) == set(donors)


def test_lot_create_links_a_donor_named_twice_once(quality_manager):
    donor = DonorFactory()

    lot = make_lot(quality_manager, donors=[donor, donor])

    assert list(LotDonor.objects.filter(lot=lot).values_list("donor", flat=True)) == [donor.pk]


def test_lot_create_refuses_donors_for_a_product_that_is_not_human_derived(quality_manager):
    product = ProductFactory(source_kind=SourceKind.SYNTHETIC, tissue="")

    error = refused(lambda: make_lot(quality_manager, product=product, donors=[DonorFactory()]))

    assert (error.status, error.codes) == (400, ["lot_donors_not_applicable"])
    assert not Lot.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"expires_on": TODAY}, "lot_dates_reversed"),
        ({"expires_on": TODAY - datetime.timedelta(days=1)}, "lot_dates_reversed"),
        ({"regulatory_number": ""}, "lot_regulatory_number_mismatch"),
        (
            {"regulatory_basis": RegulatoryBasis.NONE, "regulatory_number": "IND 1"},
            "lot_regulatory_number_mismatch",
        ),
        ({"lot_number": "EXO 2026"}, "lot_number_invalid"),
        ({"lot_number": "EXO-" + "9" * 17}, "lot_number_invalid"),
        ({"quantity": 0}, "lot_quantity_not_positive"),
        ({"unit": "barrel"}, "invalid_choice"),
    ],
)
def test_lot_create_refuses_bad_input(quality_manager, overrides, code):
    error = refused(lambda: make_lot(quality_manager, **overrides))

    assert error.status == 400
    assert code in error.codes
    assert not Lot.objects.exists()


def test_lot_create_accepts_no_regulatory_basis_without_a_number(quality_manager):
    lot = make_lot(quality_manager, regulatory_basis=RegulatoryBasis.NONE, regulatory_number="")

    assert lot.regulatory_basis == RegulatoryBasis.NONE


def test_lot_donor_add_links_a_donor_to_a_quarantined_lot(quality_manager):
    lot = make_lot(quality_manager)
    donor = eligible_donor(decided_by=quality_manager)

    lot_donor_add(actor=quality_manager, lot=lot, donor=donor, reason="Pooled donor added.")
    lot_donor_add(actor=quality_manager, lot=lot, donor=donor, reason="Repeated by mistake.")

    assert list(lot.donors.all()) == [donor]


@pytest.mark.parametrize("status", [LotStatus.RELEASED, LotStatus.REJECTED, LotStatus.RECALLED])
def test_lot_donor_add_refuses_a_lot_that_is_no_longer_editable(quality_manager, status):
    lot = LotFactory(status=status)

    error = refused(
        lambda: lot_donor_add(actor=quality_manager, lot=lot, donor=DonorFactory(), reason="late")
    )

    assert (error.status, error.codes) == (409, ["lot_not_editable"])


def test_lot_donor_add_needs_a_reason_and_a_human_derived_product(quality_manager):
    human_lot = LotFactory()
    synthetic_lot = LotFactory(product=ProductFactory(source_kind=SourceKind.SYNTHETIC, tissue=""))

    no_reason = refused(
        lambda: lot_donor_add(actor=quality_manager, lot=human_lot, donor=DonorFactory(), reason="")
    )
    synthetic = refused(
        lambda: lot_donor_add(
            actor=quality_manager, lot=synthetic_lot, donor=DonorFactory(), reason="add"
        )
    )

    assert no_reason.codes == ["reason_required"]
    assert synthetic.codes == ["lot_donors_not_applicable"]
    assert not LotDonor.objects.exists()


def record_qc(actor, lot, code: str, **values) -> LotQcResult:
    return lot_qc_result_record(
        actor=actor,
        lot=lot,
        test=QcTest.objects.get(code=code),
        tested_on=TODAY,
        laboratory="QC lab",
        **values,
    )


def test_lot_qc_result_record_stores_a_measured_and_a_qualitative_result(quality_manager):
    lot = LotFactory()

    endotoxin = record_qc(quality_manager, lot, "endotoxin", numeric_value=Decimal("0.12"))
    sterility = record_qc(quality_manager, lot, "sterility", outcome="not_detected")

    assert (endotoxin.numeric_value, endotoxin.outcome) == (Decimal("0.12"), "")
    assert (sterility.numeric_value, sterility.outcome) == (None, "not_detected")


@pytest.mark.parametrize(
    ("code", "values", "expected"),
    [
        ("endotoxin", {"outcome": "not_detected"}, "qc_numeric_value_required"),
        ("endotoxin", {}, "qc_numeric_value_required"),
        (
            "endotoxin",
            {"numeric_value": Decimal("0.1"), "outcome": "detected"},
            "qc_numeric_value_required",
        ),
        ("sterility", {"numeric_value": Decimal("0")}, "qc_outcome_required"),
        ("sterility", {}, "qc_outcome_required"),
        ("sterility", {"outcome": "sterile"}, "invalid_choice"),
    ],
)
def test_lot_qc_result_record_refuses_a_result_of_the_wrong_kind(
    quality_manager, code, values, expected
):
    lot = LotFactory()

    error = refused(lambda: record_qc(quality_manager, lot, code, **values))

    assert error.status == 400
    assert error.codes == [expected]
    assert not LotQcResult.objects.exists()


# ---------------------------------------------------------------------------------------------
# Only a quality manager writes


@pytest.mark.parametrize(
    "write",
    [
        lambda actor: make_product(actor),
        lambda actor: product_authorisation_set(
            actor=actor, product=ProductFactory(), jurisdiction="DE", status="allowed", reason="r"
        ),
        lambda actor: make_donor(actor),
        lambda actor: record_marker(actor, DonorFactory(), "hbsag"),
        lambda actor: decide(actor, DonorFactory(), Eligibility.INELIGIBLE),
        lambda actor: make_lot(actor),
        lambda actor: lot_donor_add(
            actor=actor, lot=LotFactory(), donor=DonorFactory(), reason="r"
        ),
        lambda actor: record_qc(actor, LotFactory(), "endotoxin", numeric_value=Decimal("0.1")),
    ],
    ids=[
        "product_create",
        "product_authorisation_set",
        "donor_create",
        "donor_marker_result_record",
        "donor_eligibility_decide",
        "lot_create",
        "lot_donor_add",
        "lot_qc_result_record",
    ],
)
@pytest.mark.parametrize("who", ["clinician", "auditor", "clinic_administrator", "no_role"])
def test_lots_services_refuse_a_user_who_is_not_a_quality_manager(request, write, who):
    actor = UserFactory() if who == "no_role" else request.getfixturevalue(who)

    error = refused(lambda: write(actor))

    assert (error.status, error.codes) == (403, ["role_required"])
