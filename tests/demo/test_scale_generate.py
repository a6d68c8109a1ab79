"""`manage.py scale_generate`: the data set it builds obeys the domain's rules, read through the
project's own selectors, services and verifiers, and runs never collide.

The generator commits its own transaction and `audit_verify` opens a REPEATABLE READ one, so
these tests commit (transaction=True).
"""

from __future__ import annotations

import dataclasses
import io
import statistics
from collections import Counter, defaultdict

import pytest
from django.apps import apps
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.models import F, Sum
from django.utils import timezone

from common.validators import jurisdiction_chain
from demo.scale.base import Progress, Sizes
from demo.scale.generate import NotAllowed, Summary, generate
from demo.scale.history import tracked_tables
from lots.models import Lot, LotStatus, LotStatusChange
from lots.selectors import lot_release_check
from providers.models import ClinicPractitioner, Licence, Membership, Role
from stock.models import Receipt, StockBalance, StockMovement
from stock.selectors import stock_balances_disagreeing
from treatments.models import LINE_COPIES, Patient, Treatment, TreatmentLine
from treatments.selectors import ForwardScope, trace_forward
from treatments.services import LineRequest, lots_afresh, treatment_problems, treatment_record

pytestmark = [pytest.mark.django_db(transaction=True)]

SMALL = Sizes(treatments=2000, lots=40, patients=300, clinics=5, practitioners=20)


def build(sizes: Sizes = SMALL, seed: int = 7) -> Summary:
    return generate(sizes=sizes, seed=seed, progress=Progress(io.StringIO()))


def lines_of(summary: Summary) -> list[TreatmentLine]:
    return list(
        TreatmentLine.objects.filter(treatment__clinic__name__contains=summary.run).select_related(
            "lot", "treatment__clinic", "treatment__patient", "treatment__practitioner"
        )
    )


def test_balances_agree_with_the_ledger_and_receipts_cover_every_draw():
    summary = build()

    assert stock_balances_disagreeing() == []
    drawn: Counter[tuple[int, int]] = Counter()
    for line in lines_of(summary):
        drawn[(line.treatment.clinic_id, line.lot_id)] += line.units
    received: Counter[tuple[int, int]] = Counter()
    for receipt in Receipt.objects.filter(clinic__name__contains=summary.run):
        received[(receipt.clinic_id, receipt.lot_id)] += receipt.quantity
    assert set(drawn) == set(received)
    assert all(drawn[pair] < received[pair] for pair in drawn)
    # Each treatment's draw comes after the receipt it draws from.
    first_receipt = {
        (movement.clinic_id, movement.lot_id): movement.occurred_at
        for movement in StockMovement.objects.filter(
            clinic__name__contains=summary.run, kind="receipt"
        )
    }
    for line in lines_of(summary):
        key = (line.treatment.clinic_id, line.lot_id)
        assert first_receipt[key] < line.treatment.performed_at
        assert line.stock_movement_id is not None


def test_every_line_uses_a_lot_released_and_unexpired_on_the_clinic_day():
    summary = build()

    lines = lines_of(summary)
    assert len(lines) == SMALL.treatments
    for line in lines:
        treatment, lot = line.treatment, line.lot
        day = treatment.clinic.local_date(treatment.performed_at)
        assert lot.status == LotStatus.RELEASED
        assert not lot.is_expired(on=day)
        assert lot.manufactured_on <= day
        released = LotStatusChange.objects.get(lot=lot, to_status=LotStatus.RELEASED)
        assert released.signed_at < treatment.performed_at


def test_each_lot_met_every_release_requirement_on_the_day_it_was_released():
    summary = build()

    for change in LotStatusChange.objects.filter(
        lot__manufacturer__legal_name__contains=summary.run
    ):
        lot = Lot.objects.get(pk=change.lot_id)
        lot.status = change.from_status
        check = lot_release_check(lot=lot, on=change.signed_at.date())
        assert check.releasable, [problem.code for problem in check.problems]


