"""The traces' benchmark section runs on small data and reports every path with its floor, and
the statement counts it takes at two sizes are equal (speed is printed, never asserted)."""

from __future__ import annotations

import pytest

from demo.bench.traces import find_subjects, measure
from tests.treatments.test_api import make_site, practitioner_at, receive, released_lot
from treatments.services import patient_create

# Committed data: the benchmark hands its requests to the WSGI application as a server does, and
# the application's request signals close a connection that is inside a test's transaction.
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("fast_password_hasher"),
]


@pytest.fixture
def traced(quality_manager, clinic):
    """A heavy lot used five times (one patient three times), a lot used twice and one used once
    by a patient of their own."""
    heavy = released_lot(quality_manager)
    site = make_site(quality_manager, clinic=clinic, lot=heavy)
    for _ in range(3):
        site.record()
    for reference in ("P-two", "P-three"):
        patient = patient_create(
            actor=site.clinician, clinic=site.clinic, reference=reference, contact={}
        )
        site.record(patient=patient)
    middling, single = released_lot(quality_manager), released_lot(quality_manager)
    for lot in (middling, single):
        receive(site.clinic, lot, 10)
    practitioner = practitioner_at(site.clinic)
    site.record(lots=[middling], practitioner=practitioner)
    site.record(lots=[middling], practitioner=practitioner)
    alone = patient_create(actor=site.clinician, clinic=site.clinic, reference="P-one", contact={})
    site.record(patient=alone, lots=[single])
    return {"heavy": heavy, "middling": middling, "site": site, "alone": alone}


def test_the_subjects_are_the_heaviest_and_the_typical_lot_and_the_extreme_patients(traced):
    subjects = find_subjects()
    assert subjects.heaviest_lot == (traced["heavy"].pk, 5)
    assert subjects.typical_lot == (traced["middling"].pk, 2)
    assert subjects.busiest_patient == (traced["site"].patient.pk, 5)
    assert subjects.quietest_patient[1] == 1
    assert subjects.clinic_user is not None


def test_every_trace_path_is_reported_beside_its_floor_with_equal_statement_counts(traced):
    rows = measure(repetitions=1)

    paths = [row.path for row in rows]
    assert len(paths) == 12
    for expected in (
        "OPTIONS of the forward trace",
        "JSON page, network reader",
        "JSON page, clinic staff",
        "backward trace, one patient",
        "heaviest lot (5 lines), JSON page",
        "full CSV stream",
        "first data row",
        "peak Python memory",
    ):
        assert any(expected in path for path in paths), expected
    for row in rows:
        assert row.figure > 0, row.path
        assert row.floor is not None and row.floor > 0, row.path
    # The request that does nothing sends the sign-in's statement alone.
    assert next(row for row in rows if row.path.startswith("OPTIONS")).statements == 1
    counted = [row for row in rows if row.unit == "statements"]
    assert len(counted) == 3
    for row in counted:
        assert row.figure == row.floor, row.path
