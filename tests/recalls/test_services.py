"""Acknowledging, accounting for stock and patients, effectiveness and closing: every refusal both
ways (refused, then allowed once the rule is met)."""

from __future__ import annotations

import datetime
import threading
from unittest import mock

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from common.errors import DomainError
from lots.models import LotStatus
from providers.models import Role
from recalls.models import (
    Acknowledgement,
    Notification,
    NotificationStatus,
    RecallLot,
    RecallStatus,
    StockDisposition,
)
from recalls.selectors import effectiveness_level, recall_effectiveness, recall_patient_list
from recalls.services import (
    RecallScopeRequest,
    recall_acknowledge,
    recall_close,
    recall_contact_attempt_record,
    recall_disposition_record,
    recall_open,
    recall_widen,
)
from stock.models import MovementKind, StockBalance, StockMovement
from stock.selectors import stock_balances_disagreeing
from tests.factories import (
    PASSWORD,
    ClinicContactFactory,
    ClinicFactory,
    MembershipFactory,
    PatientFactory,
    UserFactory,
    clinic_ready,
    receive,
    released_lot,
    treat,
)
from tests.recalls.scenario import build_world, mark_sent, open_recall

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(quality_manager):
    return build_world(quality_manager)


@pytest.fixture
def recall(world):
    return open_recall(world)


def refused(call, *codes: str, status: int | None = None) -> DomainError:
    with pytest.raises(DomainError) as caught:
        call()
    assert sorted(caught.value.codes) == sorted(codes), caught.value.problems
    if status is not None:
        assert caught.value.status == status
    return caught.value


def balance(clinic, lot, state) -> int:
    row = StockBalance.objects.filter(clinic=clinic, lot=lot, state=state).first()
    return row.quantity if row else 0


# ---------------------------------------------------------------------------------------------
# Acknowledgement


def test_recall_acknowledge_records_once_and_refuses_a_second(world, recall):
    acknowledgement = recall_acknowledge(
        recall=recall, clinic=world.a.clinic, via="api", actor=world.a.administrator
    )
    assert acknowledgement.acknowledged_by == world.a.administrator
    assert acknowledgement.acknowledged_by_name == world.a.administrator.get_full_name()

    error = refused(
        lambda: recall_acknowledge(
            recall=recall, clinic=world.a.clinic, via="admin", actor=world.quality_manager
        ),
        "recall_already_acknowledged",
        status=409,
    )
    assert world.a.clinic.name in error.problems[0].message
    assert Acknowledgement.objects.filter(recall=recall).count() == 1


def test_the_database_also_refuses_a_second_acknowledgement(world, recall):
    fields = {
        "recall": recall,
        "clinic": world.a.clinic,
        "via": "admin",
        "acknowledged_by_name": "X",
        "acknowledged_at": timezone.now(),
    }
    Acknowledgement.objects.create(**fields)
    with pytest.raises(IntegrityError), transaction.atomic():
        Acknowledgement.objects.create(**fields)


def test_recall_acknowledge_needs_the_clinic_administrator_or_a_quality_manager(world, recall):
    for outsider in (world.a.clinician, world.b.administrator, UserFactory()):
        refused(
            lambda outsider=outsider: recall_acknowledge(
                recall=recall, clinic=world.a.clinic, via="api", actor=outsider
            ),
            "role_required",
            status=403,
        )
    refused(
        lambda: recall_acknowledge(recall=recall, clinic=world.a.clinic, via="api", actor=None),
        "role_required",
    )
    assert not Acknowledgement.objects.exists()

    recall_acknowledge(recall=recall, clinic=world.a.clinic, via="api", actor=world.a.administrator)
    recall_acknowledge(
        recall=recall, clinic=world.b.clinic, via="admin", actor=world.quality_manager, name="Q M"
    )
    assert Acknowledgement.objects.filter(recall=recall).count() == 2


