"""Ledger movements as EPCIS 2.0 ObjectEvents, and a page of them as an EPCISDocument.

An event names the lot (as a class of units), how many units in which unit of measure, the
clinic, the time with the clinic's UTC offset, and the CBV step and disposition. It names no
person: not the patient of a treatment, not the member of staff who recorded the movement, and
not the free-text reason (which may mention either).
"""

from __future__ import annotations

import datetime
from typing import Any

from django.utils import timezone

from interop.epcis import vocabulary
from lots.models import LotStatus
from stock.models import MovementKind, StockMovement


def _event_time(at: datetime.datetime) -> str:
    """UTC with milliseconds and a `Z`, as GS1's examples write it."""
    return timezone.localtime(at, datetime.UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def _time_zone_offset(movement: StockMovement) -> str:
    """The clinic's offset from UTC at that instant (`+01:00` in a Berlin winter), whole minutes."""
    offset = timezone.localtime(movement.occurred_at, movement.clinic.zone).utcoffset()
    minutes = int((offset or datetime.timedelta()).total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, minutes = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{minutes:02d}"


def _recalled_at_the_time(movement: StockMovement) -> bool:
    """The lot was recalled when the units moved. A recalled lot stays recalled (closing a recall
    changes no lot), so the answer for a movement never changes afterwards."""
    lot = movement.lot
    return lot.status == LotStatus.RECALLED and movement.occurred_at >= lot.status_changed_at


def disposition(movement: StockMovement) -> str:
    """The step's disposition (or the new bucket's), unless the lot was recalled or had expired
    when the units moved and the step leaves them in the clinic's stock: then `recalled` or
    `expired`."""
    step = vocabulary.STEPS[movement.kind]
    said = step.disposition or vocabulary.STATE_DISPOSITION[movement.state]
    if said not in vocabulary.EXPIRY_OVERRIDES:
        return said
    if _recalled_at_the_time(movement):
        return "recalled"
    if movement.lot.is_expired(on=movement.clinic.local_date(movement.occurred_at)):
        return "expired"
    return said


def _quantity(movement: StockMovement) -> dict[str, Any]:
    lot = movement.lot
    return {
        "epcClass": vocabulary.lot_class_uri(
            gtin=lot.product.gtin, lot_number=lot.lot_number, manufacturer_id=lot.manufacturer_id
        ),
        "quantity": abs(movement.delta),
        "uom": vocabulary.UOM[lot.unit],
    }


def _transfer_lists(movement: StockMovement, counterpart_id: int) -> dict[str, Any]:
    """A transfer names both clinics as the locations it went from and to."""
    here = vocabulary.clinic_uri(movement.clinic_id)
    there = vocabulary.clinic_uri(counterpart_id)
    source, destination = (
        (here, there) if movement.kind == MovementKind.TRANSFER_OUT else (there, here)
    )
    return {
        "sourceList": [{"type": "location", "source": source}],
        "destinationList": [{"type": "location", "destination": destination}],
    }


def object_event(movement: StockMovement) -> dict[str, Any]:
    """One movement as an ObjectEvent. The movement needs its clinic and its lot's product
    joined (selectors.movements_for_epcis)."""
    step = vocabulary.STEPS[movement.kind]
    clinic = vocabulary.clinic_uri(movement.clinic_id)
    event: dict[str, Any] = {
        "type": "ObjectEvent",
        "eventID": vocabulary.event_id(movement.pk),
        "eventTime": _event_time(movement.occurred_at),
        "eventTimeZoneOffset": _time_zone_offset(movement),
        "action": step.action,
        "bizStep": step.biz_step,
        "disposition": disposition(movement),
        "readPoint": {"id": clinic},
    }
    if step.stays:
        event["bizLocation"] = {"id": clinic}
    event["quantityList"] = [_quantity(movement)]
    if movement.receipt_id is not None:
        event["bizTransactionList"] = [
            {"type": "recadv", "bizTransaction": vocabulary.receipt_uri(movement.receipt_id)}
        ]
    if movement.counterpart_clinic_id is not None:
        event.update(_transfer_lists(movement, movement.counterpart_clinic_id))
    elif movement.kind == MovementKind.RETURN:
        event["destinationList"] = [
            {
                "type": "possessing_party",
                "destination": vocabulary.manufacturer_uri(movement.lot.manufacturer_id),
            }
        ]
    return event


def epcis_document(movements: list[StockMovement], *, created: datetime.datetime) -> dict[str, Any]:
    return {
        "@context": vocabulary.CONTEXT,
        "type": "EPCISDocument",
        "schemaVersion": vocabulary.SCHEMA_VERSION,
        "creationDate": _event_time(created),
        "epcisBody": {"eventList": [object_event(movement) for movement in movements]},
    }
