"""Importing charted treatments: the live recording rules, each judged on the row's own date; a
file is all or nothing; a dry run reports what the import would and writes nothing."""

from __future__ import annotations

import pytest
from django.db import connection
from django.utils import timezone

from history.services import history_import
from lots.models import LotStatus
from providers.models import ClinicPractitioner
from stock.models import MovementKind, StockBalance, StockState
from stock.selectors import stock_balances_disagreeing
from tests.factories import ConsentTextFactory, LicenceFactory, MembershipFactory, released_lot
from tests.history.conftest import (
    DAY,
    check_statements,
    csv_bytes,
    days_ago,
    past_receipt,
    treatment_row,
)
from treatments.models import Patient, Treatment, TreatmentLine
from treatments.selectors import ForwardScope, trace_forward

pytestmark = pytest.mark.django_db


def run(ready, rows, *, dry_run=False, header=None):
    return history_import(
        actor=ready.administrator,
        clinic=ready.clinic,
        kind="treatments",
        data=csv_bytes(rows, header=header),
        dry_run=dry_run,
    )


def places(outcome):
    return [(p.line, p.column, p.code) for p in outcome.problems]


def accepted_units(ready, lot) -> int:
    return StockBalance.objects.get(
        clinic=ready.clinic, lot=lot, state=StockState.ACCEPTED
    ).quantity


def test_a_lot_valid_then_and_expired_today_is_accepted_and_drawn_from_stock(ready, lot):
    assert lot.is_expired(on=timezone.now().date())
    performed_at = days_ago(200)
    outcome = run(
        ready, [treatment_row(ready, lot, units=3, performed_at=performed_at.isoformat())]
    )

    assert outcome.problems == [] and outcome.written == 1
    treatment = Treatment.objects.get(clinic=ready.clinic, patient__reference="EMR-0001")
    assert treatment.performed_at == performed_at
    assert treatment.recorded_by == ready.administrator
    line = treatment.lines.get()
    assert (line.lot, line.units) == (lot, 3)
    assert line.stock_movement.kind == MovementKind.TREATMENT
    assert line.stock_movement.occurred_at == performed_at
    assert line.stock_movement.reason == f"treatment {treatment.pk}"
    assert accepted_units(ready, lot) == 97
    assert stock_balances_disagreeing() == []


def test_a_lot_expired_on_the_treatments_date_is_refused_at_its_line_and_column(ready, lot):
    after_expiry = days_ago(20).isoformat()
    outcome = run(
        ready,
        [treatment_row(ready, lot), treatment_row(ready, lot, performed_at=after_expiry)],
    )
    assert places(outcome) == [(3, "lot_number", "lot_expired")]
    assert lot.lot_number in outcome.problems[0].message
    assert Treatment.objects.count() == 0


def test_a_lot_made_after_the_treatments_date_is_refused(ready, lot):
    outcome = run(ready, [treatment_row(ready, lot, performed_at=days_ago(800).isoformat())])
    assert "treatment_before_lot_made" in [p.code for p in outcome.problems]


def test_a_practitioner_licensed_then_but_lapsed_now_is_accepted(ready, lot):
    assert not ready.practitioner.licences.get().is_valid_on(timezone.now().date())
    assert run(ready, [treatment_row(ready, lot)]).problems == []


def test_a_practitioner_not_licensed_on_the_treatments_date_is_refused(ready, lot):
    outcome = run(ready, [treatment_row(ready, lot, performed_at=days_ago(5).isoformat())])
    # Five days ago the lot had expired too: both are named.
    assert places(outcome) == [
        (2, "lot_number", "lot_expired"),
        (2, "practitioner", "practitioner_not_licensed"),
    ]


def test_a_licence_of_another_jurisdiction_does_not_count(ready, lot):
    other = LicenceFactory(jurisdiction="DE")
    ClinicPractitioner.objects.create(clinic=ready.clinic, practitioner=other.practitioner)
    outcome = run(ready, [treatment_row(ready, lot, practitioner=other.practitioner.pk)])
    assert places(outcome) == [(2, "practitioner", "practitioner_not_licensed")]


def test_a_practitioner_who_does_not_practise_at_the_clinic_is_refused(ready, lot):
    ClinicPractitioner.objects.filter(practitioner=ready.practitioner).update(active=False)
    outcome = run(ready, [treatment_row(ready, lot)])
    assert places(outcome) == [(2, "practitioner", "practitioner_not_member")]