def test_recall_acknowledge_refuses_a_clinic_the_recall_did_not_reach(world, recall):
    elsewhere = clinic_ready()
    refused(
        lambda: recall_acknowledge(
            recall=recall, clinic=elsewhere.clinic, via="api", actor=elsewhere.administrator
        ),
        "clinic_not_in_recall",
        status=409,
    )
    # Once the recall reaches it (a widening to a lot it holds), it may acknowledge.
    other_lot = released_lot(created_by=world.quality_manager)
    receive(elsewhere, other_lot, 1)
    recall_widen(
        actor=world.quality_manager,
        password=PASSWORD,
        recall=recall,
        scope=RecallScopeRequest(lot_ids=[other_lot.pk]),
        reason="Same production run",
    )
    recall_acknowledge(
        recall=recall, clinic=elsewhere.clinic, via="api", actor=elsewhere.administrator
    )


def test_recall_acknowledge_refuses_an_unknown_channel_and_a_missing_name(world, recall):
    refused(
        lambda: recall_acknowledge(
            recall=recall, clinic=world.a.clinic, via="fax", actor=world.a.administrator
        ),
        "invalid_choice",
        status=400,
    )
    refused(
        lambda: recall_acknowledge(
            recall=recall, clinic=world.a.clinic, via="link", actor=None, name="   "
        ),
        "name_required",
        status=400,
    )
    refused(
        lambda: recall_acknowledge(
            recall=recall, clinic=world.a.clinic, via="link", actor=None, name="x" * 201
        ),
        "name_invalid",
        status=400,
    )
    acknowledgement = recall_acknowledge(
        recall=recall, clinic=world.a.clinic, via="link", actor=None, name="  Dana   Doe "
    )
    assert acknowledgement.acknowledged_by is None
    assert acknowledgement.acknowledged_by_name == "Dana Doe"


def test_the_last_acknowledgement_sets_fully_acknowledged_at(world, recall):
    recall_acknowledge(recall=recall, clinic=world.a.clinic, via="api", actor=world.a.administrator)
    recall.refresh_from_db()
    assert recall.fully_acknowledged_at is None

    last = recall_acknowledge(
        recall=recall, clinic=world.b.clinic, via="api", actor=world.b.administrator
    )
    recall.refresh_from_db()
    assert recall.fully_acknowledged_at == last.acknowledged_at


def test_widening_to_a_clinic_that_has_not_acknowledged_clears_full_acknowledgement(world, recall):
    for ready in (world.a, world.b):
        recall_acknowledge(recall=recall, clinic=ready.clinic, via="api", actor=ready.administrator)
    recall.refresh_from_db()
    assert recall.fully_acknowledged_at is not None

    newcomer = clinic_ready()
    other_lot = released_lot(created_by=world.quality_manager)
    receive(newcomer, other_lot, 2)
    recall_widen(
        actor=world.quality_manager,
        password=PASSWORD,
        recall=recall,
        scope=RecallScopeRequest(lot_ids=[other_lot.pk]),
        reason="Same production run",
    )
    recall.refresh_from_db()
    assert recall.fully_acknowledged_at is None

    last = recall_acknowledge(
        recall=recall, clinic=newcomer.clinic, via="api", actor=newcomer.administrator
    )
    recall.refresh_from_db()
    assert recall.fully_acknowledged_at == last.acknowledged_at


def test_closed_recalls_take_no_acknowledgement(world, recall):
    recall_close(
        recall=recall, actor=world.quality_manager, password=PASSWORD, reason="r", override=True
    )
    refused(
        lambda: recall_acknowledge(
            recall=recall, clinic=world.a.clinic, via="api", actor=world.a.administrator
        ),
        "recall_not_open",
        status=409,
    )


# ---------------------------------------------------------------------------------------------
# Stock disposition


