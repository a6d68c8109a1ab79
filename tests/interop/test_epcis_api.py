"""GET /api/v1/epcis/events/: the stock ledger of a small network, built through the services
(receipts, quarantine decisions, a transfer, treatment, write-offs, a recall and its destruction),
read back as EPCIS 2.0 and validated against GS1's schema on every answer."""

from __future__ import annotations

import dataclasses
import datetime
import urllib.parse
import uuid
import zoneinfo
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from lots.models import Lot, LotUnit
from providers.models import Role
from recalls.services import RecallScopeRequest, recall_disposition_record, recall_open
from stock.models import MovementKind, StockMovement, StockState
from stock.services import stock_quarantine_resolve, stock_receive, stock_transfer, stock_write_off
from tests.api_helpers import error_codes, error_fields
from tests.factories import (
    PASSWORD,
    ClinicReady,
    MembershipFactory,
    ProductFactory,
    UserFactory,
    clinic_ready,
    receive,
    released_lot,
    treat,
)
from tests.interop.test_epcis_schema import assert_valid_epcis
from treatments.models import PatientContact, Treatment

EVENTS = "/api/v1/epcis/events/"
GTIN = "04006381333931"
CONTEXT = "https://ref.gs1.org/standards/epcis/epcis-context.jsonld"

# What each movement is as an event: (kind, the bucket its units went to or left) -> (action,
# bizStep, disposition), for a lot neither recalled nor expired when the units moved.
EXPECTED = {
    (MovementKind.RECEIPT, StockState.ACCEPTED): (
        "OBSERVE",
        "receiving",
        "sellable_not_accessible",
    ),
    (MovementKind.RECEIPT, StockState.QUARANTINED): ("OBSERVE", "receiving", "non_sellable_other"),
    (MovementKind.RECEIPT, StockState.REJECTED): ("OBSERVE", "receiving", "non_conformant"),
    (MovementKind.QUARANTINE_ACCEPT, StockState.ACCEPTED): ("OBSERVE", "inspecting", "conformant"),
    (MovementKind.QUARANTINE_REJECT, StockState.REJECTED): (
        "OBSERVE",
        "inspecting",
        "non_conformant",
    ),
    (MovementKind.TRANSFER_OUT, StockState.ACCEPTED): ("OBSERVE", "shipping", "in_transit"),
    (MovementKind.TRANSFER_IN, StockState.QUARANTINED): (
        "OBSERVE",
        "receiving",
        "non_sellable_other",
    ),
    (MovementKind.TREATMENT, StockState.ACCEPTED): ("OBSERVE", "dispensing", "dispensed"),
    (MovementKind.WASTAGE, StockState.ACCEPTED): ("DELETE", "destroying", "disposed"),
    (MovementKind.RETURN, StockState.ACCEPTED): ("OBSERVE", "shipping", "returned"),
    (MovementKind.DESTRUCTION, StockState.ACCEPTED): ("DELETE", "destroying", "destroyed"),
    (MovementKind.BLOCK, StockState.BLOCKED): ("OBSERVE", "holding", "recalled"),
    (MovementKind.DESTRUCTION, StockState.BLOCKED): ("DELETE", "destroying", "destroyed"),
}
# Units that stay at the clinic: the clinic is the bizLocation too.
STAYS = {MovementKind.RECEIPT, MovementKind.TRANSFER_IN, MovementKind.QUARANTINE_ACCEPT}
STAYS |= {MovementKind.QUARANTINE_REJECT, MovementKind.BLOCK}


@dataclasses.dataclass
class Network:
    a: ClinicReady
    b: ClinicReady
    lot: Lot
    treatment: Treatment
    quality_manager: Any


def _recall(quality_manager: Any, lot: Lot) -> Any:
    return recall_open(
        actor=quality_manager,
        password=PASSWORD,
        recall_class="II",
        depth="clinic",
        reason="Endotoxin above the specification in retained samples",
        hazard="Fever after injection",
        scope=RecallScopeRequest(lot_ids=[lot.pk]),
    )


