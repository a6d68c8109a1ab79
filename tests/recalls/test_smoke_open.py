import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from lots.models import LotStatus
from lots.services import lot_release
from providers.models import ClinicPractitioner, Role
from recalls.models import Notification, RecallExposure, RecallStock
from recalls.services import RecallScopeRequest, recall_open
from stock.models import StockBalance
from stock.selectors import stock_balances_disagreeing
from stock.services import stock_receive
from tests.factories import (
    PASSWORD,
    ClinicContactFactory,
    LicenceFactory,
    MembershipFactory,
    PractitionerFactory,
    releasable_lot,
)
from treatments.services import LineRequest, patient_create, treatment_record


@pytest.mark.django_db
def test_recall_open_blocks_stock_freezes_exposures_and_writes_notices(
    quality_manager, clinic, clinician
):
    lot = releasable_lot(quality_manager=quality_manager)
    lot_release(
        actor=quality_manager, lot_id=lot.pk, password=PASSWORD, meaning="approval", reason="ok"
    )
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
    ClinicContactFactory(clinic=clinic)
    patient = patient_create(actor=clinician, clinic=clinic, reference="P-0001")
    treatment_record(
        actor=clinician,
        clinic=clinic,
        patient=patient,
        practitioner=practitioner,
        performed_at=timezone.now() - datetime.timedelta(minutes=5),
        indication="wound",
        route="topical",
        anatomical_site="face",
        lines=[LineRequest(lot=lot, units=2)],
    )

    recall = recall_open(
        actor=quality_manager,
        password=PASSWORD,
        recall_class="I",
        depth="patient",
        reason="Endotoxin found",
        hazard="Fever, sepsis",
        scope=RecallScopeRequest(lot_ids=[lot.pk]),
    )

    lot.refresh_from_db()
    assert lot.status == LotStatus.RECALLED
    assert RecallExposure.objects.filter(recall=recall).count() == 1
    assert RecallStock.objects.get(recall=recall).quantity_held == 3
    assert StockBalance.objects.get(clinic=clinic, lot=lot, state="blocked").quantity == 3
    assert StockBalance.objects.get(clinic=clinic, lot=lot, state="accepted").quantity == 0
    assert Notification.objects.filter(recall=recall, channel="email").count() == 1
    assert stock_balances_disagreeing() == []
    assert recall.reference.startswith("RC-")