def test_disposition_moves_blocked_units_out_through_the_ledger(world, recall):
    assert balance(world.a.clinic, world.lot, "blocked") == 2

    returned = recall_disposition_record(
        recall=recall,
        clinic=world.a.clinic,
        lot=world.lot,
        kind="returned",
        quantity=1,
        actor=world.a.administrator,
    )
    recall_disposition_record(
        recall=recall,
        clinic=world.a.clinic,
        lot=world.lot,
        kind="destroyed",
        quantity=1,
        actor=world.quality_manager,
    )

    assert returned.recorded_by == world.a.administrator
    assert balance(world.a.clinic, world.lot, "blocked") == 0
    kinds = sorted(
        StockMovement.objects.filter(
            clinic=world.a.clinic, lot=world.lot, kind__in=[MovementKind.RETURN, "destruction"]
        ).values_list("kind", "delta", "state")
    )
    assert kinds == [("destruction", -1, "blocked"), ("return", -1, "blocked")]
    assert stock_balances_disagreeing() == []


def test_disposition_refuses_more_than_is_left_to_account_for(world, recall):
    def dispose(quantity):
        return recall_disposition_record(
            recall=recall,
            clinic=world.b.clinic,
            lot=world.lot,
            kind="destroyed",
            quantity=quantity,
            actor=world.b.administrator,
        )

    error = refused(lambda: dispose(4), "disposition_exceeds_held", status=409)
    assert error.problems[0].field == "quantity"
    dispose(2)
    refused(lambda: dispose(2), "disposition_exceeds_held")
    dispose(1)
    refused(lambda: dispose(1), "disposition_exceeds_held")
    assert StockDisposition.objects.filter(recall=recall, clinic=world.b.clinic).count() == 2
    assert balance(world.b.clinic, world.lot, "blocked") == 0
    assert stock_balances_disagreeing() == []


def test_disposition_also_takes_stock_rejected_at_receipt_which_the_recall_counted(
    world, quality_manager
):
    receive(world.a, world.lot, 3, decision="reject")
    recall = open_recall(world)
    assert balance(world.a.clinic, world.lot, "blocked") == 2
    assert balance(world.a.clinic, world.lot, "rejected") == 3

    recall_disposition_record(
        recall=recall,
        clinic=world.a.clinic,
        lot=world.lot,
        kind="returned",
        quantity=5,
        actor=world.a.administrator,
    )
    assert balance(world.a.clinic, world.lot, "blocked") == 0
    assert balance(world.a.clinic, world.lot, "rejected") == 0
    assert stock_balances_disagreeing() == []


def test_disposition_refuses_bad_input_and_the_wrong_people(world, recall):
    other_lot = released_lot(created_by=world.quality_manager)

    def dispose(**overrides):
        arguments = {
            "recall": recall,
            "clinic": world.a.clinic,
            "lot": world.lot,
            "kind": "returned",
            "quantity": 1,
            "actor": world.a.administrator,
        }
        return recall_disposition_record(**{**arguments, **overrides})

    refused(lambda: dispose(lot=other_lot), "lot_not_in_recall", status=409)
    refused(lambda: dispose(kind="sold"), "invalid_choice", status=400)
    refused(lambda: dispose(quantity=0), "quantity_not_positive", status=400)
    refused(lambda: dispose(quantity=True), "quantity_not_positive", status=400)
    refused(lambda: dispose(actor=world.a.clinician), "role_required", status=403)
    refused(lambda: dispose(actor=world.b.administrator), "role_required", status=403)
    assert not StockDisposition.objects.exists()
    dispose()
    assert StockDisposition.objects.count() == 1