@pytest.fixture
def network(reference_data: Any, quality_manager: Any) -> Network:
    """Clinic A (Berlin) receives a lot three ways, decides its quarantine, sends ten units to
    clinic B (Chicago), treats a patient and writes units off three ways; then the lot is
    recalled, which blocks what both hold, and B destroys some of its blocked units."""
    lot = released_lot(product=ProductFactory(gtin=GTIN))
    a = clinic_ready(time_zone="Europe/Berlin")
    b = clinic_ready(time_zone="America/Chicago")
    PatientContact.objects.create(
        patient=a.patient, full_name="Greta Beispiel", phone="+49 30 5550 1234"
    )
    receive(a, lot, 40)
    receive(a, lot, 5, decision="quarantine")
    receive(a, lot, 1, decision="reject")
    stock_quarantine_resolve(
        actor=a.administrator, clinic=a.clinic, lot=lot, quantity=3, accept=True, reason="Checked"
    )
    stock_quarantine_resolve(
        actor=a.administrator, clinic=a.clinic, lot=lot, quantity=2, accept=False, reason="Thawed"
    )
    stock_transfer(
        actor=a.administrator,
        from_clinic=a.clinic,
        to_clinic=b.clinic,
        lot=lot,
        quantity=10,
        reason="B ran short",
    )
    treatment = treat(a, lot, 2)
    for kind in (MovementKind.WASTAGE, MovementKind.RETURN, MovementKind.DESTRUCTION):
        stock_write_off(
            actor=a.administrator, clinic=a.clinic, lot=lot, quantity=1, kind=kind, reason=kind
        )
    recall = _recall(quality_manager, lot)
    recall_disposition_record(
        recall=recall, clinic=b.clinic, lot=lot, kind="destroyed", quantity=4, actor=b.administrator
    )
    lot.refresh_from_db()
    return Network(a=a, b=b, lot=lot, treatment=treatment, quality_manager=quality_manager)