def test_an_unknown_practitioner_lot_or_consent_text_is_named(ready, lot):
    outcome = run(
        ready,
        [
            treatment_row(ready, lot, practitioner=999999),
            treatment_row(ready, lot, lot_number="NO-SUCH-LOT"),
            treatment_row(ready, lot, consent_text=999999, consent_taken_at=days_ago(201)),
        ],
    )
    assert places(outcome) == [
        (2, "practitioner", "practitioner_unknown"),
        (3, "lot_number", "lot_unknown"),
        (4, "consent_text", "consent_text_unknown"),
    ]


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (LotStatus.QUARANTINED, "lot_not_released"),
        (LotStatus.ON_HOLD, "lot_on_hold"),
        (LotStatus.RECALLED, "lot_recalled"),
    ],
)
def test_a_lot_not_released_now_is_refused(ready, lot, status, code):
    lot.status = status
    lot.save()
    assert places(run(ready, [treatment_row(ready, lot)])) == [(2, "lot_number", code)]


def test_a_route_the_product_does_not_permit_is_refused(ready, lot):
    outcome = run(ready, [treatment_row(ready, lot, route="intravenous")])
    assert places(outcome) == [(2, "route", "route_not_permitted")]


def test_a_treatment_before_the_stock_arrived_is_refused(ready, lot):
    outcome = run(ready, [treatment_row(ready, lot, performed_at=days_ago(450).isoformat())])
    assert places(outcome) == [(2, "units", "stock_insufficient")]


def test_stock_is_judged_in_date_order_whatever_the_files_order(ready, lot):
    rows = [
        treatment_row(ready, lot, units=60, performed_at=days_ago(100).isoformat()),
        treatment_row(ready, lot, units=60, performed_at=days_ago(300).isoformat()),
    ]
    # The earlier treatment (line 3) takes 60 of the 100; the later one (line 2) finds 40.
    outcome = run(ready, rows)
    assert places(outcome) == [(2, "units", "stock_insufficient")]
    assert "40" in outcome.problems[0].message


def test_a_past_draw_may_not_leave_a_later_use_short(ready, lot):
    """Units used live later (here: written off) are not there for a past treatment either."""
    from stock.services import stock_write_off

    stock_write_off(
        actor=ready.administrator,
        clinic=ready.clinic,
        lot=lot,
        quantity=95,
        kind="wastage",
        reason="thawed",
    )
    outcome = run(ready, [treatment_row(ready, lot, units=6)])
    assert places(outcome) == [(2, "units", "stock_insufficient")]
    assert run(ready, [treatment_row(ready, lot, units=5)]).problems == []


def test_consent_is_required_where_the_clinic_requires_it(ready, lot):
    ready.clinic.consent_required = True
    ready.clinic.save()
    outcome = run(ready, [treatment_row(ready, lot)])
    assert places(outcome) == [(2, "consent_text", "consent_required")]

    text = ConsentTextFactory()
    late = run(
        ready,
        [
            treatment_row(
                ready, lot, consent_text=text.pk, consent_taken_at=days_ago(199).isoformat()
            )
        ],
    )
    assert places(late) == [(2, "consent_taken_at", "consent_after_treatment")]

    outcome = run(
        ready,
        [
            treatment_row(
                ready, lot, consent_text=text.pk, consent_taken_at=days_ago(201).isoformat()
            )
        ],
    )
    assert outcome.problems == []
    treatment = Treatment.objects.get()
    assert treatment.consent_text == text and treatment.consent_taken_by == ready.administrator
    assert "IND" in treatment.consent_regulatory_statement


def test_a_known_patient_is_reused_and_an_unknown_one_registered_at_the_clinic(ready, lot):
    rows = [
        treatment_row(ready, lot, patient=ready.patient.reference),
        treatment_row(ready, lot, patient="EMR-NEW"),
        treatment_row(ready, lot, patient="EMR-NEW"),
    ]
    assert run(ready, rows).problems == []
    assert Patient.objects.filter(clinic=ready.clinic).count() == 2
    assert Treatment.objects.filter(patient=ready.patient).count() == 1
    assert Treatment.objects.filter(patient__reference="EMR-NEW").count() == 2


def test_one_bad_row_among_many_writes_nothing(ready, lot):
    rows = [treatment_row(ready, lot, patient=f"EMR-{n}") for n in range(30)]
    rows.insert(17, treatment_row(ready, lot, performed_at=days_ago(5).isoformat()))
    before = _counts()
    outcome = run(ready, rows)
    assert {p.line for p in outcome.problems} == {19}
    assert outcome.written == 0
    assert _counts() == before


def _counts() -> tuple[int, ...]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT count(*) FROM treatments_treatment), "
            "(SELECT count(*) FROM treatments_treatmentline), "
            "(SELECT count(*) FROM treatments_patient), "
            "(SELECT count(*) FROM stock_stockmovement), "
            "(SELECT coalesce(sum(quantity), 0) FROM stock_stockbalance), "
            "(SELECT count(*) FROM treatments_treatmentevent), "
            "(SELECT count(*) FROM treatments_patientevent)"
        )
        return tuple(cursor.fetchone())


