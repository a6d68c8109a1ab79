"""The recall pages with Django's test client: who sees what, the opening preview and signature,
the recall's page (chart, acknowledgements, dispositions, notices, closing) and the clinic's
patient call list."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from providers.access import access_for
from recalls.closing import recall_close
from recalls.models import (
    Acknowledgement,
    Notification,
    Recall,
)
from tests.factories import PASSWORD, clinic_ready, released_lot
from tests.pages.conftest import client_for
from tests.recalls.conftest import affected_clinic, open_recall, recalled_lot

pytestmark = pytest.mark.django_db

LIST = reverse("pages:recalls")
NEW = reverse("pages:recall-new")


def detail(recall: Recall) -> str:
    return reverse("pages:recall", kwargs={"recall_id": recall.pk})


def patients_url(recall: Recall, clinic: Any) -> str:
    return reverse("pages:recall-patients", kwargs={"recall_id": recall.pk, "clinic_id": clinic.pk})


@dataclass
class World:
    lot: Any
    a: Any  # AffectedClinic
    b: Any
    recall: Recall


@pytest.fixture
def world(quality_manager) -> World:
    lot = recalled_lot()
    a = affected_clinic(lot, units_held=3)
    b = affected_clinic(lot, units_held=2)
    recall = open_recall(quality_manager, lot)
    return World(lot, a, b, recall)


# ---------------------------------------------------------------------------------------------
# The list


def test_the_quality_manager_sees_every_recall_with_its_progress(world, quality_manager):
    response = client_for(quality_manager).get(LIST)
    page = response.content.decode()
    assert response.status_code == 200
    assert world.recall.reference in page
    assert "0 of 2" in page  # clinics acknowledged
    assert "0 of 5" in page  # units held by both clinics
    assert 'href="/recalls/new/"' in page


def test_clinic_staff_see_only_recalls_that_reached_their_clinic(world, quality_manager):
    other_lot = released_lot()
    other = affected_clinic(other_lot)
    elsewhere = open_recall(quality_manager, other_lot)
    page = client_for(world.a.ready.administrator).get(LIST).content.decode()
    assert world.recall.reference in page
    assert elsewhere.reference not in page
    assert "0 of 1" in page and "0 of 3" in page  # their own clinic's figures only
    assert 'href="/recalls/new/"' not in page
    assert client_for(other.ready.clinician).get(detail(world.recall)).status_code == 404


def test_the_list_filters_by_status_and_class_and_offers_csv(world, quality_manager):
    other_lot = released_lot()
    affected_clinic(other_lot)
    class_three = open_recall(quality_manager, other_lot, recall_class="III")
    client = client_for(quality_manager)
    page = client.get(LIST, {"recall_class": "III"}).content.decode()
    assert class_three.reference in page and world.recall.reference not in page
    assert world.recall.reference not in client.get(LIST, {"status": "closed"}).content.decode()
    response = client.get(LIST, {"recall_class": "I", "format": "csv"})
    assert response["Content-Type"].startswith("text/csv")
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines[0].startswith("reference,status,class")
    assert len(lines) == 2 and lines[1].startswith(world.recall.reference)
    assert lines[1].endswith(",0,2,0,2,0,5")


def test_open_recalls_for_gives_open_recalls_with_progress_in_the_users_scope(
    world, quality_manager
):
    from pages.recalls import open_recalls_for

    [mine] = open_recalls_for(access_for(world.a.ready.clinician))
    assert mine == world.recall
    assert (mine.clinics_total, mine.clinics_acknowledged, mine.units_held) == (1, 0, 3)
    [every] = open_recalls_for(access_for(quality_manager))
    assert (every.clinics_total, every.patients_exposed, every.units_held) == (2, 2, 5)
    outsider = clinic_ready()
    assert open_recalls_for(access_for(outsider.administrator)) == []
    recall_close(
        recall=world.recall, actor=quality_manager, password=PASSWORD, reason="Done", override=True
    )
    assert open_recalls_for(access_for(quality_manager)) == []


def _list_queries(client: Any) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(LIST).status_code == 200
    return len(queries)


def test_the_list_runs_the_same_queries_for_one_recall_and_for_four(world, quality_manager):
    client = client_for(quality_manager)
    few = _list_queries(client)
    for _ in range(3):
        lot = released_lot()
        affected_clinic(lot)
        affected_clinic(lot)
        open_recall(quality_manager, lot)
    assert _list_queries(client) == few


def test_the_recall_page_runs_the_same_queries_for_two_clinics_and_for_five(world, quality_manager):
    client = client_for(quality_manager)
    with CaptureQueriesContext(connection) as small:
        client.get(detail(world.recall))
    lot = released_lot()
    for _ in range(3):
        affected_clinic(lot)
    recall = open_recall(quality_manager, lot)
    Acknowledgement.objects.create(
        recall=recall,
        clinic=Notification.objects.filter(recall=recall).first().clinic,
        via="admin",
        acknowledged_by_name="X",
        acknowledged_at=recall.opened_at,
    )
    with CaptureQueriesContext(connection) as large:
        client.get(detail(recall))
    assert len(large) == len(small)
