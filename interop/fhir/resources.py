"""The record as FHIR R5 resources: one function per resource, from the rows the selectors read
(with their related rows already joined or prefetched, so writing a page asks nothing more).

References to what this server does not serve (practitioners, clinics, manufacturers) are logical:
an identifier and a display name, never a URL that would not resolve. A patient is named by their
clinic's pseudonymous reference and the id the searches take; never by contact details.
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

from django.utils import timezone
from fhir.resources.adverseevent import AdverseEvent as FhirAdverseEvent
from fhir.resources.biologicallyderivedproduct import BiologicallyDerivedProduct
from fhir.resources.procedure import Procedure

from interop.fhir import systems
from lots.models import Donor, Lot, LotStatus, Product
from treatments.models import AdverseEvent, Patient, Treatment

_CELSIUS = {"unit": "°C", "system": systems.UCUM, "code": "Cel"}


def _coding(system: str, code: str, display: Any) -> dict[str, str]:
    return {"system": system, "code": code, "display": str(display)}


def _concept(system: str, code: str, display: Any) -> dict[str, Any]:
    return {"coding": [_coding(system, code, display)], "text": str(display)}


def _celsius(value: Decimal) -> dict[str, Any]:
    return {"value": value, **_CELSIUS}


def _date(value: datetime.date) -> str:
    return value.isoformat()


def _time(value: datetime.datetime) -> str:
    return timezone.localtime(value, datetime.UTC).isoformat()


def lot_reference(lot: Lot) -> dict[str, Any]:
    return {"reference": f"BiologicallyDerivedProduct/{lot.pk}", "display": lot.lot_number}


def patient_reference(patient: Patient) -> dict[str, Any]:
    """The patient by the id the searches take and by the clinic's own reference."""
    return {
        "reference": f"Patient/{patient.pk}",
        "identifier": {
            "system": systems.patient_reference_system(patient.clinic_id),
            "value": patient.reference,
        },
        "display": patient.reference,
    }


def donation_identifier(donor: Donor) -> dict[str, str]:
    """The ISBT 128 donation identification number where the donation has one (13 characters:
    the stored check character is for keyed entry, not part of the number), else the donor's
    own code."""
    if donor.isbt_din:
        return {"system": systems.ISBT_DONATION_NUMBER, "value": donor.isbt_din[:13]}
    return {"system": systems.DONOR_CODE, "value": donor.code}


def _product_code(product: Product) -> dict[str, Any]:
    coding = [{"system": systems.GTIN, "code": product.gtin}] if product.gtin else []
    return {"coding": coding, "text": product.name} if coding else {"text": product.name}


def _product_status(lot: Lot, today: datetime.date) -> dict[str, str]:
    """R5 knows available and unavailable: a released lot within its expiry date is available;
    quarantined, rejected, on hold, recalled or expired, it is not (the lot's own status is a
    property beside it)."""
    if lot.status == LotStatus.RELEASED and not lot.is_expired(on=today):
        return {"system": systems.PRODUCT_STATUS, "code": "available", "display": "Available"}
    return {"system": systems.PRODUCT_STATUS, "code": "unavailable", "display": "Unavailable"}


def _processing_facility(lot: Lot) -> dict[str, Any]:
    manufacturer = lot.manufacturer
    facility: dict[str, Any] = {"display": manufacturer.legal_name}
    if manufacturer.registration_number:
        facility["identifier"] = {
            "system": systems.MANUFACTURER_REGISTRATION,
            "value": manufacturer.registration_number,
        }
    return facility


def _lot_properties(lot: Lot) -> list[dict[str, Any]]:
    product = lot.product
    return [
        {
            "type": _concept(systems.LOT_PROPERTY, "lot-status", "Lot status"),
            "valueCodeableConcept": _concept(
                systems.LOT_STATUS, lot.status, lot.get_status_display()
            ),
        },
        {
            "type": _concept(systems.LOT_PROPERTY, "source-kind", "Source"),
            "valueCodeableConcept": _concept(
                systems.SOURCE_KIND, product.source_kind, product.get_source_kind_display()
            ),
        },
        *(
            [
                {
                    # From when the release holds: earlier than its signature for a lot
                    # released retrospectively, and no use dated before it is accepted.
                    "type": _concept(systems.LOT_PROPERTY, "release-effective", "Released from"),
                    "valuePeriod": {"start": _time(lot.release_effective_at)},
                }
            ]
            if lot.release_effective_at is not None
            else []
        ),
    ]


