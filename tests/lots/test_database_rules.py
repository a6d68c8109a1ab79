"""What the database itself enforces (STYLE "Where rules live" 1; DESIGN rule 6): uniqueness, the
composite foreign key, check constraints, and triggers that refuse deletes and updates. These go
around the services on purpose: the database must hold even when code forgets a rule."""

from __future__ import annotations

import datetime
from decimal import Decimal

import psycopg.errors
import pytest
from django.db import IntegrityError, ProgrammingError, connection, transaction
from django.db.models import ProtectedError

from common.errors import DomainError
from lots.models import (
    Certificate,
    CertificateKind,
    Donor,
    DonorMarkerResult,
    Lot,
    LotDonor,
    LotQcResult,
    LotStatusChange,
    Product,
    QcTest,
    RegulatoryBasis,
    SourceKind,
    Tissue,
)
from lots.services import lot_create, lot_release
from tests.factories import (
    PASSWORD,
    DonorFactory,
    LotFactory,
    ManufacturerFactory,
    ProductFactory,
    releasable_lot,
    store_certificate,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]

TODAY = datetime.date(2026, 6, 1)


def violated_constraint(write) -> str:
    """Run `write`, expecting the database to refuse it; return the constraint's name. The
    savepoint keeps the test's transaction usable afterwards."""
    with pytest.raises(IntegrityError) as caught, transaction.atomic():
        write()
    return caught.value.__cause__.diag.constraint_name


def refused_by_trigger(sql: str, params: list) -> str:
    """Run raw SQL that a pgtrigger protection refuses; return the database's message."""
    with pytest.raises(ProgrammingError) as caught, transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
    # pgtrigger's Protect raises a PL/pgSQL exception (SQLSTATE P0001).
    assert isinstance(caught.value.__cause__, psycopg.errors.RaiseException)
    return str(caught.value)


# ---------------------------------------------------------------------------------------------
# Lot numbers are unique per manufacturer


def _create_lot(actor, product, lot_number: str) -> Lot:
    return lot_create(
        actor=actor,
        product=product,
        lot_number=lot_number,
        manufactured_on=TODAY,
        expires_on=TODAY + datetime.timedelta(days=365),
        quantity=50,
        unit="vial",
        regulatory_basis=RegulatoryBasis.IND,
        regulatory_number="IND 019876",
    )


def test_lot_create_refuses_a_lot_number_the_manufacturer_already_used(quality_manager):
    # given a lot EXO-1 of one product
    first_product = ProductFactory()
    _create_lot(quality_manager, first_product, "EXO-1")
    second_product = ProductFactory(manufacturer=first_product.manufacturer)

    # when the same manufacturer's other product gets a lot EXO-1
    with pytest.raises(DomainError) as caught:
        _create_lot(quality_manager, second_product, "EXO-1")

    # then it is refused as a conflict with its own code, and no second lot exists
    assert caught.value.status == 409
    assert caught.value.codes == ["lot_number_taken"]
    assert Lot.objects.filter(lot_number="EXO-1").count() == 1


def test_lot_create_allows_the_same_lot_number_under_another_manufacturer(quality_manager):
    _create_lot(quality_manager, ProductFactory(), "EXO-1")

    _create_lot(quality_manager, ProductFactory(), "EXO-1")

    assert Lot.objects.filter(lot_number="EXO-1").count() == 2


def test_database_refuses_a_duplicate_lot_number_per_manufacturer():
    lot = LotFactory(lot_number="EXO-1")
    same_manufacturer = ProductFactory(manufacturer=lot.manufacturer)

    constraint = violated_constraint(
        lambda: LotFactory(product=same_manufacturer, lot_number="EXO-1")
    )

    assert constraint == "lot_number_unique_per_manufacturer"
    LotFactory(lot_number="EXO-1")  # another manufacturer: allowed, and the transaction is usable


# ---------------------------------------------------------------------------------------------
# The composite foreign key keeps a lot's manufacturer equal to its product's


def test_database_refuses_a_lot_whose_manufacturer_differs_from_its_product():
    product = ProductFactory()
    other = ManufacturerFactory()

    constraint = violated_constraint(lambda: LotFactory(product=product, manufacturer=other))

    assert constraint == "lot_product_manufacturer_fk"


def test_database_refuses_moving_a_product_with_lots_to_another_manufacturer():
    lot = LotFactory()
    other = ManufacturerFactory()

    constraint = violated_constraint(
        lambda: Product.objects.filter(pk=lot.product_id).update(manufacturer=other)
    )

    assert constraint == "lot_product_manufacturer_fk"


