"""The recall API: status codes, who may do what, what each clinic sees, and query counts."""

from __future__ import annotations

import logging

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from lots.models import LotStatus
from providers.models import Role
from recalls.models import (
    Acknowledgement,
    PatientContactAttempt,
    Recall,
    RecallExposure,
    RecallStatus,
    StockDisposition,
)
from recalls.services import recall_acknowledge
from tests.api_helpers import API, assert_list_queries_fixed, error_codes, error_fields
from tests.factories import (
    PASSWORD,
    ClinicContactFactory,
    MembershipFactory,
    PatientFactory,
    ProductFactory,
    clinic_ready,
    receive,
    released_lot,
    treat,
)
from tests.recalls.scenario import all_row_counts, build_world, open_recall

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(quality_manager):
    return build_world(quality_manager)


@pytest.fixture
def recall(world):
    return open_recall(world)


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def open_body(lot_ids, **overrides):
    body = {
        "recall_class": "II",
        "depth": "patient",
        "reason": "Mycoplasma detected in retained sample",
        "hazard": "Infection",
        "instructions": "Stop use.",
        "is_drill": False,
        "password": PASSWORD,
        "scope": {"lots": lot_ids},
    }
    body.update(overrides)
    return body


# ---------------------------------------------------------------------------------------------
# Opening and widening