def test_a_dry_run_checks_everything_and_writes_nothing(ready, lot):
    good = [treatment_row(ready, lot, patient=f"EMR-{n}") for n in range(5)]
    before = _counts()
    outcome = run(ready, good, dry_run=True)
    assert outcome.problems == [] and outcome.written == 5
    assert _counts() == before

    bad = [*good, treatment_row(ready, lot, performed_at=days_ago(5).isoformat())]
    assert run(ready, bad, dry_run=True).problems == run(ready, bad).problems
    assert _counts() == before


def test_the_imported_treatments_appear_in_the_forward_trace_of_their_lot(ready, lot):
    run(ready, [treatment_row(ready, lot, patient="EMR-TRACE")])
    trace = trace_forward(user=ready.administrator, scope=ForwardScope(lot_ids=[lot.pk]))
    assert [line.treatment.patient.reference for line in trace.lines] == ["EMR-TRACE"]


def test_lot_numbers_two_manufacturers_share_are_told_apart_by_gtin(ready, lot):
    twin = released_lot(
        lot_number=lot.lot_number,
        manufactured_on=lot.manufactured_on,
        expires_on=lot.expires_on,
        product__gtin="09506000134352",
    )
    past_receipt(ready, twin, 10, at=days_ago(400))
    outcome = run(ready, [treatment_row(ready, lot)])
    assert places(outcome) == [(2, "lot_number", "lot_ambiguous")]
    outcome = run(ready, [treatment_row(ready, lot, gtin="09506000134352")])
    assert outcome.problems == []
    assert TreatmentLine.objects.get().lot == twin


def test_the_check_reads_a_fixed_number_of_statements_whatever_the_files_length(ready, lot):
    """Whatever its rows, practitioners, patients and lots."""
    practitioners = []
    lots = [lot]
    for n in range(11):
        practitioner = LicenceFactory(
            valid_from=timezone.now().date() - 500 * DAY,
            valid_until=timezone.now().date() + DAY,
        ).practitioner
        ClinicPractitioner.objects.create(clinic=ready.clinic, practitioner=practitioner)
        practitioners.append(practitioner)
        if n < 3:
            more = released_lot(manufactured_on=lot.manufactured_on, expires_on=lot.expires_on)
            past_receipt(ready, more, 10, at=days_ago(400))
            lots.append(more)

    def statements(count: int) -> int:
        rows = [
            treatment_row(
                ready,
                lots[n % len(lots) if count > 3 else 0],
                patient=f"EMR-{count}-{n}",
                practitioner=practitioners[n].pk,
            )
            for n in range(count)
        ]
        return check_statements(
            lambda progress: history_import(
                actor=ready.administrator,
                clinic=ready.clinic,
                kind="treatments",
                data=csv_bytes(rows),
                dry_run=True,
                progress=progress,
            )
        )

    assert statements(2) == statements(11)


def test_a_clinician_may_not_import(ready, lot):
    from common.errors import DomainError

    with pytest.raises(DomainError) as error:
        history_import(
            actor=ready.clinician,
            clinic=ready.clinic,
            kind="treatments",
            data=csv_bytes([treatment_row(ready, lot)]),
        )
    assert error.value.codes == ["role_required"]
    MembershipFactory(user=ready.clinician, role="clinic_administrator", clinic=ready.clinic)
    assert (
        history_import(
            actor=ready.clinician,
            clinic=ready.clinic,
            kind="treatments",
            data=csv_bytes([treatment_row(ready, lot)]),
        ).problems
        == []
    )


def test_a_treatment_before_the_lots_retrospective_release_took_effect_is_refused(ready, lot):
    lot.release_effective_at = days_ago(100)
    lot.save()
    outcome = run(ready, [treatment_row(ready, lot, performed_at=days_ago(200).isoformat())])
    assert places(outcome) == [(2, "lot_number", "treatment_before_release")]
    assert (
        run(ready, [treatment_row(ready, lot, performed_at=days_ago(50).isoformat())]).problems
        == []
    )


def test_the_day_is_the_clinics_own(ready, lot):
    """00:30 in Berlin on the day after expiry is still the expiry day in UTC: expired there."""
    import datetime
    import zoneinfo

    ready.clinic.time_zone = "Europe/Berlin"
    ready.clinic.save()
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    after = datetime.datetime.combine(
        lot.expires_on + DAY, datetime.time(0, 30), tzinfo=berlin
    ).isoformat()
    before = datetime.datetime.combine(
        lot.expires_on, datetime.time(23, 30), tzinfo=berlin
    ).isoformat()
    assert places(run(ready, [treatment_row(ready, lot, performed_at=after)])) == [
        (2, "lot_number", "lot_expired")
    ]
    assert run(ready, [treatment_row(ready, lot, performed_at=before)]).problems == []


def test_a_product_banned_in_the_clinics_jurisdiction_is_refused(ready, lot):
    from lots.models import ProductAuthorisation

    ProductAuthorisation.objects.create(product=lot.product, jurisdiction="US", status="banned")
    outcome = run(ready, [treatment_row(ready, lot)])
    assert places(outcome) == [(2, "lot_number", "product_not_authorised")]