def test_database_refuses_changing_only_the_lots_manufacturer():
    lot = LotFactory()
    other = ManufacturerFactory()

    constraint = violated_constraint(
        lambda: Lot.objects.filter(pk=lot.pk).update(manufacturer=other)
    )

    assert constraint == "lot_product_manufacturer_fk"


# ---------------------------------------------------------------------------------------------
# Traceability records are never deleted


@pytest.fixture
def records(quality_manager):
    """One of every protected record, through a released lot."""
    lot = releasable_lot(quality_manager=quality_manager)
    change = lot_release(
        actor=quality_manager, lot_id=lot.pk, password=PASSWORD, meaning="approval", reason="ok"
    )
    return {
        "lots_lot": lot.pk,
        "lots_product": lot.product_id,
        "lots_donor": lot.donors.get().pk,
        "lots_donormarkerresult": DonorMarkerResult.objects.filter(donor__lots=lot).first().pk,
        "lots_lotdonor": LotDonor.objects.get(lot=lot).pk,
        "lots_lotqcresult": LotQcResult.objects.filter(lot=lot).first().pk,
        "lots_certificate": Certificate.objects.filter(lot=lot).get().pk,
        "lots_lotstatuschange": change.pk,
    }


@pytest.mark.parametrize(
    "table",
    [
        "lots_lot",
        "lots_product",
        "lots_donor",
        "lots_donormarkerresult",
        "lots_lotdonor",
        "lots_lotqcresult",
        "lots_certificate",
        "lots_lotstatuschange",
    ],
)
def test_database_refuses_to_delete_a_traceability_record(records, table):
    message = refused_by_trigger(f"DELETE FROM {table} WHERE id = %s", [records[table]])  # noqa: S608

    assert f"pgtrigger: Cannot delete rows from {table} table" in message
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table} WHERE id = %s", [records[table]])  # noqa: S608
        assert cursor.fetchone() == (1,)


def test_deleting_a_bare_lot_through_the_orm_is_refused_by_the_trigger():
    # A lot with no donors, results or certificates: nothing protects it at the Django level,
    # so the refusal comes from the database.
    lot = LotFactory()

    with pytest.raises(ProgrammingError, match="Cannot delete rows from lots_lot"):
        with transaction.atomic():
            Lot.objects.filter(pk=lot.pk).delete()

    assert Lot.objects.filter(pk=lot.pk).exists()


@pytest.mark.parametrize(
    ("model", "refusal"),
    [
        # A donor of a lot is protected by the lot's PROTECT foreign key before SQL is sent.
        (Donor, ProtectedError),
        # Nothing points at these rows, so Django sends the DELETE and the trigger refuses it.
        (Certificate, ProgrammingError),
        (DonorMarkerResult, ProgrammingError),
        (LotQcResult, ProgrammingError),
        (LotStatusChange, ProgrammingError),
    ],
)
def test_deleting_records_through_the_orm_is_refused(records, model, refusal):
    instance = model.objects.get(pk=records[model._meta.db_table])

    with pytest.raises(refusal), transaction.atomic():
        instance.delete()

    assert model.objects.filter(pk=instance.pk).exists()


def test_database_refuses_to_update_a_certificate(records):
    pk = records["lots_certificate"]

    message = refused_by_trigger(
        "UPDATE lots_certificate SET number = 'forged' WHERE id = %s", [pk]
    )

    assert "pgtrigger: Cannot update rows from lots_certificate table" in message
    assert Certificate.objects.get(pk=pk).number != "forged"


def test_saving_a_changed_certificate_through_the_orm_is_refused(records):
    certificate = Certificate.objects.get(pk=records["lots_certificate"])
    certificate.valid_until = datetime.date(2099, 1, 1)

    with pytest.raises(ProgrammingError, match="Cannot update rows"), transaction.atomic():
        certificate.save()


def test_database_refuses_to_update_a_signed_status_change(records):
    pk = records["lots_lotstatuschange"]

    message = refused_by_trigger(
        "UPDATE lots_lotstatuschange SET reason = 'edited' WHERE id = %s", [pk]
    )

    assert "Cannot update rows from lots_lotstatuschange table" in message


# ---------------------------------------------------------------------------------------------
# Check constraints


