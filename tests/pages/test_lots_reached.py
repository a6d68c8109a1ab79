"""What a lot reached (the lot page's graph and the dossier's totals per clinic) is read from the
lines' own copies of their treatment's clinic, patient and time (LINE_COPIES), never by joining
every line to its treatment, and adds up to what that join gives."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection
from django.db.models import Count, Max, Min, Sum
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from lots.models import Lot, LotStatus
from pages.graph import COLLAPSE_ABOVE
from pages.lots.detail import _reached
from recalls.dossier import lot_dossier_context
from tests.factories import (
    PatientFactory,
    clinic_ready,
    receive,
    releasable_lot,
    treat,
)
from tests.pages.conftest import client_for
from treatments.models import TreatmentLine

pytestmark = pytest.mark.usefixtures("reference_data")

JOINED = 'JOIN "treatments_treatment"'


@pytest.fixture
def spread(quality_manager):
    """A lot used at a busy clinic (more treatments than the graph draws one by one) and a quiet
    one, on several days and by several patients, some of its treatments sharing a second lot."""
    lot = releasable_lot(quality_manager=quality_manager)
    other = releasable_lot(quality_manager=quality_manager)
    Lot.objects.filter(pk__in=[lot.pk, other.pk]).update(status=LotStatus.RELEASED)
    busy, quiet = clinic_ready(), clinic_ready()
    receive(busy, lot, 60)
    receive(busy, other, 10)
    receive(quiet, lot, 10)
    busy_patients = [busy.patient, PatientFactory(clinic=busy.clinic)]
    quiet_patients = [quiet.patient, PatientFactory(clinic=quiet.clinic)]
    now = timezone.now()
    for n in range(COLLAPSE_ABOVE + 2):
        treat(
            busy,
            [lot, other] if n % 4 == 0 else lot,
            units=1 + n % 3,
            patient=busy_patients[n % 2],
            performed_at=now - datetime.timedelta(days=n, hours=1),
        )
    for n in range(3):
        treat(
            quiet,
            lot,
            units=2,
            patient=quiet_patients[n % 2],
            performed_at=now - datetime.timedelta(days=2 * n, hours=2),
        )
    return lot, busy, quiet


def test_the_lot_page_counts_per_clinic_what_the_join_to_treatments_counts(quality_manager, spread):
    lot, busy, quiet = spread
    request = RequestFactory().get("/")
    request.user = quality_manager

    with CaptureQueriesContext(connection) as queries:
        reached = _reached(request, lot)

    assert not [q["sql"] for q in queries if JOINED in q["sql"]]
    joined = {
        row["treatment__clinic_id"]: (row["treatments"], row["units"])
        for row in TreatmentLine.objects.filter(lot=lot)
        .values("treatment__clinic_id")
        .annotate(treatments=Count("treatment_id", distinct=True), units=Sum("units"))
    }
    shown = {
        clinic.clinic_id: (clinic.treatment_count, clinic.units_used)
        for clinic in reached.trace.clinics
    }
    assert shown == joined
    assert shown[busy.clinic.pk][0] == COLLAPSE_ABOVE + 2
    assert shown[quiet.clinic.pk] == (3, 6)
    drawn = {clinic.clinic_id: clinic.treatments for clinic in reached.trace.clinics}
    assert drawn[busy.clinic.pk] == []  # collapsed: too many to draw one by one
    expected = list(
        TreatmentLine.objects.filter(lot=lot, treatment__clinic=quiet.clinic)
        .order_by("treatment__performed_at", "treatment_id")
        .values_list("treatment__patient__reference", "treatment__performed_at", "units")
    )
    assert [
        (node.reference, node.performed_at, node.units) for node in drawn[quiet.clinic.pk]
    ] == expected


def test_the_lot_page_draws_the_quiet_clinic_for_its_own_staff(spread):
    lot, _busy, quiet = spread

    html = client_for(quiet.clinician).get(reverse("pages:lot", args=[lot.pk])).content.decode()

    assert html.count(f"Patient {quiet.patient.reference}") == 2


def test_the_dossier_totals_per_clinic_what_the_join_to_treatments_totals(spread):
    lot, busy, quiet = spread

    with CaptureQueriesContext(connection) as queries:
        context = lot_dossier_context(lot=Lot.objects.select_related("product").get(pk=lot.pk))

    aggregate = [q["sql"] for q in queries if "COUNT(DISTINCT" in q["sql"]]
    assert aggregate and not [sql for sql in aggregate if JOINED in sql]
    joined = [
        {
            "clinic_id": row.pop("treatment__clinic_id"),
            "clinic__name": row.pop("treatment__clinic__name"),
            **row,
        }
        for row in TreatmentLine.objects.filter(lot=lot)
        .values("treatment__clinic_id", "treatment__clinic__name")
        .annotate(
            lines=Count("pk"),
            patients=Count("treatment__patient_id", distinct=True),
            units=Sum("units"),
            first=Min("treatment__performed_at"),
            last=Max("treatment__performed_at"),
        )
        .order_by("treatment__clinic__name", "treatment__clinic_id")
    ]
    totals = sorted(
        context["treatment_totals"], key=lambda row: (row["clinic__name"], row["clinic_id"])
    )
    assert totals == joined
    assert {row["clinic_id"]: row["patients"] for row in totals} == {
        busy.clinic.pk: 2,
        quiet.clinic.pk: 2,
    }
    assert (context["treatment_count"], context["patient_count"]) == (COLLAPSE_ABOVE + 5, 4)
