"""FHIR R5 at /api/v1/fhir/: each resource parses as its R5 model, in the FHIR media type, under
the API's own sign-in and access rules, with errors as OperationOutcome."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from fhir.resources.adverseevent import AdverseEvent
from fhir.resources.biologicallyderivedproduct import BiologicallyDerivedProduct
from fhir.resources.bundle import Bundle
from fhir.resources.capabilitystatement import CapabilityStatement
from fhir.resources.operationoutcome import OperationOutcome
from fhir.resources.procedure import Procedure
from knox.models import AuthToken
from rest_framework.test import APIClient

from interop.fhir import systems
from lots.models import Lot, LotStatus
from tests.factories import SEC_FIELDS, PatientFactory, UserFactory, practitioner_at, treat
from tests.interop.conftest import DONATION_NUMBER, FHIR, GTIN, MEDIA_TYPE, FhirNetwork, client_for

pytestmark = pytest.mark.django_db


def fhir(response: Any, model: Any, status: int = 200) -> Any:
    """The answer, after checking its status and media type, parsed as its R5 model."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == MEDIA_TYPE
    return model.model_validate_json(response.content)


def outcome_codes(response: Any, status: int, issue_type: str) -> list[str]:
    """The project's codes in an OperationOutcome, after checking its issue type."""
    outcome = fhir(response, OperationOutcome, status)
    assert {issue.code for issue in outcome.issue} == {issue_type}
    for issue in outcome.issue:
        assert issue.severity == "error"
        assert issue.details.text
    return [issue.details.coding[0].code for issue in outcome.issue]


def test_lot_reads_as_a_biologically_derived_product(fhir_network: FhirNetwork):
    lot = fhir_network.lot
    response = client_for(fhir_network.a.clinician).get(
        f"{FHIR}/BiologicallyDerivedProduct/{lot.pk}"
    )
    product = fhir(response, BiologicallyDerivedProduct)
    assert product.id == str(lot.pk)
    assert product.productCode.text == lot.product.name
    assert (product.productCode.coding[0].system, product.productCode.coding[0].code) == (
        systems.GTIN,
        GTIN,
    )
    assert [(i.system, i.value) for i in product.identifier] == [
        (systems.lot_number_system(lot.manufacturer_id), lot.lot_number),
        (systems.ISBT_DONATION_NUMBER, DONATION_NUMBER),
    ]
    assert product.biologicalSourceEvent.value == DONATION_NUMBER
    assert product.processingFacility[0].display == lot.manufacturer.legal_name
    assert (product.productStatus.system, product.productStatus.code) == (
        systems.PRODUCT_STATUS,
        "available",
    )
    assert product.expirationDate.isoformat() == lot.expires_on.isoformat()
    storage = product.storageTempRequirements
    assert (storage.low.value, storage.high.value) == (
        lot.product.storage_min_celsius,
        lot.product.storage_max_celsius,
    )
    assert storage.low.code == "Cel"
    status = product.property[0].valueCodeableConcept.coding[0]
    assert (status.system, status.code) == (systems.LOT_STATUS, "released")


def test_recalled_lot_is_unavailable_and_says_recalled(fhir_network: FhirNetwork):
    Lot.objects.filter(pk=fhir_network.lot.pk).update(status=LotStatus.RECALLED)
    response = client_for(fhir_network.a.clinician).get(
        f"{FHIR}/BiologicallyDerivedProduct/{fhir_network.lot.pk}"
    )
    product = fhir(response, BiologicallyDerivedProduct)
    assert product.productStatus.code == "unavailable"
    assert product.property[0].valueCodeableConcept.coding[0].code == "recalled"


