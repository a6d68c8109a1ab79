"""API tests for the forward and backward traces: what they show, to whom, in JSON and CSV, and
that each runs a fixed number of queries whatever the number of treatments."""

from __future__ import annotations

import csv
import datetime
import io
import json
from decimal import Decimal
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.db.models import Count, Sum
from django.db.models.functions import Coalesce
from django.http import StreamingHttpResponse
from django.test.utils import CaptureQueriesContext
from rest_framework.renderers import JSONRenderer

from common.renderers import TraceJSONRenderer
from lots.api import (
    LotCertificateOutputSerializer,
    LotQcResultOutputSerializer,
    ManufacturerRefSerializer,
)
from lots.models import (
    CertificateKind,
    Lot,
    LotQcResult,
    QcKind,
    QcSpecification,
    QcTest,
    SourceKind,
)
from lots.selectors import current_certificates
from lots.services import certificate_upload
from providers.models import Role
from tests.api_helpers import API, error_codes, error_fields
from tests.factories import SEC_FIELDS, TODAY, ClinicFactory, MembershipFactory, pdf_bytes
from tests.openapi_helpers import assert_matches_schema, generated_schema
from tests.treatments.test_api import (
    Site,
    client_for,
    make_site,
    practitioner_at,
    receive,
    released_lot,
)
from treatments.api.patients import PatientOutputSerializer
from treatments.models import Patient, TreatmentLine
from treatments.selectors import (
    ForwardScope,
    forward_lots,
    forward_page,
    forward_totals,
    trace_backward,
    trace_forward,
    visible_clinic_ids,
)
from treatments.services import adverse_event_record, patient_create
from treatments.trace_api import _Evidence
from treatments.trace_api.backward import (
    BackwardTreatmentSerializer,
    TraceDonorSerializer,
    TraceLotDetailSerializer,
    TraceProductSerializer,
)
from treatments.trace_api.base import time_writer
from treatments.trace_api.forward import (
    ForwardTraceOutputSerializer,
    ForwardTreatmentRowSerializer,
    forward_lot,
    forward_rows,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]

CONTACT_FRAGMENTS = (b"Mustermann", b"Erika", b"1234567")


def forward(client, **params):
    return client.get(f"{API}/traces/forward/", params)


def backward(client, **params):
    return client.get(f"{API}/traces/backward/", params)


def csv_rows(response) -> list[list[str]]:
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    content = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(content)))


def new_patient(site: Site, reference: str | None = None) -> Patient:
    return patient_create(
        actor=site.clinician,
        clinic=site.clinic,
        reference=reference or f"P-{Patient.objects.count() + 1:05d}",
        contact={"full_name": "Erika Mustermann", "phone": "+49 30 1234567"},
    )


@pytest.fixture
def network(quality_manager, clinic):
    """One lot used at two clinics, stock left at both, and an adverse event at the first."""
    lot = released_lot(quality_manager)
    here = make_site(quality_manager, clinic=clinic, lot=lot)
    there = make_site(quality_manager, lot=lot)
    first = here.record(units=2)
    second = here.record(patient=new_patient(here), units=1)
    elsewhere = there.record(units=4)
    event = adverse_event_record(
        actor=here.clinician, treatment=first, onset_on=TODAY(), description="Redness", lot=lot
    )
    return {
        "lot": lot,
        "here": here,
        "there": there,
        "treatments": (first, second, elsewhere),
        "event": event,
    }


# ---------------------------------------------------------------------------------------------
# Forward


def test_forward_trace_of_a_lot_shows_treatments_stock_and_adverse_events(network, auditor):
    lot, here, there = network["lot"], network["here"], network["there"]
    first, second, elsewhere = network["treatments"]

    response = forward(client_for(auditor), lot=lot.pk)

    assert response.status_code == 200, response.content
    body = response.json()
    assert [row["id"] for row in body["lots"]] == [lot.pk]
    assert body["lots"][0]["manufacturer"]["id"] == lot.manufacturer_id
    rows = {row["treatment"]: row for row in body["treatments"]}
    assert set(rows) == {first.pk, second.pk, elsewhere.pk}
    assert rows[first.pk] == {
        "treatment": first.pk,
        "performed_at": rows[first.pk]["performed_at"],
        "clinic": {"id": here.clinic.pk, "name": here.clinic.name},
        "patient_reference": here.patient.reference,
        "practitioner": {"id": here.practitioner.pk, "name": here.practitioner.name},
        "lot": lot.pk,
        "lot_number": lot.lot_number,
        "product": {"id": lot.product.pk, "name": lot.product.name, "gtin": None},
        "units": 2,
    }
    assert rows[elsewhere.pk]["clinic"]["id"] == there.clinic.pk
    assert {(s["clinic"]["id"], s["state"], s["quantity"]) for s in body["stock_on_hand"]} == {
        (here.clinic.pk, "accepted", 97),
        (there.clinic.pk, "accepted", 96),
    }
    assert [event["id"] for event in body["adverse_events"]] == [network["event"].pk]
    assert body["counts"] == {
        "lots": 1,
        "treatment_lines": 3,
        "treatments": 3,
        "patients": 3,
        "clinics": 2,
        "practitioners": 2,
        "units_used": 7,
        "units_on_hand": 193,
        "adverse_events": 1,
    }
    assert body["page"] == {"limit": 50, "offset": 0, "next": None, "previous": None}


