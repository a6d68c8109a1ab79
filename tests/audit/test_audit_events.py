"""Audit search and export (DESIGN rule 7, REGULATORY "Records and audit trail"): every history
event with who, when, why and the old and new values, per record, per user and per date range,
for network quality managers and auditors; the CSV export streams a date range. Patient contact
details never appear in either (DESIGN rule 8); auditors never write."""

from __future__ import annotations

import csv
import datetime
import io

import pghistory
import pytest
from django.http import StreamingHttpResponse
from django.utils import timezone
from rest_framework.test import APIClient

from lots.models import Lot
from providers.models import Role
from tests.api_helpers import API, assert_list_queries_fixed, error_codes, error_fields
from tests.factories import (
    ManufacturerFactory,
    MembershipFactory,
    UserFactory,
    clinic_ready,
    released_lot,
)
from treatments.models import PatientContact
from treatments.services import patient_create

pytestmark = [pytest.mark.django_db]

EVENTS = f"{API}/audit/events/"
EXPORT = f"{API}/audit/events/export/"
PHONE = "+1 214 555 0199"


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def ready():
    return clinic_ready()


@pytest.fixture
def lot(quality_manager) -> Lot:
    with pghistory.context(user=quality_manager.pk, reason="made for the audit tests"):
        return released_lot(lot_number="AUD-1")


@pytest.fixture
def patient(ready):
    return patient_create(
        actor=ready.clinician,
        clinic=ready.clinic,
        reference="AUD-0042",
        contact={"full_name": "Rosalind Quist", "phone": PHONE},
    )


def results(response) -> list[dict]:
    assert response.status_code == 200, response.content
    return response.json()["results"]


# -- search -------------------------------------------------------------------------------------


def test_the_search_lists_every_event_newest_first_with_who_why_and_what(auditor, lot):
    rows = results(client_for(auditor).get(EVENTS))

    times = [row["at"] for row in rows]
    assert times == sorted(times, reverse=True)
    lot_row = next(row for row in rows if row["record_type"] == "lots.Lot")
    assert lot_row["record_id"] == str(lot.pk)
    assert lot_row["action"] == "insert"
    assert lot_row["user_name"] == "Quinn Manager"
    assert lot_row["reason"] == "made for the audit tests"
    assert lot_row["values"]["lot_number"] == "AUD-1"
    assert lot_row["id"].startswith("lots.LotEvent:")


def test_per_record_history_shows_only_that_record_with_old_and_new_values(
    auditor, quality_manager, lot
):
    other = released_lot(lot_number="AUD-2")
    with pghistory.context(user=quality_manager.pk, reason="corrected"):
        Lot.objects.filter(pk=lot.pk).update(quantity=lot.quantity + 1)

    rows = results(client_for(auditor).get(EVENTS, {"record_type": "lots.Lot", "record": lot.pk}))

    assert {row["record_id"] for row in rows} == {str(lot.pk)}
    assert str(other.pk) not in {row["record_id"] for row in rows}
    update = rows[0]
    assert update["action"] == "update"
    assert update["reason"] == "corrected"
    assert update["changes"]["quantity"] == [lot.quantity, lot.quantity + 1]


def test_the_search_filters_by_user(auditor, quality_manager, lot):
    ManufacturerFactory()  # written by no one (system)

    rows = results(client_for(auditor).get(EVENTS, {"user": quality_manager.pk}))

    assert rows
    assert {row["user"] for row in rows} == {quality_manager.pk}


def test_the_search_filters_by_date_range(auditor, lot):
    now = timezone.now()
    later = (now + datetime.timedelta(hours=1)).isoformat()
    earlier = (now - datetime.timedelta(hours=1)).isoformat()
    client = client_for(auditor)

    assert results(client.get(EVENTS, {"at_after": earlier, "at_before": later}))
    assert results(client.get(EVENTS, {"at_after": later})) == []
    assert results(client.get(EVENTS, {"at_before": earlier})) == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"record_type": "lots.Nothing"}, "record_type"),
        ({"record_type": "recalls.Notification"}, "record_type"),
        ({"record_type": "lots.Lot", "record": "abc"}, "record"),
        ({"record_type": "lots.Lot", "record": "0"}, "record"),
        ({"record_type": "lots.Lot", "record": str(2**63)}, "record"),
        ({"record": "5"}, "record"),
        ({"user": "-1"}, "user"),
        ({"user": "x"}, "user"),
        ({"at_after": "yesterday"}, "at_after"),
        ({"at_before": "2026-13-01T00:00:00Z"}, "at_before"),
        ({"at_after": "2026-01-01T00:00:00+16:00"}, "at_after"),
    ],
)
def test_bad_search_input_is_a_400_naming_the_field(auditor, params, field):
    response = client_for(auditor).get(EVENTS, params)

    assert response.status_code == 400, response.content
    assert field in error_fields(response)


