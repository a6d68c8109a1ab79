"""The signed, single-use, expiring acknowledgement link in a recall e-mail, and its page (no
login): valid, reused, expired, tampered; nothing changes unless the form is sent with a name."""

from __future__ import annotations

import time
import uuid
from unittest import mock
from urllib.parse import urlsplit

import pytest
from django.core import signing
from django.test import Client

from recalls.models import Acknowledgement, Channel, Notification
from recalls.services import recall_acknowledge, recall_close
from recalls.services.acknowledgements import LINK_SALT, acknowledgement_token, acknowledgement_url
from tests.factories import PASSWORD
from tests.recalls.scenario import all_row_counts as row_counts
from tests.recalls.scenario import build_world, open_recall

pytestmark = pytest.mark.django_db

DAY = 86400


@pytest.fixture
def world(quality_manager):
    return build_world(quality_manager)


@pytest.fixture
def recall(world):
    return open_recall(world)


@pytest.fixture
def notice(world, recall):
    return Notification.objects.get(recall=recall, clinic=world.a.clinic, channel=Channel.EMAIL)


def path_of(url: str) -> str:
    return urlsplit(url).path


def signed_days_ago(notice: Notification, days: float) -> str:
    """The link as it was signed `days` ago: TimestampSigner reads the clock through time.time."""
    with mock.patch("django.core.signing.time.time", return_value=time.time() - days * DAY):
        return acknowledgement_url(notice)


def test_the_link_is_absolute_under_site_url_and_names_the_notice(settings, notice):
    settings.SITE_URL = "https://trace.example.org/"
    url = acknowledgement_url(notice)
    assert url.startswith("https://trace.example.org/recalls/acknowledge/")
    assert str(notice.message_id) in url


def test_opening_the_link_shows_the_recall_and_changes_nothing(client, world, recall, notice):
    before = row_counts()
    response = client.get(path_of(acknowledgement_url(notice)))

    assert response.status_code == 200
    page = response.content.decode()
    assert recall.reference in page
    assert world.a.clinic.name in page
    assert world.lot.lot_number in page
    assert "URGENT" in page
    assert "Endotoxin above specification" in page
    assert 'name="name"' in page
    # Whoever holds the link sees what the e-mail said, never a patient.
    assert "Alice Anders" not in page and world.a1.reference not in page
    assert response["Referrer-Policy"] == "same-origin"
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]
    assert not Acknowledgement.objects.exists()
    assert row_counts() == before


def test_sending_the_form_acknowledges_for_the_notices_clinic(client, world, recall, notice):
    response = client.post(path_of(acknowledgement_url(notice)), {"name": "Dana Doe"})

    assert response.status_code == 200
    assert "Thank you" in response.content.decode()
    acknowledgement = Acknowledgement.objects.get(recall=recall)
    assert acknowledgement.clinic == world.a.clinic
    assert acknowledgement.via == "link"
    assert acknowledgement.acknowledged_by is None
    assert acknowledgement.acknowledged_by_name == "Dana Doe"


def test_a_second_use_says_already_acknowledged_and_changes_nothing(client, recall, notice):
    path = path_of(acknowledgement_url(notice))
    client.post(path, {"name": "Dana Doe"})
    before = row_counts()

    again = client.post(path, {"name": "Eve Evans"})

    assert again.status_code == 409
    page = again.content.decode()
    assert "already acknowledged" in page and "Dana Doe" in page
    assert 'name="name"' not in page
    assert Acknowledgement.objects.get(recall=recall).acknowledged_by_name == "Dana Doe"
    assert row_counts() == before
    opened = client.get(path)
    assert opened.status_code == 200
    assert "already acknowledged" in opened.content.decode()


def test_after_an_acknowledgement_through_the_api_the_link_says_so(client, world, recall, notice):
    recall_acknowledge(recall=recall, clinic=world.a.clinic, via="api", actor=world.a.administrator)
    response = client.post(path_of(acknowledgement_url(notice)), {"name": "Dana Doe"})
    assert response.status_code == 409
    assert Acknowledgement.objects.count() == 1


def test_the_other_clinics_link_acknowledges_the_other_clinic(client, world, recall, notice):
    other = Notification.objects.get(recall=recall, clinic=world.b.clinic)
    client.post(path_of(acknowledgement_url(notice)), {"name": "Dana Doe"})
    response = client.post(path_of(acknowledgement_url(other)), {"name": "Bo Brown"})
    assert response.status_code == 200
    assert set(Acknowledgement.objects.values_list("clinic_id", flat=True)) == {
        world.a.clinic.pk,
        world.b.clinic.pk,
    }
    recall.refresh_from_db()
    assert recall.fully_acknowledged_at is not None


