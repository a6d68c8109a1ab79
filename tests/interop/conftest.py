"""A small network for the FHIR tests: two clinics that used one lot (made from one ISBT 128
donation), and an adverse event at the first."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from common.validators import isbt_din_check_character
from lots.models import Lot, LotDonor
from tests.factories import (
    ClinicReady,
    DonorFactory,
    ProductFactory,
    clinic_ready,
    receive,
    released_lot,
    treat,
)
from treatments.models import AdverseEvent, Treatment
from treatments.services import adverse_event_record

DONATION_NUMBER = "A999921123456"
GTIN = "04006381333931"
FHIR = "/api/v1/fhir"
MEDIA_TYPE = "application/fhir+json; charset=utf-8"


@dataclasses.dataclass
class FhirNetwork:
    a: ClinicReady
    b: ClinicReady
    lot: Lot
    treatment_a: Treatment
    treatment_b: Treatment
    event_a: AdverseEvent


@pytest.fixture
def fhir_network(reference_data: Any) -> FhirNetwork:
    lot = released_lot(product=ProductFactory(gtin=GTIN))
    donor = DonorFactory(isbt_din=DONATION_NUMBER + isbt_din_check_character(DONATION_NUMBER))
    LotDonor.objects.create(lot=lot, donor=donor)
    a, b = clinic_ready(), clinic_ready()
    receive(a, lot, 40)
    receive(b, lot, 40)
    treatment_a = treat(a, lot, 2)
    treatment_b = treat(b, lot)
    event_a = adverse_event_record(
        actor=a.clinician,
        treatment=treatment_a,
        onset_on=timezone.localdate(),
        description="Redness and swelling at the site",
        lot=lot,
        hospitalisation=True,
    )
    return FhirNetwork(
        a=a, b=b, lot=lot, treatment_a=treatment_a, treatment_b=treatment_b, event_a=event_a
    )


def client_for(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client
