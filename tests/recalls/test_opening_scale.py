"""Opening a recall at scale: its statements do not grow with the exposures it freezes, and the
database still refuses an exposure that does not copy a real treatment line of a real recall."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import Max
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from lots.models import Lot
from recalls.models import Recall, RecallExposure
from recalls.services import RecallScopeRequest, recall_open
from tests.factories import (
    PASSWORD,
    ClinicContactFactory,
    ClinicReady,
    PatientFactory,
    clinic_ready,
    receive,
    released_lot,
    treat,
)
from tests.recalls.scenario import build_world, open_recall
from treatments.models import Treatment, TreatmentLine

pytestmark = pytest.mark.django_db


def lot_used_in(ready: ClinicReady, quality_manager: Any, lines: int) -> Lot:
    """A released lot held at the clinic and used once in each of `lines` treatments there
    (written straight to the tables: recording treatments has its own tests)."""
    lot = released_lot(created_by=quality_manager)
    receive(ready, lot, 5)
    now = timezone.now()
    treatments = Treatment.objects.bulk_create(
        Treatment(
            clinic=ready.clinic,
            patient=ready.patient,
            practitioner=ready.practitioner,
            performed_at=now - datetime.timedelta(minutes=index + 1),
            indication="skin_rejuvenation",
            route="topical",
            anatomical_site="face",
            recorded_by=ready.clinician,
            recorded_at=now,
        )
        for index in range(lines)
    )
    TreatmentLine.objects.bulk_create(
        TreatmentLine(treatment=treatment, lot=lot, units=1) for treatment in treatments
    )
    return lot


def open_over(quality_manager: Any, lot: Lot) -> Recall:
    return recall_open(
        actor=quality_manager,
        password=PASSWORD,
        recall_class="II",
        depth="patient",
        reason="Particle count out of specification",
        hazard="Local inflammation",
        scope=RecallScopeRequest(lot_ids=[lot.pk]),
    )


def test_recall_open_sends_as_many_statements_over_200_exposures_as_over_10(quality_manager):
    ready = clinic_ready()
    ClinicContactFactory(clinic=ready.clinic)
    # The first opening in a process also fills Django's content type cache.
    open_over(quality_manager, lot_used_in(ready, quality_manager, 1))
    counts = {}
    for lines in (10, 200):
        lot = lot_used_in(ready, quality_manager, lines)
        with CaptureQueriesContext(connection) as captured:
            recall = open_over(quality_manager, lot)
        assert RecallExposure.objects.filter(recall=recall).count() == lines
        counts[lines] = len(captured)

    assert counts[10] == counts[200], counts


def test_recall_open_freezes_each_line_with_what_its_treatment_says(quality_manager):
    world = build_world(quality_manager)
    recall = open_recall(world)

    frozen = {
        (
            e.treatment_line_id,
            e.treatment_id,
            e.lot_id,
            e.clinic_id,
            e.patient_id,
            e.practitioner_id,
            e.performed_at,
            e.units,
        )
        for e in RecallExposure.objects.filter(recall=recall)
    }
    lines = {
        (
            line.pk,
            line.treatment_id,
            line.lot_id,
            t.clinic_id,
            t.patient_id,
            t.practitioner_id,
            t.performed_at,
            line.units,
        )
        for line in TreatmentLine.objects.filter(lot=world.lot).select_related("treatment")
        for t in [line.treatment]
    }
    assert frozen == lines
    assert len(frozen) == 3


@pytest.fixture
def unrecalled_line(quality_manager):
    """A recall, and a treatment line of another lot that the recall did not freeze."""
    world = build_world(quality_manager)
    recall = open_recall(world)
    other = released_lot(created_by=quality_manager)
    receive(world.a, other, 2)
    treatment = treat(world.a, other, 1)
    return recall, treatment.lines.get()


def exposure_of(recall: Recall, line: TreatmentLine, **changes: Any) -> dict[str, Any]:
    treatment = line.treatment
    fields = {
        "recall_id": recall.pk,
        "round": 2,
        "treatment_line_id": line.pk,
        "treatment_id": treatment.pk,
        "lot_id": line.lot_id,
        "clinic_id": treatment.clinic_id,
        "patient_id": treatment.patient_id,
        "practitioner_id": treatment.practitioner_id,
        "performed_at": treatment.performed_at,
        "units": line.units,
    }
    fields.update(changes)
    return fields


def missing(model: Any) -> int:
    return int(model.objects.aggregate(last=Max("pk"))["last"] or 0) + 1000


@pytest.mark.parametrize(
    "change",
    [
        "treatment line that does not exist",
        "recall that does not exist",
        "another treatment",
        "another clinic",
        "another patient",
        "another practitioner",
        "another lot",
        "other units",
        "another treatment time",
        "a frozen line's own row",
    ],
)
def test_the_database_refuses_an_exposure_that_does_not_copy_its_treatment_line(
    unrecalled_line, change
):
    recall, line = unrecalled_line
    # A line of another clinic, patient, practitioner and treatment, which the recall did freeze.
    frozen = RecallExposure.objects.filter(recall=recall).exclude(clinic_id=line.clinic_id).first()
    assert frozen.practitioner_id != line.practitioner_id
    changes: dict[str, Any] = {
        "treatment line that does not exist": {"treatment_line_id": missing(TreatmentLine)},
        "recall that does not exist": {"recall_id": missing(Recall)},
        "another treatment": {"treatment_id": frozen.treatment_id},
        "another clinic": {"clinic_id": frozen.clinic_id},
        "another patient": {"patient_id": PatientFactory(clinic=line.treatment.clinic).pk},
        "another practitioner": {"practitioner_id": frozen.practitioner_id},
        "another lot": {"lot_id": released_lot().pk},
        "other units": {"units": line.units + 1},
        "another treatment time": {
            "performed_at": line.treatment.performed_at - datetime.timedelta(hours=1)
        },
        # Every column but the line's id from a line of another lot, one the recall froze.
        "a frozen line's own row": {
            "treatment_id": frozen.treatment_id,
            "lot_id": frozen.lot_id,
            "clinic_id": frozen.clinic_id,
            "patient_id": frozen.patient_id,
            "practitioner_id": frozen.practitioner_id,
            "performed_at": frozen.performed_at,
            "units": frozen.units,
        },
    }[change]

    with pytest.raises(IntegrityError, match="must copy an existing treatment line"):
        with transaction.atomic():
            RecallExposure.objects.create(**exposure_of(recall, line, **changes))

    RecallExposure.objects.create(**exposure_of(recall, line))
    assert RecallExposure.objects.filter(recall=recall, treatment_line=line).exists()
