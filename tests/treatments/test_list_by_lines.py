"""The treatments list narrowed to a lot is counted and paged from the lot's lines (their copies of
the treatment's time, clinic, patient and practitioner) instead of joining every line to its
treatment: the same answer as the filtered queryset's, whoever reads it, whatever the other
filters and the page, in a number of statements that does not grow with the lot."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIRequestFactory, force_authenticate

from common.api_views import ListApi
from providers.models import Role
from tests.api_helpers import API
from tests.factories import ClinicFactory, MembershipFactory
from tests.treatments.test_api import (
    Site,
    client_for,
    make_site,
    practitioner_at,
    receive,
    released_lot,
)
from treatments.api.treatments import TreatmentsApi
from treatments.filters import LINE_LOOKUPS, TreatmentFilter
from treatments.models import Patient, Treatment
from treatments.selectors import treatment_list, treatments_by_lines
from treatments.services import ConsentRequest, LineRequest, patient_create, treatment_record

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]

NOW = timezone.now().replace(microsecond=0)


class TreatmentsByQuerysetApi(TreatmentsApi):
    """The list as it was: every filter applied to the treatments, the lot by joining its lines."""

    def filter_queryset(self, queryset: Any) -> Any:
        return ListApi.filter_queryset(self, queryset)


def record(site: Site, *, at: datetime.datetime, lots, patient: Patient | None = None, **fields):
    return treatment_record(
        actor=site.clinician,
        clinic=site.clinic,
        patient=patient or site.patient,
        practitioner=fields.pop("practitioner", site.practitioner),
        performed_at=at,
        indication="skin_rejuvenation",
        route="topical",
        anatomical_site="face",
        lines=[LineRequest(lot=lot, units=units) for lot, units in lots],
        consent=ConsentRequest(
            consent_text=site.consent_text,
            taken_by=site.clinician,
            taken_at=at - datetime.timedelta(minutes=5),
        ),
    )


@pytest.fixture
def network(quality_manager):
    """Two clinics using a heavy lot and a light one, a third that never used either.

    At clinic A: treatments with the heavy lot alone, some at the same instant (the order falls
    back to the id), one with both lots, by two practitioners and two patients. At clinic B: the
    heavy lot, interleaved in time with A's. At clinic C: another lot only."""
    heavy, light = released_lot(quality_manager), released_lot(quality_manager)
    a = make_site(quality_manager, clinic=ClinicFactory(name="A"), lot=heavy)
    b = make_site(quality_manager, clinic=ClinicFactory(name="B"), lot=heavy)
    c = make_site(quality_manager, clinic=ClinicFactory(name="C"))
    receive(a.clinic, light, 50)
    receive(b.clinic, light, 50)
    colleague = practitioner_at(a.clinic)
    second_patient = patient_create(actor=a.clinician, clinic=a.clinic, reference="P-A-0002")
    tie = NOW - datetime.timedelta(days=3)
    for day in range(8):
        at = NOW - datetime.timedelta(days=day, hours=1)
        record(a, at=at, lots=[(heavy, 1)])
        record(b, at=at + datetime.timedelta(minutes=30), lots=[(heavy, 2)])
    for _ in range(3):
        record(a, at=tie, lots=[(heavy, 1)], practitioner=colleague)
        record(b, at=tie, lots=[(heavy, 1)])
    both = record(a, at=NOW - datetime.timedelta(days=2), lots=[(light, 1), (heavy, 3)])
    record(a, at=NOW - datetime.timedelta(days=5), lots=[(heavy, 1)], patient=second_patient)
    record(b, at=NOW - datetime.timedelta(days=6), lots=[(light, 1)])
    record(c, at=NOW - datetime.timedelta(days=1), lots=[(c.lot, 1)])
    network_reader = MembershipFactory(role=Role.AUDITOR, clinic=None).user
    return {
        "heavy": heavy,
        "light": light,
        "a": a,
        "b": b,
        "c": c,
        "colleague": colleague,
        "second_patient": second_patient,
        "both": both,
        "tie": tie,
        "readers": {
            "network": network_reader,
            "quality manager": quality_manager,
            "clinician of A": a.clinician,
            "administrator of B": b.administrator,
            "clinician of C": c.clinician,
        },
    }


def answered(view_class, user, params: dict[str, Any]) -> tuple[int, Any]:
    request = APIRequestFactory().get(f"{API}/treatments/", params)
    force_authenticate(request, user=user)
    response = view_class.as_view()(request)
    response.render()
    return response.status_code, response.data


PAGES = [{}, {"limit": 4}, {"limit": 4, "offset": 4}, {"limit": 3, "offset": 7}, {"offset": 19}]