def test_forward_trace_never_carries_contact_details(network, auditor):
    response = forward(client_for(auditor), lot=network["lot"].pk)
    assert response.status_code == 200
    for fragment in CONTACT_FRAGMENTS:
        assert fragment not in response.content
    csv_response = forward(client_for(auditor), lot=network["lot"].pk, format="csv")
    content = b"".join(csv_response.streaming_content)
    for fragment in CONTACT_FRAGMENTS:
        assert fragment not in content


def test_forward_trace_shows_clinic_staff_only_their_own_clinic(network):
    here = network["here"]
    first, second, _ = network["treatments"]
    body = forward(client_for(here.clinician), lot=network["lot"].pk).json()
    assert {row["treatment"] for row in body["treatments"]} == {first.pk, second.pk}
    assert {s["clinic"]["id"] for s in body["stock_on_hand"]} == {here.clinic.pk}
    assert body["counts"]["clinics"] == 1
    rows = csv_rows(forward(client_for(here.clinician), lot=network["lot"].pk, format="csv"))
    assert {int(row[0]) for row in rows[1:]} == {first.pk, second.pk}


def test_forward_trace_by_donor_product_and_manufacturer(network, quality_manager, auditor):
    lot = network["lot"]
    unrelated = released_lot(quality_manager)
    client = client_for(auditor)
    donor = lot.donors.get()
    for params in (
        {"donor": donor.pk},
        {"product": lot.product_id},
        {"manufacturer": lot.manufacturer_id},
    ):
        body = forward(client, **params).json()
        assert [row["id"] for row in body["lots"]] == [lot.pk], params
        assert body["counts"]["treatments"] == 3
    assert forward(client, product=unrelated.product_id).json()["counts"]["treatments"] == 0


def test_forward_trace_narrows_by_manufacture_date(network, auditor):
    lot = network["lot"]
    client = client_for(auditor)
    made = lot.manufactured_on.isoformat()
    assert forward(client, product=lot.product_id, manufactured_from=made).json()["lots"]
    assert forward(client, product=lot.product_id, manufactured_to=made).json()["lots"]
    after = forward(client, product=lot.product_id, manufactured_from="2999-01-01").json()
    assert after["lots"] == []
    assert after["treatments"] == []


def test_forward_trace_takes_several_lots_repeated_or_comma_separated(
    network, quality_manager, auditor
):
    here = network["here"]
    second_lot = released_lot(quality_manager)
    receive(here.clinic, second_lot, 5)
    extra = here.record(lots=[second_lot])
    client = client_for(auditor)
    lot_ids = [network["lot"].pk, second_lot.pk]
    repeated = client.get(f"{API}/traces/forward/", {"lot": lot_ids}).json()
    commas = forward(client, lot=",".join(map(str, lot_ids))).json()
    for body in (repeated, commas):
        assert {row["id"] for row in body["lots"]} == set(lot_ids)
        assert extra.pk in {row["treatment"] for row in body["treatments"]}
        assert body["counts"]["treatments"] == 4


def test_forward_trace_takes_as_many_repeated_lots_as_the_schema_allows(network, auditor):
    """With every other parameter too: Django reads at most DATA_UPLOAD_MAX_NUMBER_FIELDS."""
    parameters = generated_schema()["paths"]["/api/v1/traces/forward/"]["get"]["parameters"]
    most = next(p for p in parameters if p["name"] == "lot")["schema"]["maxItems"]
    lot = network["lot"]
    Lot.objects.filter(pk=lot.pk).update(**SEC_FIELDS)
    others = {
        "sec": "SEC DE000123A99992112345X",
        "donor": lot.donors.first().pk,
        "product": lot.product_id,
        "manufacturer": lot.manufacturer_id,
        "manufactured_from": "2000-01-01",
        "manufactured_to": "2100-01-01",
        "format": "json",
        "limit": 10,
        "offset": 0,
    }
    assert set(others) | {"lot"} == {p["name"] for p in parameters}
    query = "&".join([f"lot={lot.pk}"] * most + [f"{name}={v}" for name, v in others.items()])
    response = client_for(auditor).get(f"{API}/traces/forward/?{query}")
    assert response.status_code == 200, response.content[:500]
    assert response.json()["counts"]["lots"] == 1