def test_the_search_runs_a_fixed_number_of_queries(auditor, django_assert_num_queries):
    users = [UserFactory() for _ in range(20)]  # each row by another user: names in one query

    def add_rows(count: int) -> None:
        for _ in range(count):
            with pghistory.context(user=users.pop().pk):
                ManufacturerFactory()

    url = f"{EVENTS}?record_type=providers.Manufacturer"
    assert_list_queries_fixed(client_for(auditor), url, add_rows, django_assert_num_queries)


def test_patient_contact_details_are_masked_for_network_roles(auditor, quality_manager, patient):
    for user in (auditor, quality_manager):
        response = client_for(user).get(EVENTS, {"record_type": "treatments.PatientContact"})
        rows = results(response)

        assert rows
        assert PHONE not in response.content.decode()
        assert "Rosalind" not in response.content.decode()
        assert rows[0]["values"]["phone"] == "(hidden: patient contact data)"


# -- who may -------------------------------------------------------------------------------------


def test_auditors_and_quality_managers_read_the_trail(auditor, quality_manager, lot):
    for user in (auditor, quality_manager):
        assert results(client_for(user).get(EVENTS))


@pytest.mark.parametrize("role", [Role.CLINIC_ADMINISTRATOR, Role.CLINICIAN])
def test_clinic_staff_are_refused(ready, role, lot):
    user = MembershipFactory(role=role, clinic=ready.clinic).user

    for url in (EVENTS, EXPORT):
        response = client_for(user).get(url)
        assert response.status_code == 403
        assert error_codes(response) == ["role_required"]


def test_a_quality_manager_held_at_one_clinic_only_is_refused(ready, lot):
    user = MembershipFactory(role=Role.QUALITY_MANAGER, clinic=ready.clinic).user

    assert client_for(user).get(EVENTS).status_code == 403


def test_anonymous_and_roleless_callers_are_refused(lot):
    assert error_codes(APIClient().get(EVENTS)) == ["not_authenticated"]
    assert error_codes(APIClient().get(EXPORT)) == ["not_authenticated"]
    assert client_for(UserFactory()).get(EVENTS).status_code == 403


def test_auditors_never_write(auditor, lot):
    client = client_for(auditor)
    for url in (EVENTS, EXPORT):
        for method in (client.post, client.put, client.patch, client.delete):
            assert method(url, {}, format="json").status_code in (403, 405)


# -- export --------------------------------------------------------------------------------------


def export(client, **params) -> tuple[StreamingHttpResponse, list[dict[str, str]]]:
    now = timezone.now()
    params.setdefault("at_after", (now - datetime.timedelta(hours=1)).isoformat())
    params.setdefault("at_before", (now + datetime.timedelta(hours=1)).isoformat())
    response = client.get(EXPORT, params)
    assert response.status_code == 200, response.content
    assert isinstance(response, StreamingHttpResponse)
    text = b"".join(response.streaming_content).decode()
    return response, list(csv.DictReader(io.StringIO(text)))


def test_the_export_streams_the_events_of_a_date_range_oldest_first(auditor, lot, patient):
    response, rows = export(client_for(auditor))

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    times = [row["at"] for row in rows]
    assert times == sorted(times)
    lot_row = next(row for row in rows if row["record_type"] == "lots.Lot")
    assert lot_row["user_name"] == "Quinn Manager"
    assert '"lot_number": "AUD-1"' in lot_row["data"]
    assert {row["record_type"] for row in rows} >= {"lots.Lot", "treatments.PatientContact"}


def test_the_export_never_carries_contact_details(auditor, patient):
    _, rows = export(client_for(auditor), record_type=PatientContact._meta.label)

    assert rows
    assert all(PHONE not in value for row in rows for value in row.values())


