"""A recall entered after the fact: it states when its lots were really withdrawn, its timings
count from there, and everything else (the lots' status here, blocked stock, notices, the
signature) happens now, as for any opening."""

from __future__ import annotations

import datetime

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from common.errors import DomainError
from lots.models import LotStatus
from recalls.models import Notification, Recall, RecallStatus
from recalls.selectors import recall_effectiveness
from recalls.services import RecallScopeRequest, recall_open
from recalls.signing import recall_state
from signatures.models import Signature
from signatures.services import signature_verify
from stock.models import StockBalance, StockState
from tests.api_helpers import API, error_codes, error_fields
from tests.factories import PASSWORD, released_lot
from tests.openapi_helpers import assert_matches_schema
from tests.pages.conftest import client_for
from tests.recalls.scenario import all_row_counts, build_world, mark_sent

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(quality_manager):
    return build_world(quality_manager)


def days_ago(days: int) -> datetime.date:
    return timezone.now().astimezone(datetime.UTC).date() - datetime.timedelta(days=days)


def start_of(day: datetime.date) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time.min, tzinfo=datetime.UTC)


def open_entered(world, withdrawn_at, *, is_drill: bool = False, lots=None) -> Recall:
    return recall_open(
        actor=world.quality_manager,
        password=PASSWORD,
        recall_class="I",
        depth="patient",
        reason="Sterility failure found in the manufacturer's retained sample",
        hazard="Infection",
        scope=RecallScopeRequest(lot_ids=[lot.pk for lot in (lots or [world.lot])]),
        is_drill=is_drill,
        withdrawn_at=withdrawn_at,
    )


def refused(call, *codes: str) -> DomainError:
    before = all_row_counts()
    with pytest.raises(DomainError) as caught:
        call()
    assert sorted(caught.value.codes) == sorted(codes), caught.value.problems
    assert caught.value.status == 400
    assert {problem.field for problem in caught.value.problems} == {"withdrawn_at"}
    assert all_row_counts() == before
    return caught.value


# ---------------------------------------------------------------------------------------------
# The service


def test_a_recall_without_a_stated_withdrawal_is_withdrawn_when_opened(world):
    recall = open_entered(world, None)

    assert recall.withdrawn_at == recall.opened_at
    assert not recall.is_retrospective
    assert recall_effectiveness(recall=recall).timing.seconds_to_open == 0


@pytest.mark.parametrize("days", [0, 1, 12])
def test_a_stated_day_holds_from_its_start_and_the_rest_happens_now(world, days):
    day = days_ago(days)
    before = timezone.now()

    recall = open_entered(world, day)

    assert recall.withdrawn_at == start_of(day)
    assert recall.opened_at >= before
    assert recall.is_retrospective
    # the lot, the stock and the notices change now, as at any opening
    world.lot.refresh_from_db()
    assert world.lot.status == LotStatus.RECALLED
    assert world.lot.status_changed_at == recall.opened_at
    assert (
        StockBalance.objects.get(
            clinic=world.a.clinic, lot=world.lot, state=StockState.BLOCKED
        ).quantity
        == 2  # 5 received, 3 used
    )
    assert Notification.objects.filter(recall=recall).exists()


def test_an_instant_is_kept_and_one_without_a_zone_is_read_in_utc(world):
    naive = datetime.datetime.combine(days_ago(3), datetime.time(14, 30))

    recall = open_entered(world, naive)

    assert recall.withdrawn_at == naive.replace(tzinfo=datetime.UTC)


def test_an_instant_in_another_zone_is_the_same_moment(world):
    zone = datetime.timezone(datetime.timedelta(hours=-6))
    stated = datetime.datetime.combine(days_ago(2), datetime.time(21, 0), tzinfo=zone)

    recall = open_entered(world, stated)

    assert recall.withdrawn_at == stated


