"""The validator the EPCIS tests trust, proved on GS1's own documents: GS1's published EPCIS 2.0
JSON schema (vendored, see data/epcis/README.md), read by `jsonschema` for its structure and by
`jsonschema_rs` for its formats as well.

Both are needed: `jsonschema` checks `format` only with optional packages this project does not
install, and without the `uri` format the schema takes any string as a business step or
disposition (a non-CBV vocabulary is "any URI"), so a misspelt `recieving` would pass.
"""

from __future__ import annotations

import copy
import functools
import json
import pathlib
from typing import Any

import jsonschema
import jsonschema_rs
import pytest

DATA = pathlib.Path(__file__).parent / "data" / "epcis"
GS1_EXAMPLES = [
    "Example_9.6.1-ObjectEvent.jsonld",
    "Example_9.6.2-ObjectEventWithDigitalLink.jsonld",
    "SensorDataExample9.jsonld",
]


def read(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


@functools.cache
def _schema() -> Any:
    return read("EPCIS-JSON-Schema.json")


def structure_errors(document: Any) -> list[str]:
    """What `jsonschema` finds wrong, formats aside."""
    validator = jsonschema.Draft7Validator(_schema())
    return [
        f"{list(error.absolute_path)}: {error.message}" for error in validator.iter_errors(document)
    ]


def format_errors(document: Any) -> list[str]:
    """What `jsonschema_rs` finds wrong with the formats (`uri`, `date-time`) checked too."""
    validator = jsonschema_rs.Draft7Validator(_schema(), validate_formats=True)
    return [
        f"{list(error.instance_path)}: {error.message}" for error in validator.iter_errors(document)
    ]


def assert_valid_epcis(document: Any) -> None:
    problems = structure_errors(document) + format_errors(document)
    assert not problems, problems


def test_the_vendored_schema_is_gs1s_epcis_2_schema():
    schema = _schema()
    assert schema["$id"] == "https://gs1.github.io/EPCIS/EPCIS-JSON-Schema.json"
    jsonschema.Draft7Validator.check_schema(schema)
    assert "receiving" in schema["definitions"]["bizStep"]["anyOf"][1]["enum"]


@pytest.mark.parametrize("name", GS1_EXAMPLES)
def test_gs1s_published_examples_pass_the_structure_check(name: str):
    document = read(name)
    assert document["type"] == "EPCISDocument"
    assert document["epcisBody"]["eventList"]
    assert structure_errors(document) == []


def test_a_gs1_example_passes_with_its_formats_checked():
    assert_valid_epcis(read("SensorDataExample9.jsonld"))


def test_gs1s_digital_link_example_fails_formats_only_on_its_blank_node_id():
    """GS1 names that document `_:document1`, a JSON-LD blank node, which is no URI: the format
    check says so, and says nothing else about it."""
    document = read("Example_9.6.2-ObjectEventWithDigitalLink.jsonld")
    assert document["id"] == "_:document1"
    assert format_errors(document) == ['[\'id\']: "_:document1" is not a "uri"']
    del document["id"]
    assert_valid_epcis(document)


def _receiving_event() -> Any:
    return read("Example_9.6.2-ObjectEventWithDigitalLink.jsonld")["epcisBody"]["eventList"][0]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("bizStep", "recieving"),  # misspelt: neither the CBV word nor a URI
        ("disposition", "gone off"),
        ("action", "ADDED"),
        ("eventTimeZoneOffset", "+1:00"),
        ("eventTime", "yesterday"),
        (
            "quantityList",
            [{"epcClass": "https://id.gs1.org/01/70614141123451/10/998877", "quantity": "200"}],
        ),
        (
            "quantityList",
            [
                {
                    "epcClass": "https://id.gs1.org/01/70614141123451/10/998877",
                    "quantity": 2,
                    "uom": "vial",
                }
            ],
        ),
        ("readPoint", {"id": "clinic 12"}),
    ],
)
def test_the_validator_refuses_a_broken_event(field: str, value: Any):
    document = read("Example_9.6.2-ObjectEventWithDigitalLink.jsonld")
    del document["id"]
    event = copy.deepcopy(_receiving_event())
    event[field] = value
    document["epcisBody"]["eventList"] = [event]
    assert structure_errors(document) + format_errors(document)


@pytest.mark.parametrize("field", ["eventTime", "eventTimeZoneOffset", "action"])
def test_the_validator_refuses_an_event_without_a_required_field(field: str):
    document = read("Example_9.6.2-ObjectEventWithDigitalLink.jsonld")
    del document["id"]
    del document["epcisBody"]["eventList"][0][field]
    assert structure_errors(document)
