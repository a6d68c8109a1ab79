"""Each treatment line carries its treatment's time (`TreatmentLine.performed_at`), so that a lot's
lines are indexed in the order a trace reads them. The database copies the time whatever a writer
sends, and a treatment's time is fixed once recorded, so the copy can never disagree."""

from __future__ import annotations

import datetime

import pytest
from django.db import IntegrityError, ProgrammingError, transaction
from django.db.models import F
from django.utils import timezone

from tests.factories import clinic_ready, receive, released_lot, treat
from treatments.models import Treatment, TreatmentLine
from treatments.selectors import ForwardScope, trace_forward

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("reference_data")]


@pytest.fixture
def ready():
    return clinic_ready()


def test_a_recorded_line_carries_its_treatments_time(ready):
    lot = released_lot()
    receive(ready, lot, 5)
    at = timezone.now() - datetime.timedelta(hours=3, microseconds=17)

    treatment = treat(ready, lot, performed_at=at)

    line = TreatmentLine.objects.get(treatment=treatment)
    assert line.performed_at == at == treatment.performed_at


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


def test_a_treatments_other_fields_are_not_held_by_the_time_rule(ready):
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
    assert [line.performed_at for line in trace.lines] == [
        line.treatment.performed_at for line in trace.lines
    ]