def test_timings_count_from_the_withdrawal(world):
    withdrawn = days_ago(10)
    recall = open_entered(world, withdrawn)
    sent_at = recall.opened_at + datetime.timedelta(minutes=3)
    mark_sent(recall, at=sent_at)

    timing = recall_effectiveness(recall=recall).timing

    assert timing.withdrawn_at == start_of(withdrawn)
    assert timing.opened_at == recall.opened_at
    assert timing.seconds_to_open == (recall.opened_at - start_of(withdrawn)).total_seconds()
    assert timing.seconds_to_first_notice == timing.seconds_to_open + 180
    assert timing.seconds_to_all_notices_sent == timing.seconds_to_open + 180


@pytest.mark.parametrize(
    "stated",
    [
        lambda: days_ago(-1),
        lambda: timezone.now() + datetime.timedelta(minutes=5),
        lambda: days_ago(-4000),
    ],
    ids=["tomorrow", "in five minutes", "in eleven years"],
)
def test_a_withdrawal_in_the_future_is_refused_and_changes_nothing(world, stated):
    refused(lambda: open_entered(world, stated()), "recall_withdrawn_in_future")


def test_a_withdrawal_before_a_lot_was_made_is_refused_naming_the_lot(world):
    made = world.lot.manufactured_on

    error = refused(
        lambda: open_entered(world, made - datetime.timedelta(days=1)),
        "recall_withdrawn_before_manufacture",
    )

    assert world.lot.lot_number in error.problems[0].message
    # on the day it was made, it could have been withdrawn
    assert open_entered(world, made).withdrawn_at == start_of(made)


def test_a_drill_states_no_earlier_withdrawal(world):
    refused(lambda: open_entered(world, days_ago(1), is_drill=True), "recall_drill_withdrawn_at")


def test_every_problem_with_the_stated_withdrawal_is_named_at_once(world):
    refused(
        lambda: open_entered(world, days_ago(-1), is_drill=True),
        "recall_drill_withdrawn_at",
        "recall_withdrawn_in_future",
    )


def test_the_database_keeps_every_recall_withdrawn_by_its_opening(world):
    recall = open_entered(world, None)

    for value in (recall.opened_at + datetime.timedelta(seconds=1), None):
        with pytest.raises(IntegrityError), transaction.atomic():
            Recall.objects.filter(pk=recall.pk).update(withdrawn_at=value)


# ---------------------------------------------------------------------------------------------
# The signature


def test_the_signature_covers_the_stated_withdrawal_and_verifies(world):
    recall = open_entered(world, days_ago(5))

    signature = Signature.objects.get(kind="recall_open", record_id=str(recall.pk))

    assert signature_verify(signature).status == "valid"
    assert recall_state(recall.pk, _models)["withdrawn_at"] == start_of(days_ago(5)).isoformat()


def test_a_recall_withdrawn_when_opened_signs_what_recalls_signed_before(world):
    recall = open_entered(world, None)

    assert "withdrawn_at" not in recall_state(recall.pk, _models)
    signature = Signature.objects.get(kind="recall_open", record_id=str(recall.pk))
    assert signature_verify(signature).status == "valid"


def test_changing_the_stated_withdrawal_breaks_the_signature(world):
    recall = open_entered(world, days_ago(5))

    Recall.objects.filter(pk=recall.pk).update(withdrawn_at=start_of(days_ago(6)))

    signature = Signature.objects.get(kind="recall_open", record_id=str(recall.pk))
    assert signature_verify(signature).status != "valid"


def _models(app_label: str, model_name: str):
    from django.apps import apps

    return apps.get_model(app_label, model_name)


# ---------------------------------------------------------------------------------------------
# The API and the pages


def open_body(lot_ids, **overrides):
    return {
        "recall_class": "II",
        "depth": "patient",
        "reason": "Mycoplasma detected in retained sample",
        "hazard": "Infection",
        "password": PASSWORD,
        "scope": {"lots": lot_ids},
        **overrides,
    }


@pytest.fixture
def qm_api(quality_manager):
    client = APIClient()
    client.force_authenticate(quality_manager)
    return client