def test_an_expired_link_is_refused_with_410_and_changes_nothing(client, settings, notice):
    settings.RECALL_ACK_LINK_MAX_AGE_DAYS = 30
    path = path_of(signed_days_ago(notice, 31))
    before = row_counts()

    for response in (client.get(path), client.post(path, {"name": "Dana Doe"})):
        assert response.status_code == 410
        assert "expired" in response.content.decode()
    assert not Acknowledgement.objects.exists()
    assert row_counts() == before

    # Within the configured age the same kind of link works.
    fresh = client.post(path_of(signed_days_ago(notice, 29)), {"name": "Dana Doe"})
    assert fresh.status_code == 200


def test_a_max_age_of_zero_days_expires_every_link(client, settings, notice):
    settings.RECALL_ACK_LINK_MAX_AGE_DAYS = 0
    response = client.post(path_of(signed_days_ago(notice, 2 / DAY)), {"name": "Dana Doe"})
    assert response.status_code == 410
    assert not Acknowledgement.objects.exists()


@pytest.mark.parametrize(
    "tamper",
    ["flip_signature", "other_message_id", "unknown_notice", "other_salt", "garbage", "huge"],
)
def test_a_tampered_link_is_refused_with_400_and_changes_nothing(client, notice, tamper):
    token = acknowledgement_token(notice)
    value, stamp, signature = token.rsplit(":", 2)
    tokens = {
        "flip_signature": f"{value}:{stamp}:{signature[:-1]}{'A' if signature[-1] != 'A' else 'B'}",
        "other_message_id": f"{uuid.uuid4()}:{stamp}:{signature}",
        "unknown_notice": signing.TimestampSigner(salt=LINK_SALT).sign(str(uuid.uuid4())),
        "other_salt": signing.TimestampSigner(salt="elsewhere").sign(str(notice.message_id)),
        "garbage": "not-a-token",
        "huge": "x" * 5000,
    }
    path = f"/recalls/acknowledge/{tokens[tamper]}/"
    before = row_counts()

    for response in (client.get(path), client.post(path, {"name": "Dana Doe"})):
        assert response.status_code == 400
        assert "not valid" in response.content.decode()
    assert not Acknowledgement.objects.exists()
    assert row_counts() == before


def test_a_webhook_notice_has_no_acknowledgement_link(client, recall):
    token = signing.TimestampSigner(salt=LINK_SALT).sign(str(uuid.uuid4()))
    assert client.get(f"/recalls/acknowledge/{token}/").status_code == 400


def test_the_form_without_a_name_is_shown_again_and_changes_nothing(client, notice):
    path = path_of(acknowledgement_url(notice))
    before = row_counts()
    response = client.post(path, {"name": "   "})
    assert response.status_code == 400
    page = response.content.decode()
    assert 'name="name"' in page and "Give the name" in page
    assert not Acknowledgement.objects.exists()
    assert row_counts() == before


def test_a_closed_recall_takes_no_acknowledgement_by_link(client, world, recall, notice):
    recall_close(
        recall=recall, actor=world.quality_manager, password=PASSWORD, reason="r", override=True
    )
    response = client.post(path_of(acknowledgement_url(notice)), {"name": "Dana Doe"})
    assert response.status_code == 409
    assert "closed" in response.content.decode()
    assert not Acknowledgement.objects.exists()


def test_the_page_works_with_csrf_checks_on_as_in_a_browser(world, recall, notice):
    browser = Client(enforce_csrf_checks=True)
    path = path_of(acknowledgement_url(notice))
    refused = browser.post(path, {"name": "Dana Doe"})
    assert refused.status_code == 403
    assert not Acknowledgement.objects.exists()

    browser.get(path)
    token = browser.cookies["csrftoken"].value
    response = browser.post(path, {"name": "Dana Doe", "csrfmiddlewaretoken": token})
    assert response.status_code == 200
    assert Acknowledgement.objects.filter(recall=recall, clinic=world.a.clinic).exists()


def test_a_drill_link_says_drill(client, world):
    drill = open_recall(world, is_drill=True)
    notice = Notification.objects.get(recall=drill, clinic=world.a.clinic)
    page = client.get(path_of(acknowledgement_url(notice))).content.decode()
    assert "DRILL" in page