def test_export_cells_a_spreadsheet_would_run_as_formulas_are_quoted(auditor):
    with pghistory.context(user=auditor.pk, reason='=HYPERLINK("http://evil","x")'):
        ManufacturerFactory(legal_name="@SUM(1+1)")

    _, rows = export(client_for(auditor), record_type="providers.Manufacturer")

    assert rows[0]["reason"] == '\'=HYPERLINK("http://evil","x")'


def test_the_export_needs_a_date_range(auditor):
    response = client_for(auditor).get(EXPORT)

    assert response.status_code == 400
    assert set(error_fields(response)) == {"at_after", "at_before"}


def test_the_export_refuses_bad_filters_in_json_even_when_csv_is_asked_for(auditor):
    response = client_for(auditor).get(
        EXPORT,
        {"at_after": "nonsense", "at_before": "2026-01-01T00:00:00Z", "record_type": "x.Y"},
        HTTP_ACCEPT="text/csv",
    )

    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert set(error_fields(response)) == {"at_after", "record_type"}


def test_the_export_reads_through_a_server_side_cursor(auditor, lot, monkeypatch):
    from django.db.models.query import QuerySet

    chunk_sizes: list[int] = []
    iterator = QuerySet.iterator

    def spy(self, chunk_size=None):
        chunk_sizes.append(chunk_size)
        return iterator(self, chunk_size=chunk_size)

    monkeypatch.setattr(QuerySet, "iterator", spy)

    export(client_for(auditor))

    assert chunk_sizes == [2000]


def test_the_export_answers_options_in_json_even_when_csv_is_asked_for(auditor):
    response = client_for(auditor).options(f"{EXPORT}?format=csv", HTTP_ACCEPT="text/csv")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")


# ---------------------------------------------------------------------------------------------
# Paging: each page is found from the event tables' time indexes, then read from pghistory's
# aggregate; it must be the aggregate's own page, whatever the filters, the order and the page.


@pytest.fixture
def history(quality_manager, auditor, ready, patient):
    """Events in several tables, by two users, some at the same moment (one transaction writes
    a lot and its status change, a clinic and its contacts), so ties are broken as the aggregate
    breaks them."""
    with pghistory.context(user=quality_manager.pk, reason="paging"):
        for number in range(4):
            released_lot(lot_number=f"PAGE-{number}")
    with pghistory.context(user=auditor.pk, reason="paging"):
        ManufacturerFactory()
    return quality_manager


def keys(events) -> list[tuple[str, int]]:
    return [(event.pgh_model, event.pgh_id) for event in events]


@pytest.mark.parametrize("oldest_first", [False, True])
@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"user": True},
        {"record_type": "lots.Lot"},
        {"after_first": True},
    ],
    ids=["everything", "one user", "one record type", "a window"],
)
def test_every_page_is_the_aggregate_s_own_page(history, filters, oldest_first):
    from audit.selectors import audit_event_list

    everything = list(audit_event_list().events())
    assert len({event.pgh_model for event in everything}) >= 4
    chosen = audit_event_list(
        record_type=filters.get("record_type"),
        user_id=history.pk if filters.get("user") else None,
        at_after=everything[len(everything) // 2].pgh_created_at
        if filters.get("after_first")
        else None,
        oldest_first=oldest_first,
    )
    aggregate = chosen.events()
    total = aggregate.count()
    assert total > 3
    assert chosen.count() == total == len(chosen)
    expected = keys(aggregate)
    assert len(expected) == total
    # Pages of every size at every third start, the last page and past the end included.
    for start in [*range(0, total, 3), total - 1, total, total + 1]:
        for size in (1, 2, 5, total + 5):
            assert keys(chosen[start : start + size]) == expected[start : start + size]
    assert keys(chosen) == expected
    assert keys([chosen[0], chosen[total - 1]]) == [expected[0], expected[-1]]
    with pytest.raises(IndexError):
        chosen[total]
    assert chosen[total:total] == []


def test_a_page_reads_the_aggregate_for_its_own_events_only(history, django_assert_num_queries):
    from audit.selectors import audit_event_list

    # Counting, finding the page's events by the tables' indexes, reading them: three
    # statements, whatever the number of event tables and of events.
    events = audit_event_list()
    with django_assert_num_queries(3):
        assert events.count() > 10
        page = events[0:5]
    assert len(page) == 5
