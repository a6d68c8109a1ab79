"""Each treatment line carries its treatment's time, clinic, patient and practitioner
(`treatments.models.LINE_COPIES`), so that a lot's lines are indexed in the order a trace reads
them, with what its counts and a recall's exposures read. The database copies them whatever a
writer sends, and they are fixed on the treatment once recorded, so a copy can never disagree."""

from __future__ import annotations

import datetime

import pytest
from django.db import IntegrityError, ProgrammingError, transaction
from django.db.models import F
from django.utils import timezone

from tests.factories import (
    PatientFactory,
    clinic_ready,
    practitioner_at,
    receive,
    released_lot,
    treat,
)
from treatments.models import LINE_COPIES, Treatment, TreatmentLine
from treatments.selectors import ForwardScope, trace_forward

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("reference_data")]


@pytest.fixture
def ready():
    return clinic_ready()


def copies(line: TreatmentLine) -> tuple:
    return tuple(line.serializable_value(field) for field in LINE_COPIES)


def of_treatment(treatment: Treatment) -> tuple:
    return tuple(treatment.serializable_value(field) for field in LINE_COPIES)


def test_a_recorded_line_carries_its_treatments_time_clinic_patient_and_practitioner(ready):
    lot = released_lot()
    receive(ready, lot, 5)
    at = timezone.now() - datetime.timedelta(hours=3, microseconds=17)

    treatment = treat(ready, lot, performed_at=at)

    line = TreatmentLine.objects.get(treatment=treatment)
    assert line.performed_at == at == treatment.performed_at
    assert (line.clinic_id, line.patient_id, line.practitioner_id) == (
        ready.clinic.pk,
        ready.patient.pk,
        ready.practitioner.pk,
    )
    assert copies(line) == of_treatment(treatment)
    # The lines the service hands back (read from nothing) know the copies too.
    assert [copies(known) for known in treatment.lines.all()] == [of_treatment(treatment)]


@pytest.mark.parametrize(
    "sent",
    [None, datetime.datetime(2001, 1, 1, tzinfo=datetime.UTC), "treatment + 1 day"],
    ids=["nothing", "another time", "a later time"],
)
def test_the_database_writes_the_treatments_time_whatever_a_writer_sends(ready, sent):
    lot = released_lot()
    receive(ready, lot, 5)
    other = released_lot()
    treatment = treat(ready, lot)
    if sent == "treatment + 1 day":
        sent = treatment.performed_at + datetime.timedelta(days=1)

    TreatmentLine.objects.bulk_create(
        [TreatmentLine(treatment=treatment, lot=other, units=1, performed_at=sent)]
    )

    written = TreatmentLine.objects.get(treatment=treatment, lot=other)
    assert written.performed_at == treatment.performed_at


@pytest.mark.parametrize("sent", ["nothing", "another clinic's", "a missing id"])
def test_the_database_writes_the_treatments_parties_whatever_a_writer_sends(ready, sent):
    lot = released_lot()
    receive(ready, lot, 5)
    other = released_lot()
    treatment = treat(ready, lot)
    elsewhere = clinic_ready()
    parties = {
        "nothing": {},
        "another clinic's": {
            "clinic": elsewhere.clinic,
            "patient": elsewhere.patient,
            "practitioner": elsewhere.practitioner,
        },
        "a missing id": {
            "clinic_id": 2_000_000_000,
            "patient_id": 2_000_000_001,
            "practitioner_id": 2_000_000_002,
        },
    }[sent]

    TreatmentLine.objects.bulk_create(
        [TreatmentLine(treatment=treatment, lot=other, units=1, **parties)]
    )

    written = TreatmentLine.objects.get(treatment=treatment, lot=other)
    assert copies(written) == of_treatment(treatment)


def test_a_treatments_time_is_fixed_once_recorded(ready):
    lot = released_lot()
    receive(ready, lot, 5)
    treatment = treat(ready, lot)
    before = treatment.performed_at

    with pytest.raises(ProgrammingError, match="Cannot update"), transaction.atomic():
        Treatment.objects.filter(pk=treatment.pk).update(
            performed_at=F("performed_at") - datetime.timedelta(minutes=1)
        )

    treatment.refresh_from_db()
    assert treatment.performed_at == before
    assert TreatmentLine.objects.get(treatment=treatment).performed_at == before


@pytest.mark.parametrize("party", ["clinic", "patient", "practitioner"])
@pytest.mark.parametrize("to", ["another row", "the same row"])
def test_a_treatments_clinic_patient_and_practitioner_are_fixed_once_recorded(ready, party, to):
    lot = released_lot()
    receive(ready, lot, 5)
    treatment = treat(ready, lot)
    before = of_treatment(treatment)
    elsewhere = clinic_ready()
    other = {
        "clinic": elsewhere.clinic,
        "patient": PatientFactory(clinic=ready.clinic),
        "practitioner": practitioner_at(ready.clinic),
    }[party]

    if to == "another row":
        with pytest.raises(ProgrammingError, match="Cannot update"), transaction.atomic():
            Treatment.objects.filter(pk=treatment.pk).update(**{party: other})
    else:
        # Saving the same values is no change: an unchanged treatment may still be saved.
        Treatment.objects.filter(pk=treatment.pk).update(**{party: getattr(treatment, party)})

    treatment.refresh_from_db()
    assert of_treatment(treatment) == before
    assert copies(TreatmentLine.objects.get(treatment=treatment)) == before


def test_a_treatments_other_fields_are_not_held_by_the_rule(ready):
    lot = released_lot()
    receive(ready, lot, 5)
    treatment = treat(ready, lot)

    Treatment.objects.filter(pk=treatment.pk).update(notes="seen again")

    treatment.refresh_from_db()
    assert treatment.notes == "seen again"


def test_a_line_cannot_be_written_without_a_treatment(ready):
    lot = released_lot()

    with pytest.raises(IntegrityError), transaction.atomic():
        TreatmentLine.objects.bulk_create(
            [TreatmentLine(treatment_id=2_000_000_000, lot=lot, units=1)]
        )

    assert not TreatmentLine.objects.filter(lot=lot).exists()


def test_the_forward_trace_reads_a_lots_lines_in_the_order_of_their_treatments(ready):
    lot = released_lot()
    receive(ready, lot, 20)
    now = timezone.now()
    # Recorded out of order: ids and times disagree; two share a time.
    offsets = [5, 40, 1, 40, 12, 3]
    treatments = [
        treat(ready, lot, performed_at=now - datetime.timedelta(minutes=minutes))
        for minutes in offsets
    ]

    trace = trace_forward(user=ready.clinician, scope=ForwardScope(lot_ids=[lot.pk]))
    read = [(line.performed_at, line.treatment_id) for line in trace.lines]

    assert read == sorted((t.performed_at, t.pk) for t in treatments)
    assert [copies(line) for line in trace.lines] == [
        of_treatment(line.treatment) for line in trace.lines
    ]