def client_for(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def document(response: Any) -> Any:
    """The EPCISDocument of a 200, checked against GS1's schema."""
    assert response.status_code == 200, response.content
    body = response.json()
    assert_valid_epcis(body)
    assert body["@context"] == CONTEXT
    assert body["type"] == "EPCISDocument"
    assert body["schemaVersion"] == "2.0"
    return body


def event_list(response: Any) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = document(response)["epcisBody"]["eventList"]
    return events


def all_events(user: Any, **query: Any) -> list[dict[str, Any]]:
    return event_list(client_for(user).get(EVENTS, {"limit": 500, **query}))


def exported_movements(**filters: Any) -> list[StockMovement]:
    """The ledger lines that are events: all but the line out of the old bucket of a state
    change."""
    lines = StockMovement.objects.filter(**filters).select_related("clinic", "lot").order_by("pk")
    changes = (MovementKind.QUARANTINE_ACCEPT, MovementKind.QUARANTINE_REJECT, MovementKind.BLOCK)
    return [line for line in lines if not (line.kind in changes and line.delta < 0)]


def by_movement(events: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Events keyed by the movement each stands for, found from the ids on the movements' side."""
    ids = {event["eventID"]: event for event in events}
    assert len(ids) == len(events), "event ids repeat"
    namespace = uuid.uuid5(uuid.NAMESPACE_URL, "urn:exosome-traceability:epcis-event")
    found = {}
    for movement in StockMovement.objects.all():
        key = f"urn:uuid:{uuid.uuid5(namespace, f'stock-movement:{movement.pk}')}"
        if key in ids:
            found[movement.pk] = ids.pop(key)
    assert not ids, f"events that stand for no movement: {list(ids)}"
    return found


def offset_at(clinic: Any, at: datetime.datetime) -> str:
    offset = at.astimezone(zoneinfo.ZoneInfo(clinic.time_zone)).strftime("%z")
    return f"{offset[:3]}:{offset[3:]}"


# -- the mapping ---------------------------------------------------------------------------------


def test_every_movement_is_one_event_with_its_step_and_disposition(network: Network):
    events = by_movement(all_events(network.quality_manager))
    movements = exported_movements()
    assert set(events) == {movement.pk for movement in movements}
    seen = set()
    for movement in movements:
        event = events[movement.pk]
        key = (movement.kind, movement.state)
        seen.add(key)
        action, biz_step, disposition = EXPECTED[key]
        assert (event["action"], event["bizStep"], event["disposition"]) == (
            action,
            biz_step,
            disposition,
        ), key
        assert event["type"] == "ObjectEvent"
        clinic = f"urn:exosome-traceability:clinic:{movement.clinic_id}"
        assert event["readPoint"] == {"id": clinic}
        assert event.get("bizLocation") == ({"id": clinic} if movement.kind in STAYS else None)
        assert event["quantityList"] == [
            {
                "epcClass": f"https://id.gs1.org/01/{GTIN}/10/{network.lot.lot_number}",
                "quantity": abs(movement.delta),
                "uom": "VI",
            }
        ]
        assert event["eventTimeZoneOffset"] == offset_at(movement.clinic, movement.occurred_at)
        to_the_millisecond = movement.occurred_at.replace(
            microsecond=movement.occurred_at.microsecond // 1000 * 1000
        )
        assert datetime.datetime.fromisoformat(event["eventTime"]) == to_the_millisecond
        assert event["eventTime"].endswith("Z")
    assert seen == set(EXPECTED), "the network makes every kind of movement"


def test_a_state_change_is_one_event_not_two(network: Network):
    """Deciding a quarantine writes a line out of quarantine and one into the new bucket; the
    event is the second."""
    events = all_events(network.quality_manager, clinic=network.a.clinic.pk)
    inspections = [event for event in events if event["bizStep"] == "inspecting"]
    assert sorted(event["quantityList"][0]["quantity"] for event in inspections) == [2, 3]


def test_a_transfer_is_shipping_at_the_source_and_receiving_at_the_destination(network: Network):
    a = f"urn:exosome-traceability:clinic:{network.a.clinic.pk}"
    b = f"urn:exosome-traceability:clinic:{network.b.clinic.pk}"
    events = all_events(network.quality_manager)
    (shipped,) = [
        event
        for event in events
        if event["bizStep"] == "shipping" and event["disposition"] == "in_transit"
    ]
    (arrived,) = [
        event
        for event in events
        if event["readPoint"]["id"] == b and event["bizStep"] == "receiving"
    ]
    for event in (shipped, arrived):
        assert event["quantityList"][0]["quantity"] == 10
        assert event["sourceList"] == [{"type": "location", "source": a}]
        assert event["destinationList"] == [{"type": "location", "destination": b}]
    assert shipped["readPoint"] == {"id": a} and "bizLocation" not in shipped
    assert arrived["bizLocation"] == {"id": b}
    assert arrived["disposition"] == "non_sellable_other"  # arrives quarantined
    assert shipped["eventTimeZoneOffset"] != arrived["eventTimeZoneOffset"]  # Berlin, Chicago


def test_a_receipt_names_itself_as_the_business_transaction(network: Network):
    events = by_movement(all_events(network.quality_manager))
    receipts = StockMovement.objects.filter(kind=MovementKind.RECEIPT)
    assert receipts.count() == 3
    for movement in receipts:
        assert events[movement.pk]["bizTransactionList"] == [
            {
                "type": "recadv",
                "bizTransaction": f"urn:exosome-traceability:receipt:{movement.receipt_id}",
            }
        ]
    others = [event for pk, event in events.items() if pk not in {m.pk for m in receipts}]
    assert others and all("bizTransactionList" not in event for event in others)


def test_a_return_names_the_manufacturer_as_destination(network: Network):
    (returned,) = [
        event for event in all_events(network.quality_manager) if event["disposition"] == "returned"
    ]
    assert returned["destinationList"] == [
        {
            "type": "possessing_party",
            "destination": f"urn:exosome-traceability:manufacturer:{network.lot.manufacturer_id}",
        }
    ]


def test_the_recall_blocks_stock_as_recalled_at_both_clinics(network: Network):
    blocks = [
        event for event in all_events(network.quality_manager) if event["bizStep"] == "holding"
    ]
    # A held 28 accepted units (40 + 3 - 10 - 2 - 3); B its 10 quarantined units.
    assert sorted(
        (event["readPoint"]["id"].rsplit(":", 1)[1], event["quantityList"][0]["quantity"])
        for event in blocks
    ) == sorted([(str(network.a.clinic.pk), 28), (str(network.b.clinic.pk), 10)])
    assert {event["disposition"] for event in blocks} == {"recalled"}


def test_units_received_after_the_recall_are_recalled_not_merely_rejected(network: Network):
    """A recalled lot can be received only as rejected; its receipt says why the units are
    unusable: the recall."""
    c = clinic_ready()
    receipt = receive(c, network.lot, 1, decision="reject")
    (event,) = all_events(network.quality_manager, clinic=c.clinic.pk)
    assert event["bizStep"] == "receiving"
    assert event["disposition"] == "recalled"
    assert event["bizTransactionList"][0]["bizTransaction"].endswith(f":{receipt.pk}")


def test_an_expired_lot_is_expired_where_units_stay_or_are_thrown_away(
    reference_data: Any, quality_manager: Any
):
    """Received the day after its expiry date and wasted: both events say expired; its
    destruction still says destroyed, a transfer still in transit."""
    today = timezone.localdate()
    lot = released_lot(
        manufactured_on=today - datetime.timedelta(days=400),
        expires_on=today - datetime.timedelta(days=1),
    )
    a, b = clinic_ready(), clinic_ready()
    receive(a, lot, 10)
    stock_write_off(
        actor=a.administrator, clinic=a.clinic, lot=lot, quantity=1, kind="wastage", reason="Old"
    )
    stock_write_off(
        actor=a.administrator,
        clinic=a.clinic,
        lot=lot,
        quantity=1,
        kind="destruction",
        reason="Old",
    )
    stock_transfer(
        actor=a.administrator,
        from_clinic=a.clinic,
        to_clinic=b.clinic,
        lot=lot,
        quantity=1,
        reason="x",
    )
    events = all_events(quality_manager, lot=lot.pk)
    assert [(event["bizStep"], event["disposition"]) for event in events] == [
        ("receiving", "expired"),
        ("destroying", "expired"),
        ("destroying", "destroyed"),
        ("shipping", "in_transit"),
        ("receiving", "expired"),
    ]


def test_a_lot_is_usable_through_its_expiry_date(reference_data: Any, quality_manager: Any):
    """On the expiry date itself, in the clinic's own calendar, the lot has not expired."""
    clinic = clinic_ready(time_zone="Pacific/Kiritimati")
    today_there = clinic.clinic.local_date()
    lot = released_lot(
        manufactured_on=today_there - datetime.timedelta(days=400), expires_on=today_there
    )
    receive(clinic, lot, 1)
    (event,) = all_events(quality_manager, lot=lot.pk)
    assert event["disposition"] == "sellable_not_accessible"


@pytest.mark.parametrize(
    ("unit", "uom"),
    [
        (LotUnit.VIAL, "VI"),
        (LotUnit.SYRINGE, "H87"),
        (LotUnit.AMPOULE, "AM"),
        (LotUnit.MILLILITRE, "MLT"),
    ],
)
def test_quantity_carries_the_lots_unit_as_a_recommendation_20_code(
    reference_data: Any, quality_manager: Any, unit: str, uom: str
):
    lot = released_lot(unit=unit, quantity=500)
    receive(clinic_ready(), lot, 250)
    (event,) = all_events(quality_manager, lot=lot.pk)
    assert event["quantityList"][0]["quantity"] == 250
    assert event["quantityList"][0]["uom"] == uom


def test_a_lot_without_gtin_is_a_class_of_its_manufacturer_with_its_number_encoded(
    reference_data: Any, quality_manager: Any
):
    lot = released_lot(lot_number="AB/12%3?", product=ProductFactory(gtin=None))
    receive(clinic_ready(), lot, 1)
    (event,) = all_events(quality_manager, lot=lot.pk)
    assert event["quantityList"][0]["epcClass"] == (
        f"urn:exosome-traceability:manufacturer:{lot.manufacturer_id}:lot:AB%2F12%253%3F"
    )


def test_a_digital_link_encodes_the_lot_number(reference_data: Any, quality_manager: Any):
    lot = released_lot(lot_number="L-1/2", product=ProductFactory(gtin=GTIN))
    receive(clinic_ready(), lot, 1)
    (event,) = all_events(quality_manager, lot=lot.pk)
    assert event["quantityList"][0]["epcClass"] == f"https://id.gs1.org/01/{GTIN}/10/L-1%2F2"


def test_event_time_and_offset_are_the_clinics_at_that_moment(
    reference_data: Any, quality_manager: Any
):
    """A receipt recorded for a summer afternoon in Berlin: UTC time, +02:00."""
    a = clinic_ready(time_zone="Europe/Berlin")
    at = datetime.datetime(2026, 7, 1, 12, 30, 15, 250000, tzinfo=datetime.UTC)
    lot = released_lot(manufactured_on=datetime.date(2026, 6, 1))
    stock_receive(
        actor=a.administrator,
        clinic=a.clinic,
        lot=lot,
        quantity=3,
        decision="accept",
        package_intact=True,
        label_readable=True,
        transport_min_celsius=Decimal("-80"),
        transport_max_celsius=Decimal("-70"),
        storage_location="Freezer 2",
        received_at=at,
    )
    (event,) = all_events(quality_manager, lot=lot.pk)
    assert event["eventTime"] == "2026-07-01T12:30:15.250Z"
    assert event["eventTimeZoneOffset"] == "+02:00"


def test_event_ids_are_the_same_on_every_export(network: Network):
    first = [event["eventID"] for event in all_events(network.quality_manager)]
    again = [event["eventID"] for event in all_events(network.b.administrator)]
    assert set(again) < set(first)
    assert first == [event["eventID"] for event in all_events(network.quality_manager)]
    assert all(event_id.startswith("urn:uuid:") for event_id in first)


def test_no_patient_data_anywhere_in_the_document(network: Network):
    """Treatment use is a lot, a quantity, a clinic and a time: not the patient (by id,
    reference or contact), not the practitioner, not who recorded it, not the free-text reason."""
    response = client_for(network.quality_manager).get(EVENTS, {"limit": 500})
    text = response.content.decode()
    document(response)
    patient = network.a.patient
    forbidden = [
        "patient",
        patient.reference,
        "Greta",
        "Beispiel",
        "5550 1234",
        network.a.practitioner.name,
        network.a.clinician.username,
        network.a.administrator.username,
        "B ran short",
        "indication",
        "skin_rejuvenation",
        f"Treatment/{network.treatment.pk}",
    ]
    found = [word for word in forbidden if word.lower() in text.lower()]
    assert found == []
    (used,) = [event for event in json_events(response) if event["bizStep"] == "dispensing"]
    assert set(used) == {
        "type",
        "eventID",
        "eventTime",
        "eventTimeZoneOffset",
        "action",
        "bizStep",
        "disposition",
        "readPoint",
        "quantityList",
    }


def json_events(response: Any) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = response.json()["epcisBody"]["eventList"]
    return events


# -- access ----------------------------------------------------------------------------------------


def _clinics(events: list[dict[str, Any]]) -> set[str]:
    return {event["readPoint"]["id"].rsplit(":", 1)[1] for event in events}


def test_clinic_staff_see_their_own_clinics_movements_only(network: Network):
    a, b = str(network.a.clinic.pk), str(network.b.clinic.pk)
    for user in (network.a.clinician, network.a.administrator):
        assert _clinics(all_events(user)) == {a}
    assert _clinics(all_events(network.b.administrator)) == {b}
    assert all_events(network.a.clinician, clinic=network.b.clinic.pk) == []
    expected = len(exported_movements(clinic=network.a.clinic))
    assert len(all_events(network.a.clinician)) == expected


def test_a_clinics_own_quality_manager_sees_that_clinic_only(network: Network):
    local = MembershipFactory(role=Role.QUALITY_MANAGER, clinic=network.b.clinic).user
    assert _clinics(all_events(local)) == {str(network.b.clinic.pk)}


def test_network_auditors_and_quality_managers_see_every_clinic(network: Network, auditor: Any):
    clinics = {str(network.a.clinic.pk), str(network.b.clinic.pk)}
    for user in (auditor, network.quality_manager):
        events = all_events(user)
        assert _clinics(events) == clinics
        assert len(events) == len(exported_movements())


def test_anonymous_callers_get_401_in_the_error_shape(network: Network):
    response = APIClient().get(EVENTS)
    assert response.status_code == 401
    assert error_codes(response) == ["not_authenticated"]


def test_an_account_without_a_role_gets_403(network: Network):
    response = client_for(UserFactory()).get(EVENTS)
    assert response.status_code == 403
    assert error_codes(response) == ["no_role"]


def test_writes_are_not_allowed(network: Network):
    response = client_for(network.quality_manager).post(EVENTS, {}, format="json")
    assert response.status_code == 405
    assert error_codes(response) == ["method_not_allowed"]


# -- media types -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "accept", "media_type"),
    [
        ({}, None, "application/ld+json"),
        ({}, "application/ld+json", "application/ld+json"),
        ({}, "application/json", "application/json"),
        ({"format": "json"}, None, "application/json"),
        ({"format": "jsonld"}, None, "application/ld+json"),
    ],
)
def test_json_ld_by_default_and_json_when_asked(
    network: Network, query: dict[str, str], accept: str | None, media_type: str
):
    headers = {"HTTP_ACCEPT": accept} if accept else {}
    response = client_for(network.a.clinician).get(EVENTS, query, **headers)
    assert response["Content-Type"] == media_type
    assert event_list(response)


def test_another_media_type_is_a_406(network: Network):
    response = client_for(network.a.clinician).get(EVENTS, HTTP_ACCEPT="application/xml")
    assert response.status_code == 406
    assert error_codes(response) == ["not_acceptable"]


# -- filters and paging ----------------------------------------------------------------------------


def test_filters_by_lot_and_clinic(network: Network, quality_manager: Any):
    other = released_lot()
    receive(network.a, other, 2)
    (only,) = all_events(quality_manager, lot=other.pk)
    assert only["quantityList"][0]["quantity"] == 2
    of_lot = all_events(quality_manager, lot=network.lot.pk)
    assert len(of_lot) == len(exported_movements(lot=network.lot))
    at_b = all_events(quality_manager, clinic=network.b.clinic.pk, lot=network.lot.pk)
    assert len(at_b) == len(exported_movements(clinic=network.b.clinic)) == 3


def test_filters_by_event_time_since_inclusive_until_exclusive(
    reference_data: Any, quality_manager: Any
):
    a = clinic_ready()
    lot = released_lot(manufactured_on=datetime.date(2026, 1, 1))
    times = [datetime.datetime(2026, 3, day, 9, 0, tzinfo=datetime.UTC) for day in (1, 2, 3)]
    for at in times:
        stock_receive(
            actor=a.administrator,
            clinic=a.clinic,
            lot=lot,
            quantity=1,
            decision="accept",
            package_intact=True,
            label_readable=True,
            transport_min_celsius=Decimal("-80"),
            transport_max_celsius=Decimal("-70"),
            storage_location="Freezer",
            received_at=at,
        )

    def times_of(**query: str) -> list[str]:
        return [event["eventTime"] for event in all_events(quality_manager, lot=lot.pk, **query)]

    assert times_of(since="2026-03-02T09:00:00Z") == [
        "2026-03-02T09:00:00.000Z",
        "2026-03-03T09:00:00.000Z",
    ]
    assert times_of(until="2026-03-02T09:00:00Z") == ["2026-03-01T09:00:00.000Z"]
    # 11:00 in Berlin's winter is 10:00 UTC; an unencoded `+` arrives as a space.
    assert times_of(since="2026-03-02T10:00:00 01:00", until="2026-03-03T10:00:00+01:00") == [
        "2026-03-02T09:00:00.000Z"
    ]


@pytest.mark.parametrize(
    ("query", "field", "code"),
    [
        ({"lot": "abc"}, "lot", "invalid"),
        ({"lot": "0"}, "lot", "min_value"),
        ({"lot": str(2**63)}, "lot", "max_value"),
        ({"lot": "1\x00"}, "lot", "invalid"),
        ({"clinic": "-3"}, "clinic", "min_value"),
        ({"clinic": "1.5"}, "clinic", "invalid"),
        ({"since": "yesterday"}, "since", "invalid"),
        ({"since": "2026-03-02\x00T09:00:00Z"}, "since", "invalid"),
        ({"since": "2026-03-02T09:00:00"}, "since", "offset_required"),
        ({"until": "2026-03-02"}, "until", "offset_required"),
        ({"until": "2026-02-30T09:00:00Z"}, "until", "invalid"),
        ({"until": "2026-03-02T09:00:00+16:00"}, "until", "datetime_offset_out_of_range"),
        (
            {"since": "2026-03-02T09:00:00Z", "until": "2026-03-02T09:00:00Z"},
            "until",
            "time_range_reversed",
        ),
        (
            {"since": "2026-03-02T09:00:00Z", "until": "2026-03-01T09:00:00Z"},
            "until",
            "time_range_reversed",
        ),
        ({"limit": "0"}, "limit", "min_value"),
        ({"limit": "501"}, "limit", "max_value"),
        ({"limit": "ten"}, "limit", "invalid"),
        ({"offset": "-1"}, "offset", "min_value"),
        ({"format": "xml"}, "format", "invalid_choice"),
    ],
)
def test_a_bad_filter_is_a_400_naming_the_field(
    network: Network, query: dict[str, str], field: str, code: str
):
    response = client_for(network.a.clinician).get(EVENTS, query)
    assert response.status_code == 400, response.content
    assert error_codes(response) == [code]
    assert error_fields(response) == [field]


def test_pages_follow_the_link_header_and_cover_every_event_once(network: Network):
    client = client_for(network.quality_manager)
    expected = [event["eventID"] for event in all_events(network.quality_manager)]
    seen: list[str] = []
    url: str | None = f"{EVENTS}?limit=4"
    pages = 0
    while url:
        response = client.get(url)
        events = event_list(response)
        assert len(events) <= 4
        seen += [event["eventID"] for event in events]
        links = _links(response.get("Link", ""))
        assert ("prev" in links) == (pages > 0)
        url = links.get("next")
        pages += 1
    assert seen == expected
    assert pages == -(-len(expected) // 4)


def _links(header: str) -> dict[str, str]:
    """`<url>; rel="next", <url>; rel="prev"` as {"next": url, "prev": url}."""
    links = {}
    for part in filter(None, (piece.strip() for piece in header.split(","))):
        url, rel = part.split(";")
        links[rel.strip().removeprefix('rel="').removesuffix('"')] = url.strip()[1:-1]
    return links


def test_the_last_offset_there_is_is_an_empty_page(network: Network):
    response = client_for(network.quality_manager).get(EVENTS, {"offset": 2**63 - 1})
    assert event_list(response) == []


def test_a_page_past_the_end_is_empty(network: Network):
    response = client_for(network.quality_manager).get(EVENTS, {"offset": 10_000})
    assert event_list(response) == []
    previous = urllib.parse.urlsplit(_links(response["Link"])["prev"])
    assert urllib.parse.parse_qs(previous.query) == {"offset": ["9950"], "limit": ["50"]}


def test_a_page_runs_a_fixed_number_of_queries(
    reference_data: Any, quality_manager: Any, django_assert_num_queries: Any
):
    """As many queries for a page of 31 events of eleven lots at two clinics as for a page of 1."""
    a, b = clinic_ready(), clinic_ready(time_zone="Asia/Tokyo")
    lot = released_lot(quantity=1000, product=ProductFactory(gtin=GTIN))
    client = client_for(quality_manager)
    receive(a, lot, 30)
    with CaptureQueriesContext(connection) as one:
        assert len(event_list(client.get(EVENTS, {"limit": 500}))) == 1
    for _index in range(10):
        receive(b, released_lot(), 1)
        stock_transfer(
            actor=a.administrator,
            from_clinic=a.clinic,
            to_clinic=b.clinic,
            lot=lot,
            quantity=1,
            reason="x",
        )
    with django_assert_num_queries(len(one)):
        assert len(event_list(client.get(EVENTS, {"limit": 500}))) == 31
