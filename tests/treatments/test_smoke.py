import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from lots.services import lot_release
from providers.models import ClinicPractitioner, Role
from stock.services import stock_receive
from tests.factories import (
    PASSWORD,
    LicenceFactory,
    MembershipFactory,
    PractitionerFactory,
    releasable_lot,
)
from treatments.services import LineRequest, patient_create, treatment_record


@pytest.mark.django_db
def test_treatment_record_draws_stock(quality_manager, clinic, clinician):
    lot = releasable_lot(quality_manager=quality_manager)
    lot_release(
        actor=quality_manager, lot_id=lot.pk, password=PASSWORD, meaning="approval", reason="ok"
    )
    lot.refresh_from_db()
    admin = MembershipFactory(role=Role.CLINIC_ADMINISTRATOR, clinic=clinic).user
    stock_receive(
        actor=admin,
        clinic=clinic,
        lot=lot,
        quantity=5,
        decision="accept",
        package_intact=True,
        label_readable=True,
        transport_min_celsius=Decimal("-75"),
        transport_max_celsius=Decimal("-65"),
        storage_location="Freezer 1",
    )
    practitioner = PractitionerFactory()
    LicenceFactory(practitioner=practitioner, jurisdiction="US-TX")
    ClinicPractitioner.objects.create(clinic=clinic, practitioner=practitioner)
    clinic.consent_required = False
    clinic.save()
    patient = patient_create(actor=clinician, clinic=clinic, reference="P-0001")
    treatment = treatment_record(
        actor=clinician,
        clinic=clinic,
        patient=patient,
        practitioner=practitioner,
        performed_at=timezone.now() - datetime.timedelta(minutes=5),
        indication="skin_rejuvenation",
        route="topical",
        anatomical_site="face",
        lines=[LineRequest(lot=lot, units=2)],
    )
    assert treatment.lines.get().units == 2
    assert lot.stock_balances.get(clinic=clinic, state="accepted").quantity == 3