@pytest.mark.parametrize(
    "token",
    [
        "{lot_number}",
        "{lot_system}|{lot_number}",
        f"{DONATION_NUMBER}",
        f"{systems.ISBT_DONATION_NUMBER}|{DONATION_NUMBER}",
    ],
)
def test_lot_is_found_by_lot_number_or_donation_number(fhir_network: FhirNetwork, token: str):
    lot = fhir_network.lot
    identifier = token.format(
        lot_number=lot.lot_number, lot_system=systems.lot_number_system(lot.manufacturer_id)
    )
    response = client_for(fhir_network.a.clinician).get(
        f"{FHIR}/BiologicallyDerivedProduct", {"identifier": identifier}
    )
    bundle = fhir(response, Bundle)
    assert bundle.type == "searchset"
    assert bundle.total == 1
    assert bundle.entry[0].resource.id == str(lot.pk)
    assert bundle.entry[0].fullUrl == f"http://testserver{FHIR}/BiologicallyDerivedProduct/{lot.pk}"


@pytest.mark.parametrize("with_system", [True, False])
def test_lot_is_found_by_its_single_european_code(fhir_network: FhirNetwork, with_system: bool):
    lot = fhir_network.lot
    Lot.objects.filter(pk=lot.pk).update(**SEC_FIELDS)
    lot.refresh_from_db()
    code = lot.sec.code
    token = f"{systems.SINGLE_EUROPEAN_CODE}|{code}" if with_system else code

    response = client_for(fhir_network.a.clinician).get(
        f"{FHIR}/BiologicallyDerivedProduct", {"identifier": token}
    )

    bundle = fhir(response, Bundle)
    assert [entry.resource.id for entry in bundle.entry or []] == [str(lot.pk)]


@pytest.mark.parametrize("cut", [1, 19, 21])
def test_a_part_of_a_code_is_no_identifier_token(fhir_network: FhirNetwork, cut: int):
    lot = fhir_network.lot
    Lot.objects.filter(pk=lot.pk).update(**SEC_FIELDS)
    lot.refresh_from_db()

    response = client_for(fhir_network.a.clinician).get(
        f"{FHIR}/BiologicallyDerivedProduct",
        {"identifier": f"{systems.SINGLE_EUROPEAN_CODE}|{lot.sec.code[:-cut]}"},
    )

    assert fhir(response, Bundle).total == 0


def test_lot_search_by_another_manufacturers_lot_number_system_finds_nothing(
    fhir_network: FhirNetwork,
):
    lot = fhir_network.lot
    other = systems.lot_number_system(lot.manufacturer_id + 1)
    response = client_for(fhir_network.a.clinician).get(
        f"{FHIR}/BiologicallyDerivedProduct", {"identifier": f"{other}|{lot.lot_number}"}
    )
    assert fhir(response, Bundle).total == 0


def test_treatment_reads_as_a_procedure(fhir_network: FhirNetwork):
    treatment = fhir_network.treatment_a
    response = client_for(fhir_network.a.clinician).get(f"{FHIR}/Procedure/{treatment.pk}")
    procedure = fhir(response, Procedure)
    assert procedure.status == "completed"
    assert procedure.subject.reference == f"Patient/{treatment.patient_id}"
    assert procedure.subject.identifier.value == treatment.patient.reference
    assert procedure.subject.identifier.system == systems.patient_reference_system(
        treatment.clinic_id
    )
    assert procedure.occurrenceDateTime == treatment.performed_at
    assert procedure.performer[0].actor.display == treatment.practitioner.name
    assert procedure.location.display == treatment.clinic.name
    assert procedure.bodySite[0].text == "face"
    assert [used.reference.reference for used in procedure.used] == [
        f"BiologicallyDerivedProduct/{fhir_network.lot.pk}"
    ]


def test_adverse_event_reads_with_its_suspect_product(fhir_network: FhirNetwork):
    event = fhir_network.event_a
    response = client_for(fhir_network.a.clinician).get(f"{FHIR}/AdverseEvent/{event.pk}")
    adverse = fhir(response, AdverseEvent)
    assert (adverse.status, adverse.actuality) == ("completed", "actual")
    assert adverse.subject.reference == f"Patient/{fhir_network.treatment_a.patient_id}"
    assert adverse.seriousness.coding[0].code == "serious"
    assert adverse.occurrenceDateTime.isoformat() == event.onset_on.isoformat()
    assert adverse.suspectEntity[0].instanceReference.reference == (
        f"BiologicallyDerivedProduct/{fhir_network.lot.pk}"
    )


