"""API tests for products, reference data, donors, lots, the release gate and certificates."""

from __future__ import annotations

import datetime
import hashlib
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from rest_framework.test import APIClient

from common.errors import DomainError
from lots.models import (
    Certificate,
    CertificateKind,
    Donor,
    DonorMarkerResult,
    Eligibility,
    Lot,
    LotDonor,
    LotQcResult,
    LotStatus,
    LotStatusChange,
    Marker,
    MarkerResultValue,
    Product,
    ProductAuthorisation,
    QcOutcome,
    QcTest,
    SourceKind,
    Tissue,
)
from lots.services import product_authorisation_set
from tests.api_helpers import API, assert_list_queries_fixed, error_codes, error_fields
from tests.factories import (
    PASSWORD,
    TODAY,
    DonorFactory,
    LotFactory,
    ManufacturerFactory,
    ProductFactory,
    complete_marker_panel,
    pdf_bytes,
    record_passing_qc,
    releasable_lot,
    store_certificate,
)
from tests.openapi_helpers import assert_matches_schema

# Passwords are incidental here except for signatures, which work the same with any hasher.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def days(n: int) -> datetime.date:
    return TODAY() + datetime.timedelta(days=n)


def signature(meaning: str = "approval", **overrides):
    return {"password": PASSWORD, "meaning": meaning, "reason": "all checks reviewed", **overrides}


# ---------------------------------------------------------------------------------------------
# Products


def product_body(manufacturer, **overrides):
    return {
        "manufacturer": manufacturer.pk,
        "name": "Exosome serum",
        "source_kind": "human",
        "tissue": "adipose",
        "permitted_routes": ["topical", "microneedling"],
        "storage_min_celsius": "-80.0",
        "storage_max_celsius": "-60.0",
        **overrides,
    }


def test_product_create_normalises_the_gtin_and_returns_the_product(qm_client):
    manufacturer = ManufacturerFactory()
    response = qm_client.post(
        f"{API}/products/", product_body(manufacturer, gtin="4006381333931"), format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["gtin"] == "04006381333931"
    assert body["manufacturer"] == {"id": manufacturer.pk, "legal_name": manufacturer.legal_name}
    assert body["permitted_routes"] == ["microneedling", "topical"]
    assert body["authorisations"] == []


def test_product_create_refuses_a_gtin_with_a_bad_check_digit(qm_client):
    response = qm_client.post(
        f"{API}/products/", product_body(ManufacturerFactory(), gtin="4006381333932"), "json"
    )
    assert response.status_code == 400
    assert error_codes(response) == ["gtin_check_digit"]
    assert error_fields(response) == ["gtin"]


def test_product_create_refuses_a_tissue_on_a_synthetic_product(qm_client):
    response = qm_client.post(
        f"{API}/products/",
        product_body(ManufacturerFactory(), source_kind="synthetic", tissue="adipose"),
        format="json",
    )
    assert response.status_code == 400
    assert "product_tissue_mismatch" in error_codes(response)
    assert not Product.objects.exists()


def test_product_create_with_an_unknown_manufacturer_names_the_field(qm_client):
    manufacturer = ManufacturerFactory()
    response = qm_client.post(
        f"{API}/products/",
        {**product_body(manufacturer), "manufacturer": manufacturer.pk + 99},
        "json",
    )
    assert response.status_code == 400
    assert error_codes(response) == ["does_not_exist"]
    assert error_fields(response) == ["manufacturer"]


def test_product_create_refuses_an_unknown_route_naming_its_position(qm_client):
    response = qm_client.post(
        f"{API}/products/",
        product_body(ManufacturerFactory(), permitted_routes=["topical", "oral"]),
        format="json",
    )
    assert response.status_code == 400
    assert error_codes(response) == ["invalid_choice"]
    assert error_fields(response) == ["permitted_routes.1"]


def test_product_create_refuses_an_empty_route_list(qm_client):
    response = qm_client.post(
        f"{API}/products/", product_body(ManufacturerFactory(), permitted_routes=[]), "json"
    )
    assert response.status_code == 400
    assert error_fields(response) == ["permitted_routes"]
    assert not Product.objects.exists()


def test_product_storage_temperatures_beyond_the_column_are_refused(qm_client):
    response = qm_client.post(
        f"{API}/products/",
        product_body(
            ManufacturerFactory(), storage_min_celsius="-100000", storage_max_celsius=1.25
        ),
        format="json",
    )
    assert response.status_code == 400
    assert sorted(error_fields(response)) == ["storage_max_celsius", "storage_min_celsius"]


def test_product_detail_and_list_filters(qm_client):
    acme = ManufacturerFactory()
    serum = ProductFactory(manufacturer=acme, gtin="04006381333931")
    plant = ProductFactory(source_kind=SourceKind.PLANT, tissue="")
    cord = ProductFactory(tissue=Tissue.UMBILICAL_CORD)

    def ids(**params):
        response = qm_client.get(f"{API}/products/", params)
        assert response.status_code == 200, response.content
        return {p["id"] for p in response.json()["results"]}

    assert ids(manufacturer=acme.pk) == {serum.pk}
    assert ids(source_kind="plant") == {plant.pk}
    assert ids(tissue="umbilical_cord") == {cord.pk}
    assert ids(gtin="4006381333931") == {serum.pk}
    assert qm_client.get(f"{API}/products/{serum.pk}/").json()["name"] == serum.name


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"source_kind": "mineral"}, "source_kind"),
        ({"gtin": "12345"}, "gtin"),
        ({"manufacturer": "acme"}, "manufacturer"),
        ({"manufacturer": str(10**30)}, "manufacturer"),
    ],
)
def test_product_list_refuses_bad_filters_naming_them(qm_client, params, field):
    response = qm_client.get(f"{API}/products/", params)
    assert response.status_code == 400
    assert error_fields(response) == [field]


