"""API tests for receipts, stock balances, the movement ledger, transfers, write-offs and
quarantine decisions: status codes, permissions, scoping by clinic and wiring."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.utils import timezone

from lots.models import Lot, LotStatus
from providers.models import Role
from stock.models import Receipt, StockBalance, StockMovement, StockState
from stock.selectors import stock_balances_disagreeing
from tests.api_helpers import API, assert_list_queries_fixed, error_codes, error_fields
from tests.factories import ClinicFactory, LotFactory, MembershipFactory
from tests.treatments.test_api import client_for, receive, released_lot

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]


def receipt_body(at_clinic, of_lot, **overrides) -> dict[str, Any]:
    return {
        "clinic": at_clinic.pk,
        "lot": of_lot.pk,
        "quantity": 10,
        "decision": "accept",
        "package_intact": True,
        "label_readable": True,
        "transport_min_celsius": "-75.0",
        "transport_max_celsius": "-65.0",
        "storage_location": "Freezer 1",
        "notes": "",
        **overrides,
    }


def units(clinic, lot, state: str = StockState.ACCEPTED) -> int:
    rows = StockBalance.objects.filter(clinic=clinic, lot=lot, state=state)
    return rows.values_list("quantity", flat=True).first() or 0


@pytest.fixture
def lot(quality_manager):
    return released_lot(quality_manager)


@pytest.fixture
def admin_client(clinic_administrator):
    return client_for(clinic_administrator)


# ---------------------------------------------------------------------------------------------
# Receipts


def test_receipt_accepted_puts_units_into_accepted_stock(admin_client, clinic, lot):
    response = admin_client.post(f"{API}/receipts/", receipt_body(clinic, lot), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["clinic"] == {"id": clinic.pk, "name": clinic.name}
    assert body["lot"] == lot.pk
    assert body["lot_number"] == lot.lot_number
    assert body["product"]["id"] == lot.product_id
    assert body["decision"] == "accept"
    assert body["transport_min_celsius"] == "-75.0"
    assert body["received_by"] == "clinicadmin"
    assert units(clinic, lot) == 10
    assert stock_balances_disagreeing() == []


def test_receipt_failing_the_door_checks_lists_every_failure_and_changes_nothing(
    admin_client, clinic, lot
):
    body = receipt_body(
        clinic,
        lot,
        package_intact=False,
        label_readable=False,
        transport_max_celsius="-20.0",
    )
    response = admin_client.post(f"{API}/receipts/", body, format="json")
    assert response.status_code == 409
    assert error_codes(response) == [
        "receipt_package_damaged",
        "receipt_label_unreadable",
        "receipt_temperature_excursion",
    ]
    assert not Receipt.objects.exists()
    assert not StockMovement.objects.exists()


def test_receipt_quarantined_then_accepted_after_checking(admin_client, clinic, lot):
    response = admin_client.post(
        f"{API}/receipts/",
        receipt_body(clinic, lot, decision="quarantine", package_intact=False),
        format="json",
    )
    assert response.status_code == 201, response.content
    assert units(clinic, lot, StockState.QUARANTINED) == 10

    response = admin_client.post(
        f"{API}/stock/quarantine-resolutions/",
        {"clinic": clinic.pk, "lot": lot.pk, "quantity": 6, "accept": True, "reason": "checked"},
        format="json",
    )
    assert response.status_code == 201, response.content
    movements = response.json()["movements"]
    assert [(m["state"], m["delta"], m["kind"]) for m in movements] == [
        ("quarantined", -6, "quarantine_accept"),
        ("accepted", 6, "quarantine_accept"),
    ]
    assert units(clinic, lot) == 6
    assert units(clinic, lot, StockState.QUARANTINED) == 4


def test_quarantine_resolution_reject_needs_a_reason(admin_client, clinic, lot):
    receive(clinic, lot, 5, decision="quarantine")
    response = admin_client.post(
        f"{API}/stock/quarantine-resolutions/",
        {"clinic": clinic.pk, "lot": lot.pk, "quantity": 5, "accept": False, "reason": " "},
        format="json",
    )
    assert response.status_code == 400
    assert error_codes(response) == ["reason_required"]
    assert units(clinic, lot, StockState.QUARANTINED) == 5


def test_quarantine_resolution_of_more_than_is_quarantined_is_refused(admin_client, clinic, lot):
    receive(clinic, lot, 2, decision="quarantine")
    response = admin_client.post(
        f"{API}/stock/quarantine-resolutions/",
        {"clinic": clinic.pk, "lot": lot.pk, "quantity": 3, "accept": True, "reason": "ok"},
        format="json",
    )
    assert response.status_code == 409
    assert error_codes(response) == ["stock_insufficient"]


def test_receipt_of_a_rejected_lot_can_only_be_a_rejection(admin_client, clinic, quality_manager):
    rejected = LotFactory(status=LotStatus.REJECTED, created_by=quality_manager)
    response = admin_client.post(f"{API}/receipts/", receipt_body(clinic, rejected), format="json")
    assert response.status_code == 409
    assert error_codes(response) == ["lot_not_receivable"]
    response = admin_client.post(
        f"{API}/receipts/", receipt_body(clinic, rejected, decision="reject"), format="json"
    )
    assert response.status_code == 201
    assert units(clinic, rejected, StockState.REJECTED) == 10


def test_receipt_keeps_the_given_arrival_time(admin_client, clinic, lot):
    day = lot.manufactured_on + datetime.timedelta(days=1)
    arrived = f"{day.isoformat()}T08:30:00+01:00"
    response = admin_client.post(
        f"{API}/receipts/", receipt_body(clinic, lot, received_at=arrived), format="json"
    )
    assert response.status_code == 201, response.content
    assert Receipt.objects.get().received_at == datetime.datetime(
        day.year, day.month, day.day, 7, 30, tzinfo=datetime.UTC
    )


def test_receipt_refuses_an_arrival_time_without_its_offset(admin_client, clinic, lot):
    response = admin_client.post(
        f"{API}/receipts/",
        receipt_body(clinic, lot, received_at="2026-01-05T08:30:00"),
        format="json",
    )
    assert response.status_code == 400
    assert error_codes(response) == ["offset_required"]
    assert error_fields(response) == ["received_at"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"quantity": 0}, "quantity"),
        ({"quantity": 2**31}, "quantity"),
        ({"decision": "maybe"}, "decision"),
        ({"transport_min_celsius": "-10000.0"}, "transport_min_celsius"),
        ({"lot": 987654321}, "lot"),
        ({"package_intact": "perhaps"}, "package_intact"),
    ],
)
def test_receipt_refuses_bad_input_naming_the_field(admin_client, clinic, lot, overrides, field):
    response = admin_client.post(
        f"{API}/receipts/", receipt_body(clinic, lot, **overrides), format="json"
    )
    assert response.status_code == 400
    assert error_fields(response) == [field]
    assert not Receipt.objects.exists()


def test_a_clinician_cannot_receive_stock(clinician, clinic, lot):
    response = client_for(clinician).post(
        f"{API}/receipts/", receipt_body(clinic, lot), format="json"
    )
    assert response.status_code == 403
    assert error_codes(response) == ["role_required"]
    assert not Receipt.objects.exists()


def test_a_clinic_administrator_cannot_receive_at_another_clinic(admin_client, lot):
    response = admin_client.post(
        f"{API}/receipts/", receipt_body(ClinicFactory(), lot), format="json"
    )
    assert response.status_code == 403
    assert error_codes(response) == ["role_required"]


def test_a_network_quality_manager_may_receive_anywhere(qm_client, clinic, lot):
    response = qm_client.post(f"{API}/receipts/", receipt_body(clinic, lot), format="json")
    assert response.status_code == 201, response.content


def test_an_auditor_reads_receipts_but_never_writes(auditor, clinic, lot):
    receive(clinic, lot, 3)
    client = client_for(auditor)
    assert client.get(f"{API}/receipts/").json()["count"] == 1
    response = client.post(f"{API}/receipts/", receipt_body(clinic, lot), format="json")
    assert response.status_code == 403
    assert error_codes(response) == ["role_required"]
    assert Receipt.objects.count() == 1


def test_receipt_list_is_scoped_to_the_own_clinic_and_filters(admin_client, clinic, lot):
    mine = receive(clinic, lot, 3)
    quarantined = receive(clinic, lot, 2, decision="quarantine")
    receive(ClinicFactory(), lot, 4)

    def ids(**params):
        response = admin_client.get(f"{API}/receipts/", params)
        assert response.status_code == 200, response.content
        return {row["id"] for row in response.json()["results"]}

    assert ids() == {mine.pk, quarantined.pk}
    assert ids(decision="quarantine") == {quarantined.pk}
    assert ids(lot=lot.pk, clinic=clinic.pk) == {mine.pk, quarantined.pk}
    today = timezone.localdate().isoformat()
    assert ids(received_after=today) == {mine.pk, quarantined.pk}
    assert ids(received_before="2000-01-01") == set()


def test_receipt_list_runs_a_fixed_number_of_queries(
    admin_client, clinic, quality_manager, django_assert_num_queries
):
    def add(n):
        for _ in range(n):
            receive(clinic, LotFactory(created_by=quality_manager), 1, decision="quarantine")

    assert_list_queries_fixed(admin_client, f"{API}/receipts/", add, django_assert_num_queries)


# ---------------------------------------------------------------------------------------------
# Balances and the ledger


def test_stock_lists_units_above_zero_with_lot_and_product(admin_client, clinic, lot):
    receive(clinic, lot, 4)
    receive(clinic, lot, 2, decision="quarantine")
    admin = MembershipFactory(role=Role.CLINIC_ADMINISTRATOR, clinic=clinic).user
    client = client_for(admin)
    client.post(
        f"{API}/stock/write-offs/",
        {
            "clinic": clinic.pk,
            "lot": lot.pk,
            "quantity": 2,
            "kind": "wastage",
            "state": "quarantined",
            "reason": "vials broken",
        },
        format="json",
    )
    rows = admin_client.get(f"{API}/stock/").json()["results"]
    # The emptied quarantine balance is not listed.
    assert rows == [
        {
            "clinic": {"id": clinic.pk, "name": clinic.name},
            "lot": lot.pk,
            "lot_number": lot.lot_number,
            "lot_status": "released",
            "expires_on": lot.expires_on.isoformat(),
            "product": {"id": lot.product.pk, "name": lot.product.name, "gtin": None},
            "state": "accepted",
            "quantity": 4,
        }
    ]


def test_stock_filters_and_scope(admin_client, clinic, lot, quality_manager, auditor):
    other_lot = released_lot(quality_manager)
    receive(clinic, lot, 4)
    receive(clinic, other_lot, 1, decision="quarantine")
    elsewhere = ClinicFactory()
    receive(elsewhere, lot, 7)

    def rows(client, **params):
        response = client.get(f"{API}/stock/", params)
        assert response.status_code == 200, response.content
        return {
            (r["clinic"]["id"], r["lot"], r["state"], r["quantity"])
            for r in response.json()["results"]
        }

    assert rows(admin_client) == {
        (clinic.pk, lot.pk, "accepted", 4),
        (clinic.pk, other_lot.pk, "quarantined", 1),
    }
    assert rows(admin_client, state="quarantined") == {(clinic.pk, other_lot.pk, "quarantined", 1)}
    assert rows(admin_client, product=lot.product_id) == {(clinic.pk, lot.pk, "accepted", 4)}
    assert rows(admin_client, lot=other_lot.pk) == {(clinic.pk, other_lot.pk, "quarantined", 1)}
    assert rows(admin_client, clinic=elsewhere.pk) == set()
    assert rows(client_for(auditor), lot=lot.pk) == {
        (clinic.pk, lot.pk, "accepted", 4),
        (elsewhere.pk, lot.pk, "accepted", 7),
    }


@pytest.mark.parametrize(
    ("params", "field"),
    [({"state": "gone"}, "state"), ({"lot": "x"}, "lot"), ({"product": "-1"}, "product")],
)
def test_stock_refuses_bad_filters_naming_them(admin_client, params, field):
    response = admin_client.get(f"{API}/stock/", params)
    assert response.status_code == 400
    assert error_fields(response) == [field]


def test_stock_list_runs_a_fixed_number_of_queries(
    admin_client, clinic, quality_manager, django_assert_num_queries
):
    def add(n):
        for _ in range(n):
            receive(clinic, LotFactory(created_by=quality_manager), 1, decision="quarantine")

    assert_list_queries_fixed(admin_client, f"{API}/stock/", add, django_assert_num_queries)


def test_movements_list_the_ledger_newest_first_and_filter(admin_client, clinic, lot):
    receive(clinic, lot, 5)
    admin_client.post(
        f"{API}/stock/write-offs/",
        {"clinic": clinic.pk, "lot": lot.pk, "quantity": 1, "kind": "wastage", "reason": "drop"},
        format="json",
    )
    rows = admin_client.get(f"{API}/stock/movements/").json()["results"]
    assert [(r["kind"], r["delta"]) for r in rows] == [("wastage", -1), ("receipt", 5)]
    assert rows[0]["actor"] == "clinicadmin"
    assert rows[0]["reason"] == "drop"
    assert rows[1]["receipt"] == Receipt.objects.get().pk
    rows = admin_client.get(f"{API}/stock/movements/", {"kind": "receipt"}).json()["results"]
    assert [r["kind"] for r in rows] == ["receipt"]
    other = ClinicFactory()
    receive(other, lot, 1)
    assert admin_client.get(f"{API}/stock/movements/", {"clinic": other.pk}).json()["count"] == 0
    assert admin_client.get(f"{API}/stock/movements/", {"lot": lot.pk}).json()["count"] == 2


def test_movement_list_runs_a_fixed_number_of_queries(
    admin_client, clinic, quality_manager, django_assert_num_queries
):
    def add(n):
        for _ in range(n):
            receive(clinic, LotFactory(created_by=quality_manager), 1, decision="quarantine")

    assert_list_queries_fixed(
        admin_client, f"{API}/stock/movements/", add, django_assert_num_queries
    )


# ---------------------------------------------------------------------------------------------
# Transfers and write-offs


def transfer_body(from_clinic, to_clinic, lot: Lot, **overrides) -> dict[str, Any]:
    return {
        "from_clinic": from_clinic.pk,
        "to_clinic": to_clinic.pk,
        "lot": lot.pk,
        "quantity": 3,
        "reason": "rebalancing",
        **overrides,
    }


def test_transfer_moves_accepted_units_into_the_other_clinics_quarantine(admin_client, clinic, lot):
    receive(clinic, lot, 5)
    other = ClinicFactory()
    response = admin_client.post(
        f"{API}/stock/transfers/", transfer_body(clinic, other, lot), format="json"
    )
    assert response.status_code == 201, response.content
    movements = response.json()["movements"]
    assert [(m["clinic"]["id"], m["state"], m["delta"], m["kind"]) for m in movements] == [
        (clinic.pk, "accepted", -3, "transfer_out"),
        (other.pk, "quarantined", 3, "transfer_in"),
    ]
    assert movements[0]["counterpart_clinic"] == {"id": other.pk, "name": other.name}
    assert units(clinic, lot) == 2
    assert units(other, lot, StockState.QUARANTINED) == 3
    assert stock_balances_disagreeing() == []


def test_transfer_of_more_than_the_clinic_holds_is_refused(admin_client, clinic, lot):
    receive(clinic, lot, 2)
    response = admin_client.post(
        f"{API}/stock/transfers/", transfer_body(clinic, ClinicFactory(), lot), format="json"
    )
    assert response.status_code == 409
    assert error_codes(response) == ["stock_insufficient"]
    assert units(clinic, lot) == 2
    assert StockMovement.objects.count() == 1


def test_transfer_to_the_same_clinic_is_refused(admin_client, clinic, lot):
    receive(clinic, lot, 5)
    response = admin_client.post(
        f"{API}/stock/transfers/", transfer_body(clinic, clinic, lot), format="json"
    )
    assert response.status_code == 400
    assert error_codes(response) == ["transfer_same_clinic"]
    assert error_fields(response) == ["to_clinic"]


def test_transfer_from_another_clinic_is_refused(admin_client, lot):
    elsewhere = ClinicFactory()
    receive(elsewhere, lot, 5)
    response = admin_client.post(
        f"{API}/stock/transfers/", transfer_body(elsewhere, ClinicFactory(), lot), format="json"
    )
    assert response.status_code == 403
    assert units(elsewhere, lot) == 5


@pytest.mark.parametrize("kind", ["wastage", "return", "destruction"])
def test_write_off_takes_units_out_for_good(admin_client, clinic, lot, kind):
    receive(clinic, lot, 5)
    response = admin_client.post(
        f"{API}/stock/write-offs/",
        {"clinic": clinic.pk, "lot": lot.pk, "quantity": 2, "kind": kind, "reason": "r"},
        format="json",
    )
    assert response.status_code == 201, response.content
    [movement] = response.json()["movements"]
    assert (movement["kind"], movement["delta"], movement["state"]) == (kind, -2, "accepted")
    assert units(clinic, lot) == 3


@pytest.mark.parametrize("kind", ["treatment", "receipt", "transfer_out", "block"])
def test_write_off_refuses_kinds_that_are_not_a_write_off(admin_client, clinic, lot, kind):
    receive(clinic, lot, 5)
    response = admin_client.post(
        f"{API}/stock/write-offs/",
        {"clinic": clinic.pk, "lot": lot.pk, "quantity": 1, "kind": kind, "reason": "r"},
        format="json",
    )
    assert response.status_code == 400
    assert error_fields(response) == ["kind"]
    assert units(clinic, lot) == 5


def test_write_off_of_more_than_on_hand_is_refused(admin_client, clinic, lot):
    receive(clinic, lot, 1)
    response = admin_client.post(
        f"{API}/stock/write-offs/",
        {"clinic": clinic.pk, "lot": lot.pk, "quantity": 2, "kind": "wastage", "reason": "r"},
        format="json",
    )
    assert response.status_code == 409
    assert error_codes(response) == ["stock_insufficient"]
    assert error_fields(response) == ["quantity"]


def test_write_off_needs_a_reason(admin_client, clinic, lot):
    receive(clinic, lot, 1)
    response = admin_client.post(
        f"{API}/stock/write-offs/",
        {"clinic": clinic.pk, "lot": lot.pk, "quantity": 1, "kind": "wastage", "reason": ""},
        format="json",
    )
    assert response.status_code == 400
    assert error_codes(response) == ["reason_required"]


# ---------------------------------------------------------------------------------------------
# Gaps in stock_receive, reported to the service owner: these fail until it refuses arrival
# times that cannot be true (DESIGN rule 9: bad input gets an error naming the field).


@pytest.mark.parametrize(
    "received_at",
    ["2099-01-01T00:00:00+00:00", "1990-01-01T00:00:00+00:00"],
    ids=["in_the_future", "before_the_lot_was_made"],
)
def test_receipt_refuses_an_arrival_time_that_cannot_be_true(
    admin_client, clinic, lot, received_at
):
    response = admin_client.post(
        f"{API}/receipts/", receipt_body(clinic, lot, received_at=received_at), format="json"
    )
    assert response.status_code == 400, response.content
    assert error_fields(response) == ["received_at"]
    assert not Receipt.objects.exists()
