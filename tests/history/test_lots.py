"""Importing the network's lots: each row recorded by the lots service (it starts quarantined, with
its donors); a file is all or nothing; quality managers import, nobody names a clinic."""

from __future__ import annotations

import pytest

from common.errors import DomainError
from history.services import history_import
from lots.models import Lot, LotStatus, SourceKind
from tests.factories import DonorFactory, LotFactory, ProductFactory
from tests.history.conftest import csv_bytes, treatment_row

pytestmark = pytest.mark.django_db


def lot_row(of, **cells):
    row = {
        "product": of.pk,
        "lot_number": "OLD-2023-001",
        "manufactured_on": "2023-01-10",
        "expires_on": "2024-01-10",
        "quantity": 200,
        "unit": "vial",
        "regulatory_basis": "ind",
        "regulatory_number": "IND 012345",
    }
    row.update(cells)
    return row


def run(actor, rows, **options):
    return history_import(actor=actor, clinic=None, kind="lots", data=csv_bytes(rows), **options)


def places(outcome):
    return [(p.line, p.column, p.code) for p in outcome.problems]


def test_lots_are_recorded_quarantined_with_their_donors(quality_manager):
    product = ProductFactory()
    donors = [DonorFactory(), DonorFactory()]
    rows = [
        lot_row(product, donors=f"{donors[0].code}; {donors[1].code}"),
        lot_row(product, lot_number="OLD-2023-002"),
    ]
    outcome = run(quality_manager, rows)
    assert outcome.problems == [] and outcome.written == 2
    lot = Lot.objects.get(lot_number="OLD-2023-001")
    assert lot.status == LotStatus.QUARANTINED and lot.created_by == quality_manager
    assert set(lot.donors.all()) == set(donors)
    assert str(lot.expires_on) == "2024-01-10"


def test_one_refused_lot_writes_none_and_every_refusal_is_named(quality_manager):
    product = ProductFactory()
    synthetic = ProductFactory(source_kind=SourceKind.SYNTHETIC, tissue="")
    LotFactory(product=product, lot_number="TAKEN-1")
    donor = DonorFactory()
    rows = [
        lot_row(product),
        lot_row(product, lot_number="TAKEN-1"),
        lot_row(synthetic, lot_number="SYN-1", donors=donor.code),
        lot_row(product, lot_number="OLD-2023-001"),
    ]
    before = Lot.objects.count()
    outcome = run(quality_manager, rows)
    assert places(outcome) == [
        (3, "lot_number", "lot_number_taken"),
        (4, "donors", "lot_donors_not_applicable"),
        (5, "lot_number", "lot_number_taken"),
    ]
    assert Lot.objects.count() == before


def test_a_dry_run_records_nothing(quality_manager):
    outcome = run(quality_manager, [lot_row(ProductFactory())], dry_run=True)
    assert outcome.problems == [] and outcome.written == 1
    assert not Lot.objects.filter(lot_number="OLD-2023-001").exists()


def test_unknown_products_donors_and_bad_cells_are_named(quality_manager):
    product = ProductFactory()
    rows = [
        lot_row(product, product=999999),
        lot_row(product, donors="DN-NOBODY"),
        lot_row(product, expires_on="2024-02-30"),
        lot_row(product, unit="crate"),
    ]
    assert places(run(quality_manager, rows)) == [
        (2, "product", "product_unknown"),
        (3, "donors", "donor_unknown"),
        (4, "expires_on", "invalid"),
        (5, "unit", "invalid_choice"),
    ]


def test_a_lot_that_expires_before_it_was_made_is_refused(quality_manager):
    outcome = run(quality_manager, [lot_row(ProductFactory(), expires_on="2022-12-31")])
    assert [code for _line, _column, code in places(outcome)] == ["lot_dates_reversed"]
    assert outcome.problems[0].line == 2


def test_only_quality_managers_import_lots_and_lots_name_no_clinic(ready, lot, quality_manager):
    with pytest.raises(DomainError) as refused:
        run(ready.administrator, [lot_row(ProductFactory())])
    assert refused.value.codes == ["role_required"]
    with pytest.raises(DomainError) as refused:
        history_import(
            actor=quality_manager,
            clinic=ready.clinic,
            kind="lots",
            data=csv_bytes([lot_row(ProductFactory())]),
        )
    assert refused.value.codes == ["clinic_not_applicable"]
    with pytest.raises(DomainError) as refused:
        history_import(
            actor=ready.administrator,
            clinic=None,
            kind="treatments",
            data=csv_bytes([treatment_row(ready, lot)]),
        )
    assert refused.value.codes == ["required"]