def test_another_clinics_procedure_and_adverse_event_are_not_found(fhir_network: FhirNetwork):
    client = client_for(fhir_network.b.clinician)
    response = client.get(f"{FHIR}/Procedure/{fhir_network.treatment_a.pk}")
    assert outcome_codes(response, 404, "not-found") == ["not_found"]
    response = client.get(f"{FHIR}/AdverseEvent/{fhir_network.event_a.pk}")
    assert outcome_codes(response, 404, "not-found") == ["not_found"]


def test_auditor_reads_every_clinics_procedures(fhir_network: FhirNetwork, auditor):
    client = client_for(auditor)
    for treatment in (fhir_network.treatment_a, fhir_network.treatment_b):
        response = client.get(f"{FHIR}/Procedure/{treatment.pk}")
        assert fhir(response, Procedure).id == str(treatment.pk)


def test_unauthenticated_caller_gets_401_operation_outcome(fhir_network: FhirNetwork):
    response = APIClient().get(f"{FHIR}/Procedure/{fhir_network.treatment_a.pk}")
    assert outcome_codes(response, 401, "login") == ["not_authenticated"]
    assert response["WWW-Authenticate"] == "Token"


def test_account_without_a_role_is_refused(fhir_network: FhirNetwork):
    response = client_for(UserFactory()).get(f"{FHIR}/Procedure/{fhir_network.treatment_a.pk}")
    assert outcome_codes(response, 403, "forbidden") == ["no_role"]


def test_api_token_and_session_both_sign_in(fhir_network: FhirNetwork):
    url = f"{FHIR}/Procedure/{fhir_network.treatment_a.pk}"
    _instance, token = AuthToken.objects.create(user=fhir_network.a.clinician)
    by_token = APIClient().get(url, HTTP_AUTHORIZATION=f"Token {token}")
    assert fhir(by_token, Procedure).id == str(fhir_network.treatment_a.pk)
    session = APIClient()
    session.force_login(fhir_network.a.clinician)
    assert fhir(session.get(url), Procedure).id == str(fhir_network.treatment_a.pk)


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        ({"_format": "json"}, {}),
        ({"_format": "application/fhir+json"}, {}),
        ({}, {"HTTP_ACCEPT": "application/json"}),
        ({}, {"HTTP_ACCEPT": "application/fhir+json"}),
    ],
)
def test_json_asked_for_either_way_is_answered_as_fhir_json(
    fhir_network: FhirNetwork, query, headers
):
    client = client_for(fhir_network.a.clinician)
    response = client.get(f"{FHIR}/Procedure/{fhir_network.treatment_a.pk}", query, **headers)
    assert fhir(response, Procedure).id == str(fhir_network.treatment_a.pk)


@pytest.mark.parametrize(
    ("query", "headers"),
    [({"_format": "xml"}, {}), ({}, {"HTTP_ACCEPT": "application/fhir+xml"})],
)
def test_other_formats_are_refused_in_json(fhir_network: FhirNetwork, query, headers):
    client = client_for(fhir_network.a.clinician)
    response = client.get(f"{FHIR}/Procedure/{fhir_network.treatment_a.pk}", query, **headers)
    assert outcome_codes(response, 406, "not-supported") == ["format_not_supported"]


def test_a_nul_character_in_a_search_is_a_400_not_a_database_error(fhir_network: FhirNetwork):
    response = client_for(fhir_network.a.clinician).get(
        f"{FHIR}/BiologicallyDerivedProduct", {"identifier": "EXO\x00"}
    )
    assert outcome_codes(response, 400, "invalid") == ["search_parameter_invalid"]