def test_product_authorisation_set_and_replace(qm_client):
    product = ProductFactory()
    url = f"{API}/products/{product.pk}/authorisations/DE/"

    banned = qm_client.put(
        url, {"status": "banned", "note": "BfArM", "reason": "national ban"}, format="json"
    )
    allowed = qm_client.put(url, {"status": "allowed", "reason": "ban lifted"}, format="json")

    assert banned.status_code == 200, banned.content
    assert allowed.json() == {"jurisdiction": "DE", "status": "allowed", "note": ""}
    assert ProductAuthorisation.objects.get(product=product).status == "allowed"
    detail = qm_client.get(f"{API}/products/{product.pk}/").json()
    assert detail["authorisations"] == [{"jurisdiction": "DE", "status": "allowed", "note": ""}]


def test_product_authorisation_needs_a_reason(qm_client):
    product = ProductFactory()
    response = qm_client.put(
        f"{API}/products/{product.pk}/authorisations/DE/",
        {"status": "banned", "reason": " "},
        format="json",
    )
    assert response.status_code == 400
    assert error_codes(response) == ["reason_required"]
    assert not ProductAuthorisation.objects.exists()


@pytest.mark.parametrize(
    ("jurisdiction", "code"),
    [("XX", "jurisdiction_unknown"), ("de", "jurisdiction_invalid"), ("DE-NOPE", "max_length")],
)
def test_product_authorisation_refuses_a_jurisdiction_that_is_not_iso_3166(
    qm_client, jurisdiction, code
):
    product = ProductFactory()
    response = qm_client.put(
        f"{API}/products/{product.pk}/authorisations/{jurisdiction}/",
        {"status": "banned", "reason": "r"},
        format="json",
    )
    assert response.status_code == 400
    assert code in error_codes(response)
    assert "jurisdiction" in error_fields(response)


def test_product_authorisation_set_refuses_a_nul_in_the_jurisdiction(quality_manager):
    with pytest.raises(DomainError) as refused:
        product_authorisation_set(
            actor=quality_manager,
            product=ProductFactory(),
            jurisdiction="D\x00E",
            status="banned",
            reason="r",
        )
    assert refused.value.status == 400


def test_product_authorisation_with_a_nul_in_the_url_is_a_400(qm_client):
    product = ProductFactory()
    response = qm_client.put(
        f"{API}/products/{product.pk}/authorisations/D%00E/",
        {"status": "banned", "reason": "r"},
        format="json",
    )
    assert response.status_code == 400
    assert error_codes(response) == ["null_characters_not_allowed"]
    assert error_fields(response) == ["jurisdiction"]


def test_product_list_runs_a_fixed_number_of_queries(qm_client, django_assert_num_queries):
    def add(n):
        for product in ProductFactory.create_batch(n):
            ProductAuthorisation.objects.create(product=product, jurisdiction="DE", status="banned")

    assert_list_queries_fixed(qm_client, f"{API}/products/", add, django_assert_num_queries)


# ---------------------------------------------------------------------------------------------
# Reference data


def test_markers_list_the_donor_panel_with_required_tissues(auditor):
    body = client_for(auditor).get(f"{API}/markers/").json()
    by_code = {m["code"]: m for m in body["results"]}
    assert body["count"] == Marker.objects.count() > 0
    assert "adipose" in by_code["hbsag"]["required_for_tissues"]
    assert by_code["cmv"]["required_for_tissues"] == ["bone_marrow", "umbilical_cord"]


def test_qc_tests_list_with_their_default_specification(auditor):
    body = client_for(auditor).get(f"{API}/qc-tests/").json()
    by_code = {t["code"]: t for t in body["results"]}
    assert by_code["endotoxin"]["kind"] == "quantitative"
    assert by_code["endotoxin"]["default_specification"]["max_value"] == "0.5000"
    assert by_code["endotoxin"]["default_specification"]["description"] == "<= 0.5000 EU/mL"
    assert by_code["sterility"]["default_specification"]["expected_outcome"] == "not_detected"


def test_markers_list_runs_a_fixed_number_of_queries(qm_client, django_assert_num_queries):
    counter = iter(range(1000))

    def add(n):
        for _ in range(n):
            i = next(counter)
            Marker.objects.create(
                code=f"test-{i}", name=f"Test {i}", required_for_tissues=["other"]
            )

    assert_list_queries_fixed(qm_client, f"{API}/markers/", add, django_assert_num_queries)


def test_qc_tests_list_runs_a_fixed_number_of_queries(qm_client, django_assert_num_queries):
    from lots.models import QcSpecification

    counter = iter(range(1000))

    def add(n):
        for _ in range(n):
            i = next(counter)
            test = QcTest.objects.create(code=f"t-{i}", name=f"T {i}", kind="quantitative")
            QcSpecification.objects.create(test=test, max_value=Decimal(i + 1))

    assert_list_queries_fixed(qm_client, f"{API}/qc-tests/", add, django_assert_num_queries)


# ---------------------------------------------------------------------------------------------
# Donors


