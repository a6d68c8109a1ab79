"""The OpenAPI schema is generated from the code, validates, and documents every endpoint; the docs
page works offline (Swagger UI from the sidecar package, no CDN)."""

from __future__ import annotations

import pytest
import yaml
from django.contrib.staticfiles import finders
from django.core.cache import cache
from django.core.management import call_command
from rest_framework.test import APIClient

from tests.api_helpers import API, error_codes
from tests.openapi_helpers import assert_matches_schema, generated_schema

pytestmark = pytest.mark.usefixtures("fast_password_hasher")

EXPECTED_OPERATIONS = {
    ("/api/v1/manufacturers/", "get"),
    ("/api/v1/manufacturers/", "post"),
    ("/api/v1/manufacturers/{manufacturer_id}/", "get"),
    ("/api/v1/manufacturers/{manufacturer_id}/", "patch"),
    ("/api/v1/clinics/{clinic_id}/", "patch"),
    ("/api/v1/clinics/", "get"),
    ("/api/v1/clinics/", "post"),
    ("/api/v1/clinics/{clinic_id}/", "get"),
    ("/api/v1/clinics/{clinic_id}/contacts/", "post"),
    ("/api/v1/practitioners/", "get"),
    ("/api/v1/practitioners/", "post"),
    ("/api/v1/practitioners/{practitioner_id}/", "get"),
    ("/api/v1/practitioners/{practitioner_id}/licences/", "post"),
    ("/api/v1/me/", "get"),
    ("/api/v1/me/password/", "post"),
    ("/api/v1/practitioners/{practitioner_id}/clinics/", "post"),
    ("/api/v1/practitioners/{practitioner_id}/clinics/{clinic_id}/unlink/", "post"),
    ("/api/v1/users/", "get"),
    ("/api/v1/users/", "post"),
    ("/api/v1/users/{user_id}/", "get"),
    ("/api/v1/users/{user_id}/", "patch"),
    ("/api/v1/users/{user_id}/deactivate/", "post"),
    ("/api/v1/users/{user_id}/reactivate/", "post"),
    ("/api/v1/users/{user_id}/password/", "post"),
    ("/api/v1/users/{user_id}/unlock/", "post"),
    ("/api/v1/users/{user_id}/memberships/", "post"),
    ("/api/v1/users/{user_id}/memberships/{membership_id}/revoke/", "post"),
    ("/api/v1/users/{user_id}/tokens/", "get"),
    ("/api/v1/users/{user_id}/tokens/revoke/", "post"),
    ("/api/v1/users/{user_id}/tokens/{token_key}/", "delete"),
    ("/api/v1/auth/token/", "post"),
    ("/api/v1/auth/tokens/", "get"),
    ("/api/v1/auth/tokens/revoke/", "post"),
    ("/api/v1/auth/tokens/{token_key}/", "delete"),
    ("/api/v1/products/", "get"),
    ("/api/v1/products/", "post"),
    ("/api/v1/products/{product_id}/", "get"),
    ("/api/v1/products/{product_id}/authorisations/{jurisdiction}/", "put"),
    ("/api/v1/markers/", "get"),
    ("/api/v1/qc-tests/", "get"),
    ("/api/v1/donors/", "get"),
    ("/api/v1/donors/", "post"),
    ("/api/v1/donors/{donor_id}/", "get"),
    ("/api/v1/donors/{donor_id}/marker-results/", "post"),
    ("/api/v1/donors/{donor_id}/eligibility/", "post"),
    ("/api/v1/lots/", "get"),
    ("/api/v1/lots/", "post"),
    ("/api/v1/lots/{lot_id}/", "get"),
    ("/api/v1/lots/{lot_id}/donors/", "post"),
    ("/api/v1/lots/{lot_id}/sec/", "post"),
    ("/api/v1/lots/{lot_id}/qc-results/", "post"),
    ("/api/v1/lots/{lot_id}/release-check/", "get"),
    ("/api/v1/lots/{lot_id}/release/", "post"),
    ("/api/v1/lots/{lot_id}/reject/", "post"),
    ("/api/v1/lots/{lot_id}/hold/", "post"),
    ("/api/v1/certificates/", "get"),
    ("/api/v1/certificates/", "post"),
    ("/api/v1/certificates/{certificate_id}/", "get"),
    ("/api/v1/certificates/{certificate_id}/file/", "get"),
    ("/api/v1/receipts/", "get"),
    ("/api/v1/receipts/", "post"),
    ("/api/v1/stock/", "get"),
    ("/api/v1/stock/movements/", "get"),
    ("/api/v1/stock/transfers/", "post"),
    ("/api/v1/stock/write-offs/", "post"),
    ("/api/v1/stock/quarantine-resolutions/", "post"),
    ("/api/v1/patients/", "get"),
    ("/api/v1/patients/", "post"),
    ("/api/v1/patients/{patient_id}/", "get"),
    ("/api/v1/patients/{patient_id}/contact/", "get"),
    ("/api/v1/consent-texts/", "get"),
    ("/api/v1/treatments/", "get"),
    ("/api/v1/treatments/", "post"),
    ("/api/v1/treatments/{treatment_id}/", "get"),
    ("/api/v1/treatments/{treatment_id}/adverse-events/", "post"),
    ("/api/v1/adverse-events/", "get"),
    ("/api/v1/scans/resolve/", "post"),
    ("/api/v1/traces/forward/", "get"),
    ("/api/v1/traces/backward/", "get"),
    ("/api/v1/patients/{patient_id}/trace.pdf", "get"),
    ("/api/v1/recalls/", "get"),
    ("/api/v1/recalls/", "post"),
    ("/api/v1/recalls/{recall_id}/", "get"),
    ("/api/v1/recalls/{recall_id}/widen/", "post"),
    ("/api/v1/recalls/{recall_id}/effectiveness/", "get"),
    ("/api/v1/recalls/{recall_id}/acknowledgements/", "post"),
    ("/api/v1/recalls/{recall_id}/dispositions/", "post"),
    ("/api/v1/recalls/{recall_id}/patients/", "get"),
    ("/api/v1/recalls/{recall_id}/contact-attempts/", "post"),
    ("/api/v1/recalls/{recall_id}/close/", "post"),
    ("/api/v1/recalls/{recall_id}/exposures.csv", "get"),
    ("/api/v1/recalls/{recall_id}/notices.csv", "get"),
    ("/api/v1/recalls/{recall_id}/report.pdf", "get"),
    ("/api/v1/recalls/{recall_id}/evidence.zip", "get"),
    ("/api/v1/lots/{lot_id}/dossier.pdf", "get"),
    ("/api/v1/lots/{lot_id}/treatments.csv", "get"),
    ("/api/v1/notices/", "get"),
    ("/api/v1/notices/{notice_id}/resend/", "post"),
    ("/api/v1/webhook-endpoints/", "get"),
    ("/api/v1/webhook-endpoints/", "post"),
    ("/api/v1/webhook-endpoints/{endpoint_id}/", "get"),
    ("/api/v1/webhook-endpoints/{endpoint_id}/rotate/", "post"),
    ("/api/v1/webhook-endpoints/{endpoint_id}/deactivate/", "post"),
    ("/api/v1/webhook-endpoints/{endpoint_id}/activate/", "post"),
    ("/api/v1/audit/contact-reads/", "get"),
    ("/api/v1/audit/events/", "get"),
    ("/api/v1/audit/events/export/", "get"),
    ("/api/v1/history-imports/", "get"),
    ("/api/v1/history-imports/", "post"),
    ("/api/v1/history-imports/{import_id}/", "get"),
    ("/api/v1/signatures/", "get"),
    ("/api/v1/signatures/{signature_id}/verify/", "get"),
    ("/api/v1/epcis/events/", "get"),
}