@pytest.mark.parametrize(
    ("query", "code", "field"),
    [
        ({"code": "x"}, "search_parameter_unknown", "code"),
        ({"used": "Patient/1"}, "search_parameter_invalid", "used"),
        ({"subject": "Patient/abc"}, "search_parameter_invalid", "subject"),
        ({"subject": "Patient/99999999999999999999"}, "search_parameter_invalid", "subject"),
        ({"_count": "many"}, "search_parameter_invalid", "_count"),
        ({"_count": "9" * 5000}, "search_parameter_invalid", "_count"),
        ({"_count": "\u00b2"}, "search_parameter_invalid", "_count"),
        ({"_count": " 5"}, "search_parameter_invalid", "_count"),
        ({"_offset": "9" * 5000}, "search_parameter_invalid", "_offset"),
        ({"subject": "Patient/" + "9" * 5000}, "search_parameter_invalid", "subject"),
        ({"_count": "501"}, "search_parameter_invalid", "_count"),
        ({"_offset": "-1"}, "search_parameter_invalid", "_offset"),
        ({"subject": ["Patient/1", "Patient/2"]}, "search_parameter_repeated", "subject"),
    ],
)
def test_bad_search_is_a_400_naming_the_parameter(fhir_network: FhirNetwork, query, code, field):
    response = client_for(fhir_network.a.clinician).get(f"{FHIR}/Procedure", query)
    assert outcome_codes(response, 400, "invalid") == [code]
    assert OperationOutcome.model_validate_json(response.content).issue[0].expression == [field]


def test_writes_and_unknown_paths_are_operation_outcomes(fhir_network: FhirNetwork):
    client = client_for(fhir_network.a.clinician)
    response = client.post(f"{FHIR}/Procedure", {"resourceType": "Procedure"}, format="json")
    assert outcome_codes(response, 405, "not-supported") == ["method_not_allowed"]
    response = client.options(f"{FHIR}/Procedure")
    assert outcome_codes(response, 405, "not-supported") == ["method_not_allowed"]
    response = client.get(f"{FHIR}/Patient/{fhir_network.a.patient.pk}")
    assert outcome_codes(response, 404, "not-found") == ["not_found"]
    response = client.get(f"{FHIR}/Procedure/not-a-number")
    assert outcome_codes(response, 404, "not-found") == ["not_found"]


def test_forward_trace_is_a_searchset_of_the_callers_clinics(fhir_network: FhirNetwork, auditor):
    query = {"used": f"BiologicallyDerivedProduct/{fhir_network.lot.pk}"}
    own = fhir(client_for(fhir_network.a.clinician).get(f"{FHIR}/Procedure", query), Bundle)
    assert own.total == 1
    assert [entry.resource.id for entry in own.entry] == [str(fhir_network.treatment_a.pk)]
    every = fhir(client_for(auditor).get(f"{FHIR}/Procedure", query), Bundle)
    assert every.total == 2
    assert {entry.resource.id for entry in every.entry} == {
        str(fhir_network.treatment_a.pk),
        str(fhir_network.treatment_b.pk),
    }


def test_backward_trace_of_another_clinics_patient_is_empty(fhir_network: FhirNetwork):
    query = {"subject": f"Patient/{fhir_network.a.patient.pk}"}
    own = fhir(client_for(fhir_network.a.clinician).get(f"{FHIR}/Procedure", query), Bundle)
    assert [entry.resource.id for entry in own.entry] == [str(fhir_network.treatment_a.pk)]
    other = fhir(client_for(fhir_network.b.clinician).get(f"{FHIR}/Procedure", query), Bundle)
    assert other.total == 0
    assert not other.entry