def test_the_clinical_gate_finds_nothing_to_refuse_in_the_generated_treatments():
    """Every tenth treatment put to `treatment_problems` as it was recorded, with the clinic's
    accepted units of the lot as the ledger held them just before it."""
    summary = build()

    for line in lines_of(summary)[::10]:
        treatment = line.treatment
        held = StockMovement.objects.filter(
            clinic_id=treatment.clinic_id,
            lot_id=line.lot_id,
            state="accepted",
            id__lt=line.stock_movement_id,
        ).aggregate(units=Sum("delta"))["units"]
        lines, facts = lots_afresh(treatment.clinic, [LineRequest(lot=line.lot, units=line.units)])
        problems = treatment_problems(
            clinic=treatment.clinic,
            patient=treatment.patient,
            practitioner=treatment.practitioner,
            performed_at=treatment.performed_at,
            indication=treatment.indication,
            route=treatment.route,
            lines=lines,
            consent=None,
            lot_facts=dataclasses.replace(facts, balances={line.lot_id: held}),
            now=treatment.recorded_at,
        )
        assert [problem.code for problem in problems] == []


def test_practitioners_practise_at_the_clinic_and_hold_a_licence_valid_that_day():
    summary = build()
    members = set(
        ClinicPractitioner.objects.filter(active=True).values_list("clinic_id", "practitioner_id")
    )
    licences: dict[int, list[Licence]] = defaultdict(list)
    for licence in Licence.objects.all():
        licences[licence.practitioner_id].append(licence)
    clinicians = set(
        Membership.objects.filter(role=Role.CLINICIAN).values_list("user_id", "clinic_id")
    )

    for line in lines_of(summary):
        treatment = line.treatment
        clinic = treatment.clinic
        day = clinic.local_date(treatment.performed_at)
        assert (clinic.pk, treatment.practitioner_id) in members
        assert any(
            licence.is_valid_on(day)
            for licence in licences[treatment.practitioner_id]
            if licence.jurisdiction in jurisdiction_chain(clinic.jurisdiction)
        )
        assert (treatment.recorded_by_id, clinic.pk) in clinicians


def test_patients_belong_to_the_clinic_of_their_treatments():
    summary = build()

    treatments = Treatment.objects.filter(clinic__name__contains=summary.run)
    assert treatments.count() == SMALL.treatments
    assert not treatments.exclude(patient__clinic_id=F("clinic_id")).exists()
    assert Patient.objects.filter(clinic__name__contains=summary.run).count() == SMALL.patients


def test_each_line_carries_its_treatments_time_and_parties_as_the_database_would_copy_them():
    summary = build()

    lines = TreatmentLine.objects.filter(treatment__clinic__name__contains=summary.run)
    assert lines.count() == SMALL.treatments
    for copy in LINE_COPIES:
        kept = f"{copy}_id" if copy != "performed_at" else copy
        assert not lines.exclude(**{kept: F(f"treatment__{kept}")}).exists(), copy