def test_forward_trace_pages_its_treatments(network, auditor):
    client = client_for(auditor)
    page = forward(client, lot=network["lot"].pk, limit=2, offset=1).json()
    assert len(page["treatments"]) == 2
    assert page["counts"]["treatment_lines"] == 3
    assert page["page"]["next"] is None
    assert "limit=2" in page["page"]["previous"]
    first = forward(client, lot=network["lot"].pk, limit=1).json()
    assert len(first["treatments"]) == 1
    assert "offset=1" in first["page"]["next"]
    beyond = forward(client, lot=network["lot"].pk, offset=10**30).json()
    assert beyond["treatments"] == []
    assert beyond["counts"]["treatments"] == 3


def test_forward_trace_needs_a_starting_point(auditor):
    response = forward(client_for(auditor))
    assert response.status_code == 400
    assert error_codes(response) == ["trace_scope_missing"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"lot": "abc"}, "lot.0"),
        ({"lot": "1,x"}, "lot.1"),
        ({"lot": "0"}, "lot.0"),
        ({"lot": "1,²"}, "lot.1"),
        ({"lot": "9" * 19}, "lot.0"),
        ({"lot": ",".join(["1"] * 991)}, "lot"),
        ({"donor": "0"}, "donor"),
        ({"product": str(10**30)}, "product"),
        ({"lot": "1", "manufactured_from": "2025-02-30"}, "manufactured_from"),
    ],
)
def test_forward_trace_refuses_bad_parameters_naming_them(auditor, params, field):
    response = forward(client_for(auditor), **params)
    assert response.status_code == 400
    assert error_fields(response) == [field]


def test_forward_trace_as_csv_streams_every_treatment_row(network, auditor):
    first, second, elsewhere = network["treatments"]
    response = forward(client_for(auditor), lot=network["lot"].pk, format="csv", limit=1)
    assert response.status_code == 200
    assert 'filename="trace-forward.csv"' in response["Content-Disposition"]
    rows = csv_rows(response)
    assert rows[0] == [
        "treatment",
        "performed_at",
        "clinic_id",
        "clinic",
        "patient_reference",
        "practitioner_id",
        "practitioner",
        "lot",
        "lot_number",
        "lot_sec",
        "product",
        "units",
    ]
    # Not paged: every row, whatever limit says.
    assert sorted(int(row[0]) for row in rows[1:]) == sorted([first.pk, second.pk, elsewhere.pk])
    here = network["here"]
    row = next(row for row in rows[1:] if int(row[0]) == first.pk)
    assert row[2:5] == [str(here.clinic.pk), here.clinic.name, here.patient.reference]
    assert row[-4:] == [network["lot"].lot_number, "", network["lot"].product.name, "2"]


def test_forward_trace_answers_csv_to_an_accept_header(network, auditor):
    response = client_for(auditor).get(
        f"{API}/traces/forward/", {"lot": network["lot"].pk}, HTTP_ACCEPT="text/csv"
    )
    assert len(csv_rows(response)) == 4


def test_forward_trace_csv_neutralises_spreadsheet_formulas(network, auditor):
    here = network["here"]
    here.record(patient=new_patient(here, reference='=HYPERLINK("http://x")'))
    rows = csv_rows(forward(client_for(auditor), lot=network["lot"].pk, format="csv"))
    assert '\'=HYPERLINK("http://x")' in [row[4] for row in rows]
    assert not any(row[4].startswith("=") for row in rows)


def test_forward_trace_errors_are_json_even_when_csv_was_asked_for(auditor):
    response = forward(client_for(auditor), format="csv")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert error_codes(response) == ["trace_scope_missing"]


@pytest.mark.parametrize("path", ["/traces/forward/", "/traces/backward/"])
@pytest.mark.parametrize(
    ("query", "headers"), [("?format=csv", {}), ("", {"HTTP_ACCEPT": "text/csv"})]
)
def test_trace_options_answer_json_metadata_even_when_csv_was_asked_for(
    auditor, path, query, headers
):
    response = client_for(auditor).options(f"{API}{path}{query}", **headers)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json()["renders"] == ["application/json", "text/csv"]


def test_an_unknown_format_is_refused_in_the_error_shape(auditor):
    response = client_for(auditor).get(
        f"{API}/traces/forward/", {"lot": 1}, HTTP_ACCEPT="application/xml"
    )
    assert response.status_code == 406
    assert error_codes(response) == ["not_acceptable"]


