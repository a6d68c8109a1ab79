"""The code systems and identifier systems the FHIR answers name.

Published systems where one exists (ISBT 128, GS1, UCUM, HL7's own); for what only this record
knows (a clinic's patient references, a manufacturer's lot numbers, the lot statuses) a URN of this
deployment's own, stable across releases, since a receiving system keys its copies by it.
"""

from __future__ import annotations

FHIR_VERSION = "5.0.0"
MEDIA_TYPE = "application/fhir+json"

ISBT_DONATION_NUMBER = "https://www.isbt128.org/uri/DonationIdentificationNumber"
ISBT_MPHO_UNIQUE_IDENTIFIER = "https://www.isbt128.org/uri/MPHOUniqueIdentifier"
GTIN = "https://www.gs1.org/gtin"
UCUM = "http://unitsofmeasure.org"
PRODUCT_STATUS = "http://hl7.org/fhir/biologicallyderived-product-status"
SERIOUSNESS = "http://terminology.hl7.org/CodeSystem/adverse-event-seriousness"

LOCAL = "urn:exosome-traceability"
LOT_STATUS = f"{LOCAL}:lot-status"
LOT_PROPERTY = f"{LOCAL}:lot-property"
SOURCE_KIND = f"{LOCAL}:source-kind"
DONOR_CODE = f"{LOCAL}:donor-code"
ROUTE = f"{LOCAL}:route"
INDICATION = f"{LOCAL}:indication"
PRACTITIONER = f"{LOCAL}:practitioner"
CLINIC = f"{LOCAL}:clinic"
MANUFACTURER_REGISTRATION = f"{LOCAL}:manufacturer-registration"
# The EU's Single European Code (Directive 2006/86/EC as amended by 2015/565) has no published
# identifier system URI; its 40 characters are the value.
SINGLE_EUROPEAN_CODE = f"{LOCAL}:single-european-code"
ERROR_CODE = f"{LOCAL}:error-code"


def lot_number_system(manufacturer_id: int) -> str:
    """Lot numbers are unique per manufacturer, so each manufacturer's are a system of their own."""
    return f"{LOCAL}:manufacturer:{manufacturer_id}:lot-number"


def patient_reference_system(clinic_id: int) -> str:
    """A patient reference is unique within its clinic only."""
    return f"{LOCAL}:clinic:{clinic_id}:patient-reference"