def test_a_drill_leaves_lots_and_stock_untouched_and_records_dispositions_only(world):
    movements_before = StockMovement.objects.count()
    drill = open_recall(world, is_drill=True)

    world.lot.refresh_from_db()
    assert world.lot.status == LotStatus.RELEASED
    assert balance(world.a.clinic, world.lot, "accepted") == 2
    assert balance(world.a.clinic, world.lot, "blocked") == 0
    assert not RecallLot.objects.get(recall=drill).active
    assert drill.reference.startswith("DRILL-")

    recall_disposition_record(
        recall=drill,
        clinic=world.a.clinic,
        lot=world.lot,
        kind="destroyed",
        quantity=2,
        actor=world.a.administrator,
    )
    assert StockMovement.objects.count() == movements_before
    assert balance(world.a.clinic, world.lot, "accepted") == 2
    refused(
        lambda: recall_disposition_record(
            recall=drill,
            clinic=world.a.clinic,
            lot=world.lot,
            kind="destroyed",
            quantity=1,
            actor=world.a.administrator,
        ),
        "disposition_exceeds_held",
    )


# ---------------------------------------------------------------------------------------------
# Patients


def test_the_patient_list_shows_contact_details_to_the_clinics_own_staff_only(world, recall):
    for user in (world.a.clinician, world.a.administrator):
        listing = recall_patient_list(recall=recall, clinic=world.a.clinic, user=user)
        assert listing.with_contacts
        rows = {patient.reference: patient for patient in listing.patients}
        assert set(rows) == {world.a1.reference, world.a2.reference}
        assert rows[world.a1.reference].contact.full_name == "Alice Anders"
        assert rows[world.a1.reference].exposure_count == 1
        assert rows[world.a1.reference].lot_numbers == [world.lot.lot_number]

    for network_user in (
        world.quality_manager,
        MembershipFactory(role=Role.AUDITOR, clinic=None).user,
    ):
        listing = recall_patient_list(recall=recall, clinic=world.a.clinic, user=network_user)
        assert not listing.with_contacts
        assert len(listing.patients) == 2

    refused(
        lambda: recall_patient_list(recall=recall, clinic=world.a.clinic, user=world.b.clinician),
        "role_required",
        status=403,
    )


def test_a_clinic_level_recall_lists_patients_without_contact_details(world):
    recall = open_recall(world, depth="clinic")
    listing = recall_patient_list(recall=recall, clinic=world.a.clinic, user=world.a.clinician)
    assert not listing.with_contacts
    assert len(listing.patients) == 2


def test_contact_attempts_are_recorded_for_exposed_patients_of_the_actors_clinic(world, recall):
    never_treated = PatientFactory(clinic=world.a.clinic)

    def attempt(patient, actor, outcome="reached"):
        return recall_contact_attempt_record(
            recall=recall, patient=patient, outcome=outcome, note="called", actor=actor
        )

    refused(lambda: attempt(never_treated, world.a.clinician), "patient_not_exposed", status=409)
    refused(lambda: attempt(world.a1, world.b.clinician), "role_required", status=403)
    refused(lambda: attempt(world.a1, world.a.clinician, "emailed"), "invalid_choice", status=400)

    first = attempt(world.a1, world.a.clinician, "unreachable")
    attempt(world.a1, world.a.administrator, "reached")
    attempt(world.b1, world.quality_manager, "deceased")
    assert first.attempted_by == world.a.clinician
    assert first.note == "called"


def test_contact_attempts_are_refused_in_a_clinic_level_recall(world):
    recall = open_recall(world, depth="clinic")
    refused(
        lambda: recall_contact_attempt_record(
            recall=recall, patient=world.a1, outcome="reached", actor=world.a.clinician
        ),
        "recall_not_patient_level",
        status=409,
    )


# ---------------------------------------------------------------------------------------------
# Effectiveness


