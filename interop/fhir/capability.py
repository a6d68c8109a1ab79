"""The CapabilityStatement: exactly what this server reads and searches, and nothing more, so a
client can check before it asks. The views refuse any search parameter not listed here."""

from __future__ import annotations

from typing import Any

from fhir.resources.capabilitystatement import CapabilityStatement

from interop.fhir import systems

# When what this statement says last changed.
STATEMENT_DATE = "2026-12-06"

_READ_AND_SEARCH = [{"code": "read"}, {"code": "search-type"}]


def _parameter(name: str, kind: str, documentation: str) -> dict[str, str]:
    return {"name": name, "type": kind, "documentation": documentation}


_PATIENT = "Patient/{id}: the patient's treatments at the clinics you may see."
_RESOURCES: list[dict[str, Any]] = [
    {
        "type": "BiologicallyDerivedProduct",
        "documentation": "A lot: its product (GTIN), lot number, donation identifiers, "
        "manufacturer, expiry, storage temperatures, and status (available when released and "
        "not expired; the lot's own status is a property).",
        "interaction": _READ_AND_SEARCH,
        "searchParam": [
            _parameter(
                "identifier",
                "token",
                "A lot number (system: the manufacturer's lot-number system), an ISBT 128 "
                f"donation identification number ({systems.ISBT_DONATION_NUMBER}) or a donor "
                f"code ({systems.DONOR_CODE}); without a system, any of them.",
            )
        ],
    },
    {
        "type": "Procedure",
        "documentation": "A treatment: patient, practitioner, clinic, time, site, and the lots "
        "used. Searching by `used` is the forward trace of a lot; by `subject` the backward "
        "trace of a patient.",
        "interaction": _READ_AND_SEARCH,
        "searchParam": [
            _parameter("subject", "reference", _PATIENT),
            _parameter("patient", "reference", _PATIENT),
            _parameter(
                "used",
                "reference",
                "BiologicallyDerivedProduct/{id}: every treatment that used the lot, at the "
                "clinics you may see.",
            ),
        ],
    },
    {
        "type": "AdverseEvent",
        "documentation": "An adverse event after a treatment, with its seriousness and the "
        "suspected lot (or, where none was named, the treatment).",
        "interaction": _READ_AND_SEARCH,
        "searchParam": [
            _parameter("subject", "reference", _PATIENT),
            _parameter("patient", "reference", _PATIENT),
            _parameter(
                "substance", "reference", "BiologicallyDerivedProduct/{id}: the suspected lot."
            ),
        ],
    },
]


def capability_statement(base_url: str) -> CapabilityStatement:
    return CapabilityStatement.model_validate(
        {
            "status": "active",
            "date": STATEMENT_DATE,
            "kind": "instance",
            "software": {"name": "Exosome-lot traceability"},
            "implementation": {
                "description": "Exosome-lot traceability: lots, treatments and adverse events, "
                "read-only",
                "url": base_url,
            },
            "fhirVersion": systems.FHIR_VERSION,
            "format": ["json", systems.MEDIA_TYPE],
            "rest": [
                {
                    "mode": "server",
                    "documentation": "Read-only. Searches page with _count (at most 500, 50 "
                    "when not given) and _offset; the Bundle's next and previous links carry "
                    "them. A search parameter not listed is refused (400), not ignored.",
                    "security": {
                        "description": "An API token (Authorization: Token <token>, from "
                        "POST /api/v1/auth/token/) or a signed-in session, holding a role. A "
                        "clinic's staff see their clinic's patients and treatments; quality "
                        "managers and auditors of the network see every clinic's.",
                    },
                    "resource": _RESOURCES,
                }
            ],
        }
    )