def donor_body(**overrides):
    return {
        "code": "DN-000123",
        "tissue": "adipose",
        "collection_date": "2025-03-01",
        "specimen_date": "2025-03-03",
        "testing_laboratory": "Viracor Eurofins",
        **overrides,
    }


def test_donor_create_returns_an_incomplete_donor(qm_client):
    response = qm_client.post(f"{API}/donors/", donor_body(), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["code"], body["eligibility"], body["marker_results"]) == (
        "DN-000123",
        "incomplete",
        [],
    )


def test_donor_create_refuses_a_name_as_code(qm_client):
    response = qm_client.post(f"{API}/donors/", donor_body(code="JANE-DOE"), format="json")
    assert response.status_code == 400
    assert error_codes(response) == ["donor_code_invalid"]
    assert not Donor.objects.exists()


def test_donor_create_refuses_a_specimen_outside_seven_days(qm_client):
    response = qm_client.post(
        f"{API}/donors/", donor_body(specimen_date="2025-04-01"), format="json"
    )
    assert response.status_code == 400
    assert "donor_specimen_out_of_window" in error_codes(response)


def test_donor_marker_result_by_code_and_detail(qm_client):
    donor = DonorFactory()
    response = qm_client.post(
        f"{API}/donors/{donor.pk}/marker-results/",
        {
            "marker": "hbsag",
            "result": "non_reactive",
            "tested_on": "2025-03-03",
            "laboratory": "Viracor Eurofins",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["marker"] == "hbsag"

    detail = qm_client.get(f"{API}/donors/{donor.pk}/").json()
    assert [(r["marker"], r["result"]) for r in detail["marker_results"]] == [
        ("hbsag", "non_reactive")
    ]


def test_donor_marker_result_correction_needs_a_reason(qm_client):
    donor = DonorFactory()
    url = f"{API}/donors/{donor.pk}/marker-results/"
    body = {"marker": "hbsag", "result": "non_reactive", "tested_on": "2025-03-03",
            "laboratory": "Lab"}  # fmt: skip
    assert qm_client.post(url, body, format="json").status_code == 201

    refused = qm_client.post(url, {**body, "result": "reactive"}, format="json")
    corrected = qm_client.post(
        url, {**body, "result": "reactive", "reason": "transcription error"}, format="json"
    )

    assert refused.status_code == 400
    assert error_codes(refused) == ["reason_required"]
    assert corrected.status_code == 201
    assert DonorMarkerResult.objects.get(donor=donor).result == MarkerResultValue.REACTIVE


def test_donor_marker_result_with_an_unknown_marker_code_names_the_field(qm_client):
    donor = DonorFactory()
    response = qm_client.post(
        f"{API}/donors/{donor.pk}/marker-results/",
        {"marker": "no-such", "result": "reactive", "tested_on": "2025-03-03", "laboratory": "L"},
        format="json",
    )
    assert response.status_code == 400
    assert error_codes(response) == ["does_not_exist"]
    assert error_fields(response) == ["marker"]


def test_donor_eligibility_refused_lists_every_missing_marker(qm_client):
    donor = DonorFactory(tissue=Tissue.ADIPOSE)
    response = qm_client.post(
        f"{API}/donors/{donor.pk}/eligibility/",
        {"eligibility": "eligible", "password": PASSWORD, "reason": "panel complete"},
        format="json",
    )
    assert response.status_code == 409
    required = Marker.objects.filter(active=True, required_for_tissues__contains=["adipose"])
    assert error_codes(response) == ["donor_marker_missing"] * required.count()
    donor.refresh_from_db()
    assert donor.eligibility == Eligibility.INCOMPLETE


def test_donor_eligibility_with_a_wrong_password_is_refused(qm_client):
    donor = DonorFactory()
    response = qm_client.post(
        f"{API}/donors/{donor.pk}/eligibility/",
        {"eligibility": "ineligible", "password": "guess", "reason": "reactive"},
        format="json",
    )
    assert response.status_code == 403
    assert error_codes(response) == ["signature_password_invalid"]
    donor.refresh_from_db()
    assert donor.eligibility == Eligibility.INCOMPLETE


def test_donor_eligibility_signed_by_the_quality_manager(qm_client, quality_manager):
    donor = complete_marker_panel(DonorFactory(), decided_by=quality_manager)
    Donor.objects.filter(pk=donor.pk).update(
        eligibility=Eligibility.INCOMPLETE, eligibility_decided_by=None, eligibility_decided_at=None
    )
    response = qm_client.post(
        f"{API}/donors/{donor.pk}/eligibility/",
        {"eligibility": "eligible", "password": PASSWORD, "reason": "panel complete"},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["eligibility"] == "eligible"
    assert body["eligibility_decided_by"] == "qm"
    assert len(body["marker_results"]) > 0


def test_donor_list_filters(qm_client, quality_manager):
    eligible = complete_marker_panel(DonorFactory(), decided_by=quality_manager)
    cord = DonorFactory(tissue=Tissue.UMBILICAL_CORD)
    other = DonorFactory()

    def codes(**params):
        return {d["code"] for d in qm_client.get(f"{API}/donors/", params).json()["results"]}

    assert codes(eligibility="eligible") == {eligible.code}
    assert codes(tissue="umbilical_cord") == {cord.code}
    assert codes(code=other.code) == {other.code}


def test_donor_list_runs_a_fixed_number_of_queries(
    qm_client, quality_manager, django_assert_num_queries
):
    def add(n):
        for donor in DonorFactory.create_batch(n):
            complete_marker_panel(donor, decided_by=quality_manager)

    assert_list_queries_fixed(qm_client, f"{API}/donors/", add, django_assert_num_queries)


# ---------------------------------------------------------------------------------------------
# Lots


def lot_body(product, **overrides):
    return {
        "product": product.pk,
        "lot_number": "EXO-2025-001",
        "manufactured_on": days(-10).isoformat(),
        "expires_on": days(355).isoformat(),
        "quantity": 200,
        "unit": "vial",
        "regulatory_basis": "ind",
        "regulatory_number": "IND 012345",
        **overrides,
    }


def test_lot_create_with_donor_ids_starts_quarantined(qm_client):
    product = ProductFactory()
    donors = DonorFactory.create_batch(2)

    response = qm_client.post(
        f"{API}/lots/", lot_body(product, donors=[d.pk for d in donors]), format="json"
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "quarantined"
    assert body["is_expired"] is False
    assert {d["code"] for d in body["donors"]} == {d.code for d in donors}
    assert body["qc_results"] == body["certificates"] == body["status_changes"] == []
    assert body["manufacturer"]["id"] == product.manufacturer_id


def test_lot_create_with_an_unknown_donor_id_names_the_field(qm_client):
    donor = DonorFactory()
    response = qm_client.post(
        f"{API}/lots/", lot_body(ProductFactory(), donors=[donor.pk, donor.pk + 99]), "json"
    )
    assert response.status_code == 400
    assert error_codes(response) == ["does_not_exist"]
    assert error_fields(response) == ["donors"]
    assert not Lot.objects.exists()


def test_lot_create_refuses_donors_for_a_synthetic_product(qm_client):
    product = ProductFactory(source_kind=SourceKind.SYNTHETIC, tissue="")
    response = qm_client.post(
        f"{API}/lots/", lot_body(product, donors=[DonorFactory().pk]), format="json"
    )
    assert response.status_code == 400
    assert error_codes(response) == ["lot_donors_not_applicable"]


def test_lot_create_refuses_reversed_dates(qm_client):
    response = qm_client.post(
        f"{API}/lots/", lot_body(ProductFactory(), expires_on=days(-20).isoformat()), "json"
    )
    assert response.status_code == 400
    assert "lot_dates_reversed" in error_codes(response)
    assert not Lot.objects.exists()


def test_lot_create_refuses_a_lot_number_the_manufacturer_already_used(qm_client):
    product = ProductFactory()
    LotFactory(product=product, lot_number="EXO-1")
    response = qm_client.post(f"{API}/lots/", lot_body(product, lot_number="EXO-1"), "json")
    assert response.status_code in (400, 409)
    assert error_fields(response) == ["lot_number"]
    assert Lot.objects.count() == 1


def test_lot_create_bounds_the_quantity_to_the_database_integer(qm_client):
    response = qm_client.post(
        f"{API}/lots/", lot_body(ProductFactory(), quantity=2**31), format="json"
    )
    assert response.status_code == 400
    assert error_codes(response) == ["max_value"]
    assert error_fields(response) == ["quantity"]


def test_lot_create_with_a_repeated_donor_id_links_the_donor_once(qm_client):
    donor = DonorFactory()
    response = qm_client.post(
        f"{API}/lots/", lot_body(ProductFactory(), donors=[donor.pk, donor.pk]), format="json"
    )
    assert response.status_code == 201, response.content
    assert [d["id"] for d in response.json()["donors"]] == [donor.pk]
    assert LotDonor.objects.filter(donor=donor).count() == 1


def test_lot_detail_shows_qc_with_passes_certificates_status_changes_and_expiry(
    qm_client, quality_manager
):
    lot = releasable_lot(quality_manager=quality_manager)
    LotQcResult.objects.filter(lot=lot, test__code="endotoxin").update(numeric_value=Decimal("0.9"))
    Lot.objects.filter(pk=lot.pk).update(manufactured_on=days(-400), expires_on=days(-1))

    body = qm_client.get(f"{API}/lots/{lot.pk}/").json()

    qc = {r["test"]: r for r in body["qc_results"]}
    assert qc["endotoxin"]["passes"] is False
    assert qc["endotoxin"]["specification"] == "<= 0.5000 EU/mL"
    assert qc["sterility"]["passes"] is True
    assert all(r["passes"] for code, r in qc.items() if code != "endotoxin")
    assert [c["kind"] for c in body["certificates"]] == ["coa"]
    assert body["certificates"][0]["current"] is True
    assert body["is_expired"] is True
    assert len(body["donors"]) == 1


def test_lot_detail_of_an_unknown_lot_is_not_found(qm_client):
    response = qm_client.get(f"{API}/lots/{10**30}/")
    assert response.status_code == 404
    assert error_codes(response) == ["not_found"]


def test_lot_list_filters(qm_client, quality_manager):
    acme = ManufacturerFactory()
    product = ProductFactory(manufacturer=acme)
    fresh = LotFactory(product=product, lot_number="FRESH-1", expires_on=days(30))
    expired = LotFactory(manufactured_on=days(-400), expires_on=days(-1))
    released = LotFactory(status=LotStatus.RELEASED, expires_on=days(200))

    def numbers(**params):
        response = qm_client.get(f"{API}/lots/", params)
        assert response.status_code == 200, response.content
        return {lot["lot_number"] for lot in response.json()["results"]}

    assert numbers(status="released") == {released.lot_number}
    assert numbers(product=product.pk) == {fresh.lot_number}
    assert numbers(manufacturer=acme.pk) == {fresh.lot_number}
    assert numbers(lot_number="FRESH-1") == {fresh.lot_number}
    assert numbers(expired="true") == {expired.lot_number}
    assert numbers(expired="false") == {fresh.lot_number, released.lot_number}
    assert numbers(expires_before=days(30).isoformat()) == {fresh.lot_number, expired.lot_number}
    assert numbers(expires_after=days(31).isoformat()) == {released.lot_number}
    assert numbers(expires_after=days(0).isoformat(), expires_before=days(100).isoformat()) == {
        fresh.lot_number
    }


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "lost"}, "status"),
        ({"expired": "maybe"}, "expired"),
        ({"expires_before": "31/12/2025"}, "expires_before"),
        ({"expires_after": "2025-02-30"}, "expires_after"),
        ({"product": "-1"}, "product"),
        ({"lot_number": "A\x00B"}, "lot_number"),
    ],
)
def test_lot_list_refuses_bad_filters_naming_them(qm_client, params, field):
    response = qm_client.get(f"{API}/lots/", params)
    assert response.status_code == 400
    assert error_fields(response) == [field]