def test_forward_trace_runs_a_fixed_number_of_queries(
    quality_manager, clinic, auditor, django_assert_num_queries
):
    lot = released_lot(quality_manager)
    here = make_site(quality_manager, clinic=clinic, lot=lot)
    there = make_site(quality_manager, lot=lot)
    client = client_for(auditor)
    here.record()
    with CaptureQueriesContext(connection) as one_json:
        assert forward(client, lot=lot.pk).json()["counts"]["treatments"] == 1
    with CaptureQueriesContext(connection) as one_csv:
        assert len(csv_rows(forward(client, lot=lot.pk, format="csv"))) == 2
    # JSON: the caller's roles, the totals, the page's rows, lots, stock, adverse events.
    assert len(one_json) == 6
    # CSV: the caller's roles, then one COPY, planned for its first row in a transaction of
    # its own (common.csv.csv_copy_lines).
    assert [query["sql"].split()[0] for query in one_csv] == [
        "SELECT",
        "SAVEPOINT",
        "SET",
        "COPY",
        "RELEASE",
    ]

    # 29 more, at two clinics, each with its own patient, practitioner and an adverse event.
    for index in range(29):
        site = here if index % 2 else there
        treatment = site.record(
            patient=new_patient(site), practitioner=practitioner_at(site.clinic)
        )
        adverse_event_record(
            actor=site.clinician, treatment=treatment, onset_on=TODAY(), description="Itch"
        )

    with django_assert_num_queries(len(one_json)):
        body = forward(client, lot=lot.pk).json()
    assert body["counts"]["treatments"] == 30
    assert len(body["treatments"]) == 30
    assert body["counts"]["adverse_events"] == 29
    with django_assert_num_queries(len(one_csv)):
        assert len(csv_rows(forward(client, lot=lot.pk, format="csv"))) == 31


# ---------------------------------------------------------------------------------------------
# Backward


@pytest.fixture
def history(quality_manager, clinic):
    """A patient treated twice, with two lots (one of two donors) and a corrected CoA."""
    first_lot = released_lot(quality_manager)
    second_lot = released_lot(quality_manager, donors=2)
    site = make_site(quality_manager, clinic=clinic, lot=first_lot)
    receive(site.clinic, second_lot, 10)
    old_coa = second_lot.certificates.get()
    new_coa = certificate_upload(
        actor=quality_manager,
        kind=CertificateKind.COA,
        issuer="Eurofins",
        number="COA-2",
        valid_from=TODAY(),
        file=SimpleUploadedFile("coa.pdf", pdf_bytes("corrected")),
        lot=second_lot,
        supersedes=old_coa,
        reason="typo in the endotoxin unit",
    )
    early = site.record(lots=[first_lot])
    late = site.record(lots=[first_lot, second_lot])
    event = adverse_event_record(
        actor=site.clinician, treatment=late, onset_on=TODAY(), description="Fever"
    )
    return {
        "site": site,
        "lots": (first_lot, second_lot),
        "treatments": (early, late),
        "coas": (old_coa, new_coa),
        "event": event,
    }


def lot_entry(body: dict[str, Any], lot: Lot) -> dict[str, Any]:
    return next(entry for entry in body["lots"] if entry["lot"]["id"] == lot.pk)


def test_backward_trace_of_a_patient_shows_every_lot_donor_test_and_certificate(history, auditor):
    site = history["site"]
    first_lot, second_lot = history["lots"]
    early, late = history["treatments"]
    old_coa, new_coa = history["coas"]

    response = backward(client_for(auditor), patient=site.patient.pk)

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["patient"]["reference"] == site.patient.reference
    assert [t["id"] for t in body["treatments"]] == [early.pk, late.pk]
    assert {line["lot"] for line in body["treatments"][1]["lines"]} == {
        first_lot.pk,
        second_lot.pk,
    }
    assert [event["id"] for event in body["treatments"][1]["adverse_events"]] == [
        history["event"].pk
    ]
    assert body["counts"] == {"treatments": 2, "lots": 2, "donors": 3}

    entry = lot_entry(body, second_lot)
    assert entry["manufacturer"]["id"] == second_lot.manufacturer_id
    assert entry["product"]["id"] == second_lot.product_id
    assert {donor["code"] for donor in entry["donors"]} == set(
        second_lot.donors.values_list("code", flat=True)
    )
    for donor in entry["donors"]:
        assert donor["eligibility"] == "eligible"
        assert donor["markers"]
        assert {marker["result"] for marker in donor["markers"]} == {"non_reactive"}
    assert entry["qc_results"]
    assert all(result["passes"] is True for result in entry["qc_results"])
    assert {(c["id"], c["current"]) for c in entry["certificates"]} == {
        (old_coa.pk, False),
        (new_coa.pk, True),
    }
    assert [c["kind"] for c in entry["manufacturer_certificates"]] == ["gmp"]
    assert entry["manufacturer_certificates"][0]["current"] is True


def test_backward_trace_answers_as_the_schema_says_with_null_for_choices_left_out(history, auditor):
    synthetic = history["lots"][0].product
    synthetic.source_kind, synthetic.tissue = SourceKind.SYNTHETIC, ""
    synthetic.save(update_fields=["source_kind", "tissue"])
    response = backward(client_for(auditor), patient=history["site"].patient.pk)
    entry = lot_entry(response.json(), history["lots"][1])
    assert {r["outcome"] for r in entry["qc_results"] if r["numeric_value"] is not None} == {None}
    assert lot_entry(response.json(), history["lots"][0])["product"]["tissue"] is None
    assert_matches_schema(response, "get", "/api/v1/traces/backward/")