def test_adverse_events_are_searched_by_patient_and_suspect_lot(fhir_network: FhirNetwork):
    client = client_for(fhir_network.a.clinician)
    for query in (
        {"patient": f"Patient/{fhir_network.a.patient.pk}"},
        {"substance": f"BiologicallyDerivedProduct/{fhir_network.lot.pk}"},
    ):
        bundle = fhir(client.get(f"{FHIR}/AdverseEvent", query), Bundle)
        assert [entry.resource.id for entry in bundle.entry] == [str(fhir_network.event_a.pk)]


def _links(bundle: Bundle) -> dict[str, str]:
    return {link.relation: link.url for link in bundle.link}


def test_searchset_pages_by_count_and_offset_links(fhir_network: FhirNetwork):
    a = fhir_network.a
    more = [treat(a, fhir_network.lot) for _ in range(2)]
    client = client_for(a.clinician)
    query = {"used": f"BiologicallyDerivedProduct/{fhir_network.lot.pk}", "_count": "2"}
    first = fhir(client.get(f"{FHIR}/Procedure", query), Bundle)
    assert first.total == 3
    assert "previous" not in _links(first)
    second = fhir(client.get(_links(first)["next"]), Bundle)
    assert "next" not in _links(second)
    assert "_offset=0" in _links(second)["previous"]
    seen = [entry.resource.id for entry in [*first.entry, *second.entry]]
    assert seen == [str(t.pk) for t in (fhir_network.treatment_a, *more)]


def _assert_fixed_queries(client, url, query, add, django_assert_num_queries) -> None:
    """As many statements for a page of seven as for a page of two."""
    add(1)
    with CaptureQueriesContext(connection) as few:
        response = client.get(url, query)
    small = fhir(response, Bundle)
    add(5)
    with django_assert_num_queries(len(few)):
        response = client.get(url, query)
    assert fhir(response, Bundle).total == small.total + 5


def test_forward_trace_runs_a_fixed_number_of_queries(
    fhir_network: FhirNetwork, django_assert_num_queries
):
    a = fhir_network.a

    def add(count: int) -> None:
        # Each with its own patient and practitioner, so a query per row anywhere would show.
        for _ in range(count):
            treat(
                a,
                fhir_network.lot,
                patient=PatientFactory(clinic=a.clinic),
                practitioner=practitioner_at(a.clinic),
            )

    _assert_fixed_queries(
        client_for(a.clinician),
        f"{FHIR}/Procedure",
        {"used": f"BiologicallyDerivedProduct/{fhir_network.lot.pk}"},
        add,
        django_assert_num_queries,
    )


def test_backward_trace_runs_a_fixed_number_of_queries(
    fhir_network: FhirNetwork, django_assert_num_queries
):
    a = fhir_network.a

    def add(count: int) -> None:
        for _ in range(count):
            treat(a, fhir_network.lot, practitioner=practitioner_at(a.clinic))

    _assert_fixed_queries(
        client_for(a.clinician),
        f"{FHIR}/Procedure",
        {"subject": f"Patient/{a.patient.pk}"},
        add,
        django_assert_num_queries,
    )


def test_capability_statement_lists_exactly_what_is_served(fhir_network: FhirNetwork):
    response = client_for(fhir_network.a.clinician).get(f"{FHIR}/metadata")
    statement = fhir(response, CapabilityStatement)
    assert statement.fhirVersion == "5.0.0"
    assert statement.kind == "instance"
    served = {
        resource.type: (
            {interaction.code for interaction in resource.interaction},
            {parameter.name for parameter in resource.searchParam},
        )
        for resource in statement.rest[0].resource
    }
    assert served == {
        "BiologicallyDerivedProduct": ({"read", "search-type"}, {"identifier"}),
        "Procedure": ({"read", "search-type"}, {"subject", "patient", "used"}),
        "AdverseEvent": ({"read", "search-type"}, {"subject", "patient", "substance"}),
    }


def test_the_fhir_endpoints_stay_out_of_the_openapi_schema(fhir_network: FhirNetwork, auditor):
    schema = client_for(auditor).get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert not [path for path in schema["paths"] if "/fhir/" in path]
