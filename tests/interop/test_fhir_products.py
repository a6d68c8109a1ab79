"""HL7's published BiologicallyDerivedProduct example (ISBT 128 product code E0398, donation
number A999921123456) read into this record's terms and written back; and a lot this server
serves read the same way."""

from __future__ import annotations

import datetime
import json
from decimal import Decimal
from pathlib import Path

import pytest
from fhir.resources.biologicallyderivedproduct import BiologicallyDerivedProduct

from common.errors import DomainError
from common.validators import isbt_din_check_character, validate_isbt_din
from interop.fhir import systems
from interop.fhir.products import product_record_from_fhir, product_record_to_fhir
from lots.models import Lot
from tests.factories import SEC_FIELDS
from tests.interop.conftest import DONATION_NUMBER, FHIR, FhirNetwork, client_for

HL7_EXAMPLE = Path(__file__).parent / "data" / "biologicallyderivedproduct-example.json"


def hl7_example() -> BiologicallyDerivedProduct:
    return BiologicallyDerivedProduct.model_validate_json(HL7_EXAMPLE.read_bytes())


def test_hl7_example_reads_into_product_code_and_donation_number():
    record = product_record_from_fhir(hl7_example())
    assert record.product_code == "E0398"
    assert record.donation_number == "A999921123456"
    # As a Donor holds it: the number and its ISO 7064 MOD 37-2 check character.
    assert record.isbt_din == "A999921123456" + isbt_din_check_character("A999921123456")
    validate_isbt_din(record.isbt_din)
    assert record.unique_identifier == "A9999E0398A999921123456A00000"
    assert record.division == "A00000"
    assert record.available is True
    assert (record.storage_min_celsius, record.storage_max_celsius) == (Decimal(1), Decimal(6))


def test_hl7_example_written_back_keeps_its_values_and_validates():
    original = hl7_example()
    written = product_record_to_fhir(product_record_from_fhir(original))
    again = BiologicallyDerivedProduct.model_validate_json(written.model_dump_json())
    assert again.productCode.coding[0].code == original.productCode.coding[0].code == "E0398"
    assert (again.biologicalSourceEvent.system, again.biologicalSourceEvent.value) == (
        original.biologicalSourceEvent.system,
        original.biologicalSourceEvent.value,
    )
    assert [(i.system, i.value) for i in again.identifier] == [
        (i.system, i.value) for i in original.identifier
    ]
    assert again.division == original.division
    assert again.productStatus.code == original.productStatus.code
    assert again.expirationDate == original.expirationDate
    for bound in ("low", "high"):
        kept = getattr(again.storageTempRequirements, bound)
        source = getattr(original.storageTempRequirements, bound)
        assert Decimal(str(kept.value)) == Decimal(str(source.value))
        assert kept.code == "Cel"
    assert product_record_from_fhir(again) == product_record_from_fhir(original)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (
            {"biologicalSourceEvent": {"system": "urn:other", "value": "X1"}},
            "donation_number_system_unknown",
        ),
        (
            {"biologicalSourceEvent": {"system": systems.ISBT_DONATION_NUMBER, "value": "A9999"}},
            "isbt_din_invalid",
        ),
        ({"productCode": {"text": "red cells"}}, "product_code_missing"),
        (
            {"storageTempRequirements": {"low": {"value": 34, "unit": "degrees F"}}},
            "temperature_unit_unknown",
        ),
    ],
)
def test_a_product_this_record_cannot_keep_is_refused_naming_why(change, code):
    resource = {**json.loads(HL7_EXAMPLE.read_text()), **change}
    with pytest.raises(DomainError) as refused:
        product_record_from_fhir(BiologicallyDerivedProduct.model_validate(resource))
    assert refused.value.codes == [code]


@pytest.mark.django_db
def test_a_served_lot_reads_back_with_its_gtin_and_donation(fhir_network: FhirNetwork):
    lot = fhir_network.lot
    response = client_for(fhir_network.a.clinician).get(
        f"{FHIR}/BiologicallyDerivedProduct/{lot.pk}"
    )
    record = product_record_from_fhir(
        BiologicallyDerivedProduct.model_validate_json(response.content)
    )
    assert (record.product_code_system, record.product_code) == (systems.GTIN, lot.product.gtin)
    assert record.isbt_din == lot.donors.get().isbt_din
    assert record.donation_number == DONATION_NUMBER


@pytest.mark.django_db
def test_a_lot_with_a_single_european_code_carries_it_as_an_identifier(fhir_network: FhirNetwork):
    lot = fhir_network.lot
    Lot.objects.filter(pk=lot.pk).update(**SEC_FIELDS)
    lot.refresh_from_db()

    response = client_for(fhir_network.a.clinician).get(
        f"{FHIR}/BiologicallyDerivedProduct/{lot.pk}"
    )

    product = BiologicallyDerivedProduct.model_validate_json(response.content)
    found = [i.value for i in product.identifier or [] if i.system == systems.SINGLE_EUROPEAN_CODE]
    assert found == [lot.sec.code]
    assert len(found[0]) == 40


@pytest.mark.django_db
def test_a_lot_without_a_code_names_no_such_identifier(fhir_network: FhirNetwork):
    response = client_for(fhir_network.a.clinician).get(
        f"{FHIR}/BiologicallyDerivedProduct/{fhir_network.lot.pk}"
    )

    product = BiologicallyDerivedProduct.model_validate_json(response.content)
    systems_named = {identifier.system for identifier in product.identifier or []}
    assert systems.SINGLE_EUROPEAN_CODE not in systems_named


@pytest.mark.django_db
def test_a_released_lot_says_from_when_its_release_holds(fhir_network: FhirNetwork):
    lot = fhir_network.lot
    effective = datetime.datetime(2026, 3, 1, tzinfo=datetime.UTC)
    Lot.objects.filter(pk=lot.pk).update(release_effective_at=effective)

    response = client_for(fhir_network.a.clinician).get(
        f"{FHIR}/BiologicallyDerivedProduct/{lot.pk}"
    )

    product = BiologicallyDerivedProduct.model_validate_json(response.content)
    found = [
        p.valuePeriod.start
        for p in product.property or []
        if p.type.coding[0].code == "release-effective"
    ]
    assert found == [effective]