def test_backward_trace_never_carries_contact_details(history, auditor):
    patient = history["site"].patient
    response = backward(client_for(auditor), patient=patient.pk)
    for fragment in CONTACT_FRAGMENTS:
        assert fragment not in response.content
    content = b"".join(
        backward(client_for(auditor), patient=patient.pk, format="csv").streaming_content
    )
    for fragment in CONTACT_FRAGMENTS:
        assert fragment not in content


def test_backward_trace_of_one_treatment(history):
    site = history["site"]
    early, _ = history["treatments"]
    body = backward(client_for(site.clinician), treatment=early.pk).json()
    assert body["patient"] is None
    assert [t["id"] for t in body["treatments"]] == [early.pk]
    assert [entry["lot"]["id"] for entry in body["lots"]] == [history["lots"][0].pk]


def test_backward_trace_of_another_clinics_patient_or_treatment_is_not_found(
    history, quality_manager
):
    other = make_site(quality_manager, clinic=ClinicFactory())
    client = client_for(other.clinician)
    site = history["site"]
    for params in ({"patient": site.patient.pk}, {"treatment": history["treatments"][0].pk}):
        response = backward(client, **params)
        assert response.status_code == 404, params
        assert error_codes(response) == ["not_found"]


def test_backward_trace_needs_a_patient_or_a_treatment(auditor):
    response = backward(client_for(auditor))
    assert response.status_code == 400
    assert error_codes(response) == ["trace_scope_missing"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"patient": "abc"}, "patient"),
        ({"patient": "0"}, "patient"),
        ({"patient": str(2**63)}, "patient"),
        ({"treatment": str(2**63)}, "treatment"),
        ({"patient": "1", "treatment": "x"}, "treatment"),
    ],
)
def test_backward_trace_refuses_bad_parameters_naming_them(auditor, params, field):
    response = backward(client_for(auditor), **params)
    assert response.status_code == 400
    assert error_fields(response) == [field]


def test_backward_trace_as_csv_has_a_row_per_treatment_line_with_donor_codes(history, auditor):
    site = history["site"]
    first_lot, second_lot = history["lots"]
    early, late = history["treatments"]
    response = backward(client_for(auditor), patient=site.patient.pk, format="csv")
    assert 'filename="trace-backward.csv"' in response["Content-Disposition"]
    rows = csv_rows(response)
    header, data = rows[0], rows[1:]
    assert header[:2] == ["treatment", "performed_at"]
    assert "donor_codes" in header
    keyed = {(int(row[0]), int(row[header.index("lot")])): row for row in data}
    assert set(keyed) == {
        (early.pk, first_lot.pk),
        (late.pk, first_lot.pk),
        (late.pk, second_lot.pk),
    }
    codes = keyed[(late.pk, second_lot.pk)][header.index("donor_codes")].split(";")
    assert set(codes) == set(second_lot.donors.values_list("code", flat=True))
    assert len(codes) == 2
    assert keyed[(early.pk, first_lot.pk)][header.index("patient_reference")] == (
        site.patient.reference
    )


def test_backward_trace_runs_a_fixed_number_of_queries(
    quality_manager, clinic, auditor, django_assert_num_queries
):
    site = make_site(quality_manager, clinic=clinic)
    client = client_for(auditor)
    site.record()
    with CaptureQueriesContext(connection) as one_json:
        assert backward(client, patient=site.patient.pk).json()["counts"]["lots"] == 1
    with CaptureQueriesContext(connection) as one_csv:
        assert len(csv_rows(backward(client, patient=site.patient.pk, format="csv"))) == 2
    # The caller's roles, the patient, then for CSV the treatment lines with their lots' donor
    # codes and certificates; for JSON the treatment lines with their lots, the adverse events,
    # the donors with their marker results, the QC results with their specifications, and the
    # certificates with the manufacturers'.
    assert len(one_csv) == 3
    assert len(one_json) == 7

    # 29 more treatments, each with its own lot (donors, markers, QC and certificates), its own
    # practitioner and an adverse event.
    for _ in range(29):
        lot = released_lot(quality_manager)
        receive(site.clinic, lot, 1)
        treatment = site.record(lots=[lot], practitioner=practitioner_at(site.clinic))
        adverse_event_record(
            actor=site.clinician, treatment=treatment, onset_on=TODAY(), description="Itch"
        )

    with django_assert_num_queries(len(one_json)):
        body = backward(client, patient=site.patient.pk).json()
    assert body["counts"] == {"treatments": 30, "lots": 30, "donors": 30}
    assert all(entry["qc_results"] and entry["donors"] for entry in body["lots"])
    with django_assert_num_queries(len(one_csv)):
        assert len(csv_rows(backward(client, patient=site.patient.pk, format="csv"))) == 31