def _sec_identifier(lot: Lot) -> list[dict[str, Any]]:
    """The lot's Single European Code, the 40 characters a barcode carries, if it has one."""
    sec = lot.sec
    if sec is None:
        return []
    return [
        {
            "type": {"text": "Single European Code"},
            "system": systems.SINGLE_EUROPEAN_CODE,
            "value": sec.code,
        }
    ]


def product_resource(lot: Lot, *, today: datetime.date) -> BiologicallyDerivedProduct:
    """A lot, with its product, manufacturer and donors read. Its donation identifiers follow
    its lot number; the single donation a lot was made from is also its `biologicalSourceEvent`
    (a pooled lot has several, which the element cannot hold)."""
    donors = list(lot.donors.all())
    resource: dict[str, Any] = {
        "id": str(lot.pk),
        "identifier": [
            {
                "type": {"text": "Lot number"},
                "system": systems.lot_number_system(lot.manufacturer_id),
                "value": lot.lot_number,
            },
            *(donation_identifier(donor) for donor in donors),
            *_sec_identifier(lot),
        ],
        "productCode": _product_code(lot.product),
        "processingFacility": [_processing_facility(lot)],
        "productStatus": _product_status(lot, today),
        "expirationDate": _date(lot.expires_on),
        "storageTempRequirements": {
            "low": _celsius(lot.product.storage_min_celsius),
            "high": _celsius(lot.product.storage_max_celsius),
        },
        "property": _lot_properties(lot),
    }
    if len(donors) == 1:
        resource["biologicalSourceEvent"] = donation_identifier(donors[0])
    return BiologicallyDerivedProduct.model_validate(resource)


def procedure_resource(treatment: Treatment) -> Procedure:
    """A treatment, with its clinic, patient, practitioner and lines' lots read."""
    return Procedure.model_validate(
        {
            "id": str(treatment.pk),
            "status": "completed",
            "code": _concept(systems.ROUTE, treatment.route, treatment.get_route_display()),
            "reason": [
                {
                    "concept": _concept(
                        systems.INDICATION, treatment.indication, treatment.get_indication_display()
                    )
                }
            ],
            "subject": patient_reference(treatment.patient),
            "occurrenceDateTime": _time(treatment.performed_at),
            "recorded": _time(treatment.recorded_at),
            "performer": [
                {
                    "actor": {
                        "identifier": {
                            "system": systems.PRACTITIONER,
                            "value": str(treatment.practitioner_id),
                        },
                        "display": treatment.practitioner.name,
                    }
                }
            ],
            "location": _clinic_reference(treatment),
            "bodySite": [{"text": treatment.anatomical_site}],
            "used": [{"reference": lot_reference(line.lot)} for line in treatment.lines.all()],
        }
    )


def _clinic_reference(treatment: Treatment) -> dict[str, Any]:
    return {
        "identifier": {"system": systems.CLINIC, "value": str(treatment.clinic_id)},
        "display": treatment.clinic.name,
    }


def adverse_event_resource(event: AdverseEvent) -> FhirAdverseEvent:
    """An adverse event, with its treatment's patient and clinic and its lot read. The suspect is
    the lot the reporter named; where they named none, the treatment itself."""
    treatment = event.treatment
    suspect = (
        lot_reference(event.lot)
        if event.lot is not None
        else {"reference": f"Procedure/{treatment.pk}"}
    )
    serious = event.is_serious
    return FhirAdverseEvent.model_validate(
        {
            "id": str(event.pk),
            "status": "completed",
            "actuality": "actual",
            "code": {"text": event.description},
            "subject": patient_reference(treatment.patient),
            "occurrenceDateTime": _date(event.onset_on),
            "recordedDate": _time(event.reported_at),
            "location": _clinic_reference(treatment),
            "seriousness": _concept(
                systems.SERIOUSNESS,
                "serious" if serious else "non-serious",
                "Serious" if serious else "Non-serious",
            ),
            "suspectEntity": [{"instanceReference": suspect}],
        }
    )
