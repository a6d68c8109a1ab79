"""The stock pages through Django's test client: who sees which clinic's stock, receiving a
delivery by its scan with the checks at the door, moving units out, and the home page's two
helpers. Every refusal is shown inline and changes nothing."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from lots.models import LotStatus
from pages.stock import expiring_stock, unusable_stock
from providers.models import Role
from stock.models import MovementKind, Receipt, StockBalance, StockMovement, StockState
from tests.factories import (
    LotFactory,
    MembershipFactory,
    ProductFactory,
    UserFactory,
    clinic_ready,
    receive,
    released_lot,
)
from tests.pages.conftest import client_for

pytestmark = pytest.mark.django_db

STOCK = reverse("pages:stock")
RECEIVE = reverse("pages:stock-receive")
SCAN = reverse("pages:stock-receive-scan")
TODAY = datetime.date.today


def gtin_product(**fields):
    """A product with a valid GTIN-14 (check digit computed)."""
    body = f"0950600{ProductFactory._meta.model.objects.count() + 1:06d}"
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return ProductFactory(gtin=body + str((10 - total % 10) % 10), **fields)


def scan_of(lot) -> str:
    return f"(01){lot.product.gtin}(17){lot.expires_on:%y%m%d}(10){lot.lot_number}"


def door(lot, clinic, **changes):
    """A receipt form with every check at the door passed."""
    product = lot.product
    data = {
        "scan": scan_of(lot),
        "clinic": clinic.pk,
        "quantity": "5",
        "package_intact": "on",
        "label_readable": "on",
        "transport_min_celsius": str(product.storage_min_celsius),
        "transport_max_celsius": str(product.storage_max_celsius),
        "storage_location": "Freezer 2",
        "decision": "accept",
        "notes": "",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def balance(clinic, lot, state=StockState.ACCEPTED) -> int:
    row = StockBalance.objects.filter(clinic=clinic, lot=lot, state=state).first()
    return row.quantity if row else 0


# ---------------------------------------------------------------------------------------------
# Seeing stock


def test_clinic_staff_see_their_own_clinics_stock_and_not_another_clinics():
    here, there = clinic_ready(), clinic_ready()
    mine, theirs = released_lot(product=gtin_product()), released_lot(product=gtin_product())
    receive(here, mine, 4)
    receive(there, theirs, 6)

    response = client_for(here.clinician).get(STOCK)

    assert response.status_code == 200
    text = response.content.decode()
    assert f"Lot {mine.lot_number} of {mine.product.name}" in text
    assert theirs.lot_number not in text
    assert there.clinic.name not in text


def test_a_network_quality_manager_sees_every_clinic_and_filters_by_one(quality_manager):
    here, there = clinic_ready(), clinic_ready()
    mine, theirs = released_lot(), released_lot()
    receive(here, mine, 4)
    receive(there, theirs, 6)
    client = client_for(quality_manager)

    every = client.get(STOCK).content.decode()
    one = client.get(STOCK, {"clinic": there.clinic.pk}).content.decode()

    assert mine.lot_number in every and theirs.lot_number in every
    assert theirs.lot_number in one and mine.lot_number not in one


def test_the_auditor_reads_stock_without_any_write_control(auditor):
    ready = clinic_ready()
    lot = released_lot()
    receive(ready, lot, 4)
    client = client_for(auditor)

    text = client.get(STOCK).content.decode()

    assert lot.lot_number in text
    assert "Receive a delivery" not in text
    assert "Transfer" not in text and "Waste" not in text
    assert client.get(RECEIVE).status_code == 403
    row = StockBalance.objects.get(lot=lot)
    move = reverse("pages:stock-move", args=[row.pk, "waste"])
    assert client.get(move).status_code == 403
    assert client.post(move, {"quantity": "1", "reason": "x"}).status_code == 403
    assert balance(ready.clinic, lot) == 4


def test_quarantined_blocked_and_rejected_stock_is_never_shown_as_usable():
    ready = clinic_ready()
    usable, held, rejected = released_lot(), released_lot(), released_lot()
    receive(ready, usable, 2)
    receive(ready, held, 3, decision="quarantine")
    receive(ready, rejected, 4, decision="reject")
    client = client_for(ready.administrator)

    only_usable = client.get(STOCK, {"state": "usable"}).content.decode()
    not_usable = client.get(STOCK, {"state": "unusable"}).content.decode()

    assert usable.lot_number in only_usable
    assert held.lot_number not in only_usable and rejected.lot_number not in only_usable
    assert held.lot_number in not_usable and rejected.lot_number in not_usable
    assert "Quarantined: check before use" in not_usable
    assert "Rejected: return or destroy" in not_usable
    assert usable.lot_number not in not_usable


def test_stock_is_listed_first_expiry_first_and_filtered_by_expiry_window():
    ready = clinic_ready()
    late = released_lot(expires_on=TODAY() + datetime.timedelta(days=200))
    soon = released_lot(expires_on=TODAY() + datetime.timedelta(days=20))
    middle = released_lot(expires_on=TODAY() + datetime.timedelta(days=50))
    for lot in (late, soon, middle):
        receive(ready, lot, 1)
    client = client_for(ready.administrator)

    text = client.get(STOCK).content.decode()
    within_30 = client.get(STOCK, {"expires": "30"}).content.decode()
    within_60 = client.get(STOCK, {"expires": "60"}).content.decode()

    assert text.index(soon.lot_number) < text.index(middle.lot_number) < text.index(late.lot_number)
    assert "in 20 days" in text and "in 50 days" in text
    assert soon.lot_number in within_30 and middle.lot_number not in within_30
    assert middle.lot_number in within_60 and late.lot_number not in within_60


def test_the_stock_csv_holds_what_the_page_shows_with_formula_cells_guarded():
    ready = clinic_ready()
    lot = released_lot(product=ProductFactory(name="=HYPERLINK(1)"))
    other = released_lot()
    receive(ready, lot, 3)
    receive(ready, other, 2, decision="quarantine")

    response = client_for(ready.administrator).get(STOCK, {"state": "usable", "format": "csv"})

    assert response["Content-Type"].startswith("text/csv")
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines[0].startswith("clinic,product,gtin,lot_number")
    assert len(lines) == 2
    assert "'=HYPERLINK(1)" in lines[1] and lot.lot_number in lines[1]


def test_the_stock_page_pages_fifty_rows_at_a_time():
    ready = clinic_ready()
    product = ProductFactory()
    for _ in range(51):
        receive(ready, released_lot(product=product), 1)
    client = client_for(ready.administrator)

    first = client.get(STOCK).content.decode()
    second = client.get(STOCK, {"page": 2}).content.decode()

    assert "Page 1 of 2" in first and "Next" in first
    assert "Page 2 of 2" in second and "Previous" in second
    assert second.count("<tr class=") == 1


def _queries(client, url, params=None) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url, params or {}).status_code == 200
    return len(captured)


def test_the_stock_page_runs_the_same_number_of_queries_for_few_and_many_rows(quality_manager):
    ready = clinic_ready()
    receive(ready, released_lot(), 1)
    client = client_for(quality_manager)
    few = _queries(client, STOCK)
    for _ in range(12):
        other = clinic_ready()
        receive(other, released_lot(), 2, decision="quarantine")
        receive(other, released_lot(), 3)
    many = _queries(client, STOCK)
    print(f"stock page: {few} queries with 1 row, {many} with 25 rows")
    assert few == many
    assert _queries(client, STOCK, {"format": "csv"}) <= few


# ---------------------------------------------------------------------------------------------
# The home page's helpers


def test_expiring_stock_lists_usable_units_within_the_window_first_expiry_first():
    ready, elsewhere = clinic_ready(), clinic_ready()
    soon = released_lot(expires_on=TODAY() + datetime.timedelta(days=10))
    later = released_lot(expires_on=TODAY() + datetime.timedelta(days=80))
    beyond = released_lot(expires_on=TODAY() + datetime.timedelta(days=120))
    held = released_lot(expires_on=TODAY() + datetime.timedelta(days=5))
    foreign = released_lot(expires_on=TODAY() + datetime.timedelta(days=3))
    for lot in (later, soon, beyond):
        receive(ready, lot, 1)
    receive(ready, held, 1, decision="quarantine")
    receive(elsewhere, foreign, 1)
    user = ready.administrator

    assert [b.lot for b in expiring_stock(user)] == [soon, later]
    assert [b.lot for b in expiring_stock(user, days=30)] == [soon]
    assert [b.lot for b in expiring_stock(user, limit=1)] == [soon]
    network = UserFactory()
    MembershipFactory(user=network, role=Role.AUDITOR, clinic=None)
    assert foreign in [b.lot for b in expiring_stock(network)]


def test_unusable_stock_lists_quarantined_blocked_rejected_and_not_released_lots():
    ready, elsewhere = clinic_ready(), clinic_ready()
    fine, held, rejected, on_hold = released_lot(), released_lot(), released_lot(), released_lot()
    receive(ready, fine, 1)
    receive(ready, held, 1, decision="quarantine")
    receive(ready, rejected, 1, decision="reject")
    receive(ready, on_hold, 1)
    on_hold.status = LotStatus.ON_HOLD
    on_hold.save()
    receive(elsewhere, released_lot(), 1, decision="quarantine")

    found = {(b.lot, b.state) for b in unusable_stock(ready.administrator)}

    assert found == {
        (held, StockState.QUARANTINED),
        (rejected, StockState.REJECTED),
        (on_hold, StockState.ACCEPTED),
    }
    assert len(unusable_stock(ready.administrator, limit=2)) == 2


# ---------------------------------------------------------------------------------------------
# Receiving a delivery


def test_a_clinic_administrator_receives_a_delivery_by_its_scan():
    ready = clinic_ready()
    lot = released_lot(product=gtin_product())
    client = client_for(ready.administrator)

    response = client.post(RECEIVE, door(lot, ready.clinic))

    assert response.status_code == 302
    assert balance(ready.clinic, lot) == 5
    receipt = Receipt.objects.get(lot=lot)
    assert (receipt.storage_location, receipt.received_by) == ("Freezer 2", ready.administrator)
    page = client.get(response["Location"]).content.decode()
    assert f"Received 5 unit(s) of lot {lot.lot_number}" in page
    assert f"Lot {lot.lot_number} of {lot.product.name}" in page


def test_the_scan_answer_names_the_lot_and_its_storage_range():
    ready = clinic_ready()
    lot = released_lot(product=gtin_product())
    response = client_for(ready.administrator).post(SCAN, {"scan": scan_of(lot)})
    text = response.content.decode()
    assert f"Lot {lot.lot_number} of {lot.product.name}" in text
    assert "-80.0 to -60.0 °C" in text
    assert "warn" not in text


@pytest.mark.parametrize(
    ("scan", "message"),
    [
        ("", "The scan is empty."),
        ("hello", "not a GS1 element string"),
        ("(01)09506000134353(10)X", "fails the GS1 check digit"),
        ("(01)09506000134352(10)X", "No product with GTIN"),
    ],
)
def test_a_scan_that_names_no_lot_is_answered_in_plain_words(scan, message):
    ready = clinic_ready()
    response = client_for(ready.administrator).post(SCAN, {"scan": scan})
    assert message in response.content.decode()


@pytest.mark.parametrize(
    ("status", "warning"),
    [
        (LotStatus.QUARANTINED, "still quarantined by quality"),
        (LotStatus.ON_HOLD, "is on hold"),
        (LotStatus.RECALLED, "can only be received as rejected"),
    ],
)
def test_the_scan_warns_before_saving_about_a_lot_not_released(status, warning):
    ready = clinic_ready()
    lot = LotFactory(product=gtin_product(), status=status)
    client = client_for(ready.administrator)

    answer = client.post(SCAN, {"scan": scan_of(lot)}).content.decode()
    unconfirmed = client.post(RECEIVE, door(lot, ready.clinic, decision="quarantine"))

    assert warning in answer and "I have read this warning" in answer
    assert unconfirmed.status_code == 200
    assert "tick the box to confirm before saving" in unconfirmed.content.decode()
    assert not Receipt.objects.exists()


def test_a_quarantined_lot_is_received_into_quarantine_once_the_warning_is_confirmed():
    ready = clinic_ready()
    lot = LotFactory(product=gtin_product(), status=LotStatus.QUARANTINED)
    client = client_for(ready.administrator)
    response = client.post(
        RECEIVE, door(lot, ready.clinic, decision="quarantine", acknowledge="on")
    )
    assert response.status_code == 302
    assert balance(ready.clinic, lot, StockState.QUARANTINED) == 5


def test_a_recalled_lot_cannot_be_accepted_even_with_the_warning_confirmed():
    ready = clinic_ready()
    lot = LotFactory(product=gtin_product(), status=LotStatus.RECALLED)
    response = client_for(ready.administrator).post(
        RECEIVE, door(lot, ready.clinic, acknowledge="on")
    )
    assert response.status_code == 200
    assert "it can only be received as rejected" in response.content.decode()
    assert not Receipt.objects.exists()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"transport_max_celsius": "-20.0"}, "the product must stay within -80.0 to -60.0 °C"),
        ({"transport_min_celsius": "-95.0"}, "the product must stay within -80.0 to -60.0 °C"),
        ({"package_intact": None}, "The package is not intact."),
        ({"label_readable": None}, "The label cannot be read."),
        ({"quantity": "500"}, "at most 100 more can be received"),
        ({"quantity": "0"}, "greater than or equal to 1"),
        ({"transport_min_celsius": "-50", "transport_max_celsius": "-70"}, "below the lowest"),
        ({"storage_location": ""}, "This field is required."),
        ({"decision": "maybe"}, "Select a valid choice"),
        ({"received_at": "2999-01-01T10:00"}, "cannot be recorded ahead of time"),
    ],
)
def test_a_receipt_refused_shows_why_inline_and_changes_nothing(changes, message):
    ready = clinic_ready()
    lot = released_lot(product=gtin_product())
    response = client_for(ready.administrator).post(RECEIVE, door(lot, ready.clinic, **changes))
    assert response.status_code == 200
    text = response.content.decode()
    assert message in text
    assert "Nothing was saved" in text
    assert not Receipt.objects.exists() and not StockMovement.objects.exists()


def test_a_failed_check_can_still_be_received_into_quarantine():
    ready = clinic_ready()
    lot = released_lot(product=gtin_product())
    response = client_for(ready.administrator).post(
        RECEIVE, door(lot, ready.clinic, transport_max_celsius="-20.0", decision="quarantine")
    )
    assert response.status_code == 302
    assert balance(ready.clinic, lot, StockState.QUARANTINED) == 5


def test_staff_cannot_receive_at_another_clinic_or_as_a_clinician():
    ready, other = clinic_ready(), clinic_ready()
    lot = released_lot(product=gtin_product())

    foreign = client_for(ready.administrator).post(RECEIVE, door(lot, other.clinic))
    clinician = client_for(ready.clinician).post(RECEIVE, door(lot, ready.clinic))

    assert foreign.status_code == 200
    assert "Select a valid choice" in foreign.content.decode()
    assert clinician.status_code == 403
    assert not Receipt.objects.exists()


# ---------------------------------------------------------------------------------------------
# Moving units out


def _move(ready, lot, action, state=StockState.ACCEPTED):
    row = StockBalance.objects.get(clinic=ready.clinic, lot=lot, state=state)
    return reverse("pages:stock-move", args=[row.pk, action])


def test_a_transfer_sends_units_that_arrive_quarantined_at_the_other_clinic():
    ready, other = clinic_ready(), clinic_ready()
    lot = released_lot()
    receive(ready, lot, 5)
    response = client_for(ready.administrator).post(
        _move(ready, lot, "transfer"),
        {"to_clinic": other.clinic.pk, "quantity": "2", "reason": "Other clinic ran out"},
    )
    assert response.status_code == 302
    assert balance(ready.clinic, lot) == 3
    assert balance(other.clinic, lot, StockState.QUARANTINED) == 2


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"quantity": "9", "reason": "x"}, "Only 5 accepted (usable) unit(s)"),
        ({"quantity": "1", "reason": "   "}, "This field is required."),
        ({"quantity": "-1", "reason": "x"}, "greater than or equal to 1"),
        ({"quantity": "1", "reason": "x", "to_clinic": "0"}, "Select a valid choice"),
    ],
)
def test_a_transfer_refused_shows_why_and_changes_nothing(data, message):
    ready, other = clinic_ready(), clinic_ready()
    lot = released_lot()
    receive(ready, lot, 5)
    data = {"to_clinic": other.clinic.pk, **data}
    response = client_for(ready.administrator).post(_move(ready, lot, "transfer"), data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert balance(ready.clinic, lot) == 5
    assert balance(other.clinic, lot, StockState.QUARANTINED) == 0


@pytest.mark.parametrize(
    ("action", "kind"), [("waste", MovementKind.WASTAGE), ("return", MovementKind.RETURN)]
)
def test_waste_and_return_write_units_off(action, kind):
    ready = clinic_ready()
    lot = released_lot()
    receive(ready, lot, 5)
    response = client_for(ready.administrator).post(
        _move(ready, lot, action), {"quantity": "2", "reason": "Vial dropped"}
    )
    assert response.status_code == 302
    assert balance(ready.clinic, lot) == 3
    assert StockMovement.objects.get(kind=kind).delta == -2


def test_a_write_off_beyond_the_stock_is_refused_inline():
    ready = clinic_ready()
    lot = released_lot()
    receive(ready, lot, 5)
    response = client_for(ready.administrator).post(
        _move(ready, lot, "waste"), {"quantity": "6", "reason": "Vial dropped"}
    )
    assert response.status_code == 200
    assert "Only 5 accepted (usable) unit(s) of this lot are at the clinic" in (
        response.content.decode()
    )
    assert balance(ready.clinic, lot) == 5


def test_rejected_stock_is_returned_from_its_own_state():
    ready = clinic_ready()
    lot = released_lot()
    receive(ready, lot, 4, decision="reject")
    client = client_for(ready.administrator)
    url = _move(ready, lot, "return", StockState.REJECTED)
    assert client.post(url, {"quantity": "3", "reason": "Back to maker"}).status_code == 302
    assert balance(ready.clinic, lot, StockState.REJECTED) == 1
    assert StockMovement.objects.filter(kind=MovementKind.RETURN, state="rejected").exists()
    transfer = _move(ready, lot, "transfer", StockState.REJECTED)
    assert client.get(transfer).status_code == 409


def test_another_clinics_stock_cannot_be_moved_or_even_seen():
    ready, other = clinic_ready(), clinic_ready()
    lot = released_lot()
    receive(other, lot, 5)
    url = _move(other, lot, "waste")
    client = client_for(ready.administrator)
    assert client.get(url).status_code == 404
    assert client.post(url, {"quantity": "1", "reason": "x"}).status_code == 404
    assert balance(other.clinic, lot) == 5


def test_a_clinician_sees_stock_but_no_control_to_move_it():
    ready = clinic_ready()
    lot = released_lot()
    receive(ready, lot, 5)
    client = client_for(ready.clinician)
    text = client.get(STOCK).content.decode()
    assert lot.lot_number in text and "Waste" not in text
    assert (
        client.post(_move(ready, lot, "waste"), {"quantity": "1", "reason": "x"}).status_code == 403
    )
    assert balance(ready.clinic, lot) == 5


def test_the_receipt_time_is_typed_in_the_users_zone():
    ready = clinic_ready(time_zone="Europe/Berlin")
    lot = released_lot(product=gtin_product())
    response = client_for(ready.administrator).post(
        RECEIVE, door(lot, ready.clinic, received_at=f"{TODAY():%Y-%m-%d}T00:30")
    )
    assert response.status_code == 302
    received = Receipt.objects.get().received_at.astimezone(datetime.UTC)
    # 00:30 in Berlin (UTC+1 in winter, UTC+2 in summer) is the evening before in UTC.
    assert received.date() == TODAY() - datetime.timedelta(days=1)
    assert (received.hour, received.minute) in ((23, 30), (22, 30))


def test_a_clinic_filter_naming_another_clinic_shows_none_of_its_stock():
    ready, other = clinic_ready(), clinic_ready()
    theirs = released_lot()
    receive(other, theirs, 2)
    text = client_for(ready.administrator).get(STOCK, {"clinic": other.clinic.pk}).content
    assert theirs.lot_number not in text.decode()


@pytest.mark.parametrize(
    ("decision", "state"), [("accept", StockState.ACCEPTED), ("reject", StockState.REJECTED)]
)
def test_quarantined_units_are_decided_on_into_usable_or_rejected_stock(decision, state):
    ready = clinic_ready()
    lot = released_lot()
    receive(ready, lot, 4, decision="quarantine")
    response = client_for(ready.administrator).post(
        _move(ready, lot, "decide", StockState.QUARANTINED),
        {"decision": decision, "quantity": "3", "reason": "Logger read again: fine"},
    )
    assert response.status_code == 302
    assert balance(ready.clinic, lot, StockState.QUARANTINED) == 1
    assert balance(ready.clinic, lot, state) == 3


def test_only_quarantined_units_can_be_decided_on_and_a_missing_decision_is_refused():
    ready = clinic_ready()
    lot = released_lot()
    receive(ready, lot, 4, decision="quarantine")
    receive(ready, lot, 2)
    client = client_for(ready.administrator)
    assert client.get(_move(ready, lot, "decide")).status_code == 409
    response = client.post(
        _move(ready, lot, "decide", StockState.QUARANTINED), {"quantity": "1", "reason": "x"}
    )
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert balance(ready.clinic, lot, StockState.QUARANTINED) == 4


def test_blocked_stock_after_a_recall_is_destroyed_from_the_blocked_state():
    ready = clinic_ready()
    lot = released_lot()
    receive(ready, lot, 3)
    from stock.services import Change, apply_changes

    apply_changes(
        [
            Change(ready.clinic.pk, lot.pk, StockState.ACCEPTED, -3, MovementKind.BLOCK),
            Change(ready.clinic.pk, lot.pk, StockState.BLOCKED, 3, MovementKind.BLOCK),
        ],
        actor=ready.administrator,
    )
    client = client_for(ready.administrator)
    text = client.get(STOCK).content.decode()
    assert "Blocked by a recall" in text and "Destroy" in text
    url = _move(ready, lot, "destroy", StockState.BLOCKED)
    assert client.post(url, {"quantity": "3", "reason": "Recall: destroyed"}).status_code == 302
    assert balance(ready.clinic, lot, StockState.BLOCKED) == 0
    assert StockMovement.objects.get(kind=MovementKind.DESTRUCTION).state == StockState.BLOCKED


def test_accepted_units_of_a_lot_on_hold_are_not_shown_as_usable():
    ready = clinic_ready()
    lot = released_lot()
    receive(ready, lot, 3)
    lot.status = LotStatus.ON_HOLD
    lot.save()
    text = client_for(ready.administrator).get(STOCK).content.decode()
    assert '<span class="badge badge-on_hold">Lot on hold</span>' in text
    assert "badge-accepted" not in text
