"""Reads: what the selectors return, and that they run a fixed number of queries however many
rows or donors there are (STYLE: "a list endpoint runs a fixed number of queries whatever its
length")."""

from __future__ import annotations

import datetime
import io
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from lots.models import (
    AuthorisationStatus,
    CertificateKind,
    LotDonor,
    ProductAuthorisation,
    QcSpecification,
    QcTest,
)
from lots.selectors import (
    current_certificates,
    donor_list,
    lot_get,
    lot_list,
    lot_release_check,
    product_list,
    qc_specifications_for,
)
from lots.services import certificate_upload
from tests.factories import (
    DonorFactory,
    LotFactory,
    ProductFactory,
    eligible_donor,
    pdf_bytes,
    releasable_lot,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]


def count_queries(function) -> int:
    with CaptureQueriesContext(connection) as captured:
        function()
    return len(captured.captured_queries)


# ---------------------------------------------------------------------------------------------
# Query counts


def test_lot_release_check_runs_the_same_queries_for_one_donor_and_for_ten(
    quality_manager, django_assert_num_queries
):
    one_donor = releasable_lot(quality_manager=quality_manager, donors=1)
    ten_donors = releasable_lot(quality_manager=quality_manager, donors=10)
    assert LotDonor.objects.filter(lot=ten_donors).count() == 10

    expected = count_queries(lambda: lot_release_check(lot=one_donor))

    with django_assert_num_queries(expected):
        check = lot_release_check(lot=ten_donors)
    assert check.releasable


def test_lot_release_check_with_problems_on_every_donor_still_runs_fixed_queries(
    quality_manager, django_assert_num_queries
):
    one_donor = releasable_lot(quality_manager=quality_manager, donors=1)
    expected = count_queries(lambda: lot_release_check(lot=one_donor))
    lot = releasable_lot(quality_manager=quality_manager, donors=0)
    for _ in range(10):
        donor = eligible_donor(
            decided_by=quality_manager,
            skip_markers=("hiv2_ab",),
            marker_results={"hbsag": "reactive"},
        )
        LotDonor.objects.create(lot=lot, donor=donor)

    with django_assert_num_queries(expected):
        check = lot_release_check(lot=lot)
    assert check.problems


def _touch_lots() -> None:
    for lot in lot_list():
        str(lot)
        lot.manufacturer.legal_name  # noqa: B018 - attribute access is the point
        [donor.code for donor in lot.donors.all()]


def _touch_donors() -> None:
    for donor in donor_list():
        getattr(donor.eligibility_decided_by, "username", None)
        [(result.marker.code, result.result) for result in donor.marker_results.all()]


def _touch_products() -> None:
    for product in product_list():
        product.manufacturer.legal_name  # noqa: B018 - attribute access is the point
        [authorisation.jurisdiction for authorisation in product.authorisations.all()]


def _lots(count: int, quality_manager) -> None:
    for _ in range(count):
        lot = LotFactory(created_by=quality_manager)
        for _ in range(2):
            LotDonor.objects.create(lot=lot, donor=DonorFactory())


def _donors(count: int, quality_manager) -> None:
    for _ in range(count):
        eligible_donor(decided_by=quality_manager)


def _products(count: int, quality_manager) -> None:
    for _ in range(count):
        product = ProductFactory()
        for jurisdiction in ("DE", "US-TX"):
            ProductAuthorisation.objects.create(
                product=product, jurisdiction=jurisdiction, status=AuthorisationStatus.ALLOWED
            )


@pytest.mark.parametrize(
    ("make", "touch"),
    [(_lots, _touch_lots), (_donors, _touch_donors), (_products, _touch_products)],
    ids=["lot_list", "donor_list", "product_list"],
)
def test_list_selector_runs_the_same_queries_for_one_row_and_for_twenty(
    quality_manager, django_assert_num_queries, make, touch
):
    # given one row, and how many queries listing it takes
    make(1, quality_manager)
    expected = count_queries(touch)

    # when there are twenty rows
    make(19, quality_manager)

    # then listing them takes the same number of queries
    with django_assert_num_queries(expected):
        touch()


# ---------------------------------------------------------------------------------------------
# What they return


def test_lot_get_loads_the_lot_with_its_records(quality_manager):
    lot = releasable_lot(quality_manager=quality_manager, donors=2)

    loaded = lot_get(lot_id=lot.pk)

    assert loaded.pk == lot.pk
    assert len(loaded.donors.all()) == 2
    assert len(loaded.qc_results.all()) == 8
    assert [c.kind for c in loaded.certificates.all()] == [CertificateKind.COA]


def test_qc_specifications_for_prefers_the_product_row_over_the_default(quality_manager):
    endotoxin = QcTest.objects.get(code="endotoxin")
    product = ProductFactory()
    own = QcSpecification.objects.create(test=endotoxin, product=product, max_value=Decimal("0.25"))
    other_product = ProductFactory()

    assert qc_specifications_for(product)[endotoxin.pk] == own
    default = qc_specifications_for(other_product)[endotoxin.pk]
    assert default.product_id is None
    assert default.max_value == Decimal("0.5")


def test_qc_specifications_for_covers_every_seeded_test():
    product = ProductFactory()

    codes = {spec.test.code for spec in qc_specifications_for(product).values()}

    assert codes == {
        "sterility",
        "mycoplasma",
        "endotoxin",
        "particle_concentration",
        "particle_size",
        "ev_marker_membrane",
        "ev_marker_cytosolic",
        "ev_negative_marker",
    }


def test_current_certificates_leave_out_superseded_versions(quality_manager):
    lot = releasable_lot(quality_manager=quality_manager)
    original = lot.certificates.get()
    newer = certificate_upload(
        actor=quality_manager,
        kind=CertificateKind.COA,
        issuer="QC lab",
        number="COA-2",
        valid_from=timezone.localdate(),
        file=io.BytesIO(pdf_bytes("second version")),
        lot=lot,
        supersedes=original,
        reason="Corrected lot size",
    )

    current = set(current_certificates().filter(lot=lot))

    assert current == {newer}


def test_lot_release_check_is_evaluated_on_the_given_day(quality_manager):
    lot = releasable_lot(quality_manager=quality_manager)

    on_expiry = lot_release_check(lot=lot, on=lot.expires_on)
    day_after = lot_release_check(lot=lot, on=lot.expires_on + datetime.timedelta(days=1))

    assert on_expiry.problems == []
    assert [problem.code for problem in day_after.problems] == ["lot_expired"]