def test_forward_trace_answers_as_its_serializer_documents_it(network, auditor):
    lot = network["lot"]
    product = lot.product
    product.gtin = ""
    product.save(update_fields=["gtin"])
    here = network["here"]
    adverse_event_record(
        actor=here.clinician,
        treatment=network["treatments"][1],
        onset_on=TODAY(),
        description="Fainted",
        hospitalisation=True,
    )
    lines = TreatmentLine.objects.filter(lot=lot).order_by("performed_at", "treatment_id")
    page = forward_page(lot_ids=[lot.pk], clinic_ids=None, offset=0, limit=50)
    lots = {row[0]: forward_lot(row) for row in forward_lots(scope=ForwardScope(lot_ids=[lot.pk]))}
    assert TraceJSONRenderer().render(forward_rows(page, lots, time_writer())) == (
        JSONRenderer().render(
            ForwardTreatmentRowSerializer(
                lines.select_related("treatment__clinic", "treatment__patient", "lot__product"),
                many=True,
            ).data
        )
    )
    # The SQL reads what trace_forward's lines would, for every reader and page.
    for reader in (auditor, network["here"].clinician, network["there"].clinician):
        trace = trace_forward(user=reader, scope=ForwardScope(lot_ids=[lot.pk]))
        clinic_ids = visible_clinic_ids(reader)
        for offset, limit in ((0, 50), (1, 1), (2, 5), (3, 5)):
            assert [
                (row[0], row[7])
                for row in forward_page(
                    lot_ids=[lot.pk], clinic_ids=clinic_ids, offset=offset, limit=limit
                )
            ] == [(line.treatment_id, line.lot_id) for line in trace.lines[offset : offset + limit]]
        assert forward_totals(lot_ids=[lot.pk], clinic_ids=clinic_ids) == trace.lines.aggregate(
            treatment_lines=Count("pk"),
            treatments=Count("treatment_id", distinct=True),
            patients=Count("treatment__patient_id", distinct=True),
            clinics=Count("treatment__clinic_id", distinct=True),
            practitioners=Count("treatment__practitioner_id", distinct=True),
            units_used=Coalesce(Sum("units"), 0),
        )

    body = forward(client_for(auditor), lot=lot.pk).json()

    trace = trace_forward(user=auditor, scope=ForwardScope(lot_ids=[lot.pk]))
    documented = ForwardTraceOutputSerializer(
        {
            "lots": list(trace.lots),
            "treatments": list(trace.lines),
            "page": body["page"],
            "stock_on_hand": list(trace.stock),
            "adverse_events": list(trace.adverse_events),
            "counts": body["counts"],
        }
    ).data
    assert body == json.loads(JSONRenderer().render(documented))
    assert len(body["treatments"]) == 3
    assert len(body["stock_on_hand"]) == 2
    assert {event["lot"] is None for event in body["adverse_events"]} == {True, False}
    assert {event["serious"] for event in body["adverse_events"]} == {True, False}


def documented_forward(user, scope: ForwardScope, body: dict[str, Any]) -> dict[str, Any]:
    """The forward trace as its serializers write it from trace_forward's querysets; the page
    and the line counts as `body` says (the counts are held to the querysets' own below)."""
    trace = trace_forward(user=user, scope=scope)
    limit, offset = body["page"]["limit"], body["page"]["offset"]
    documented = ForwardTraceOutputSerializer(
        {
            "lots": list(trace.lots),
            "treatments": list(trace.lines[offset : offset + limit]),
            "page": body["page"],
            "stock_on_hand": list(trace.stock),
            "adverse_events": list(trace.adverse_events),
            "counts": body["counts"],
        }
    ).data
    counts = trace.lines.aggregate(
        treatment_lines=Count("pk"),
        treatments=Count("treatment_id", distinct=True),
        patients=Count("treatment__patient_id", distinct=True),
        clinics=Count("treatment__clinic_id", distinct=True),
        practitioners=Count("treatment__practitioner_id", distinct=True),
        units_used=Coalesce(Sum("units"), 0),
    )
    stock, events = list(trace.stock), list(trace.adverse_events)
    assert body["counts"] == {
        "lots": len(documented["lots"]),
        **counts,
        "units_on_hand": sum(balance.quantity for balance in stock),
        "adverse_events": len(events),
    }
    return json.loads(JSONRenderer().render(documented))


