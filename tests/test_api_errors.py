"""Bad input never gets a 500: a sweep over every write endpoint, detail URL and list filter.

Each malformed request must answer 4xx in the one error shape (code and message per problem) and
leave every table as it was, history included.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest
from django.apps import apps
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from lots.models import Certificate, CertificateKind, Lot, LotDonor, LotStatus
from providers.models import Role
from tests.api_helpers import API, error_codes, row_counts
from tests.factories import (
    ClinicFactory,
    DonorFactory,
    LotFactory,
    ManufacturerFactory,
    MembershipFactory,
    PractitionerFactory,
    ProductFactory,
    pdf_bytes,
    store_certificate,
)
from tests.treatments.test_api import client_for, make_site

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]

JSON_WRITES = [
    ("post", "/manufacturers/"),
    ("patch", "/manufacturers/{manufacturer}/"),
    ("post", "/clinics/"),
    ("patch", "/clinics/{clinic}/"),
    ("post", "/clinics/{clinic}/contacts/"),
    ("post", "/practitioners/"),
    ("post", "/practitioners/{practitioner}/licences/"),
    ("post", "/products/"),
    ("put", "/products/{product}/authorisations/DE/"),
    ("post", "/donors/"),
    ("post", "/donors/{donor}/marker-results/"),
    ("post", "/donors/{donor}/eligibility/"),
    ("post", "/lots/"),
    ("post", "/lots/{lot}/donors/"),
    ("post", "/lots/{lot}/qc-results/"),
    ("post", "/lots/{lot}/release/"),
    ("post", "/lots/{lot}/reject/"),
    ("post", "/lots/{lot}/hold/"),
]

DETAIL_READS = [
    "/manufacturers/{manufacturer}/",
    "/clinics/{clinic}/",
    "/practitioners/{practitioner}/",
    "/products/{product}/",
    "/donors/{donor}/",
    "/lots/{lot}/",
    "/lots/{lot}/release-check/",
    "/certificates/{certificate}/",
    "/certificates/{certificate}/file/",
]

# Every field name any write endpoint reads.
FIELDS = """legal_name country registration_number reason name address jurisdiction contacts email
profession user number valid_from valid_until manufacturer source_kind tissue permitted_routes
storage_min_celsius storage_max_celsius gtin status note code collection_date specimen_date
testing_laboratory isbt_din birth_mother_tested marker result tested_on laboratory test_method
eligibility password product lot_number manufactured_on expires_on quantity unit regulatory_basis
regulatory_number donors donor test numeric_value outcome method meaning kind issuer lot
supersedes""".split()

# Values that are wrong for most fields, or that PostgreSQL would refuse if they reached it.
POISON: dict[str, Any] = {
    "nul": "x\x00y",
    "huge": 10**30,
    "huge_negative": -(10**30),
    "negative": -1,
    "float": 1.5,
    "overflowing_float": 1e308,
    "list": ["a", 1],
    "object": {"a": 1},
    "null": None,
    "true": True,
    "empty": "",
    "lone_surrogate": "\ud800",
    "unicode": "💉 Ünïcødé 漢字",
    "long_digits": "9" * 5000,
    "impossible_date": "2025-02-30",
}

RAW_BODIES: dict[str, tuple[str, bytes]] = {
    "malformed_json": ("application/json", b'{"legal_name": '),
    "empty_body": ("application/json", b""),
    "json_null": ("application/json", b"null"),
    "json_list": ("application/json", b'[{"name": "x"}]'),
    "json_empty_list": ("application/json", b"[]"),
    "json_string": ("application/json", b'"text"'),
    "json_number": ("application/json", b"42"),
    "json_nan": ("application/json", b'{"quantity": NaN}'),
    "json_infinity": ("application/json", b'{"quantity": 1e999, "numeric_value": 1e999}'),
    "not_utf8": ("application/json", b'{"name": "\xff\xfe"}'),
    "nested_too_deep": ("application/json", b"[" * 100_000 + b"]" * 100_000),
    "text_plain": ("text/plain", b"hello"),
    "form_encoded": ("application/x-www-form-urlencoded", b"name=x&reason=y"),
    "xml": ("application/xml", b"<lot><quantity>1</quantity></lot>"),
}


@pytest.fixture
def world(quality_manager):
    manufacturer = ManufacturerFactory()
    product = ProductFactory(manufacturer=manufacturer)
    donor = DonorFactory()
    lot = LotFactory(product=product, created_by=quality_manager)
    LotDonor.objects.create(lot=lot, donor=donor)
    certificate = store_certificate(
        kind=CertificateKind.COA, manufacturer=manufacturer, lot=lot, uploaded_by=quality_manager
    )
    return {
        "manufacturer": manufacturer.pk,
        "clinic": ClinicFactory().pk,
        "practitioner": PractitionerFactory().pk,
        "product": product.pk,
        "donor": donor.pk,
        "lot": lot.pk,
        "certificate": certificate.pk,
    }


def assert_refused_and_unchanged(response: Any, before: dict[str, int]) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:500])
    error_codes(response)
    assert row_counts() == before


def send(client: Any, method: str, url: str, body: bytes, content_type: str) -> Any:
    return getattr(client, method)(url, data=body, content_type=content_type)


@pytest.mark.parametrize("body_name", sorted(RAW_BODIES))
@pytest.mark.parametrize(("method", "path"), JSON_WRITES)
def test_malformed_bodies_are_refused_without_a_change(qm_client, world, method, path, body_name):
    content_type, body = RAW_BODIES[body_name]
    before = row_counts()
    response = send(qm_client, method, API + path.format(**world), body, content_type)
    assert_refused_and_unchanged(response, before)
    if body_name in ("text_plain", "form_encoded", "xml"):
        assert response.status_code == 415


@pytest.mark.parametrize("value_name", sorted(POISON))
@pytest.mark.parametrize(("method", "path"), JSON_WRITES)
def test_wrong_values_in_every_field_are_refused_without_a_change(
    qm_client, world, method, path, value_name
):
    # Encoded by hand: ensure_ascii keeps a lone surrogate as the escape a client would send.
    body = json.dumps(dict.fromkeys(FIELDS, POISON[value_name])).encode()
    before = row_counts()
    response = send(qm_client, method, API + path.format(**world), body, "application/json")
    assert_refused_and_unchanged(response, before)


LOT_FIELDS = ["product", "lot_number", "manufactured_on", "expires_on", "quantity", "unit",
              "regulatory_basis", "regulatory_number", "donors"]  # fmt: skip


@pytest.mark.parametrize("value_name", sorted(POISON))
@pytest.mark.parametrize("field", LOT_FIELDS)
def test_one_wrong_value_in_an_otherwise_valid_lot_is_accepted_or_refused_cleanly(
    qm_client, world, field, value_name
):
    valid = {
        "product": world["product"],
        "lot_number": "SWEEP-1",
        "manufactured_on": "2025-01-01",
        "expires_on": "2026-01-01",
        "quantity": 10,
        "unit": "vial",
        "regulatory_basis": "ind",
        "regulatory_number": "IND 1",
        "donors": [world["donor"]],
    }
    body = json.dumps({**valid, field: POISON[value_name]}).encode()
    before = row_counts()
    response = send(qm_client, "post", f"{API}/lots/", body, "application/json")
    if response.status_code == 201:
        # A few values are fine for some fields: a unicode regulatory number, an empty donor list.
        assert Lot.objects.filter(pk=response.json()["id"]).exists()
    else:
        assert_refused_and_unchanged(response, before)


@pytest.mark.parametrize("unknown_id", [0, 987654321, 2**31, 2**63, 10**30])
@pytest.mark.parametrize(("method", "path"), [(m, p) for m, p in JSON_WRITES if "{" in p])
def test_writes_to_unknown_ids_are_404_in_the_error_shape(
    qm_client, world, method, path, unknown_id
):
    url = API + path.format(**dict.fromkeys(world, unknown_id))
    before = row_counts()
    response = send(qm_client, method, url, b'{"reason": "r"}', "application/json")
    assert response.status_code == 404
    assert error_codes(response) == ["not_found"]
    assert row_counts() == before


@pytest.mark.parametrize("unknown_id", ["0", "987654321", str(2**63), str(10**30), "-1", "abc"])
@pytest.mark.parametrize("path", DETAIL_READS)
def test_reads_of_unknown_ids_are_404_in_the_error_shape(qm_client, world, path, unknown_id):
    response = qm_client.get(API + path.format(**dict.fromkeys(world, unknown_id)))
    assert response.status_code == 404
    assert error_codes(response) == ["not_found"]


@pytest.mark.parametrize("path", DETAIL_READS)
def test_detail_reads_answer_for_the_existing_objects(qm_client, world, path):
    # The sweep's fixture objects are real: the same URLs answer 200 (the PDF is not on disk
    # for the factory-made certificate, so its file answers a JSON 404 instead).
    response = qm_client.get(API + path.format(**world))
    if path.endswith("/file/"):
        assert error_codes(response) == ["certificate_file_missing"]
    else:
        assert response.status_code == 200, response.content


LIST_FILTERS = {
    "/manufacturers/": ["country", "name"],
    "/clinics/": ["jurisdiction"],
    "/practitioners/": ["name", "profession"],
    "/products/": ["manufacturer", "source_kind", "tissue", "gtin"],
    "/markers/": [],
    "/qc-tests/": [],
    "/donors/": ["eligibility", "tissue", "code"],
    "/lots/": [
        "status",
        "product",
        "manufacturer",
        "lot_number",
        "expires_before",
        "expires_after",
        "expired",
    ],
    "/certificates/": ["kind", "manufacturer", "lot", "current"],
    "/audit/contact-reads/": ["clinic", "user", "patient", "at_after", "at_before"],
}
QUERY_POISON = ["x\x00y", str(10**30), "-1", "abc", "2025-02-30", "9" * 5000, "💉", ""]


@pytest.mark.parametrize("value", QUERY_POISON)
@pytest.mark.parametrize("path", sorted(LIST_FILTERS))
def test_list_filters_and_paging_never_fail_on_bad_values(qm_client, world, path, value):
    params = dict.fromkeys([*LIST_FILTERS[path], "limit", "offset"], value)
    response = qm_client.get(API + path, params)
    assert response.status_code in (200, 400), response.content[:500]
    if response.status_code == 400:
        error_codes(response)


@pytest.mark.parametrize("path", sorted(LIST_FILTERS))
def test_list_paging_beyond_the_end_is_an_empty_page(qm_client, world, path):
    response = qm_client.get(API + path, {"offset": str(10**30), "limit": str(10**30)})
    assert response.status_code == 200
    assert response.json()["results"] == []


# ---------------------------------------------------------------------------------------------
# The multipart certificate upload


def certificate_form(world: dict[str, int], **overrides: Any) -> dict[str, Any]:
    return {
        "kind": "coa",
        "lot": world["lot"],
        "issuer": "Eurofins",
        "number": "COA-SWEEP",
        "valid_from": "2025-01-01",
        "file": SimpleUploadedFile("coa.pdf", pdf_bytes("sweep"), content_type="application/pdf"),
        **overrides,
    }


CERTIFICATE_FIELDS = ["kind", "lot", "manufacturer", "issuer", "number", "valid_from",
                      "valid_until", "supersedes", "reason"]  # fmt: skip
FORM_POISON = ["x\x00y", str(10**30), "-1", "abc", "2025-02-30", "9" * 5000]


@pytest.mark.parametrize("value", FORM_POISON)
@pytest.mark.parametrize("field", CERTIFICATE_FIELDS)
def test_certificate_upload_with_a_wrong_value_is_accepted_or_refused_cleanly(
    qm_client, world, field, value
):
    before = row_counts()
    response = qm_client.post(
        f"{API}/certificates/", certificate_form(world, **{field: value}), format="multipart"
    )
    if response.status_code == 201:
        # Text fields take any short text ("abc" is a fine certificate number); never NUL or
        # more than the column holds.
        assert "\x00" not in value and len(value) < 100
        assert Certificate.objects.filter(pk=response.json()["id"]).exists()
    else:
        assert_refused_and_unchanged(response, before)


@pytest.mark.parametrize(
    "upload",
    [
        SimpleUploadedFile("empty.pdf", b"", content_type="application/pdf"),
        SimpleUploadedFile(
            "fake.pdf", b"%PDF-1.7 but nothing else", content_type="application/pdf"
        ),
        SimpleUploadedFile("image.gif", b"GIF89a", content_type="image/gif"),
        "not a file at all",
    ],
    ids=["empty", "damaged_pdf", "gif", "text_instead_of_file"],
)
def test_certificate_upload_with_a_bad_file_changes_nothing(qm_client, world, upload):
    before = row_counts()
    response = qm_client.post(
        f"{API}/certificates/", certificate_form(world, file=upload), format="multipart"
    )
    assert_refused_and_unchanged(response, before)


@pytest.mark.parametrize("body_name", sorted(RAW_BODIES))
def test_certificate_upload_with_a_non_multipart_body_changes_nothing(qm_client, body_name):
    content_type, body = RAW_BODIES[body_name]
    before = row_counts()
    response = send(qm_client, "post", f"{API}/certificates/", body, content_type)
    assert_refused_and_unchanged(response, before)


def test_certificate_upload_with_a_broken_multipart_body_changes_nothing(qm_client):
    before = row_counts()
    response = send(
        qm_client,
        "post",
        f"{API}/certificates/",
        b'--xyz\r\nContent-Disposition: form-data; name="kind"\r\n\r\ncoa',
        "multipart/form-data; boundary=xyz",
    )
    assert_refused_and_unchanged(response, before)


def test_an_unknown_api_path_is_a_404_in_the_error_shape(qm_client):
    response = qm_client.get(f"{API}/no-such-thing/")
    assert response.status_code == 404
    assert error_codes(response) == ["not_found"]


@pytest.mark.parametrize("path", ["/traces/forward/", "/traces/backward/", "/audit/events/export/"])
@pytest.mark.parametrize(
    ("query", "headers"), [("?format=csv", {}), ("", {"HTTP_ACCEPT": "text/csv"})]
)
def test_options_on_a_view_that_streams_csv_answers_json_metadata(auditor, path, query, headers):
    client = APIClient()
    client.force_authenticate(auditor)
    response = client.options(f"{API}{path}{query}", **headers)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "text/csv" in response.json()["renders"]


@pytest.mark.parametrize(
    "path",
    [
        "/traces/forward/?lot=1",
        "/traces/backward/?patient=1",
        "/audit/events/export/?at_after=2025-01-01T00:00:00Z&at_before=2025-01-02T00:00:00Z",
    ],
)
@pytest.mark.parametrize("value", ["xml", "AAA", "csv2"])
def test_an_unknown_format_parameter_is_a_400_naming_it(auditor, path, value):
    client = APIClient()
    client.force_authenticate(auditor)
    response = client.get(f"{API}{path}&format={value}")
    assert response.status_code == 400, response.content[:300]
    assert response["Content-Type"] == "application/json"
    assert error_codes(response) == ["invalid_choice"]
    assert response.json()["errors"][0]["field"] == "format"


@pytest.mark.parametrize("path", ["/lots/", "/traces/forward/", "/treatments/"])
def test_a_query_with_more_fields_than_django_reads_is_a_400_in_the_error_shape(
    qm_client, settings, path
):
    query = "&".join(["lot=1"] * (settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1))
    response = qm_client.get(f"{API}{path}?{query}")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert error_codes(response) == ["too_many_fields"]


def test_a_malformed_request_outside_the_api_keeps_djangos_page(client, settings):
    query = "&".join(["next=/"] * (settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1))
    response = client.get(f"/admin/login/?{query}")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
@pytest.mark.parametrize("path", ["/no-such-thing/", "/lots/abc/hold/", "/recalls/1.5/close/"])
def test_a_write_to_an_unknown_api_path_is_a_404_in_the_error_shape_not_a_csrf_page(
    quality_manager, method, path
):
    # Django's CSRF check guards forms signed in by a session cookie; an API path that names
    # no endpoint changes nothing, so the caller learns it is unknown, in the one error shape.
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(quality_manager)
    response = getattr(client, method)(API + path, {"reason": "x"}, format="json")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert error_codes(response) == ["not_found"]


@pytest.mark.parametrize(("method", "path"), [*JSON_WRITES, ("post", "/certificates/")])
def test_a_method_an_endpoint_does_not_offer_is_405_in_the_error_shape(
    qm_client, world, method, path
):
    response = qm_client.delete(API + path.format(**world))
    assert response.status_code == 405
    assert error_codes(response) == ["method_not_allowed"]


@pytest.mark.parametrize("path", sorted(LIST_FILTERS))
def test_list_filters_with_bytes_that_are_not_utf8_never_fail(qm_client, path):
    # %ED%A0%80 is a UTF-16 surrogate encoded as if it were UTF-8: not valid UTF-8.
    query = "&".join(f"{name}=%ED%A0%80%00" for name in [*LIST_FILTERS[path], "limit"])
    response = qm_client.get(f"{API}{path}?{query}")
    assert response.status_code in (200, 400), response.content[:500]
    if response.status_code == 400:
        error_codes(response)


# ---------------------------------------------------------------------------------------------
# Clinic work: stock, patients, treatments, adverse events, scans and traces.
#
# The caller is a clinic administrator who is also a clinician there, so a body that passes its
# serializer reaches the service's rules rather than stopping at a role check.

CLINIC_APPS = ("stock", "treatments")


def clinic_row_counts() -> dict[str, int]:
    """row_counts() and the stock and treatment tables (history events included)."""
    tables = sorted(
        model._meta.db_table
        for label in CLINIC_APPS
        for model in apps.get_app_config(label).get_models()
        if model._meta.managed and not model._meta.proxy
    )
    # Table names come from the models, never from input.
    sql = " UNION ALL ".join(
        f"SELECT %s, COUNT(*) FROM {connection.ops.quote_name(table)}"  # noqa: S608
        for table in tables
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, tables)
        return {**row_counts(), **dict(cursor.fetchall())}


def assert_clinic_refused_and_unchanged(response: Any, before: dict[str, int]) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:500])
    error_codes(response)
    assert clinic_row_counts() == before


CLINIC_JSON_WRITES = [
    ("post", "/receipts/"),
    ("post", "/stock/transfers/"),
    ("post", "/stock/write-offs/"),
    ("post", "/stock/quarantine-resolutions/"),
    ("post", "/patients/"),
    ("post", "/treatments/"),
    ("post", "/treatments/{treatment}/adverse-events/"),
    ("post", "/scans/resolve/"),
]

CLINIC_DETAIL_READS = [
    "/patients/{patient}/",
    "/patients/{patient}/contact/",
    "/treatments/{treatment}/",
]

CLINIC_FIELDS = """clinic lot quantity decision package_intact label_readable transport_min_celsius
transport_max_celsius storage_location received_at notes from_clinic to_clinic reason kind state
accept reference contact patient practitioner performed_at indication route anatomical_site lines
consent onset_on description results_in_death life_threatening hospitalisation disability
intervention_required scan""".split()


@pytest.fixture
def clinic_world(quality_manager):
    lot = LotFactory(status=LotStatus.RELEASED, created_by=quality_manager)
    site = make_site(quality_manager, lot=lot)
    treatment = site.record()
    MembershipFactory(user=site.administrator, role=Role.CLINICIAN, clinic=site.clinic)
    ids = {
        "clinic": site.clinic.pk,
        "lot": lot.pk,
        "patient": site.patient.pk,
        "practitioner": site.practitioner.pk,
        "treatment": treatment.pk,
        "consent_text": site.consent_text.pk,
    }
    return site, ids


@pytest.fixture
def staff_client(clinic_world):
    return client_for(clinic_world[0].administrator)


@pytest.mark.parametrize("body_name", sorted(RAW_BODIES))
@pytest.mark.parametrize(("method", "path"), CLINIC_JSON_WRITES)
def test_clinic_writes_refuse_malformed_bodies_without_a_change(
    staff_client, clinic_world, method, path, body_name
):
    content_type, body = RAW_BODIES[body_name]
    before = clinic_row_counts()
    url = API + path.format(**clinic_world[1])
    response = send(staff_client, method, url, body, content_type)
    assert_clinic_refused_and_unchanged(response, before)
    if body_name in ("text_plain", "form_encoded", "xml"):
        assert response.status_code == 415


@pytest.mark.parametrize("value_name", sorted(POISON))
@pytest.mark.parametrize(("method", "path"), CLINIC_JSON_WRITES)
def test_clinic_writes_refuse_wrong_values_in_every_field_without_a_change(
    staff_client, clinic_world, method, path, value_name
):
    body = json.dumps(dict.fromkeys(CLINIC_FIELDS, POISON[value_name])).encode()
    before = clinic_row_counts()
    url = API + path.format(**clinic_world[1])
    response = send(staff_client, method, url, body, "application/json")
    assert_clinic_refused_and_unchanged(response, before)


def valid_treatment(ids: dict[str, int]) -> dict[str, Any]:
    now = timezone.now()
    return {
        "clinic": ids["clinic"],
        "patient": ids["patient"],
        "practitioner": ids["practitioner"],
        "performed_at": (now - datetime.timedelta(minutes=5)).isoformat(),
        "indication": "skin_rejuvenation",
        "route": "topical",
        "anatomical_site": "face",
        "notes": "",
        "lines": [{"lot": ids["lot"], "units": 1}],
        "consent": {
            "consent_text": ids["consent_text"],
            "taken_at": (now - datetime.timedelta(minutes=10)).isoformat(),
        },
    }


def valid_receipt(ids: dict[str, int]) -> dict[str, Any]:
    return {
        "clinic": ids["clinic"],
        "lot": ids["lot"],
        "quantity": 1,
        "decision": "accept",
        "package_intact": True,
        "label_readable": True,
        "transport_min_celsius": "-75.0",
        "transport_max_celsius": "-65.0",
        "storage_location": "Freezer 1",
        "received_at": None,
        "notes": "",
    }


# Where a wrong value can hide inside an otherwise valid body: top-level fields and the nested
# line, consent and contact fields.
TREATMENT_PATHS = [
    ("clinic",),
    ("patient",),
    ("practitioner",),
    ("performed_at",),
    ("indication",),
    ("route",),
    ("anatomical_site",),
    ("notes",),
    ("lines",),
    ("lines", 0),
    ("lines", 0, "lot"),
    ("lines", 0, "units"),
    ("lines", 0, "scan"),
    ("consent",),
    ("consent", "consent_text"),
    ("consent", "taken_at"),
]


def with_value(body: Any, path: tuple[Any, ...], value: Any) -> Any:
    body = json.loads(json.dumps(body))
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return body


@pytest.mark.parametrize("value_name", sorted(POISON))
@pytest.mark.parametrize("path", TREATMENT_PATHS, ids=lambda p: ".".join(map(str, p)))
def test_one_wrong_value_in_an_otherwise_valid_treatment_is_accepted_or_refused_cleanly(
    staff_client, clinic_world, path, value_name
):
    body = json.dumps(with_value(valid_treatment(clinic_world[1]), path, POISON[value_name]))
    before = clinic_row_counts()
    response = send(staff_client, "post", f"{API}/treatments/", body.encode(), "application/json")
    if response.status_code == 201:
        # A few values are fine for some fields: unicode notes, no consent at a clinic that
        # asks for none (this one does, so never that).
        assert path in {("notes",), ("anatomical_site",)}, (path, value_name)
    else:
        assert_clinic_refused_and_unchanged(response, before)


@pytest.mark.parametrize("value_name", sorted(POISON))
@pytest.mark.parametrize(
    "field",
    ["clinic", "lot", "quantity", "decision", "package_intact", "label_readable",
     "transport_min_celsius", "transport_max_celsius", "storage_location", "received_at",
     "notes"],
)  # fmt: skip
def test_one_wrong_value_in_an_otherwise_valid_receipt_is_accepted_or_refused_cleanly(
    staff_client, clinic_world, field, value_name
):
    body = json.dumps({**valid_receipt(clinic_world[1]), field: POISON[value_name]}).encode()
    before = clinic_row_counts()
    response = send(staff_client, "post", f"{API}/receipts/", body, "application/json")
    if response.status_code == 201:
        # Free text (a unicode storage location or note, an empty note), the optional arrival
        # time left empty, and `true` for a check that passed are fine.
        value = POISON[value_name]
        assert field in {"storage_location", "notes", "received_at"} or (
            field in {"package_intact", "label_readable"} and value is True
        ), (field, value_name)
    else:
        assert_clinic_refused_and_unchanged(response, before)


@pytest.mark.parametrize(
    "field", ["full_name", "date_of_birth", "phone", "email", "postal_address"]
)
@pytest.mark.parametrize("value_name", sorted(POISON))
def test_one_wrong_contact_value_is_accepted_or_refused_cleanly(
    staff_client, clinic_world, field, value_name
):
    contact = {"full_name": "A Person", field: POISON[value_name]}
    body = {"clinic": clinic_world[1]["clinic"], "reference": "SWEEP-1", "contact": contact}
    before = clinic_row_counts()
    response = send(
        staff_client, "post", f"{API}/patients/", json.dumps(body).encode(), "application/json"
    )
    if response.status_code == 201:
        assert field != "date_of_birth" or POISON[value_name] is None, value_name
    else:
        assert_clinic_refused_and_unchanged(response, before)


@pytest.mark.parametrize("unknown_id", [0, 987654321, 2**31, 2**63, 10**30])
def test_an_adverse_event_for_an_unknown_treatment_is_a_404(staff_client, unknown_id):
    before = clinic_row_counts()
    response = send(
        staff_client,
        "post",
        f"{API}/treatments/{unknown_id}/adverse-events/",
        b'{"onset_on": "2025-01-01", "description": "x"}',
        "application/json",
    )
    assert response.status_code == 404
    assert error_codes(response) == ["not_found"]
    assert clinic_row_counts() == before


@pytest.mark.parametrize("unknown_id", ["0", "987654321", str(2**63), str(10**30), "-1", "abc"])
@pytest.mark.parametrize("path", CLINIC_DETAIL_READS)
def test_clinic_reads_of_unknown_ids_are_404(staff_client, clinic_world, path, unknown_id):
    response = staff_client.get(API + path.format(**dict.fromkeys(clinic_world[1], unknown_id)))
    assert response.status_code == 404
    assert error_codes(response) == ["not_found"]


@pytest.mark.parametrize("path", CLINIC_DETAIL_READS)
def test_clinic_detail_reads_answer_for_the_existing_objects(staff_client, clinic_world, path):
    response = staff_client.get(API + path.format(**clinic_world[1]))
    assert response.status_code == 200, response.content


CLINIC_LIST_FILTERS = {
    "/receipts/": ["clinic", "lot", "decision", "received_after", "received_before"],
    "/stock/": ["clinic", "lot", "product", "state"],
    "/stock/movements/": ["clinic", "lot", "kind", "state"],
    "/patients/": ["clinic", "reference"],
    "/consent-texts/": ["code"],
    "/treatments/": [
        "clinic",
        "patient",
        "practitioner",
        "lot",
        "performed_after",
        "performed_before",
    ],
    "/adverse-events/": ["lot", "product", "clinic", "serious"],
}


@pytest.mark.parametrize("value", QUERY_POISON)
@pytest.mark.parametrize("path", sorted(CLINIC_LIST_FILTERS))
def test_clinic_list_filters_and_paging_never_fail_on_bad_values(
    staff_client, clinic_world, path, value
):
    params = dict.fromkeys([*CLINIC_LIST_FILTERS[path], "limit", "offset"], value)
    response = staff_client.get(API + path, params)
    assert response.status_code in (200, 400), response.content[:500]
    if response.status_code == 400:
        error_codes(response)


@pytest.mark.parametrize("path", sorted(CLINIC_LIST_FILTERS))
def test_clinic_list_paging_beyond_the_end_is_an_empty_page(staff_client, clinic_world, path):
    response = staff_client.get(API + path, {"offset": str(10**30), "limit": str(10**30)})
    assert response.status_code == 200
    assert response.json()["results"] == []


@pytest.mark.parametrize("path", sorted(CLINIC_LIST_FILTERS))
def test_clinic_list_filters_with_bytes_that_are_not_utf8_never_fail(staff_client, path):
    query = "&".join(f"{name}=%ED%A0%80%00" for name in [*CLINIC_LIST_FILTERS[path], "limit"])
    response = staff_client.get(f"{API}{path}?{query}")
    assert response.status_code in (200, 400), response.content[:500]
    if response.status_code == 400:
        error_codes(response)


# Date and time values that parse, but that PostgreSQL cannot take as they stand (it reads UTC
# offsets up to 15:59:59 in whole seconds) or that leave Python's years 1 to 9999 once turned to
# UTC or a clinic's local time. Each is a 400 naming the field, never a 500.
UNSTORABLE_DATETIMES = {
    "2025-01-01T00:00:00+17:00": "datetime_offset_out_of_range",
    "2025-01-01T00:00:00-16:00": "datetime_offset_out_of_range",
    "2025-01-01T00:00:00+05:30:15.5": "datetime_offset_out_of_range",
    "0001-01-01T00:00:00+05:00": "datetime_out_of_range",
    "0001-01-01T00:00:00Z": "datetime_out_of_range",
    "9999-12-31T23:59:59-05:00": "datetime_out_of_range",
    "9999-12-31T23:59:59Z": "datetime_out_of_range",
}
DATETIME_FILTERS = [
    ("/treatments/", "performed_after"),
    ("/treatments/", "performed_before"),
    ("/audit/contact-reads/", "at_after"),
    ("/audit/contact-reads/", "at_before"),
]


@pytest.mark.parametrize(("value", "code"), sorted(UNSTORABLE_DATETIMES.items()))
@pytest.mark.parametrize(("path", "name"), DATETIME_FILTERS)
def test_date_time_filters_refuse_values_postgresql_cannot_take(
    staff_client, clinic_world, path, name, value, code
):
    response = staff_client.get(API + path, {name: value})
    assert response.status_code == 400, response.content[:500]
    assert error_codes(response) == [code]
    assert response.json()["errors"][0]["field"] == name


@pytest.mark.parametrize(("value", "code"), sorted(UNSTORABLE_DATETIMES.items()))
@pytest.mark.parametrize("path", ["/audit/events/", "/audit/events/export/"])
@pytest.mark.parametrize("name", ["at_after", "at_before"])
def test_audit_search_refuses_date_times_postgresql_cannot_take(auditor, path, name, value, code):
    client = APIClient()
    client.force_authenticate(auditor)
    params = {"at_after": "2025-01-01T00:00:00Z", "at_before": "2025-01-02T00:00:00Z", name: value}
    response = client.get(API + path, params)
    assert response.status_code == 400, response.content[:500]
    assert error_codes(response) == [code]
    assert response.json()["errors"][0]["field"] == name


@pytest.mark.parametrize(
    "value",
    ["2025-01-01T00:00:00+15:59", "2025-01-01T00:00:00-15:59:59", "0001-01-02T00:00:00Z"],
)
@pytest.mark.parametrize(("path", "name"), DATETIME_FILTERS)
def test_date_time_filters_take_every_offset_postgresql_can(
    staff_client, clinic_world, path, name, value
):
    response = staff_client.get(API + path, {name: value})
    assert response.status_code == 200, response.content[:500]


@pytest.mark.parametrize(("value", "code"), sorted(UNSTORABLE_DATETIMES.items()))
@pytest.mark.parametrize(
    "path", [("performed_at",), ("consent", "taken_at")], ids=lambda p: ".".join(p)
)
def test_treatment_times_postgresql_cannot_take_are_refused_naming_the_field(
    staff_client, clinic_world, path, value, code
):
    body = json.dumps(with_value(valid_treatment(clinic_world[1]), path, value)).encode()
    before = clinic_row_counts()
    response = send(staff_client, "post", f"{API}/treatments/", body, "application/json")
    assert_clinic_refused_and_unchanged(response, before)
    assert response.status_code == 400
    assert error_codes(response) == [code]
    assert response.json()["errors"][0]["field"] == ".".join(path)


@pytest.mark.parametrize(("value", "code"), sorted(UNSTORABLE_DATETIMES.items()))
def test_a_receipt_time_postgresql_cannot_take_is_refused_naming_the_field(
    staff_client, clinic_world, value, code
):
    body = json.dumps({**valid_receipt(clinic_world[1]), "received_at": value}).encode()
    before = clinic_row_counts()
    response = send(staff_client, "post", f"{API}/receipts/", body, "application/json")
    assert_clinic_refused_and_unchanged(response, before)
    assert response.status_code == 400
    assert error_codes(response) == [code]
    assert response.json()["errors"][0]["field"] == "received_at"


TRACE_PARAMETERS = {
    "/traces/forward/": [
        "lot",
        "donor",
        "product",
        "manufacturer",
        "manufactured_from",
        "manufactured_to",
        "limit",
        "offset",
    ],
    "/traces/backward/": ["patient", "treatment"],
}


@pytest.mark.parametrize("response_format", ["json", "csv"])
@pytest.mark.parametrize("value", [*QUERY_POISON, "1,,2", ",", "1," * 2000])
@pytest.mark.parametrize("path", sorted(TRACE_PARAMETERS))
def test_trace_parameters_never_fail_on_bad_values(
    staff_client, clinic_world, path, value, response_format
):
    params = {**dict.fromkeys(TRACE_PARAMETERS[path], value), "format": response_format}
    response = staff_client.get(API + path, params)
    assert response.status_code in (200, 400, 404), response.content[:500]
    if response.status_code != 200:
        assert response["Content-Type"] == "application/json"
        error_codes(response)


@pytest.mark.parametrize("path", sorted(TRACE_PARAMETERS))
def test_trace_parameters_with_bytes_that_are_not_utf8_never_fail(staff_client, path):
    query = "&".join(f"{name}=%ED%A0%80%00" for name in TRACE_PARAMETERS[path])
    response = staff_client.get(f"{API}{path}?{query}")
    assert response.status_code == 400, response.content[:500]
    error_codes(response)


@pytest.mark.parametrize(("method", "path"), CLINIC_JSON_WRITES)
def test_a_method_a_clinic_endpoint_does_not_offer_is_405(staff_client, clinic_world, method, path):
    response = staff_client.delete(API + path.format(**clinic_world[1]))
    assert response.status_code == 405
    assert error_codes(response) == ["method_not_allowed"]


# ---------------------------------------------------------------------------------------------
# Recalls: every write, detail and file endpoint. The caller is a network quality manager, who
# may make every one of these writes, so a body that passes its serializer reaches the service.

RECALL_JSON_WRITES = [
    ("post", "/recalls/"),
    ("post", "/recalls/{recall}/widen/"),
    ("post", "/recalls/{recall}/acknowledgements/"),
    ("post", "/recalls/{recall}/dispositions/"),
    ("post", "/recalls/{recall}/contact-attempts/"),
    ("post", "/recalls/{recall}/close/"),
]

RECALL_READS = [
    "/recalls/{recall}/",
    "/recalls/{recall}/effectiveness/",
    "/recalls/{recall}/patients/?clinic={clinic}",
    "/recalls/{recall}/exposures.csv",
    "/recalls/{recall}/notices.csv",
    "/recalls/{recall}/report.pdf",
]

RECALL_FIELDS = """recall_class depth reason hazard instructions is_drill password scope clinic name
lot kind quantity patient outcome note override""".split()


@pytest.fixture
def recall_world(quality_manager):
    """One clinic that holds stock of a lot and treated one patient with it, and the recall."""
    from tests.factories import clinic_ready, receive, released_lot, treat
    from tests.recalls.scenario import World, open_recall

    lot = released_lot(created_by=quality_manager)
    site = clinic_ready()
    receive(site, lot, 2)
    treat(site, lot, 1)
    recall = open_recall(World(quality_manager, lot, site, site, site.patient))
    return {
        "recall": recall.pk,
        "clinic": site.clinic.pk,
        "lot": lot.pk,
        "patient": site.patient.pk,
    }


def assert_recall_refused_and_unchanged(response: Any, before: dict[str, int]) -> None:
    from tests.recalls.scenario import all_row_counts

    assert 400 <= response.status_code < 500, (response.status_code, response.content[:500])
    error_codes(response)
    assert all_row_counts() == before


def recall_row_counts() -> dict[str, int]:
    from tests.recalls.scenario import all_row_counts

    return all_row_counts()


@pytest.mark.parametrize("body_name", sorted(RAW_BODIES))
@pytest.mark.parametrize(("method", "path"), RECALL_JSON_WRITES)
def test_recall_writes_refuse_malformed_bodies_without_a_change(
    qm_client, recall_world, method, path, body_name
):
    content_type, body = RAW_BODIES[body_name]
    before = recall_row_counts()
    response = send(qm_client, method, API + path.format(**recall_world), body, content_type)
    assert_recall_refused_and_unchanged(response, before)
    if body_name in ("text_plain", "form_encoded", "xml"):
        assert response.status_code == 415


@pytest.mark.parametrize("value_name", sorted(POISON))
@pytest.mark.parametrize(("method", "path"), RECALL_JSON_WRITES)
def test_recall_writes_refuse_wrong_values_in_every_field_without_a_change(
    qm_client, recall_world, method, path, value_name
):
    body = json.dumps(dict.fromkeys(RECALL_FIELDS, POISON[value_name])).encode()
    before = recall_row_counts()
    response = send(qm_client, method, API + path.format(**recall_world), body, "application/json")
    assert_recall_refused_and_unchanged(response, before)


@pytest.mark.parametrize("value_name", sorted(POISON))
@pytest.mark.parametrize(
    "field",
    ["recall_class", "depth", "reason", "hazard", "instructions", "is_drill", "password", "scope"],
)
def test_one_wrong_value_in_an_otherwise_valid_recall_is_accepted_or_refused_cleanly(
    qm_client, quality_manager, field, value_name
):
    from recalls.models import Recall
    from tests.factories import PASSWORD, released_lot

    lot = released_lot(created_by=quality_manager)
    valid = {
        "recall_class": "I",
        "depth": "clinic",
        "reason": "Sterility failure",
        "hazard": "Infection",
        "instructions": "",
        "is_drill": False,
        "password": PASSWORD,
        "scope": {"lots": [lot.pk]},
    }
    body = json.dumps({**valid, field: POISON[value_name]}).encode()
    before = recall_row_counts()
    response = send(qm_client, "post", f"{API}/recalls/", body, "application/json")
    if response.status_code == 201:
        # Unicode text is a fine reason; `true` makes a drill.
        assert Recall.objects.filter(pk=response.json()["id"]).exists()
    else:
        assert_recall_refused_and_unchanged(response, before)


@pytest.mark.parametrize("unknown_id", [0, 987654321, 2**31, 2**63, 10**30])
@pytest.mark.parametrize(("method", "path"), [(m, p) for m, p in RECALL_JSON_WRITES if "{" in p])
def test_recall_writes_to_unknown_recalls_are_404(
    qm_client, recall_world, method, path, unknown_id
):
    url = API + path.format(**{**recall_world, "recall": unknown_id})
    before = recall_row_counts()
    response = send(qm_client, method, url, b'{"reason": "r"}', "application/json")
    assert response.status_code == 404
    assert error_codes(response) == ["not_found"]
    assert recall_row_counts() == before


@pytest.mark.parametrize("unknown_id", ["0", "987654321", str(2**63), str(10**30)])
@pytest.mark.parametrize("path", RECALL_READS)
def test_recall_reads_of_unknown_recalls_are_404_in_json(qm_client, recall_world, path, unknown_id):
    response = qm_client.get(API + path.format(**{**recall_world, "recall": unknown_id}))
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert error_codes(response) == ["not_found"]


@pytest.mark.parametrize("path", RECALL_READS)
def test_recall_reads_answer_for_the_existing_recall(qm_client, recall_world, path):
    assert qm_client.get(API + path.format(**recall_world)).status_code == 200


@pytest.mark.parametrize("value", QUERY_POISON)
def test_recall_list_filters_and_patient_clinic_never_fail_on_bad_values(
    qm_client, recall_world, value
):
    filters = ["status", "recall_class", "depth", "is_drill", "lot", "limit", "offset"]
    for url, params in (
        (f"{API}/recalls/", dict.fromkeys(filters, value)),
        (
            f"{API}/recalls/{recall_world['recall']}/patients/",
            {"clinic": value, "limit": value, "offset": value},
        ),
    ):
        response = qm_client.get(url, params)
        assert response.status_code in (200, 400), response.content[:500]
        if response.status_code == 400:
            error_codes(response)


@pytest.mark.parametrize(("method", "path"), RECALL_JSON_WRITES)
def test_a_method_a_recall_endpoint_does_not_offer_is_405(qm_client, recall_world, method, path):
    response = qm_client.delete(API + path.format(**recall_world))
    assert response.status_code == 405
    assert error_codes(response) == ["method_not_allowed"]


@pytest.mark.django_db(transaction=True)
def test_a_request_aborted_by_a_concurrent_change_is_a_503_to_retry_not_a_500(clinic):
    """PostgreSQL aborts a statement that collides with a concurrent transaction (here a row lock
    taken NOWAIT while another connection holds it: the same family as a deadlock or a
    serialization failure). The client did nothing wrong: it is told to send the request again."""
    import psycopg
    from django.db import OperationalError, transaction

    from common.api import exception_handler
    from providers.models import Clinic

    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    with psycopg.connect(**params) as holder:
        holder.execute("SELECT 1 FROM providers_clinic WHERE id = %s FOR UPDATE", [clinic.pk])
        with pytest.raises(OperationalError) as caught, transaction.atomic():
            list(Clinic.objects.select_for_update(nowait=True).filter(pk=clinic.pk))

    response = exception_handler(caught.value, {})

    assert response is not None and response.status_code == 503
    assert response["Retry-After"] == "1"
    assert response.data == {
        "errors": [
            {
                "code": "concurrent_change_retry",
                "message": "Another change to the same records collided with this one; nothing "
                "was saved. Send the request again.",
                "field": None,
            }
        ]
    }
