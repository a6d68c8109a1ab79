"""The EPCISDocument this API answers, as an OpenAPI schema: the part of the EPCIS 2.0 JSON schema
that these documents use, with the values this record writes listed, so a client generated from
the OpenAPI document knows the shape (the tests validate the documents against GS1's own schema
too). A raw schema rather than a serializer: the keys `@context` and `type` are not Python names."""

from __future__ import annotations

from typing import Any

from interop.epcis import vocabulary


def _uri(description: str) -> dict[str, Any]:
    return {"type": "string", "format": "uri", "description": description}


def _party_list(key: str, types: list[str]) -> dict[str, Any]:
    return {
        "type": "array",
        "items": {
            "type": "object",
            "required": ["type", key],
            "properties": {
                "type": {"type": "string", "enum": types},
                key: _uri("A clinic or a manufacturer."),
            },
        },
    }


_DISPOSITIONS = sorted(
    {step.disposition for step in vocabulary.STEPS.values() if step.disposition}
    | set(vocabulary.STATE_DISPOSITION.values())
    | {"recalled", "expired"}
)

OBJECT_EVENT: dict[str, Any] = {
    "type": "object",
    "description": "One ledger movement as an EPCIS 2.0 ObjectEvent (docs/epcis.md).",
    "required": [
        "type",
        "eventID",
        "eventTime",
        "eventTimeZoneOffset",
        "action",
        "bizStep",
        "disposition",
        "readPoint",
        "quantityList",
    ],
    "properties": {
        "type": {"type": "string", "enum": ["ObjectEvent"]},
        "eventID": _uri("urn:uuid, the same for the same movement on every export."),
        "eventTime": {"type": "string", "format": "date-time", "description": "In UTC."},
        "eventTimeZoneOffset": {
            "type": "string",
            "pattern": r"^[+-]\d\d:\d\d$",
            "description": "The clinic's offset from UTC at that moment.",
        },
        "action": {"type": "string", "enum": [vocabulary.OBSERVE, vocabulary.DELETE]},
        "bizStep": {
            "type": "string",
            "enum": sorted({step.biz_step for step in vocabulary.STEPS.values()}),
            "description": "GS1 CBV 2.0 business step.",
        },
        "disposition": {
            "type": "string",
            "enum": _DISPOSITIONS,
            "description": "GS1 CBV 2.0 disposition.",
        },
        "readPoint": {
            "type": "object",
            "required": ["id"],
            "properties": {"id": _uri("The clinic.")},
        },
        "bizLocation": {
            "type": "object",
            "required": ["id"],
            "properties": {"id": _uri("The clinic, when the units stay there.")},
        },
        "quantityList": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["epcClass", "quantity", "uom"],
                "properties": {
                    "epcClass": _uri(
                        "The lot: https://id.gs1.org/01/{GTIN}/10/{lot number}, or a URN of this "
                        "deployment when the product has no GTIN."
                    ),
                    "quantity": {"type": "integer", "minimum": 1},
                    "uom": {
                        "type": "string",
                        "enum": sorted(set(vocabulary.UOM.values())),
                        "description": "UN/CEFACT Recommendation 20 unit code.",
                    },
                },
            },
        },
        "bizTransactionList": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["type", "bizTransaction"],
                "properties": {
                    "type": {"type": "string", "enum": ["recadv"]},
                    "bizTransaction": _uri("The receipt recorded at the clinic."),
                },
            },
        },
        "sourceList": _party_list("source", ["location"]),
        "destinationList": _party_list("destination", ["location", "possessing_party"]),
    },
}

EPCIS_DOCUMENT: dict[str, Any] = {
    "type": "object",
    "description": "An EPCIS 2.0 EPCISDocument (JSON-LD). Further pages are linked from the "
    "`Link` header (rel next / prev).",
    "required": ["@context", "type", "schemaVersion", "creationDate", "epcisBody"],
    "properties": {
        "@context": {"type": "string", "enum": [vocabulary.CONTEXT]},
        "type": {"type": "string", "enum": ["EPCISDocument"]},
        "schemaVersion": {"type": "string", "enum": [vocabulary.SCHEMA_VERSION]},
        "creationDate": {"type": "string", "format": "date-time"},
        "epcisBody": {
            "type": "object",
            "required": ["eventList"],
            "properties": {"eventList": {"type": "array", "items": OBJECT_EVENT}},
        },
    },
}