def test_effectiveness_figures_on_a_small_scenario(world, recall):
    sent_at = recall.opened_at + datetime.timedelta(minutes=3)
    mark_sent(recall, at=sent_at, clinic=world.a.clinic)
    Notification.objects.filter(recall=recall, clinic=world.b.clinic).update(
        status=NotificationStatus.FAILED, attempts=5, last_error="550 mailbox unavailable"
    )
    recall_acknowledge(recall=recall, clinic=world.a.clinic, via="api", actor=world.a.administrator)
    recall_disposition_record(
        recall=recall,
        clinic=world.a.clinic,
        lot=world.lot,
        kind="returned",
        quantity=2,
        actor=world.a.administrator,
    )
    recall_disposition_record(
        recall=recall,
        clinic=world.b.clinic,
        lot=world.lot,
        kind="destroyed",
        quantity=1,
        actor=world.b.administrator,
    )
    for outcome, patient in (("reached", world.a1), ("unreachable", world.a2)):
        recall_contact_attempt_record(
            recall=recall, patient=patient, outcome=outcome, actor=world.a.clinician
        )

    figures = recall_effectiveness(recall=recall)

    assert (figures.clinics_total, figures.clinics_acknowledged) == (2, 1)
    assert figures.clinics_acknowledged_share == 0.5
    # A patient-level recall: 1 of 3 patients contacted (33 %) is below the clinics' 50 %.
    assert (figures.level_share, figures.level) == (pytest.approx(1 / 3), "D")
    assert (figures.patients_exposed, figures.patients_contacted, figures.patients_attempted) == (
        3,
        1,
        2,
    )
    assert figures.patients_contacted_share == pytest.approx(1 / 3, abs=1e-4)
    assert (figures.units_held, figures.units_accounted, figures.units_outstanding) == (5, 3, 2)
    assert (figures.notices.total, figures.notices.sent, figures.notices.failed) == (2, 1, 1)
    assert figures.failed_notices[0].last_error == "550 mailbox unavailable"
    assert figures.timing.first_notice_sent_at == sent_at
    assert figures.timing.seconds_to_first_notice == 180
    assert figures.timing.all_notices_sent_at is None
    assert figures.timing.fully_acknowledged_at is None
    by_clinic = {row.clinic_id: row for row in figures.clinics}
    assert by_clinic[world.a.clinic.pk].acknowledged
    assert (by_clinic[world.a.clinic.pk].units_held, by_clinic[world.b.clinic.pk].units_held) == (
        2,
        3,
    )

    scoped = recall_effectiveness(recall=recall, clinic_ids=[world.b.clinic.pk])
    assert (scoped.clinics_total, scoped.patients_exposed, scoped.units_held) == (1, 1, 3)
    assert (scoped.notices.total, scoped.notices.failed) == (1, 1)


def test_effectiveness_runs_a_fixed_number_of_queries(world, django_assert_num_queries):
    def scenario(clinics: int):
        lot = released_lot(created_by=world.quality_manager)
        for _ in range(clinics):
            ready = clinic_ready()
            ClinicContactFactory(clinic=ready.clinic)
            receive(ready, lot, 3)
            treat(ready, lot, 1)
        recall = open_recall(world, lots=[lot])
        Notification.objects.filter(recall=recall).update(status=NotificationStatus.FAILED)
        return recall

    small = scenario(1)
    with CaptureQueriesContext(connection) as one:
        assert recall_effectiveness(recall=small).clinics_total == 1
    large = scenario(20)
    with django_assert_num_queries(len(one)):
        figures = recall_effectiveness(recall=large)
        assert figures.clinics_total == 20
        assert figures.notices.failed == 20
        assert len(figures.failed_notices) == 20


def test_effectiveness_levels_are_a_configurable_default(settings):
    assert [effectiveness_level(share) for share in (1, 0.75, 0.5, 0.25, 0.2, 0)] == list("ABCDEE")
    assert effectiveness_level(None) is None
    settings.RECALL_EFFECTIVENESS_LEVELS = [("A", 100), ("B", 10), ("C", 0)]
    assert [effectiveness_level(share) for share in (1, 0.5, 0.05)] == list("ABC")


