"""What each kind of ledger movement is in EPCIS terms, and the identifiers the events carry.

The business steps and dispositions are the GS1 Core Business Vocabulary's (CBV 2.0) bare words,
which the EPCIS 2.0 JSON-LD context expands; the action says what happened to the units as EPCIS
sees them: `OBSERVE` when they go on existing (arrive, are inspected, held, shipped, dispensed),
`DELETE` when they cease to exist (wasted, destroyed). Nothing here is `ADD`: that announces units
newly made (commissioned), which only a manufacturer does. docs/epcis.md has the table with the
reasons.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from urllib.parse import quote

from interop.fhir.systems import LOCAL
from lots.models import LotUnit
from stock.models import MovementKind, StockState

CONTEXT = "https://ref.gs1.org/standards/epcis/epcis-context.jsonld"
SCHEMA_VERSION = "2.0"
MEDIA_TYPE = "application/ld+json"

OBSERVE = "OBSERVE"
DELETE = "DELETE"

# The disposition of units that went into a bucket of a clinic's stock.
STATE_DISPOSITION: dict[str, str] = {
    StockState.ACCEPTED: "sellable_not_accessible",
    StockState.QUARANTINED: "non_sellable_other",
    StockState.REJECTED: "non_conformant",
    StockState.BLOCKED: "recalled",
}


@dataclass(frozen=True)
class Step:
    """One kind of movement as an event. `disposition` None: the bucket the units went into
    says it (STATE_DISPOSITION). `stays` says the units are still at the clinic afterwards, so the
    clinic is the event's bizLocation as well as its readPoint."""

    action: str
    biz_step: str
    disposition: str | None
    stays: bool


STEPS: dict[str, Step] = {
    MovementKind.RECEIPT: Step(OBSERVE, "receiving", None, stays=True),
    MovementKind.TRANSFER_IN: Step(OBSERVE, "receiving", None, stays=True),
    MovementKind.QUARANTINE_ACCEPT: Step(OBSERVE, "inspecting", "conformant", stays=True),
    MovementKind.QUARANTINE_REJECT: Step(OBSERVE, "inspecting", "non_conformant", stays=True),
    MovementKind.BLOCK: Step(OBSERVE, "holding", "recalled", stays=True),
    MovementKind.TRANSFER_OUT: Step(OBSERVE, "shipping", "in_transit", stays=False),
    MovementKind.RETURN: Step(OBSERVE, "shipping", "returned", stays=False),
    MovementKind.TREATMENT: Step(OBSERVE, "dispensing", "dispensed", stays=False),
    MovementKind.WASTAGE: Step(DELETE, "destroying", "disposed", stays=False),
    MovementKind.DESTRUCTION: Step(DELETE, "destroying", "destroyed", stays=False),
}

# A movement between two buckets of one clinic (quarantine decided, stock blocked) is two ledger
# lines; the line into the new bucket is the event, the line out of the old one is not exported.
STATE_CHANGES = (MovementKind.QUARANTINE_ACCEPT, MovementKind.QUARANTINE_REJECT, MovementKind.BLOCK)

# Dispositions that say where units stand in a clinic's stock (or that they were thrown away):
# for a lot past its expiry date "expired" says more. A recall, a shipment, a use or a
# destruction says more than the expiry, and is kept.
EXPIRY_OVERRIDES = frozenset(
    {"sellable_not_accessible", "non_sellable_other", "non_conformant", "conformant", "disposed"}
)

# UN/CEFACT Recommendation 20 codes, as EPCIS asks of `uom`. A pre-filled syringe has no code of
# its own: a piece (H87).
UOM: dict[str, str] = {
    LotUnit.VIAL: "VI",
    LotUnit.SYRINGE: "H87",
    LotUnit.AMPOULE: "AM",
    LotUnit.MILLILITRE: "MLT",
}

# A stable namespace for the event ids: the same movement always gets the same id.
_EVENT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, f"{LOCAL}:epcis-event")


def event_id(movement_id: int) -> str:
    return f"urn:uuid:{uuid.uuid5(_EVENT_NAMESPACE, f'stock-movement:{movement_id}')}"


def clinic_uri(clinic_id: int) -> str:
    """No clinic holds a GLN in this record, so a location of this deployment's own."""
    return f"{LOCAL}:clinic:{clinic_id}"


def manufacturer_uri(manufacturer_id: int) -> str:
    return f"{LOCAL}:manufacturer:{manufacturer_id}"


def receipt_uri(receipt_id: int) -> str:
    return f"{LOCAL}:receipt:{receipt_id}"


def lot_class_uri(*, gtin: str | None, lot_number: str, manufacturer_id: int) -> str:
    """The lot as a class of units: a GS1 Digital Link (GTIN and batch/lot, AI 01 and 10) when the
    product has a GTIN, which EPCIS 2.0 takes as an epcClass; otherwise a URN of this deployment's
    own, since lot numbers are unique per manufacturer only. Every character of the lot number
    but letters, digits and `-._` is percent-encoded, as GS1 Digital Link asks of AI values (a lot
    number may hold `/`, `%`, `?`, ...)."""
    number = quote(lot_number, safe="")
    if gtin:
        return f"https://id.gs1.org/01/{gtin}/10/{number}"
    return f"{manufacturer_uri(manufacturer_id)}:lot:{number}"