def test_every_generated_row_of_a_tracked_model_has_its_insert_event():
    summary = build()

    checked = 0
    for table, event_table in tracked_tables().items():
        written = summary.rows.get(table)
        if not written:
            continue
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                SELECT count(*), count(*) FILTER (WHERE e.pgh_label = 'insert'
                                                  AND c.metadata->>'reason' LIKE %s)
                FROM {event_table} e JOIN pghistory_context c ON c.id = e.pgh_context_id
                """,  # noqa: S608 - table names come from the models
                [f"%{summary.run}"],
            )
            events, of_this_run = cursor.fetchone()
        assert events == of_this_run == written, table
        checked += 1
    assert checked >= 15


def test_the_audit_chain_and_the_signatures_verify():
    build()

    out = io.StringIO()
    call_command("audit_verify", stdout=out)
    assert "intact" in out.getvalue()
    out = io.StringIO()
    call_command("signatures_verify", stdout=out)
    assert " 0 invalid" in out.getvalue()
    assert "0 signed act(s) without their signature" in out.getvalue()


def test_lot_popularity_follows_a_power_law():
    summary = build()

    per_lot = Counter(line.lot_id for line in lines_of(summary))
    counts = sorted(per_lot.values(), reverse=True)
    assert counts[0] == summary.heaviest.lines
    assert counts[0] > 4 * statistics.median(counts)
    assert per_lot[summary.typical.id] == summary.typical.lines


def test_a_small_run_into_a_larger_database_analyses_only_the_tables_it_grew_by_a_tenth():
    first = build()
    small = Sizes(treatments=150, lots=5, patients=30, clinics=1, practitioners=2)
    second = build(small, seed=5)

    # A first load into tables never analysed reads them all.
    assert {"treatments_treatment", "treatments_treatmentline", "lots_lot"} <= {*first.analysed}
    assert "treatments_treatment" not in second.analysed
    assert second.rows["treatments_treatment"] == 150
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM treatments_treatment")
        (treatments,) = cursor.fetchone()
    assert 150 < 0.1 * (treatments - 150)
    # Each table it did analyse grew by at least a tenth of what it held before.
    for table in second.analysed:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 - a table name of ours
            (total,) = cursor.fetchone()
        assert second.rows[table] >= 0.1 * (total - second.rows[table]), table


def test_two_runs_in_one_database_do_not_collide():
    first = build(seed=3)
    second = build(seed=3)

    assert first.run != second.run
    assert Treatment.objects.count() == 2 * SMALL.treatments
    assert Lot.objects.filter(lot_number=first.heaviest.lot_number).count() == 2
    assert stock_balances_disagreeing() == []
    # The same seed, the same shape.
    assert first.heaviest.lines == second.heaviest.lines
    assert first.rows == second.rows


def test_the_forward_trace_of_the_heaviest_lot_returns_every_line_generated_for_it():
    summary = build()
    auditor = Membership.objects.get(role=Role.AUDITOR, user__username__contains=summary.run).user

    trace = trace_forward(user=auditor, scope=ForwardScope(lot_ids=[summary.heaviest.id]))

    assert trace.lines.count() == summary.heaviest.lines
    assert [lot.pk for lot in trace.lots] == [summary.heaviest.id]


def test_a_treatment_recorded_through_the_service_draws_on_generated_stock():
    summary = build()
    today = timezone.now()
    balance = (
        StockBalance.objects.filter(
            clinic__name__contains=summary.run, quantity__gt=0, lot__expires_on__gt=today.date()
        )
        .select_related("clinic", "lot")
        .order_by("-quantity", "pk")
        .first()
    )
    assert balance is not None
    clinic = balance.clinic
    clinician = Membership.objects.get(clinic=clinic, role=Role.CLINICIAN).user
    practitioner = ClinicPractitioner.objects.filter(clinic=clinic).first().practitioner
    patient = Patient.objects.filter(clinic=clinic).first()
    held = balance.quantity

    treatment = treatment_record(
        actor=clinician,
        clinic=clinic,
        patient=patient,
        practitioner=practitioner,
        performed_at=today,
        indication="wound",
        route="topical",
        anatomical_site="forearm",
        lines=[LineRequest(lot=balance.lot, units=1)],
    )

    balance.refresh_from_db()
    assert balance.quantity == held - 1
    assert treatment.lines.get().lot_id == balance.lot_id
    assert stock_balances_disagreeing() == []
    event_model = apps.get_model("treatments", "TreatmentEvent")
    assert event_model.objects.filter(pgh_obj_id=treatment.pk).count() == 1


def test_the_command_prints_counts_lots_and_seconds_per_phase():
    out, err = io.StringIO(), io.StringIO()

    call_command(
        "scale_generate",
        "--treatments=500",
        "--lots=10",
        "--patients=50",
        "--clinics=2",
        "--practitioners=4",
        stdout=out,
        stderr=err,
    )

    printed = out.getvalue()
    assert "treatments_treatment" in printed
    assert "heaviest lot: id" in printed
    assert "typical lot: id" in printed
    assert "Seconds per phase:" in printed
    assert "treatments   [" in err.getvalue()


def test_a_user_who_may_not_switch_triggers_off_is_refused_before_anything_is_written():
    with connection.cursor() as cursor:
        cursor.execute("SET ROLE pg_read_all_data")
    try:
        with pytest.raises(NotAllowed, match="superuser"):
            build()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET ROLE")
    assert not Lot.objects.exists()


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--treatments", "0"),
        ("--lots", "0"),
        ("--patients", "0"),
        ("--clinics", "0"),
        ("--practitioners", "0"),
        ("--lots", "-3"),
    ],
)
def test_a_size_below_one_is_refused_naming_it_before_anything_is_written(option, value):
    """0 is a size given, not one left to scale with --treatments."""
    with pytest.raises(CommandError, match=f"{option} must be at least 1"):
        call_command(
            "scale_generate", "--treatments=100", f"{option}={value}", stderr=io.StringIO()
        )
    assert not Lot.objects.exists()