def test_lot_list_runs_a_fixed_number_of_queries(qm_client, django_assert_num_queries):
    def add(n):
        for lot in LotFactory.create_batch(n):
            for donor in DonorFactory.create_batch(2):
                LotDonor.objects.create(lot=lot, donor=donor)

    assert_list_queries_fixed(qm_client, f"{API}/lots/", add, django_assert_num_queries)


def test_lot_detail_runs_a_fixed_number_of_queries(
    qm_client, quality_manager, django_assert_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    small = releasable_lot(quality_manager=quality_manager, donors=1)
    large = releasable_lot(quality_manager=quality_manager, donors=5)
    with CaptureQueriesContext(connection) as queries:
        qm_client.get(f"{API}/lots/{small.pk}/")
    with django_assert_num_queries(len(queries)):
        assert len(qm_client.get(f"{API}/lots/{large.pk}/").json()["donors"]) == 5


def test_lot_donor_add(qm_client):
    lot = LotFactory()
    donor = DonorFactory()
    response = qm_client.post(
        f"{API}/lots/{lot.pk}/donors/", {"donor": donor.pk, "reason": "late record"}, "json"
    )
    assert response.status_code == 200, response.content
    assert [d["code"] for d in response.json()["donors"]] == [donor.code]


def test_lot_donor_add_refused_on_a_released_lot(qm_client):
    lot = LotFactory(status=LotStatus.RELEASED)
    response = qm_client.post(
        f"{API}/lots/{lot.pk}/donors/", {"donor": DonorFactory().pk, "reason": "r"}, "json"
    )
    assert response.status_code == 409
    assert error_codes(response) == ["lot_not_editable"]
    assert not LotDonor.objects.exists()


def test_lot_qc_result_by_test_code_reports_whether_it_passes(qm_client):
    lot = LotFactory()
    url = f"{API}/lots/{lot.pk}/qc-results/"
    passing = qm_client.post(
        url,
        {"test": "endotoxin", "numeric_value": "0.25", "tested_on": "2025-01-02",
         "laboratory": "QC lab"},
        format="json",
    )  # fmt: skip
    failing = qm_client.post(
        url,
        {"test": "sterility", "outcome": "detected", "tested_on": "2025-01-02",
         "laboratory": "QC lab"},
        format="json",
    )  # fmt: skip
    assert passing.status_code == 201, passing.content
    assert (passing.json()["numeric_value"], passing.json()["passes"]) == ("0.2500", True)
    assert (failing.json()["outcome"], failing.json()["passes"]) == ("detected", False)


def test_lot_qc_result_refuses_an_outcome_for_a_measured_test(qm_client):
    lot = LotFactory()
    response = qm_client.post(
        f"{API}/lots/{lot.pk}/qc-results/",
        {"test": "endotoxin", "outcome": "not_detected", "tested_on": "2025-01-02",
         "laboratory": "QC lab"},
        format="json",
    )  # fmt: skip
    assert response.status_code == 400
    assert error_codes(response) == ["qc_numeric_value_required"]
    assert not LotQcResult.objects.exists()


def test_lot_qc_result_refuses_more_digits_than_the_column_holds(qm_client):
    lot = LotFactory()
    response = qm_client.post(
        f"{API}/lots/{lot.pk}/qc-results/",
        {"test": "endotoxin", "numeric_value": "1e30", "tested_on": "2025-01-02",
         "laboratory": "QC lab"},
        format="json",
    )  # fmt: skip
    assert response.status_code == 400
    assert error_fields(response) == ["numeric_value"]


# ---------------------------------------------------------------------------------------------
# The release gate


def test_release_check_lists_every_unmet_requirement(auditor):
    lot = LotFactory(regulatory_basis="none", regulatory_number="")
    body = client_for(auditor).get(f"{API}/lots/{lot.pk}/release-check/").json()
    codes = {p["code"] for p in body["problems"]}
    assert body["releasable"] is False
    assert {"donor_missing", "qc_result_missing", "coa_missing", "gmp_certificate_missing"} <= codes
    assert [w["code"] for w in body["warnings"]] == ["regulatory_basis_none"]


def test_release_check_of_a_complete_lot_is_releasable(qm_client, quality_manager):
    lot = releasable_lot(quality_manager=quality_manager)
    body = qm_client.get(f"{API}/lots/{lot.pk}/release-check/").json()
    assert (body["releasable"], body["problems"]) == (True, [])


def test_release_refused_answers_409_with_every_problem(qm_client):
    lot = LotFactory()

    response = qm_client.post(f"{API}/lots/{lot.pk}/release/", signature(), format="json")

    assert response.status_code == 409
    codes = error_codes(response)
    assert {"donor_missing", "qc_result_missing", "coa_missing", "gmp_certificate_missing"} <= set(
        codes
    )
    assert codes.count("qc_result_missing") == QcTest.objects.count()
    lot.refresh_from_db()
    assert lot.status == LotStatus.QUARANTINED
    assert not LotStatusChange.objects.exists()


def test_release_refused_names_the_failing_qc_test_and_donor(qm_client, quality_manager):
    lot = releasable_lot(quality_manager=quality_manager)
    LotQcResult.objects.filter(lot=lot, test__code="endotoxin").update(numeric_value=Decimal("2"))
    donor = lot.donors.get()
    Donor.objects.filter(pk=donor.pk).update(eligibility=Eligibility.INELIGIBLE)

    response = qm_client.post(f"{API}/lots/{lot.pk}/release/", signature(), format="json")

    assert response.status_code == 409
    assert sorted(zip(error_codes(response), error_fields(response), strict=True)) == [
        ("donor_not_eligible", f"donors.{donor.code}.eligibility"),
        ("qc_out_of_spec", "qc.endotoxin"),
    ]


def test_release_accepted_returns_the_signed_status_change(qm_client, quality_manager):
    lot = releasable_lot(quality_manager=quality_manager)

    response = qm_client.post(f"{API}/lots/{lot.pk}/release/", signature(), format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["lot"], body["lot_status"]) == (lot.pk, "released")
    change = body["status_change"]
    assert (change["from_status"], change["to_status"], change["action"]) == (
        "quarantined",
        "released",
        "release",
    )
    assert change["signer_name"] == "Quinn Manager"
    assert change["meaning"] == "approval"
    assert len(change["record_digest"]) == 64
    lot.refresh_from_db()
    assert lot.status == LotStatus.RELEASED
    detail = qm_client.get(f"{API}/lots/{lot.pk}/").json()
    assert [c["id"] for c in detail["status_changes"]] == [change["id"]]


def test_release_with_a_wrong_password_changes_nothing(qm_client, quality_manager):
    lot = releasable_lot(quality_manager=quality_manager)
    response = qm_client.post(
        f"{API}/lots/{lot.pk}/release/", signature(password="wrong"), format="json"
    )
    assert response.status_code == 403
    assert error_codes(response) == ["signature_password_invalid"]
    lot.refresh_from_db()
    assert lot.status == LotStatus.QUARANTINED


def test_release_with_a_rejection_meaning_and_no_reason_lists_both(qm_client, quality_manager):
    lot = releasable_lot(quality_manager=quality_manager)
    response = qm_client.post(
        f"{API}/lots/{lot.pk}/release/", signature("rejection", reason=""), format="json"
    )
    assert response.status_code == 400
    assert sorted(error_codes(response)) == ["reason_required", "signature_meaning_invalid"]


def test_release_of_an_unknown_lot_is_not_found(qm_client):
    response = qm_client.post(f"{API}/lots/987654/release/", signature(), format="json")
    assert response.status_code == 404
    assert error_codes(response) == ["not_found"]


@pytest.mark.parametrize("role_user", ["auditor", "clinician"])
def test_release_is_refused_to_other_roles(request, role_user, quality_manager):
    lot = releasable_lot(quality_manager=quality_manager)
    user = request.getfixturevalue(role_user)
    response = client_for(user).post(f"{API}/lots/{lot.pk}/release/", signature(), "json")
    assert response.status_code == 403
    assert error_codes(response) == ["role_required"]
    lot.refresh_from_db()
    assert lot.status == LotStatus.QUARANTINED


def test_hold_then_release_again(qm_client, quality_manager):
    lot = releasable_lot(quality_manager=quality_manager)
    assert qm_client.post(f"{API}/lots/{lot.pk}/release/", signature(), "json").status_code == 200

    held = qm_client.post(f"{API}/lots/{lot.pk}/hold/", signature("review"), format="json")
    released = qm_client.post(f"{API}/lots/{lot.pk}/release/", signature(), format="json")

    assert held.status_code == 200, held.content
    assert held.json()["lot_status"] == "on_hold"
    assert released.json()["lot_status"] == "released"
    assert LotStatusChange.objects.filter(lot=lot).count() == 3


def test_hold_of_a_quarantined_lot_is_refused(qm_client):
    lot = LotFactory()
    response = qm_client.post(f"{API}/lots/{lot.pk}/hold/", signature("review"), format="json")
    assert response.status_code == 409
    assert error_codes(response) == ["lot_status_not_holdable"]


def test_reject_a_quarantined_lot(qm_client):
    lot = LotFactory()
    response = qm_client.post(
        f"{API}/lots/{lot.pk}/reject/", signature("rejection", reason="sterility failure"), "json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["lot_status"] == "rejected"
    assert response.json()["status_change"]["reason"] == "sterility failure"
    lot.refresh_from_db()
    assert lot.status == LotStatus.REJECTED


# ---------------------------------------------------------------------------------------------
# Certificates


def upload(client, **fields):
    content = fields.pop("content", None) or pdf_bytes(fields.get("number", "x"))
    body = {
        "issuer": "Eurofins",
        "number": "COA-1",
        "valid_from": "2025-01-01",
        "file": SimpleUploadedFile("coa.pdf", content, content_type="application/pdf"),
        **fields,
    }
    return client.post(f"{API}/certificates/", body, format="multipart")


def test_certificate_upload_of_a_coa_stores_the_pdf_with_its_hash(qm_client):
    lot = LotFactory()
    content = pdf_bytes("coa for the lot")

    response = upload(qm_client, kind="coa", lot=lot.pk, content=content)

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["sha256"] == hashlib.sha256(content).hexdigest()
    assert body["lot"] == {"id": lot.pk, "lot_number": lot.lot_number}
    assert body["manufacturer"]["id"] == lot.manufacturer_id
    assert (body["current"], body["uploaded_by"], body["original_filename"]) == (
        True,
        "qm",
        "coa.pdf",
    )


def test_certificate_upload_drops_control_characters_from_the_file_name(qm_client):
    lot = LotFactory()
    response = qm_client.post(
        f"{API}/certificates/",
        {"kind": "coa", "lot": lot.pk, "issuer": "E", "number": "1", "valid_from": "2025-01-01",
         "file": SimpleUploadedFile("co\x00a.pdf", pdf_bytes(), content_type="application/pdf")},
        format="multipart",
    )  # fmt: skip
    assert response.status_code == 201, response.content
    assert response.json()["original_filename"] == "coa.pdf"


def test_certificate_upload_refuses_a_file_that_is_not_a_pdf(qm_client):
    response = upload(qm_client, kind="coa", lot=LotFactory().pk, content=b"GIF89a not a pdf")
    assert response.status_code == 400
    assert error_codes(response) == ["certificate_not_pdf"]
    assert not Certificate.objects.exists()


def test_certificate_upload_of_a_gmp_certificate_needs_valid_until(qm_client):
    response = upload(qm_client, kind="gmp", manufacturer=ManufacturerFactory().pk)
    assert response.status_code == 400
    assert error_codes(response) == ["certificate_validity_required"]
    assert error_fields(response) == ["valid_until"]


def test_certificate_upload_needs_a_file(qm_client):
    response = qm_client.post(
        f"{API}/certificates/",
        {"kind": "coa", "lot": LotFactory().pk, "issuer": "E", "number": "1",
         "valid_from": "2025-01-01"},
        format="multipart",
    )  # fmt: skip
    assert response.status_code == 400
    assert error_fields(response) == ["file"]


def test_certificate_upload_as_json_is_an_unsupported_media_type(qm_client):
    response = qm_client.post(f"{API}/certificates/", {"kind": "coa"}, format="json")
    assert response.status_code == 415
    assert error_codes(response) == ["unsupported_media_type"]


def test_certificate_supersede_and_current_filter(qm_client):
    manufacturer = ManufacturerFactory()
    first = upload(
        qm_client, kind="gmp", manufacturer=manufacturer.pk, valid_until="2026-01-01", number="G1"
    ).json()

    without_reason = upload(
        qm_client, kind="gmp", manufacturer=manufacturer.pk, valid_until="2027-01-01",
        number="G2", supersedes=first["id"],
    )  # fmt: skip
    second = upload(
        qm_client, kind="gmp", manufacturer=manufacturer.pk, valid_until="2027-01-01",
        number="G2", supersedes=first["id"], reason="renewed",
    )  # fmt: skip

    assert without_reason.status_code == 400
    assert error_codes(without_reason) == ["reason_required"]
    assert second.status_code == 201, second.content
    current = qm_client.get(f"{API}/certificates/", {"current": "true"}).json()["results"]
    old = qm_client.get(f"{API}/certificates/", {"current": "false"}).json()["results"]
    assert [c["number"] for c in current] == ["G2"]
    assert [(c["number"], c["superseded_by"]) for c in old] == [("G1", second.json()["id"])]


def test_certificate_list_filters_and_detail(qm_client, quality_manager):
    lot = LotFactory()
    coa = store_certificate(
        kind=CertificateKind.COA,
        manufacturer=lot.manufacturer,
        lot=lot,
        uploaded_by=quality_manager,
    )
    other = ManufacturerFactory()
    gmp = store_certificate(
        kind=CertificateKind.GMP, manufacturer=other, uploaded_by=quality_manager,
        valid_until=days(100),
    )  # fmt: skip

    def ids(**params):
        return {c["id"] for c in qm_client.get(f"{API}/certificates/", params).json()["results"]}

    assert ids(kind="coa") == {coa.pk}
    assert ids(lot=lot.pk) == {coa.pk}
    assert ids(manufacturer=other.pk) == {gmp.pk}
    assert qm_client.get(f"{API}/certificates/{gmp.pk}/").json()["kind"] == "gmp"


def test_certificate_file_streams_the_pdf_with_its_sha256(qm_client, auditor):
    lot = LotFactory()
    content = pdf_bytes("the stored pdf")
    certificate_id = upload(qm_client, kind="coa", lot=lot.pk, content=content).json()["id"]
    digest = hashlib.sha256(content).hexdigest()

    response = client_for(auditor).get(
        f"{API}/certificates/{certificate_id}/file/", HTTP_ACCEPT="application/pdf"
    )

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["ETag"] == f'"{digest}"'
    assert b"".join(response.streaming_content) == content
    not_modified = client_for(auditor).get(
        f"{API}/certificates/{certificate_id}/file/", HTTP_IF_NONE_MATCH=f'"{digest}"'
    )
    assert not_modified.status_code == 304


def test_certificate_file_of_an_unknown_certificate_is_a_json_404(qm_client):
    response = qm_client.get(f"{API}/certificates/987654/file/", HTTP_ACCEPT="application/pdf")
    assert response.status_code == 404
    assert error_codes(response) == ["not_found"]


def test_certificate_file_missing_from_storage_is_reported_not_crashed(qm_client, quality_manager):
    lot = LotFactory()
    certificate = store_certificate(
        kind=CertificateKind.COA,
        manufacturer=lot.manufacturer,
        lot=lot,
        uploaded_by=quality_manager,
    )
    response = qm_client.get(f"{API}/certificates/{certificate.pk}/file/")
    assert response.status_code == 404
    assert error_codes(response) == ["certificate_file_missing"]


def test_certificate_list_runs_a_fixed_number_of_queries(
    qm_client, quality_manager, django_assert_num_queries
):
    def add(n):
        for _ in range(n):
            lot = LotFactory()
            store_certificate(
                kind=CertificateKind.COA,
                manufacturer=lot.manufacturer,
                lot=lot,
                uploaded_by=quality_manager,
                number=f"COA-{lot.lot_number}",
            )

    assert_list_queries_fixed(qm_client, f"{API}/certificates/", add, django_assert_num_queries)


def test_lot_detail_shows_every_recorded_qc_result_passing(qm_client):
    lot = LotFactory()
    record_passing_qc(lot)
    body = qm_client.get(f"{API}/lots/{lot.pk}/").json()
    assert body["qc_results"] and all(r["passes"] for r in body["qc_results"])
    assert {r["outcome"] for r in body["qc_results"]} - {None} <= set(QcOutcome.values)
    assert timezone.localdate() <= datetime.date.fromisoformat(body["expires_on"])


# ---------------------------------------------------------------------------------------------
# A choice left out (a product's tissue, a QC outcome) answers null, as the schema says, never ""


def test_a_product_without_a_tissue_answers_null_as_the_schema_says(auditor):
    plant = ProductFactory(source_kind=SourceKind.PLANT, tissue="")
    client = client_for(auditor)

    listed = client.get(f"{API}/products/")
    detail = client.get(f"{API}/products/{plant.pk}/")

    assert listed.json()["results"][0]["tissue"] is None
    assert detail.json()["tissue"] is None
    assert_matches_schema(listed, "get", "/api/v1/products/")
    assert_matches_schema(detail, "get", "/api/v1/products/{product_id}/")


@pytest.mark.parametrize("tissue", ["", None])
def test_product_create_takes_no_tissue_as_blank_or_null_and_answers_null(qm_client, tissue):
    body = product_body(ManufacturerFactory(), source_kind="synthetic", tissue=tissue)
    response = qm_client.post(f"{API}/products/", body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["tissue"] is None
    assert Product.objects.get().tissue == ""
    assert_matches_schema(response, "post", "/api/v1/products/")


def test_a_default_specification_without_an_expected_outcome_answers_null(auditor):
    response = client_for(auditor).get(f"{API}/qc-tests/")
    by_code = {test["code"]: test for test in response.json()["results"]}
    assert by_code["endotoxin"]["default_specification"]["expected_outcome"] is None
    assert by_code["sterility"]["default_specification"]["expected_outcome"] == "not_detected"
    assert_matches_schema(response, "get", "/api/v1/qc-tests/")


def test_a_measured_qc_result_answers_a_null_outcome_in_the_lot_detail(qm_client, quality_manager):
    lot = releasable_lot(quality_manager=quality_manager)
    response = qm_client.get(f"{API}/lots/{lot.pk}/")
    qc = {result["test"]: result for result in response.json()["qc_results"]}
    assert qc["endotoxin"]["outcome"] is None
    assert qc["sterility"]["outcome"] == "not_detected"
    assert_matches_schema(response, "get", "/api/v1/lots/{lot_id}/")


def test_lot_donor_add_answers_the_lot_as_the_schema_says(qm_client):
    lot = LotFactory()
    record_passing_qc(lot)
    response = qm_client.post(
        f"{API}/lots/{lot.pk}/donors/", {"donor": DonorFactory().pk, "reason": "late"}, "json"
    )
    assert response.status_code == 200, response.content
    assert {result["outcome"] for result in response.json()["qc_results"]} >= {None}
    assert_matches_schema(response, "post", "/api/v1/lots/{lot_id}/donors/")


@pytest.mark.parametrize("outcome", ["", None])
def test_a_measured_qc_result_takes_no_outcome_as_blank_or_null_and_answers_null(
    qm_client, outcome
):
    lot = LotFactory()
    body = {"test": "endotoxin", "numeric_value": "0.25", "outcome": outcome,
            "tested_on": "2025-01-02", "laboratory": "QC lab"}  # fmt: skip
    response = qm_client.post(f"{API}/lots/{lot.pk}/qc-results/", body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["outcome"] is None
    assert LotQcResult.objects.get().outcome == ""
    assert_matches_schema(response, "post", "/api/v1/lots/{lot_id}/qc-results/")