def test_a_quality_manager_opens_a_recall(qm_client, world):
    response = qm_client.post(f"{API}/recalls/", open_body([world.lot.pk]), format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["reference"].startswith("RC-")
    assert (body["recall_class"], body["depth"], body["status"]) == ("II", "patient", "open")
    assert [lot["lot_number"] for lot in body["lots"]] == [world.lot.lot_number]
    assert body["scopes"][0]["lots"] == [world.lot.pk]
    assert {row["clinic"]["id"] for row in body["stock"]} == {world.a.clinic.pk, world.b.clinic.pk}
    assert body["timing"]["opened_at"] == body["opened_at"]
    world.lot.refresh_from_db()
    assert world.lot.status == LotStatus.RECALLED
    assert RecallExposure.objects.filter(recall_id=body["id"]).count() == 3


def test_opening_a_drill_through_the_api(qm_client, world):
    response = qm_client.post(
        f"{API}/recalls/", open_body([world.lot.pk], is_drill=True), format="json"
    )
    assert response.status_code == 201
    assert response.json()["reference"].startswith("DRILL-")
    world.lot.refresh_from_db()
    assert world.lot.status == LotStatus.RELEASED


@pytest.mark.parametrize(
    ("scope", "field", "code"),
    [
        ({}, "scope", "recall_scope_missing"),
        ({"lots": []}, "scope", "recall_scope_missing"),
        ("lot 1", "scope", "invalid"),
        ({"lots": "1"}, "scope.lots", "not_a_list"),
        ({"lots": ["x"]}, "scope.lots.0", "invalid"),
        ({"lots": [987654321]}, "scope.lots", "does_not_exist"),
        ({"donor": 987654321}, "scope.donor", "does_not_exist"),
        ({"product": "abc"}, "scope.product", "invalid"),
        ({"manufacturer": -1}, "scope.manufacturer", "does_not_exist"),
        ({"lots": [], "manufactured_from": "2025-02-30"}, "scope.manufactured_from", "invalid"),
    ],
)
def test_a_malformed_scope_is_a_400_naming_the_field(qm_client, world, scope, field, code):
    before = all_row_counts()
    response = qm_client.post(f"{API}/recalls/", open_body([], scope=scope), format="json")
    assert response.status_code == 400, response.content
    assert (error_codes(response), error_fields(response)) == ([code], [field])
    assert all_row_counts() == before


def test_reversed_manufacture_dates_are_a_400_naming_the_field(qm_client, world):
    scope = {
        "manufacturer": world.lot.manufacturer_id,
        "manufactured_from": "2025-06-01",
        "manufactured_to": "2025-01-01",
    }
    response = qm_client.post(f"{API}/recalls/", open_body([], scope=scope), format="json")
    assert response.status_code == 400
    assert error_fields(response) == ["scope.manufactured_from"]


def test_a_scope_that_matches_nothing_is_a_400(qm_client, world):
    empty_product = ProductFactory()
    body = open_body([], scope={"product": empty_product.pk})
    response = qm_client.post(f"{API}/recalls/", body, format="json")
    assert response.status_code == 400
    assert error_codes(response) == ["recall_scope_empty"]
    assert not Recall.objects.exists()


def test_a_lot_already_in_an_open_recall_is_a_409(qm_client, world, recall):
    response = qm_client.post(f"{API}/recalls/", open_body([world.lot.pk]), format="json")
    assert response.status_code == 409
    assert error_codes(response) == ["lot_in_open_recall"]
    assert error_fields(response) == [f"scope.lots.{world.lot.pk}"]
    assert Recall.objects.count() == 1


def test_only_a_quality_manager_with_the_password_opens_a_recall(world, auditor):
    body = open_body([world.lot.pk])
    for user in (world.a.administrator, world.a.clinician, auditor):
        response = client_for(user).post(f"{API}/recalls/", body, format="json")
        assert response.status_code == 403
        assert error_codes(response) == ["role_required"]
    response = client_for(world.quality_manager).post(
        f"{API}/recalls/", {**body, "password": "wrong"}, format="json"
    )
    assert response.status_code == 403
    assert error_codes(response) == ["signature_password_invalid"]
    assert not Recall.objects.exists()
    assert APIClient().post(f"{API}/recalls/", body, format="json").status_code in (401, 403)


def test_widening_adds_the_new_lot_only(qm_client, world, recall):
    other_lot = released_lot(created_by=world.quality_manager)
    receive(world.a, other_lot, 2)
    body = {"password": PASSWORD, "reason": "Same run", "scope": {"lots": [other_lot.pk]}}
    response = qm_client.post(f"{API}/recalls/{recall.pk}/widen/", body, format="json")

    assert response.status_code == 200, response.content
    scopes = response.json()["scopes"]
    assert [scope["round"] for scope in scopes] == [1, 2]
    assert scopes[0]["signature_digest"] == recall.opened_signature_digest
    assert len({scope["signature_digest"] for scope in scopes}) == 2
    assert len(response.json()["lots"]) == 2

    again = qm_client.post(f"{API}/recalls/{recall.pk}/widen/", body, format="json")
    assert again.status_code == 400
    assert error_codes(again) == ["recall_scope_nothing_new"]


# ---------------------------------------------------------------------------------------------
# Reading: scoping and query counts


def test_clinic_staff_see_only_the_recalls_that_reached_their_clinics(world, recall, auditor):
    elsewhere = clinic_ready()
    for user in (world.quality_manager, auditor, world.a.clinician, world.b.administrator):
        response = client_for(user).get(f"{API}/recalls/")
        assert response.status_code == 200
        assert [row["id"] for row in response.json()["results"]] == [recall.pk]
    outsider = client_for(elsewhere.administrator)
    assert outsider.get(f"{API}/recalls/").json()["count"] == 0
    for suffix in ("", "effectiveness/", "exposures.csv", "notices.csv", "report.pdf"):
        response = outsider.get(f"{API}/recalls/{recall.pk}/{suffix}")
        assert response.status_code == 404, suffix
        assert error_codes(response) == ["not_found"]


def test_the_detail_shows_clinic_staff_their_own_clinics_only(world, recall):
    for ready in (world.a, world.b):
        recall_acknowledge(recall=recall, clinic=ready.clinic, via="api", actor=ready.administrator)

    network = client_for(world.quality_manager).get(f"{API}/recalls/{recall.pk}/").json()
    assert len(network["acknowledgements"]) == 2
    assert len(network["stock"]) == 2

    own = client_for(world.a.clinician).get(f"{API}/recalls/{recall.pk}/").json()
    assert [row["clinic"]["id"] for row in own["acknowledgements"]] == [world.a.clinic.pk]
    assert [row["clinic"]["id"] for row in own["stock"]] == [world.a.clinic.pk]
    assert own["timing"]["fully_acknowledged_at"] is not None


def test_the_recall_list_filters(qm_client, world, recall):
    drill = open_recall(world, is_drill=True)
    assert [r["id"] for r in qm_client.get(f"{API}/recalls/?is_drill=true").json()["results"]] == [
        drill.pk
    ]
    assert qm_client.get(f"{API}/recalls/?status=closed").json()["count"] == 0
    assert qm_client.get(f"{API}/recalls/?lot={world.lot.pk}").json()["count"] == 2
    response = qm_client.get(f"{API}/recalls/?is_drill=maybe")
    assert response.status_code == 400
    assert error_fields(response) == ["is_drill"]


def test_the_recall_list_runs_a_fixed_number_of_queries(world, auditor, django_assert_num_queries):
    def add_rows(count: int) -> None:
        for _ in range(count):
            lot = released_lot(created_by=world.quality_manager)
            receive(world.a, lot, 1)
            open_recall(world, lots=[lot], is_drill=True)

    for user in (world.quality_manager, world.a.clinician):
        assert_list_queries_fixed(
            client_for(user), f"{API}/recalls/", add_rows, django_assert_num_queries
        )


def test_effectiveness_through_the_api(world, recall):
    recall_acknowledge(recall=recall, clinic=world.a.clinic, via="api", actor=world.a.administrator)
    network = client_for(world.quality_manager).get(f"{API}/recalls/{recall.pk}/effectiveness/")
    assert network.status_code == 200
    body = network.json()
    # A patient-level recall with no patient contacted yet: level E, whatever the clinics did.
    assert (body["clinics_total"], body["clinics_acknowledged"], body["level"]) == (2, 1, "E")
    assert (body["patients_exposed"], body["units_held"]) == (3, 5)
    assert body["notices"] == {"total": 2, "pending": 2, "sending": 0, "sent": 0, "failed": 0}
    assert body["timing"]["first_notice_sent_at"] is None

    own = client_for(world.b.clinician).get(f"{API}/recalls/{recall.pk}/effectiveness/").json()
    assert (own["clinics_total"], own["clinics_acknowledged"], own["level"]) == (1, 0, "E")
    assert [clinic["clinic_id"] for clinic in own["clinics"]] == [world.b.clinic.pk]


# ---------------------------------------------------------------------------------------------
# Acknowledgement, dispositions, patients, contact attempts


def test_acknowledging_through_the_api(world, recall, auditor):
    url = f"{API}/recalls/{recall.pk}/acknowledgements/"
    body = {"clinic": world.a.clinic.pk}
    for user, code in (
        (auditor, "role_required"),
        (world.a.clinician, "role_required"),
        (world.b.administrator, "role_required"),
    ):
        response = client_for(user).post(url, body, format="json")
        assert response.status_code == 403, user
        assert error_codes(response) == [code]

    response = client_for(world.a.administrator).post(url, body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["via"] == "api"
    assert response.json()["acknowledged_by_name"] == world.a.administrator.get_full_name()

    again = client_for(world.quality_manager).post(url, body, format="json")
    assert again.status_code == 409
    assert error_codes(again) == ["recall_already_acknowledged"]

    by_qm = client_for(world.quality_manager).post(
        url, {"clinic": world.b.clinic.pk, "name": "Quinn for clinic B"}, format="json"
    )
    assert by_qm.status_code == 201
    assert Acknowledgement.objects.filter(recall=recall).count() == 2


def test_recording_dispositions_through_the_api(world, recall, auditor):
    url = f"{API}/recalls/{recall.pk}/dispositions/"
    body = {"clinic": world.b.clinic.pk, "lot": world.lot.pk, "kind": "destroyed", "quantity": 3}
    assert client_for(auditor).post(url, body, format="json").status_code == 403
    assert client_for(world.b.clinician).post(url, body, format="json").status_code == 403

    too_many = client_for(world.b.administrator).post(url, {**body, "quantity": 4}, format="json")
    assert too_many.status_code == 409
    assert error_codes(too_many) == ["disposition_exceeds_held"]

    response = client_for(world.b.administrator).post(url, body, format="json")
    assert response.status_code == 201, response.content
    assert (response.json()["kind"], response.json()["quantity"]) == ("destroyed", 3)
    assert StockDisposition.objects.get().quantity == 3


def test_the_patient_list_gives_contact_details_to_the_clinics_own_staff_only(
    world, recall, auditor, caplog
):
    url = f"{API}/recalls/{recall.pk}/patients/?clinic={world.a.clinic.pk}"
    with caplog.at_level(logging.INFO, logger="traceability.contact_access"):
        own = client_for(world.a.clinician).get(url)
    assert own.status_code == 200
    assert own["Cache-Control"] == "no-store"
    rows = {row["reference"]: row for row in own.json()["results"]}
    assert rows[world.a1.reference]["contact"]["full_name"] == "Alice Anders"
    assert rows[world.a2.reference]["contact"]["phone"] == "+1 512 555 0100"
    assert any(f"recall {recall.reference} patient list" in message for message in caplog.messages)

    for network in (world.quality_manager, auditor):
        response = client_for(network).get(url)
        assert response.status_code == 200
        assert [row["contact"] for row in response.json()["results"]] == [None, None]
        assert "Alice" not in response.content.decode()

    other = client_for(world.b.clinician).get(url)
    assert other.status_code == 403
    missing = client_for(world.a.clinician).get(f"{API}/recalls/{recall.pk}/patients/")
    assert missing.status_code == 400
    assert error_fields(missing) == ["clinic"]


def test_the_patient_list_runs_a_fixed_number_of_queries(world, recall, django_assert_num_queries):
    from recalls.services import RecallScopeRequest, recall_widen

    def add_rows(count: int) -> None:
        lot = released_lot(created_by=world.quality_manager)
        receive(world.a, lot, count)
        for _ in range(count):
            treat(world.a, lot, 1, patient=PatientFactory(clinic=world.a.clinic))
        recall_widen(
            actor=world.quality_manager,
            password=PASSWORD,
            recall=recall,
            scope=RecallScopeRequest(lot_ids=[lot.pk]),
            reason="more",
        )

    assert_list_queries_fixed(
        client_for(world.a.clinician),
        f"{API}/recalls/{recall.pk}/patients/?clinic={world.a.clinic.pk}",
        add_rows,
        django_assert_num_queries,
    )


def test_recording_contact_attempts_through_the_api(world, recall):
    url = f"{API}/recalls/{recall.pk}/contact-attempts/"
    body = {"patient": world.a1.pk, "outcome": "reached", "note": "Told to watch for fever"}

    other_clinic = client_for(world.b.clinician).post(url, body, format="json")
    assert other_clinic.status_code == 400
    assert error_codes(other_clinic) == ["does_not_exist"]

    response = client_for(world.a.clinician).post(url, body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["patient_reference"] == world.a1.reference

    never_treated = PatientFactory(clinic=world.a.clinic)
    refused = client_for(world.a.clinician).post(
        url, {**body, "patient": never_treated.pk}, format="json"
    )
    assert refused.status_code == 409
    assert error_codes(refused) == ["patient_not_exposed"]
    assert PatientContactAttempt.objects.count() == 1


# ---------------------------------------------------------------------------------------------
# Closing


def test_closing_through_the_api_refused_then_overridden(world, recall, auditor):
    url = f"{API}/recalls/{recall.pk}/close/"
    body = {"password": PASSWORD, "reason": "Done"}
    assert client_for(auditor).post(url, body, format="json").status_code == 403
    assert client_for(world.a.administrator).post(url, body, format="json").status_code == 403

    refused = client_for(world.quality_manager).post(url, body, format="json")
    assert refused.status_code == 409
    assert sorted(error_codes(refused)) == [
        "clinic_not_acknowledged",
        "clinic_not_acknowledged",
        "stock_not_accounted",
        "stock_not_accounted",
    ]

    closed = client_for(world.quality_manager).post(
        url, {**body, "override": True, "reason": "Clinic B closed down"}, format="json"
    )
    assert closed.status_code == 200, closed.content
    assert (closed.json()["status"], closed.json()["close_override"]) == ("closed", True)
    assert closed.json()["timing"]["closed_at"] == closed.json()["closed_at"]
    assert Recall.objects.get().status == RecallStatus.CLOSED


def test_every_write_is_refused_to_an_auditor_without_a_change(world, recall, auditor):
    client = client_for(auditor)
    before = all_row_counts()
    writes = {
        "": {},
        f"{recall.pk}/widen/": {},
        f"{recall.pk}/acknowledgements/": {"clinic": world.a.clinic.pk},
        f"{recall.pk}/dispositions/": {},
        f"{recall.pk}/contact-attempts/": {},
        f"{recall.pk}/close/": {},
    }
    for suffix, body in writes.items():
        response = client.post(f"{API}/recalls/{suffix}", body, format="json")
        assert response.status_code == 403, suffix
        assert error_codes(response) == ["role_required"]
    assert all_row_counts() == before


def test_a_member_without_a_clinic_role_in_the_recall_gets_no_contacts(world, recall):
    # A clinic's own quality manager (held at that clinic) sees the recall but is not clinic staff
    # for contact details.
    local_qm = MembershipFactory(role=Role.QUALITY_MANAGER, clinic=world.a.clinic).user
    response = client_for(local_qm).get(
        f"{API}/recalls/{recall.pk}/patients/?clinic={world.a.clinic.pk}"
    )
    assert response.status_code == 200
    assert {row["contact"] is None for row in response.json()["results"]} == {True}


def test_detail_runs_a_fixed_number_of_queries(world, django_assert_num_queries):
    def recall_with(clinics: int) -> Recall:
        lot = released_lot(created_by=world.quality_manager)
        for _ in range(clinics):
            ready = clinic_ready()
            ClinicContactFactory(clinic=ready.clinic)
            receive(ready, lot, 2)
        return open_recall(world, lots=[lot])

    client = client_for(world.quality_manager)
    small = recall_with(1)
    with CaptureQueriesContext(connection) as one:
        assert client.get(f"{API}/recalls/{small.pk}/").status_code == 200
    large = recall_with(20)
    with django_assert_num_queries(len(one)):
        response = client.get(f"{API}/recalls/{large.pk}/")
    assert len(response.json()["stock"]) == 20
