"""The stock admin is a thin client of the stock services: who sees which clinic's stock, the
receipt form, and transfers, write-offs and quarantine decisions recorded from a balance row."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from pghistory.models import Events

from stock.models import Receipt, StockBalance, StockMovement, StockState
from stock.selectors import stock_balances_disagreeing
from tests.admin_helpers import admin_client as browser
from tests.factories import ClinicFactory, clinic_ready, receive, released_lot

pytestmark = pytest.mark.django_db

MODELS = ("receipt", "stockmovement", "stockbalance")


def _url(model: str, view: str, *args) -> str:
    return reverse(f"admin:stock_{model}_{view}", args=args)


def _record_url(balance: StockBalance, action: str) -> str:
    return reverse("admin:stock_stockbalance_record", args=[balance.pk, action])


@pytest.fixture(autouse=True)
def _ledger_agrees_after_each_scenario(db):
    yield
    assert stock_balances_disagreeing() == []


@pytest.fixture
def ready():
    return clinic_ready()


@pytest.fixture
def lot():
    return released_lot()


@pytest.fixture
def stocked(ready, lot):
    receive(ready, lot, 10)
    return ready


def _balance(ready, lot, state=StockState.ACCEPTED) -> StockBalance:
    return StockBalance.objects.get(clinic=ready.clinic, lot=lot, state=state)


def _receipt_form(ready, lot, **fields) -> dict:
    return {
        "clinic": ready.clinic.pk,
        "lot": lot.pk,
        "quantity": 6,
        "decision": "accept",
        "package_intact": "on",
        "label_readable": "on",
        "transport_min_celsius": "-75",
        "transport_max_celsius": "-65",
        "storage_location": "Freezer 2",
        **fields,
    }


@pytest.mark.parametrize("role", ["quality_manager", "auditor"])
def test_stock_pages_answer_for_quality_manager_and_auditor(request, stocked, lot, role):
    client = browser(request.getfixturevalue(role))
    receipt = Receipt.objects.get()
    assert client.get(reverse("admin:app_list", args=["stock"])).status_code == 200
    for model in MODELS:
        assert client.get(_url(model, "changelist")).status_code == 200, model
    assert client.get(_url("receipt", "change", receipt.pk)).status_code == 200
    assert client.get(_url("receipt", "audit_trail", receipt.pk)).status_code == 200
    movement = StockMovement.objects.get()
    assert client.get(_url("stockmovement", "change", movement.pk)).status_code == 200
    assert client.get(_url("stockbalance", "change", _balance(stocked, lot).pk)).status_code == 200


def test_auditor_cannot_receive_or_record_movements(auditor, stocked, lot):
    client = browser(auditor)
    assert client.get(_url("receipt", "add")).status_code == 403
    assert client.post(_url("receipt", "add"), _receipt_form(stocked, lot)).status_code == 403
    balance = _balance(stocked, lot)
    for action in ("transfer", "write-off"):
        assert client.get(_record_url(balance, action)).status_code == 403
        response = client.post(
            _record_url(balance, action), {"quantity": 1, "kind": "wastage", "reason": "x"}
        )
        assert response.status_code == 403
    listed = client.get(_url("stockbalance", "changelist")).content.decode()
    assert _record_url(balance, "write-off") not in listed
    assert Receipt.objects.count() == 1
    assert _balance(stocked, lot).quantity == 10


def test_ledger_and_balances_cannot_be_added_or_changed_even_by_the_quality_manager(
    quality_manager, stocked, lot
):
    client = browser(quality_manager)
    movement = StockMovement.objects.get()
    balance = _balance(stocked, lot)
    assert client.get(_url("stockmovement", "add")).status_code == 403
    assert client.get(_url("stockbalance", "add")).status_code == 403
    assert client.post(_url("stockmovement", "change", movement.pk), {}).status_code == 403
    assert client.post(_url("stockbalance", "change", balance.pk), {}).status_code == 403


def test_receipt_form_refuses_accept_with_a_temperature_excursion_and_stores_nothing(ready, lot):
    client = browser(ready.administrator)
    response = client.post(
        _url("receipt", "add"), _receipt_form(ready, lot, transport_max_celsius="-40")
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "receipt_temperature_excursion" in str(errors["transport_max_celsius"])
    assert not Receipt.objects.exists()
    assert not StockMovement.objects.exists()
    assert not StockBalance.objects.exists()


def test_receipt_form_lists_every_failed_check_at_the_door(ready, lot):
    client = browser(ready.administrator)
    form = _receipt_form(ready, lot, transport_max_celsius="-40")
    del form["package_intact"], form["label_readable"]
    response = client.post(_url("receipt", "add"), form)
    content = response.content.decode()
    for code in (
        "receipt_package_damaged",
        "receipt_label_unreadable",
        "receipt_temperature_excursion",
    ):
        assert code in content
    assert not Receipt.objects.exists()


def test_receipt_form_receives_through_the_service_with_the_user_in_the_history(ready, lot):
    client = browser(ready.administrator)
    response = client.post(_url("receipt", "add"), _receipt_form(ready, lot))
    assert response.status_code == 302
    receipt = Receipt.objects.get()
    assert (receipt.received_by, receipt.quantity) == (ready.administrator, 6)
    assert _balance(ready, lot).quantity == 6
    event = Events.objects.tracks(receipt).get()
    assert event.pgh_context["user"] == ready.administrator.pk
    assert event.pgh_context["reason"] == "received: accept"


def test_receipt_form_offers_only_the_clinics_where_the_user_keeps_stock(ready, lot):
    ClinicFactory(name="Not Mine")
    client = browser(ready.administrator)
    form = client.get(_url("receipt", "add")).context["adminform"].form
    assert list(form.fields["clinic"].queryset) == [ready.clinic]
    other = ClinicFactory(name="Still Not Mine")
    response = client.post(_url("receipt", "add"), _receipt_form(ready, lot, clinic=other.pk))
    assert "clinic" in response.context["adminform"].form.errors
    assert not Receipt.objects.exists()


def test_clinic_staff_see_only_their_own_clinics_stock(stocked, lot):
    elsewhere = clinic_ready()
    receive(elsewhere, lot, 4)
    client = browser(stocked.clinician)
    for model in MODELS:
        rows = client.get(_url(model, "changelist")).context["cl"].result_list
        assert {row.clinic_id for row in rows} == {stocked.clinic.pk}, model
    theirs = Receipt.objects.get(clinic=elsewhere.clinic)
    assert client.get(_url("receipt", "change", theirs.pk)).status_code == 302  # "does not exist"
    assert client.get(_record_url(_balance(elsewhere, lot), "transfer")).status_code == 404


def test_a_transfer_recorded_from_a_balance_row_arrives_quarantined(stocked, lot):
    receiving = ClinicFactory(name="Receiving Clinic")
    client = browser(stocked.administrator)
    balance = _balance(stocked, lot)
    page = client.get(_url("stockbalance", "change", balance.pk)).content.decode()
    assert _record_url(balance, "transfer") in page
    response = client.post(
        _record_url(balance, "transfer"),
        {"to_clinic": receiving.pk, "quantity": 4, "reason": "cover a shortage"},
    )
    assert response.status_code == 302
    assert _balance(stocked, lot).quantity == 6
    arrived = StockBalance.objects.get(clinic=receiving, lot=lot)
    assert (arrived.state, arrived.quantity) == (StockState.QUARANTINED, 4)
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("Receiving Clinic" in message for message in messages)


def test_a_write_off_of_more_than_is_there_is_a_form_error_and_changes_nothing(stocked, lot):
    client = browser(stocked.administrator)
    balance = _balance(stocked, lot)
    response = client.post(
        _record_url(balance, "write-off"),
        {"kind": "wastage", "quantity": 11, "reason": "dropped"},
    )
    assert response.status_code == 200
    assert "stock_insufficient" in str(response.context["form"].errors["quantity"])
    assert _balance(stocked, lot).quantity == 10
    assert StockMovement.objects.count() == 1

    response = client.post(
        _record_url(balance, "write-off"), {"kind": "wastage", "quantity": 2, "reason": ""}
    )
    assert "reason" in response.context["form"].errors
    assert _balance(stocked, lot).quantity == 10


def test_wastage_is_written_off_through_the_service(stocked, lot):
    client = browser(stocked.administrator)
    response = client.post(
        _record_url(_balance(stocked, lot), "write-off"),
        {"kind": "wastage", "quantity": 2, "reason": "vial dropped"},
    )
    assert response.status_code == 302
    assert _balance(stocked, lot).quantity == 8
    movement = StockMovement.objects.get(kind="wastage")
    assert (movement.delta, movement.reason, movement.actor) == (
        -2,
        "vial dropped",
        stocked.administrator,
    )


def test_a_quarantine_decision_moves_units_into_usable_stock(ready, lot):
    receive(ready, lot, 5, decision="quarantine")
    client = browser(ready.administrator)
    quarantined = _balance(ready, lot, StockState.QUARANTINED)
    assert client.get(_record_url(quarantined, "transfer")).status_code == 404
    response = client.post(
        _record_url(quarantined, "quarantine"),
        {"decision": "accept", "quantity": 3, "reason": "logger data reviewed"},
    )
    assert response.status_code == 302
    assert _balance(ready, lot, StockState.QUARANTINED).quantity == 2
    assert _balance(ready, lot).quantity == 3


def test_stock_change_lists_run_a_fixed_number_of_queries(quality_manager, stocked, lot):
    client = browser(quality_manager)

    def counts():
        result = {}
        for model in MODELS:
            with CaptureQueriesContext(connection) as queries:
                assert client.get(_url(model, "changelist")).status_code == 200
            result[model] = len(queries)
        return result

    before = counts()
    for _ in range(4):
        other = released_lot()
        receive(stocked, other, 3)
        receive(stocked, other, 2, decision="quarantine")
    assert counts() == before


def test_receipt_decimal_range_is_shown_on_the_change_list(quality_manager, stocked):
    client = browser(quality_manager)
    content = client.get(_url("receipt", "changelist")).content.decode()
    product = Receipt.objects.get().lot.product
    assert f"{product.storage_min_celsius} to {product.storage_max_celsius}" in content


def test_a_lots_related_audit_trail_shows_clinic_staff_no_clinics_records(
    stocked, lot, quality_manager
):
    url = reverse("admin:lots_lot_audit_trail", args=[lot.pk]) + "?related=1"
    assert "stock.Receipt #" in browser(quality_manager).get(url).content.decode()
    staff_view = browser(stocked.administrator).get(url).content.decode()
    assert "stock.Receipt #" not in staff_view
    assert "lots.Lot #" in staff_view