def test_forward_trace_reads_what_the_querysets_would_for_every_reader_scope_and_page(
    network, auditor, quality_manager
):
    """The JSON's SQL against trace_forward's querysets: two lots of one product (one with a
    Single European Code), events naming a lot, naming none, and naming the other lot of the
    same treatment, stock at three clinics (one at zero), seen by network and clinic readers."""
    lot, here, there = network["lot"], network["here"], network["there"]
    other = released_lot(quality_manager, product=lot.product, **SEC_FIELDS)
    third = make_site(quality_manager, lot=other)
    receive(here.clinic, other, 3)
    both = here.record(lots=[lot, other], units=1)
    third.record(units=2)
    here.record(lots=[other], units=2)  # here's stock of the other lot: none left
    for treatment, named in ((both, None), (both, other), (network["treatments"][2], None)):
        adverse_event_record(
            actor=MembershipFactory(role=Role.CLINICIAN, clinic=treatment.clinic).user,
            treatment=treatment,
            onset_on=TODAY(),
            description="Swelling",
            lot=named,
            life_threatening=named is None,
        )
    unused = released_lot(quality_manager, product=lot.product)
    readers = (auditor, quality_manager, here.clinician, there.clinician, third.clinician)
    scopes = (
        {"lot": lot.pk},
        {"lot": f"{lot.pk},{other.pk}"},
        {"lot": unused.pk},
        {"product": lot.product_id},
        {"manufacturer": lot.manufacturer_id},
        {"product": lot.product_id, "manufactured_from": other.manufactured_on.isoformat()},
        {"lot": 2_000_000_000},
    )
    seen = set()
    for reader in readers:
        client = client_for(reader)
        for params in scopes:
            for page in ({}, {"limit": 2}, {"limit": 2, "offset": 2}, {"offset": 50}):
                body = forward(client, **params, **page).json()
                ids = [int(piece) for piece in str(params.get("lot", "")).split(",") if piece]
                scope = ForwardScope(
                    lot_ids=ids or None,
                    product_id=params.get("product"),
                    manufacturer_id=params.get("manufacturer"),
                    manufactured_from=(
                        other.manufactured_on if "manufactured_from" in params else None
                    ),
                )
                assert body == documented_forward(reader, scope, body), (reader, params, page)
                seen.add((len(body["treatments"]), len(body["adverse_events"])))
    # The cases were not all empty: pages of rows, and events seen.
    assert max(rows for rows, _events in seen) >= 2
    assert max(events for _rows, events in seen) >= 3


def documented_backward(user, *, patient: Patient | None = None, treatment_id=None):
    """The backward trace as its serializers write it, from `trace_backward`'s model instances."""
    trace = trace_backward(
        user=user, patient_id=None if patient is None else patient.pk, treatment_id=treatment_id
    )
    evidence = _Evidence(trace.lots)
    current = set(current_certificates().values_list("pk", flat=True))
    lots = []
    for lot in trace.lots:
        quality = lot.manufacturer.quality_certificates
        lots.append(
            {
                "lot": TraceLotDetailSerializer(lot).data,
                "product": TraceProductSerializer(lot.product).data,
                "manufacturer": ManufacturerRefSerializer(lot.manufacturer).data,
                "donors": TraceDonorSerializer(lot.donors.all(), many=True).data,
                "qc_results": LotQcResultOutputSerializer(
                    lot.qc_results.all(),
                    many=True,
                    context={"specifications": evidence.specifications[lot.product_id]},
                ).data,
                "certificates": LotCertificateOutputSerializer(
                    lot.certificates.all(), many=True, context={"current_certificate_ids": current}
                ).data,
                "manufacturer_certificates": LotCertificateOutputSerializer(
                    quality, many=True, context={"current_certificate_ids": current}
                ).data,
            }
        )
    documented = {
        "patient": None
        if patient is None
        else PatientOutputSerializer(Patient.objects.get(pk=patient.pk)).data,
        "treatments": BackwardTreatmentSerializer(trace.treatments, many=True).data,
        "lots": lots,
        "counts": {
            "treatments": len(trace.treatments),
            "lots": len(trace.lots),
            "donors": len({donor.pk for lot in trace.lots for donor in lot.donors.all()}),
        },
    }
    return json.loads(JSONRenderer().render(documented))


