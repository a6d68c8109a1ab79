"""The audit trail (21 CFR Part 11; DESIGN rule 7): services write pghistory events carrying who
and why, corrections keep the earlier value, and the event tables are append-only in PostgreSQL."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.apps import apps
from django.db import ProgrammingError, transaction
from pghistory.models import Events

from common.errors import DomainError
from lots.models import (
    DonorMarkerResult,
    LotQcResult,
    LotStatus,
    Marker,
    MarkerResultValue,
    QcTest,
    RegulatoryBasis,
)
from lots.services import (
    donor_create,
    donor_eligibility_decide,
    donor_marker_result_record,
    lot_create,
    lot_qc_result_record,
    lot_release,
    product_authorisation_set,
)
from tests.factories import PASSWORD, DonorFactory, ProductFactory, releasable_lot

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]

TODAY = datetime.date(2026, 6, 1)
LotEvent = apps.get_model("lots", "LotEvent")
DonorMarkerResultEvent = apps.get_model("lots", "DonorMarkerResultEvent")
LotQcResultEvent = apps.get_model("lots", "LotQcResultEvent")


def events_of(model_event, obj) -> list:
    """The object's events, oldest first (pgh_created_at is the transaction's start time, the same
    for every event in one test, so order by id)."""
    return list(
        model_event.objects.filter(pgh_obj_id=obj.pk)
        .select_related("pgh_context")
        .order_by("pgh_id")
    )


def test_lot_create_writes_an_insert_event_with_the_actor_and_reason(quality_manager):
    product = ProductFactory()
    donor = DonorFactory()

    lot = lot_create(
        actor=quality_manager,
        product=product,
        lot_number="EXO-H1",
        manufactured_on=TODAY,
        expires_on=TODAY + datetime.timedelta(days=365),
        quantity=10,
        unit="vial",
        regulatory_basis=RegulatoryBasis.IND,
        regulatory_number="IND 012345",
        donors=[donor],
    )

    (event,) = events_of(LotEvent, lot)
    assert event.pgh_label == "insert"
    assert event.lot_number == "EXO-H1"
    assert event.status == LotStatus.QUARANTINED
    assert event.pgh_context.metadata["user"] == quality_manager.pk
    assert event.pgh_context.metadata["reason"] == "lot recorded"
    link = Events.objects.get(pgh_obj_model="lots.LotDonor")
    assert link.pgh_data["donor_id"] == donor.pk
    assert link.pgh_context["user"] == quality_manager.pk


def test_lot_release_writes_an_update_event_with_signer_reason_and_meaning(quality_manager):
    # given a releasable lot made by factories (so it has no events of its own yet)
    lot = releasable_lot(quality_manager=quality_manager)
    assert events_of(LotEvent, lot)[0].pgh_context is None

    # when the quality manager releases it with a stated reason
    change = lot_release(
        actor=quality_manager,
        lot_id=lot.pk,
        password=PASSWORD,
        meaning="approval",
        reason="Meets specification; donor file complete.",
    )

    # then the lot's history shows the old and the new status, who, why and the meaning
    insert, update = events_of(LotEvent, lot)
    assert (insert.status, update.status) == (LotStatus.QUARANTINED, LotStatus.RELEASED)
    assert update.pgh_label == "update"
    assert update.pgh_context.metadata == {
        "user": quality_manager.pk,
        "reason": "Meets specification; donor file complete.",
        "signature_meaning": "approval",
        "action": "release",
    }
    signature = Events.objects.get(pgh_obj_model="lots.LotStatusChange", pgh_obj_id=str(change.pk))
    assert signature.pgh_context["reason"] == "Meets specification; donor file complete."


def test_events_diff_shows_the_status_change(quality_manager):
    lot = releasable_lot(quality_manager=quality_manager)
    lot_release(
        actor=quality_manager, lot_id=lot.pk, password=PASSWORD, meaning="approval", reason="ok"
    )

    update = Events.objects.get(
        pgh_obj_model="lots.Lot", pgh_obj_id=str(lot.pk), pgh_label="update"
    )

    assert update.pgh_diff["status"] == [LotStatus.QUARANTINED, LotStatus.RELEASED]


def _donor(actor):
    return donor_create(
        actor=actor,
        code="DN-H00001",
        tissue="adipose",
        collection_date=TODAY,
        specimen_date=TODAY,
        testing_laboratory="Viracor Eurofins",
    )


def _record(actor, donor, result: str, reason: str = "") -> DonorMarkerResult:
    return donor_marker_result_record(
        actor=actor,
        donor=donor,
        marker=Marker.objects.get(code="hcv_nat"),
        result=result,
        tested_on=TODAY,
        laboratory="Viracor Eurofins",
        reason=reason,
    )


@pytest.mark.parametrize("reason", ["", "   "])
def test_correcting_a_marker_result_without_a_reason_is_refused(quality_manager, reason):
    donor = _donor(quality_manager)
    first = _record(quality_manager, donor, MarkerResultValue.NON_REACTIVE)

    with pytest.raises(DomainError) as caught:
        _record(quality_manager, donor, MarkerResultValue.REACTIVE, reason=reason)

    assert caught.value.status == 400
    assert caught.value.codes == ["reason_required"]
    first.refresh_from_db()
    assert first.result == MarkerResultValue.NON_REACTIVE
    assert len(events_of(DonorMarkerResultEvent, first)) == 1


def test_correcting_a_marker_result_with_a_reason_keeps_the_old_value_in_history(quality_manager):
    # given a recorded non-reactive HCV NAT
    donor = _donor(quality_manager)
    first = _record(quality_manager, donor, MarkerResultValue.NON_REACTIVE)

    # when it is corrected to reactive with a reason
    corrected = _record(
        quality_manager,
        donor,
        MarkerResultValue.REACTIVE,
        reason="Laboratory amended report: sample swap.",
    )

    # then there is still one result, now reactive, and the history holds both values
    assert corrected.pk == first.pk
    assert DonorMarkerResult.objects.filter(donor=donor).count() == 1
    original, correction = events_of(DonorMarkerResultEvent, first)
    assert original.result == MarkerResultValue.NON_REACTIVE
    assert original.pgh_context.metadata["reason"] == "marker result recorded"
    assert correction.result == MarkerResultValue.REACTIVE
    assert correction.pgh_context.metadata == {
        "user": quality_manager.pk,
        "reason": "Laboratory amended report: sample swap.",
    }


def test_correcting_a_qc_result_keeps_the_old_value_in_history(quality_manager):
    lot = releasable_lot(quality_manager=quality_manager)
    endotoxin = QcTest.objects.get(code="endotoxin")
    arguments = {
        "actor": quality_manager,
        "lot": lot,
        "test": endotoxin,
        "tested_on": TODAY,
        "laboratory": "QC lab",
        "numeric_value": Decimal("0.7"),
    }
    with pytest.raises(DomainError) as caught:
        lot_qc_result_record(**arguments)
    assert caught.value.codes == ["reason_required"]

    lot_qc_result_record(**arguments, reason="Retest after invalid LAL run.")

    result = LotQcResult.objects.get(lot=lot, test=endotoxin)
    old, new = events_of(LotQcResultEvent, result)
    assert (old.numeric_value, new.numeric_value) == (Decimal("0.1"), Decimal("0.7"))
    assert new.pgh_context.metadata["reason"] == "Retest after invalid LAL run."


def test_eligibility_decision_is_recorded_as_a_signed_event(quality_manager):
    donor = _donor(quality_manager)
    for marker in Marker.objects.filter(required_for_tissues__contains=["adipose"]):
        donor_marker_result_record(
            actor=quality_manager,
            donor=donor,
            marker=marker,
            result=MarkerResultValue.NON_REACTIVE,
            tested_on=TODAY,
            laboratory="Viracor Eurofins",
        )

    donor_eligibility_decide(
        actor=quality_manager,
        donor=donor,
        eligibility="eligible",
        password=PASSWORD,
        reason="All required markers non-reactive.",
    )

    update = Events.objects.get(
        pgh_obj_model="lots.Donor", pgh_obj_id=str(donor.pk), pgh_label="update"
    )
    assert update.pgh_data["eligibility"] == "eligible"
    assert update.pgh_context["signature_meaning"] == "eligibility determination"
    assert update.pgh_context["reason"] == "All required markers non-reactive."


def test_authorisation_change_records_the_reason(quality_manager):
    product = ProductFactory()

    authorisation = product_authorisation_set(
        actor=quality_manager,
        product=product,
        jurisdiction="DE",
        status="banned",
        reason="Reg. 1223/2009 Annex II: human-origin material in cosmetics.",
    )

    event = Events.objects.get(
        pgh_obj_model="lots.ProductAuthorisation", pgh_obj_id=str(authorisation.pk)
    )
    assert event.pgh_context["reason"].startswith("Reg. 1223/2009")


def test_event_rows_cannot_be_updated_or_deleted(quality_manager):
    lot = releasable_lot(quality_manager=quality_manager)
    lot_release(
        actor=quality_manager, lot_id=lot.pk, password=PASSWORD, meaning="approval", reason="ok"
    )
    event = events_of(LotEvent, lot)[-1]

    with pytest.raises(ProgrammingError, match="Cannot update or delete rows"):
        with transaction.atomic():
            LotEvent.objects.filter(pk=event.pk).update(status=LotStatus.QUARANTINED)
    with pytest.raises(ProgrammingError, match="Cannot update or delete rows"):
        with transaction.atomic():
            LotEvent.objects.filter(pk=event.pk).delete()

    event.refresh_from_db()
    assert event.status == LotStatus.RELEASED


@pytest.mark.parametrize(
    "event_model",
    [
        "ProductEvent",
        "DonorEvent",
        "DonorMarkerResultEvent",
        "LotEvent",
        "LotDonorEvent",
        "LotQcResultEvent",
        "CertificateEvent",
        "LotStatusChangeEvent",
        "QcSpecificationEvent",
        "MarkerEvent",
    ],
)
def test_every_lots_event_table_is_append_only(quality_manager, event_model):
    # given events in every table: factories and a signed release write them; the reference data
    # migration wrote the marker and specification events
    lot = releasable_lot(quality_manager=quality_manager)
    lot_release(
        actor=quality_manager, lot_id=lot.pk, password=PASSWORD, meaning="approval", reason="ok"
    )
    model = apps.get_model("lots", event_model)
    assert model.objects.exists()

    with pytest.raises(ProgrammingError, match="Cannot update or delete rows"):
        with transaction.atomic():
            model.objects.all().delete()