@pytest.fixture(scope="module")
def schema(tmp_path_factory):
    """Generated by drf-spectacular's own command: --validate checks it against the OpenAPI 3
    JSON schema and --fail-on-warn turns any generator warning into a failure."""
    path = tmp_path_factory.mktemp("openapi") / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(path))
    return yaml.safe_load(path.read_text())


def test_schema_documents_every_endpoint(schema):
    operations = {
        (path, method)
        for path, item in schema["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    }
    assert operations == EXPECTED_OPERATIONS


def test_schema_documents_the_release_endpoint_with_its_refusal(schema):
    release = schema["paths"]["/api/v1/lots/{lot_id}/release/"]["post"]
    request = release["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert request.endswith("/ReleaseInputRequest")
    assert set(release["responses"]) >= {"200", "400", "403", "404", "409"}
    refusal = release["responses"]["409"]["content"]["application/json"]["schema"]["$ref"]
    assert refusal == "#/components/schemas/Error"
    fields = schema["components"]["schemas"]["ReleaseInputRequest"]["properties"]
    assert set(fields) == {"password", "meaning", "reason", "effective_date"}
    fields = schema["components"]["schemas"]["SignatureInputRequest"]["properties"]
    assert set(fields) == {"password", "meaning", "reason"}


def test_schema_lists_filters_and_pagination_on_the_lot_list(schema):
    parameters = {p["name"] for p in schema["paths"]["/api/v1/lots/"]["get"]["parameters"]}
    assert parameters == {
        "status",
        "product",
        "manufacturer",
        "lot_number",
        "expires_before",
        "expires_after",
        "expired",
        "sec",
        "limit",
        "offset",
    }


def test_schema_says_lot_create_takes_donor_ids(schema):
    donors = schema["components"]["schemas"]["LotCreateInputRequest"]["properties"]["donors"]
    assert donors["items"]["type"] == "integer"
    assert "ids of the source donors" in donors["description"].lower()


def test_schema_documents_the_certificate_upload_as_multipart_and_the_file_as_pdf(schema):
    upload = schema["paths"]["/api/v1/certificates/"]["post"]["requestBody"]["content"]
    assert set(upload) == {"multipart/form-data"}
    download = schema["paths"]["/api/v1/certificates/{certificate_id}/file/"]["get"]
    assert download["responses"]["200"]["content"]["application/pdf"]["schema"] == {
        "type": "string",
        "format": "binary",
    }


@pytest.mark.django_db
def test_docs_page_loads_for_a_signed_in_user_without_a_cdn(client, quality_manager):
    client.force_login(quality_manager)
    response = client.get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "swagger-ui" in page
    assert "cdn.jsdelivr.net" not in page and "unpkg.com" not in page
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in page


@pytest.mark.django_db
def test_docs_page_sends_a_visitor_who_is_not_signed_in_to_sign_in(client):
    response = client.get("/api/docs/")
    assert response.status_code == 302
    assert response["Location"] == "/sign-in/?next=/api/docs/"


def test_the_swagger_ui_assets_are_installed_locally():
    for asset in ("swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css"):
        assert finders.find(f"drf_spectacular_sidecar/swagger-ui-dist/{asset}"), asset


@pytest.mark.django_db
def test_schema_endpoint_serves_the_same_schema(qm_client, schema):
    response = qm_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    assert set(response.json()["paths"]) == set(schema["paths"])


@pytest.mark.django_db
def test_api_errors_in_the_docs_describe_the_one_error_shape(schema, api_client):
    error = schema["components"]["schemas"]["Error"]
    assert error["required"] == ["errors"]
    item = schema["components"]["schemas"]["ErrorItem"]
    assert set(item["properties"]) == {"code", "message", "field"}
    # and the running API answers in that shape
    assert error_codes(api_client.get(f"{API}/lots/")) == ["not_authenticated"]


def test_schema_documents_the_treatment_record_with_lines_by_lot_or_scan(schema):
    record = schema["paths"]["/api/v1/treatments/"]["post"]
    assert set(record["responses"]) >= {"201", "400", "403", "404", "409"}
    request = record["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert request.endswith("/TreatmentRecordInputRequest")
    components = schema["components"]["schemas"]
    fields = components["TreatmentRecordInputRequest"]["properties"]
    assert {"clinic", "patient", "practitioner", "performed_at", "lines", "consent"} <= set(fields)
    line = components["TreatmentLineInputRequest"]["properties"]
    assert set(line) == {"lot", "scan", "units"}


def test_schema_documents_the_traces_as_json_or_csv(schema):
    for path in ("/api/v1/traces/forward/", "/api/v1/traces/backward/"):
        trace = schema["paths"][path]["get"]
        assert set(trace["responses"]["200"]["content"]) == {"application/json", "text/csv"}
        assert set(trace["responses"]["400"]["content"]) == {"application/json"}
        parameters = {p["name"]: p for p in trace["parameters"]}
        assert parameters["format"]["schema"]["enum"] == ["csv", "json"]
    forward = {
        p["name"]: p for p in schema["paths"]["/api/v1/traces/forward/"]["get"]["parameters"]
    }
    assert set(forward) == {
        "lot",
        "donor",
        "product",
        "manufacturer",
        "manufactured_from",
        "manufactured_to",
        "sec",
        "format",
        "limit",
        "offset",
    }
    assert forward["lot"]["schema"]["type"] == "array"


def test_schema_keeps_patient_contact_details_out_of_the_patient_and_trace_shapes(schema):
    contact_fields = {"full_name", "date_of_birth", "phone", "email", "postal_address"}
    clinical = ("Patient", "Treatment", "Trace", "Forward", "Backward", "AdverseEvent", "Scan")
    checked = [
        name
        for name in schema["components"]["schemas"]
        if any(word in name for word in clinical) and not name.startswith("PatientContact")
    ]
    assert {"PatientOutput", "ForwardTraceOutput", "BackwardTraceOutput"} <= set(checked)
    for name in checked:
        properties = schema["components"]["schemas"][name].get("properties", {})
        assert not contact_fields & set(properties), name


def test_schema_lists_filters_on_the_treatment_and_stock_lists(schema):
    def names(path):
        return {p["name"] for p in schema["paths"][path]["get"]["parameters"]}

    assert names("/api/v1/treatments/") == {
        "clinic",
        "patient",
        "practitioner",
        "lot",
        "performed_after",
        "performed_before",
        "limit",
        "offset",
    }
    assert names("/api/v1/stock/") == {"clinic", "lot", "product", "state", "limit", "offset"}
    assert names("/api/v1/adverse-events/") == {
        "lot",
        "product",
        "clinic",
        "serious",
        "limit",
        "offset",
    }


def test_every_operation_documents_the_429_and_503_any_request_can_get(schema):
    operations = [
        (path, method, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]
    assert len(operations) > 100
    for path, method, operation in operations:
        for status in ("429", "503"):
            response = operation["responses"].get(status)
            assert response is not None, f"{method.upper()} {path} lists no {status}"
            assert response["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/Error"
            }, f"{method.upper()} {path} {status}"


@pytest.mark.django_db
def test_a_throttled_answer_is_one_the_schema_lists(clinician, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "user": "1/minute",
        },
    }
    cache.clear()
    client = APIClient()
    client.force_authenticate(clinician)
    try:
        client.get(f"{API}/lots/")
        response = client.get(f"{API}/lots/")

        assert response.status_code == 429
        assert int(response["Retry-After"]) > 0
        assert error_codes(response) == ["throttled"]
        assert "429" in generated_schema()["paths"]["/api/v1/lots/"]["get"]["responses"]
        assert_matches_schema(response, "get", "/api/v1/lots/")
    finally:
        cache.clear()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "schema_path"),
    [
        ("/manufacturers/", "/api/v1/manufacturers/"),
        ("/certificates/", "/api/v1/certificates/"),
        ("/history-imports/", "/api/v1/history-imports/"),
    ],
)
def test_a_body_of_a_type_the_operation_does_not_read_is_a_listed_415(
    quality_manager, path, schema_path
):
    client = APIClient()
    client.force_authenticate(quality_manager)

    response = client.generic("POST", f"{API}{path}", b"kind=x", content_type="text/plain")

    assert response.status_code == 415
    assert error_codes(response) == ["unsupported_media_type"]
    assert "415" in generated_schema()["paths"][schema_path]["post"]["responses"]
    assert_matches_schema(response, "post", schema_path)