def _patient_level_recall_of(patients: int, quality_manager):
    """One clinic that treated `patients` patients with one lot, recalled at patient level and
    acknowledged by the clinic: 100 % of its consignees."""
    lot = released_lot(created_by=quality_manager)
    ready = clinic_ready()
    receive(ready, lot, patients)
    treated = [ready.patient, *(PatientFactory(clinic=ready.clinic) for _ in range(patients - 1))]
    for patient in treated:
        treat(ready, lot, 1, patient=patient)
    recall = recall_open(
        actor=quality_manager,
        password=PASSWORD,
        recall_class="II",
        depth="patient",
        reason="Endotoxin above specification in retained sample",
        hazard="Fever, sepsis",
        scope=RecallScopeRequest(lot_ids=[lot.pk]),
    )
    recall_acknowledge(recall=recall, clinic=ready.clinic, via="api", actor=ready.administrator)
    return recall, ready, treated


def test_a_patient_level_recall_is_not_level_a_while_few_patients_are_contacted(quality_manager):
    recall, ready, treated = _patient_level_recall_of(32, quality_manager)

    def contact(patients, outcome="reached"):
        for patient in patients:
            recall_contact_attempt_record(
                recall=recall, patient=patient, outcome=outcome, actor=ready.clinician
            )

    contact(treated[:2])
    contact(treated[2:10], outcome="unreachable")  # an attempt is not a contact
    figures = recall_effectiveness(recall=recall)
    assert (figures.clinics_acknowledged_share, figures.patients_contacted) == (1.0, 2)
    assert (figures.level_share, figures.level) == (2 / 32, "E")

    # The boundaries: 25 % is D, 50 % C, 75 % B, every patient A; one patient short stays below.
    expected = {7: "E", 8: "D", 15: "D", 16: "C", 23: "C", 24: "B", 31: "B", 32: "A"}
    contacted = 2
    for count, level in expected.items():
        contact(treated[contacted:count], outcome="deceased" if count == 32 else "reached")
        contacted = count
        figures = recall_effectiveness(recall=recall)
        assert figures.patients_contacted == count
        assert (count, figures.level) == (count, level)


def test_a_patient_level_level_is_the_lower_of_clinics_and_patients(world, recall):
    recall_acknowledge(recall=recall, clinic=world.a.clinic, via="api", actor=world.a.administrator)
    for patient, actor in (
        (world.a1, world.a.clinician),
        (world.a2, world.a.clinician),
        (world.b1, world.b.clinician),
    ):
        recall_contact_attempt_record(
            recall=recall, patient=patient, outcome="reached", actor=actor
        )
    figures = recall_effectiveness(recall=recall)
    assert (figures.patients_contacted_share, figures.clinics_acknowledged_share) == (1.0, 0.5)
    assert figures.level == "C"


def test_a_clinic_level_recall_counts_clinics_only(world):
    recall = open_recall(world, depth="clinic")
    for ready in (world.a, world.b):
        recall_acknowledge(recall=recall, clinic=ready.clinic, via="api", actor=ready.administrator)
    figures = recall_effectiveness(recall=recall)
    assert (figures.patients_exposed, figures.patients_contacted) == (3, 0)
    assert figures.level == "A"


def test_a_patient_level_recall_without_exposed_patients_counts_clinics(world):
    lot = released_lot(created_by=world.quality_manager)
    receive(world.a, lot, 2)
    recall = open_recall(world, lots=[lot])
    recall_acknowledge(recall=recall, clinic=world.a.clinic, via="api", actor=world.a.administrator)
    figures = recall_effectiveness(recall=recall)
    assert (figures.patients_exposed, figures.level_share, figures.level) == (0, 1.0, "A")


# ---------------------------------------------------------------------------------------------
# Closing


def close(recall, actor, **overrides):
    arguments = {"password": PASSWORD, "reason": "All clinics responded", "override": False}
    return recall_close(recall=recall, actor=actor, **{**arguments, **overrides})