def test_the_api_opens_a_recall_entered_after_the_fact(qm_api, world):
    day = days_ago(7)

    response = qm_api.post(
        f"{API}/recalls/", open_body([world.lot.pk], withdrawn_at=day.isoformat()), format="json"
    )

    assert response.status_code == 201, response.content
    assert_matches_schema(response, "post", "/api/v1/recalls/")
    body = response.json()
    assert body["retrospective"] is True
    assert body["withdrawn_at"].startswith(day.isoformat())
    assert body["timing"]["withdrawn_at"] == body["withdrawn_at"]
    assert body["timing"]["seconds_to_open"] > 7 * 86400 - 1

    detail = qm_api.get(f"{API}/recalls/{body['id']}/")
    assert_matches_schema(detail, "get", "/api/v1/recalls/{recall_id}/")
    assert detail.json()["withdrawn_at"] == body["withdrawn_at"]


def test_the_api_without_a_stated_withdrawal_is_not_retrospective(qm_api, world):
    response = qm_api.post(f"{API}/recalls/", open_body([world.lot.pk]), format="json")

    assert response.status_code == 201
    body = response.json()
    assert (body["retrospective"], body["withdrawn_at"]) == (False, body["opened_at"])
    assert body["timing"]["seconds_to_open"] == 0


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("last week", "invalid"),
        ("2024-02-30", "invalid"),
        (12345, "invalid"),
        ("", "invalid"),
        ("2999-01-01", "recall_withdrawn_in_future"),
        ("1999-01-01", "recall_withdrawn_before_manufacture"),
    ],
)
def test_the_api_refuses_a_bad_withdrawal_naming_the_field(qm_api, world, value, code):
    before = all_row_counts()

    response = qm_api.post(
        f"{API}/recalls/", open_body([world.lot.pk], withdrawn_at=value), format="json"
    )

    assert response.status_code == 400, response.content
    assert error_codes(response) == [code]
    assert error_fields(response) == ["withdrawn_at"]
    assert all_row_counts() == before


def test_the_recall_page_says_the_recall_was_entered_after_the_fact(quality_manager, world):
    recall = open_entered(world, days_ago(4))

    page = client_for(quality_manager).get(reverse("pages:recall", args=[recall.pk]))

    assert page.status_code == 200
    text = page.content.decode()
    assert "entered after the fact" in text
    assert "Lots withdrawn" in text


def test_the_recall_page_of_a_recall_withdrawn_when_opened_says_nothing_of_it(
    quality_manager, world
):
    recall = open_entered(world, None)

    page = client_for(quality_manager).get(reverse("pages:recall", args=[recall.pk]))

    assert page.status_code == 200
    assert "entered after the fact" not in page.content.decode()


def test_the_open_page_takes_the_withdrawal_day(quality_manager, world):
    day = days_ago(3)
    client = client_for(quality_manager)
    form = {
        "lots": [world.lot.pk],
        "recall_class": "II",
        "depth": "patient",
        "reason": "Retained sample failed sterility",
        "hazard": "Infection",
        "withdrawn_at": day.isoformat(),
        "password": PASSWORD,
    }

    preview = client.post(reverse("pages:recall-new"), {**form, "action": "preview"})
    assert "entered after the fact" in preview.content.decode()
    response = client.post(reverse("pages:recall-new"), {**form, "action": "sign"})

    recall = Recall.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "pages:recall", args=[recall.pk]
    )
    assert recall.withdrawn_at == start_of(day)
    assert recall.status == RecallStatus.OPEN


def test_a_second_lot_made_later_is_named_when_the_day_precedes_it(world):
    later = released_lot(manufactured_on=days_ago(2))

    error = refused(
        lambda: open_entered(world, days_ago(3), lots=[world.lot, later]),
        "recall_withdrawn_before_manufacture",
    )

    assert later.lot_number in error.problems[0].message
    assert world.lot.lot_number not in error.problems[0].message
