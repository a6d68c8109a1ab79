"""A BiologicallyDerivedProduct from elsewhere (a tissue establishment, a blood bank, HL7's own
example) in this record's terms, and back: the product code as its label carries it, and the ISBT
128 donation identification number as a Donor holds it (with its ISO 7064 check character).

Reading refuses what cannot be kept: a donation number that is not ISBT 128's, or a product with
no product code. What this record has no place for (ABO group, collection type) is not carried.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from fhir.resources.biologicallyderivedproduct import BiologicallyDerivedProduct

from common.errors import DomainError
from common.validators import isbt_din_check_character, validate_isbt_din
from interop.fhir import systems


@dataclass(frozen=True)
class ProductRecord:
    """What this record keeps of a BiologicallyDerivedProduct."""

    product_code: str
    product_code_system: str | None
    isbt_din: str | None  # as Donor.isbt_din: 13 characters and the check character
    unique_identifier: str | None
    division: str | None
    available: bool | None
    expires_at: datetime.datetime | datetime.date | None
    storage_min_celsius: Decimal | None
    storage_max_celsius: Decimal | None

    @property
    def donation_number(self) -> str | None:
        """The donation identification number as a label prints it (no check character)."""
        return None if self.isbt_din is None else self.isbt_din[:13]


def _refused(code: str, message: str, field: str) -> DomainError:
    return DomainError.single(code, message, field=field, status=400)


def _isbt_din(product: BiologicallyDerivedProduct) -> str | None:
    event = product.biologicalSourceEvent
    if event is None or event.value is None:
        return None
    if event.system != systems.ISBT_DONATION_NUMBER:
        raise _refused(
            "donation_number_system_unknown",
            _("The donation number must be an ISBT 128 donation identification number."),
            "biologicalSourceEvent.system",
        )
    number = str(event.value)
    din = number + isbt_din_check_character(number) if len(number) == 13 else number
    try:
        validate_isbt_din(din)
    except ValidationError as error:
        raise _refused(
            "isbt_din_invalid", " ".join(error.messages), "biologicalSourceEvent.value"
        ) from error
    return din


CELSIUS_UNITS = frozenset({"Cel", "°C", "degrees C"})


def _celsius(quantity: Any, field: str) -> Decimal | None:
    """A temperature in degrees Celsius: UCUM's Cel, or the unit spelt out as HL7's example
    does; any other unit is refused rather than read as Celsius."""
    if quantity is None or quantity.value is None:
        return None
    if quantity.code not in CELSIUS_UNITS and quantity.unit not in CELSIUS_UNITS:
        raise _refused(
            "temperature_unit_unknown",
            _("Storage temperatures are read in degrees Celsius only."),
            field,
        )
    return Decimal(str(quantity.value))


def product_record_from_fhir(product: BiologicallyDerivedProduct) -> ProductRecord:
    code = product.productCode
    coding = code.coding[0] if code is not None and code.coding else None
    if coding is None or not coding.code:
        raise _refused(
            "product_code_missing",
            _("The product carries no product code."),
            "productCode",
        )
    unique = next(
        (
            identifier.value
            for identifier in product.identifier or []
            if identifier.system == systems.ISBT_MPHO_UNIQUE_IDENTIFIER
        ),
        None,
    )
    storage = product.storageTempRequirements
    status = product.productStatus
    return ProductRecord(
        product_code=str(coding.code),
        product_code_system=None if coding.system is None else str(coding.system),
        isbt_din=_isbt_din(product),
        unique_identifier=unique,
        division=product.division,
        available=None if status is None or status.code is None else status.code == "available",
        expires_at=product.expirationDate,
        storage_min_celsius=None
        if storage is None
        else _celsius(storage.low, "storageTempRequirements.low"),
        storage_max_celsius=None
        if storage is None
        else _celsius(storage.high, "storageTempRequirements.high"),
    )


def _temperature(value: Decimal) -> dict[str, Any]:
    return {"value": value, "unit": "°C", "system": systems.UCUM, "code": "Cel"}


def product_record_to_fhir(record: ProductRecord) -> BiologicallyDerivedProduct:
    coding: dict[str, str] = {"code": record.product_code}
    if record.product_code_system is not None:
        coding["system"] = record.product_code_system
    resource: dict[str, Any] = {"productCode": {"coding": [coding]}}
    if record.unique_identifier is not None:
        resource["identifier"] = [
            {"system": systems.ISBT_MPHO_UNIQUE_IDENTIFIER, "value": record.unique_identifier}
        ]
    if record.donation_number is not None:
        resource["biologicalSourceEvent"] = {
            "system": systems.ISBT_DONATION_NUMBER,
            "value": record.donation_number,
        }
    if record.division is not None:
        resource["division"] = record.division
    if record.available is not None:
        resource["productStatus"] = {
            "system": systems.PRODUCT_STATUS,
            "code": "available" if record.available else "unavailable",
        }
    if record.expires_at is not None:
        resource["expirationDate"] = record.expires_at.isoformat()
    storage = {
        bound: _temperature(value)
        for bound, value in (
            ("low", record.storage_min_celsius),
            ("high", record.storage_max_celsius),
        )
        if value is not None
    }
    if storage:
        resource["storageTempRequirements"] = storage
    return BiologicallyDerivedProduct.model_validate(resource)