def test_closing_is_refused_listing_every_unmet_item_then_allowed(world, recall):
    error = refused(
        lambda: close(recall, world.quality_manager),
        "clinic_not_acknowledged",
        "clinic_not_acknowledged",
        "stock_not_accounted",
        "stock_not_accounted",
        status=409,
    )
    assert {problem.field for problem in error.problems} == {
        f"clinics.{world.a.clinic.pk}",
        f"clinics.{world.b.clinic.pk}",
        f"stock.{world.a.clinic.pk}.{world.lot.pk}",
        f"stock.{world.b.clinic.pk}.{world.lot.pk}",
    }

    for ready, held in ((world.a, 2), (world.b, 3)):
        recall_acknowledge(recall=recall, clinic=ready.clinic, via="api", actor=ready.administrator)
        recall_disposition_record(
            recall=recall,
            clinic=ready.clinic,
            lot=world.lot,
            kind="returned",
            quantity=held - 1,
            actor=ready.administrator,
        )
    error = refused(
        lambda: close(recall, world.quality_manager),
        "stock_not_accounted",
        "stock_not_accounted",
    )
    assert "1 of 2 unit(s)" in error.problems[0].message + error.problems[1].message

    for ready in (world.a, world.b):
        recall_disposition_record(
            recall=recall,
            clinic=ready.clinic,
            lot=world.lot,
            kind="destroyed",
            quantity=1,
            actor=ready.administrator,
        )
    closed = close(recall, world.quality_manager)

    closed.refresh_from_db()
    assert closed.status == RecallStatus.CLOSED
    assert closed.closed_by == world.quality_manager
    assert closed.closed_at is not None
    assert not closed.close_override
    assert not RecallLot.objects.filter(recall=recall, active=True).exists()
    world.lot.refresh_from_db()
    assert world.lot.status == LotStatus.RECALLED
    # The lot is free to be in another recall now.
    again = open_recall(world)
    assert RecallLot.objects.get(recall=again).active


def test_closing_with_an_override_records_it_and_the_reason(world, recall):
    closed = close(recall, world.quality_manager, override=True, reason="Clinic B ceased trading")
    closed.refresh_from_db()
    assert closed.status == RecallStatus.CLOSED
    assert closed.close_override
    assert closed.close_reason == "Clinic B ceased trading"
    refused(lambda: close(recall, world.quality_manager), "recall_not_open", status=409)


def test_closing_needs_the_quality_managers_signature_and_a_reason(world, recall):
    refused(
        lambda: close(recall, world.a.administrator, override=True), "role_required", status=403
    )
    refused(
        lambda: close(recall, world.quality_manager, override=True, password="wrong"),
        "signature_password_invalid",
        status=403,
    )
    refused(
        lambda: close(recall, world.quality_manager, override=True, reason=" "),
        "reason_required",
        status=400,
    )
    recall.refresh_from_db()
    assert recall.status == RecallStatus.OPEN


def test_closing_a_drill_produces_the_timing_report(world):
    drill = open_recall(world, is_drill=True)
    opened = drill.opened_at
    mark_sent(drill, at=opened + datetime.timedelta(minutes=1), clinic=world.a.clinic)
    mark_sent(drill, at=opened + datetime.timedelta(minutes=4), clinic=world.b.clinic)
    for ready, held in ((world.a, 2), (world.b, 3)):
        recall_acknowledge(recall=drill, clinic=ready.clinic, via="api", actor=ready.administrator)
        recall_disposition_record(
            recall=drill,
            clinic=ready.clinic,
            lot=world.lot,
            kind="returned",
            quantity=held,
            actor=ready.administrator,
        )

    close(drill, world.quality_manager, reason="Drill complete")

    drill.refresh_from_db()
    timing = recall_effectiveness(recall=drill).timing
    assert timing.seconds_to_first_notice == 60
    assert timing.seconds_to_all_notices_sent == 240
    assert timing.fully_acknowledged_at == drill.fully_acknowledged_at
    assert timing.seconds_to_full_acknowledgement > 0
    assert timing.closed_at == drill.closed_at
    assert timing.seconds_to_close >= timing.seconds_to_full_acknowledgement
    world.lot.refresh_from_db()
    assert world.lot.status == LotStatus.RELEASED
    assert balance(world.a.clinic, world.lot, "accepted") == 2