def test_backward_trace_answers_as_its_serializers_document_it(history, quality_manager, auditor):
    # Given a patient treated three times (once without stock of this system) with three lots:
    # one synthetic with a Single European Code, one of two donors with a corrected CoA, one of
    # a manufacturer with a superseded GMP and an ISO 13485 certificate; adverse events with and
    # without a suspected lot, one serious; a QC result without a specification; and a patient
    # of another clinic treated with the same lots.
    site = history["site"]
    first_lot, second_lot = history["lots"]
    early, late = history["treatments"]
    synthetic = first_lot.product
    synthetic.source_kind, synthetic.tissue = SourceKind.SYNTHETIC, ""
    synthetic.save(update_fields=["source_kind", "tissue"])
    Lot.objects.filter(pk=first_lot.pk).update(**SEC_FIELDS)
    third_lot = released_lot(quality_manager, donors=3)
    manufacturer = third_lot.manufacturer
    old_gmp = manufacturer.certificates.get(kind=CertificateKind.GMP)
    for kind, number, supersedes in (
        (CertificateKind.GMP, "GMP-renewed", old_gmp),
        (CertificateKind.ISO_13485, "ISO-1", None),
    ):
        certificate_upload(
            actor=quality_manager,
            kind=kind,
            issuer="TÜV",
            number=number,
            valid_from=TODAY(),
            valid_until=TODAY() + datetime.timedelta(days=365),
            file=SimpleUploadedFile("cert.pdf", pdf_bytes(number)),
            manufacturer=manufacturer,
            supersedes=supersedes,
            reason="renewed" if supersedes else "",
        )
    # The product's own specification for one test (it wins over the default), and a test
    # without any specification.
    measured = third_lot.qc_results.exclude(numeric_value=None).first()
    QcSpecification.objects.create(
        product=third_lot.product, test=measured.test, min_value=measured.numeric_value + 1
    )
    LotQcResult.objects.create(
        lot=third_lot,
        test=QcTest.objects.create(code="osmolality", name="Osmolality", kind=QcKind.QUANTITATIVE),
        numeric_value=Decimal("290.5"),
        tested_on=TODAY(),
        laboratory="Lab",
    )
    receive(site.clinic, third_lot, 10)
    third = site.record(lots=[third_lot, second_lot], units=2)
    adverse_event_record(
        actor=site.clinician,
        treatment=third,
        onset_on=TODAY(),
        description="Fainted",
        lot=third_lot,
        hospitalisation=True,
    )
    adverse_event_record(
        actor=site.clinician, treatment=early, onset_on=TODAY(), description="Redness"
    )
    other = make_site(quality_manager, lot=second_lot)
    elsewhere = other.record()
    adverse_event_record(
        actor=other.clinician, treatment=elsewhere, onset_on=TODAY(), description="Itch"
    )

    # When traced by a network reader and by the clinic's own staff, from the patient and from
    # a treatment, then the answer is what the serializers write from the model instances.
    patient = site.patient
    for user in (auditor, site.clinician):
        client = client_for(user)
        body = backward(client, patient=patient.pk).json()
        assert body == documented_backward(user, patient=patient)
        treatment_body = backward(client, treatment=third.pk).json()
        assert treatment_body == documented_backward(user, treatment_id=third.pk)

    assert [t["id"] for t in body["treatments"]] == [early.pk, late.pk, third.pk]
    assert body["counts"] == {"treatments": 3, "lots": 3, "donors": 6}
    assert elsewhere.pk not in {t["id"] for t in body["treatments"]}
    assert "Itch" not in {e["description"] for t in body["treatments"] for e in t["adverse_events"]}
    results = [row for entry in body["lots"] for row in entry["qc_results"]]
    assert {row["numeric_value"] is None for row in results} == {True, False}
    assert {row["passes"] for row in results} == {True, False, None}
    assert {entry["product"]["tissue"] is None for entry in body["lots"]} == {True, False}
    assert {entry["lot"]["sec"] is None for entry in body["lots"]} == {True, False}
    assert {c["current"] for entry in body["lots"] for c in entry["certificates"]} == {True, False}
    third_entry = lot_entry(body, third_lot)
    assert [c["number"] for c in third_entry["manufacturer_certificates"]] == [
        "GMP-renewed",
        "ISO-1",
    ]
    events = [e for t in body["treatments"] for e in t["adverse_events"]]
    assert {(e["lot"] is None, e["serious"]) for e in events} == {(True, False), (False, True)}
    assert all(entry["donors"] and entry["qc_results"] for entry in body["lots"])
    assert all(donor["markers"] for entry in body["lots"] for donor in entry["donors"])

    # A patient of another clinic is not found for this clinic's staff.
    assert backward(client_for(site.clinician), patient=other.patient.pk).status_code == 404


def test_backward_trace_of_a_patient_not_yet_treated_is_empty(history, auditor):
    patient = new_patient(history["site"])
    with CaptureQueriesContext(connection) as queries:
        body = backward(client_for(auditor), patient=patient.pk).json()
    assert body["treatments"] == []
    assert body["lots"] == []
    assert body["counts"] == {"treatments": 0, "lots": 0, "donors": 0}
    assert body == documented_backward(auditor, patient=patient)
    assert len(queries) == 7


@pytest.mark.parametrize("reader", ["auditor", "clinician"])
def test_each_trace_request_reads_the_callers_roles_once(history, auditor, reader):
    user = auditor if reader == "auditor" else history["site"].clinician
    client = client_for(user)
    patient, lot = history["site"].patient, history["lots"][1]
    for request in (
        lambda: forward(client, lot=lot.pk).json(),
        lambda: csv_rows(forward(client, lot=lot.pk, format="csv")),
        lambda: backward(client, patient=patient.pk).json(),
        lambda: csv_rows(backward(client, patient=patient.pk, format="csv")),
    ):
        with CaptureQueriesContext(connection) as queries:
            request()
        reads = [q["sql"] for q in queries.captured_queries if "providers_membership" in q["sql"]]
        assert len(reads) == 1