def test_database_refuses_a_lot_that_expires_before_or_when_it_is_made():
    assert (
        violated_constraint(lambda: LotFactory(manufactured_on=TODAY, expires_on=TODAY))
        == "lot_expires_after_manufacture"
    )
    assert (
        violated_constraint(
            lambda: LotFactory(manufactured_on=TODAY, expires_on=TODAY - datetime.timedelta(days=1))
        )
        == "lot_expires_after_manufacture"
    )
    LotFactory(manufactured_on=TODAY, expires_on=TODAY + datetime.timedelta(days=1))


@pytest.mark.parametrize("days", [-8, 8, 30])
def test_database_refuses_a_specimen_taken_more_than_7_days_from_collection(days):
    constraint = violated_constraint(
        lambda: DonorFactory(
            collection_date=TODAY, specimen_date=TODAY + datetime.timedelta(days=days)
        )
    )

    assert constraint == "donor_specimen_within_7_days"


@pytest.mark.parametrize("days", [-7, 0, 7])
def test_database_allows_a_specimen_within_7_days_of_collection(days):
    DonorFactory(collection_date=TODAY, specimen_date=TODAY + datetime.timedelta(days=days))


@pytest.mark.parametrize(
    ("source_kind", "tissue"),
    [
        (SourceKind.HUMAN, ""),
        (SourceKind.SYNTHETIC, Tissue.ADIPOSE),
        (SourceKind.ANIMAL, Tissue.PLACENTA),
        (SourceKind.PLANT, Tissue.OTHER),
    ],
)
def test_database_refuses_tissue_on_a_non_human_product_and_none_on_a_human_one(
    source_kind, tissue
):
    constraint = violated_constraint(lambda: ProductFactory(source_kind=source_kind, tissue=tissue))

    assert constraint == "product_tissue_only_for_human_source"


@pytest.mark.parametrize(
    ("basis", "number"),
    [
        (RegulatoryBasis.IND, ""),
        (RegulatoryBasis.BLA, ""),
        (RegulatoryBasis.NONE, "IND 012345"),
    ],
)
def test_database_refuses_a_regulatory_number_that_does_not_match_the_basis(basis, number):
    constraint = violated_constraint(
        lambda: LotFactory(regulatory_basis=basis, regulatory_number=number)
    )

    assert constraint == "lot_regulatory_number_matches_basis"


@pytest.mark.parametrize(
    ("basis", "number"),
    [
        (RegulatoryBasis.IND, "IND 012345"),
        (RegulatoryBasis.BLA, "BLA 125000"),
        (RegulatoryBasis.NONE, ""),
    ],
)
def test_database_allows_a_regulatory_number_exactly_when_there_is_an_ind_or_bla(basis, number):
    LotFactory(regulatory_basis=basis, regulatory_number=number)


def test_database_refuses_a_lot_of_zero_units():
    assert violated_constraint(lambda: LotFactory(quantity=0)) == "lot_quantity_positive"


def test_database_refuses_a_qc_result_with_both_or_neither_value_and_outcome():
    lot = LotFactory()
    endotoxin = QcTest.objects.get(code="endotoxin")
    both = violated_constraint(
        lambda: LotQcResult.objects.create(
            lot=lot,
            test=endotoxin,
            numeric_value=Decimal("0.1"),
            outcome="detected",
            tested_on=TODAY,
            laboratory="QC lab",
        )
    )
    neither = violated_constraint(
        lambda: LotQcResult.objects.create(
            lot=lot, test=endotoxin, tested_on=TODAY, laboratory="QC lab"
        )
    )

    assert both == neither == "qc_result_value_or_outcome"


@pytest.mark.parametrize(
    ("kind", "with_lot"),
    [(CertificateKind.COA, False), (CertificateKind.GMP, True), (CertificateKind.ISO_13485, True)],
)
def test_database_refuses_a_lot_on_a_manufacturer_certificate_and_a_coa_without_one(
    quality_manager, kind, with_lot
):
    lot = LotFactory()

    constraint = violated_constraint(
        lambda: store_certificate(
            kind=kind,
            manufacturer=lot.manufacturer,
            lot=lot if with_lot else None,
            uploaded_by=quality_manager,
        )
    )

    assert constraint == "certificate_lot_only_for_coa"


def test_database_refuses_a_second_donor_with_the_same_code():
    DonorFactory(code="DN-777777")

    assert violated_constraint(lambda: DonorFactory(code="DN-777777")) == "lots_donor_code_key"