def narrowings(network) -> list[dict[str, Any]]:
    a = network["a"]
    return [
        {},
        {"clinic": a.clinic.pk},
        {"clinic": network["b"].clinic.pk},
        {"clinic": network["c"].clinic.pk},
        {"practitioner": network["colleague"].pk},
        {"patient": network["second_patient"].pk},
        {"performed_after": (NOW - datetime.timedelta(days=4)).isoformat()},
        {"performed_before": network["tie"].isoformat()},
        {
            "performed_after": (network["tie"] - datetime.timedelta(days=2)).isoformat(),
            "performed_before": network["tie"].isoformat(),
            "clinic": a.clinic.pk,
        },
    ]


def test_a_lots_list_answers_what_the_filtered_treatments_answer(network):
    """Rows, order, count and links alike for every reader, lot, narrowing and page."""
    compared = 0
    for reader, user in network["readers"].items():
        for lot in (network["heavy"], network["light"], network["c"].lot):
            for narrowing in narrowings(network):
                for page in PAGES:
                    params = {"lot": lot.pk, **narrowing, **page}
                    expected = answered(TreatmentsByQuerysetApi, user, params)
                    assert answered(TreatmentsApi, user, params) == expected, (reader, params)
                    compared += expected[1]["count"] > 0
    # Not an empty comparison: most combinations list treatments.
    assert compared > 150


def test_readers_see_only_their_clinics_treatments_of_the_lot(network):
    heavy, readers = network["heavy"], network["readers"]

    def count(reader: str) -> int:
        status, data = answered(TreatmentsApi, readers[reader], {"lot": heavy.pk})
        assert status == 200
        return int(data["count"])

    assert count("network") == 8 + 8 + 3 + 3 + 1 + 1
    assert count("clinician of A") == 8 + 3 + 1 + 1
    assert count("administrator of B") == 8 + 3
    assert count("clinician of C") == 0


def test_a_treatment_with_two_lots_is_listed_once_under_each_with_both_its_lines(network):
    both = network["both"]
    for lot in (network["heavy"], network["light"]):
        status, data = answered(TreatmentsApi, network["readers"]["network"], {"lot": lot.pk})
        rows = [row for row in data["results"] if row["id"] == both.pk]
        assert status == 200 and len(rows) == 1
        assert {line["lot"] for line in rows[0]["lines"]} == {
            network["heavy"].pk,
            network["light"].pk,
        }


def test_the_selector_counts_and_slices_as_the_filtered_queryset(network):
    """As a pager reads it (count, then a slice), for Django's Paginator as for DRF's."""
    for user in network["readers"].values():
        treatments = treatment_list(user=user)
        for narrowing in narrowings(network):
            filters = TreatmentFilter(
                {"lot": network["heavy"].pk, **narrowing}, queryset=treatments
            )
            assert filters.is_valid()
            lines = filters.lines()
            assert lines is not None
            by_lines = treatments_by_lines(treatments=treatments, lines=lines, user=user)
            expected = filters.qs.order_by("-performed_at", "-pk")
            assert by_lines.count() == expected.count()
            for start, stop in ((0, 5), (3, 9), (20, 40)):
                assert by_lines[start:stop] == list(expected[start:stop])


def test_every_treatment_filter_is_read_on_the_lines():
    """A filter added to the treatments without its reading on a line would send a lot's list
    back to the join: say how a line answers it."""
    assert set(TreatmentFilter.base_filters) == set(LINE_LOOKUPS)


def test_a_lots_count_and_page_read_the_lines_alone_in_the_same_statements_however_many(
    network, django_assert_num_queries
):
    """The count does not join the treatments; the page reads only its own treatments, by id;
    twenty more treatments of the lot cost no statement."""
    a, heavy = network["a"], network["heavy"]
    client = client_for(a.clinician)
    url = f"{API}/treatments/?lot={heavy.pk}&limit=5"
    with CaptureQueriesContext(connection) as few:
        assert client.get(url).json()["count"] == 13
    (count,) = [query["sql"] for query in few.captured_queries if "COUNT(*)" in query["sql"]]
    assert '"treatments_treatment"' not in count and '"treatments_treatmentline"' in count
    for day in range(20):
        record(a, at=NOW - datetime.timedelta(days=10, hours=day), lots=[(heavy, 1)])
    with django_assert_num_queries(len(few)):
        body = client.get(url).json()
    assert body["count"] == 33 and len(body["results"]) == 5
    assert Treatment.objects.filter(lines__lot=heavy, clinic=a.clinic).count() == 33