def test_a_recall_that_reached_no_clinic_has_no_level_and_closes(world, quality_manager):
    lot = released_lot(created_by=quality_manager)
    ClinicFactory()
    recall = open_recall(world, lots=[lot])
    figures = recall_effectiveness(recall=recall)
    assert (figures.clinics_total, figures.level, figures.clinics_acknowledged_share) == (
        0,
        None,
        None,
    )
    close(recall, quality_manager)


# ---------------------------------------------------------------------------------------------
# Concurrency: the recall row lock serialises follow-up writes (real threads, real commits)


def run_together(*calls):
    """Each call in its own thread and connection, released together by a barrier; returns the
    result or the DomainError of each."""
    barrier = threading.Barrier(len(calls))
    outcomes: list[object] = [None] * len(calls)

    def work(index, call):
        try:
            connection.ensure_connection()
            barrier.wait(timeout=20)
            outcomes[index] = call()
        except DomainError as refusal:
            outcomes[index] = refusal
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return outcomes


@pytest.fixture
def committed_recall(quality_manager):
    # Delivery is queued on commit; these tests commit, and must not reach a broker.
    with mock.patch("recalls.services.opening._queue_delivery"):
        world = build_world(quality_manager)
        return world, open_recall(world)


@pytest.mark.django_db(transaction=True)
def test_concurrent_acknowledgements_still_mark_the_recall_fully_acknowledged(committed_recall):
    world, recall = committed_recall
    outcomes = run_together(
        *(
            lambda ready=ready: recall_acknowledge(
                recall=recall, clinic=ready.clinic, via="api", actor=ready.administrator
            )
            for ready in (world.a, world.b)
        )
    )
    assert all(isinstance(outcome, Acknowledgement) for outcome in outcomes), outcomes
    recall.refresh_from_db()
    assert recall.fully_acknowledged_at == max(o.acknowledged_at for o in outcomes)


@pytest.mark.django_db(transaction=True)
def test_concurrent_dispositions_never_account_for_more_than_was_held(committed_recall):
    world, recall = committed_recall
    outcomes = run_together(
        *(
            lambda: recall_disposition_record(
                recall=recall,
                clinic=world.b.clinic,
                lot=world.lot,
                kind="destroyed",
                quantity=2,
                actor=world.b.administrator,
            )
            for _ in range(3)
        )
    )
    refusals = [outcome for outcome in outcomes if isinstance(outcome, DomainError)]
    assert len(refusals) == 2, outcomes
    assert {code for refusal in refusals for code in refusal.codes} == {"disposition_exceeds_held"}
    assert StockDisposition.objects.filter(recall=recall).count() == 1
    assert balance(world.b.clinic, world.lot, "blocked") == 1
    assert stock_balances_disagreeing() == []


def test_each_round_is_signed_with_its_own_digest_carried_by_its_lots_status_changes(world, recall):
    from lots.models import LotStatusChange

    other_lot = released_lot(created_by=world.quality_manager)
    receive(world.a, other_lot, 2)
    recall_widen(
        actor=world.quality_manager,
        password=PASSWORD,
        recall=recall,
        scope=RecallScopeRequest(lot_ids=[other_lot.pk]),
        reason="Same production run",
    )

    first, second = recall.scopes.order_by("round")
    assert first.signature_digest == recall.opened_signature_digest
    assert len(second.signature_digest) == 64
    assert second.signature_digest != first.signature_digest
    recalled = LotStatusChange.objects.filter(action="recall")
    assert recalled.get(lot=world.lot).record_digest == first.signature_digest
    assert recalled.get(lot=other_lot).record_digest == second.signature_digest
