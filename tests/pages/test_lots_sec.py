"""The lot pages and the label show a retrospective release as such and the lot's Single European
Code; the lot list finds a lot by its code."""

from __future__ import annotations

import datetime
import html

import pytest
from django.urls import reverse
from django.utils import timezone

from lots.models import LotStatusChange
from pages.templatetags.pages import day
from tests.factories import PASSWORD, ProductFactory, clinic_ready, receive, released_lot
from tests.lots.test_retrospective_release import RELEASED, historical_lot, release
from tests.lots.test_sec import CODE, EXPIRES, EYE_READABLE, VALID, create
from tests.pages.conftest import client_for
from tests.pages.test_labels import gtin

pytestmark = [pytest.mark.usefixtures("reference_data"), pytest.mark.django_db]


def page_text(user, url: str) -> str:
    response = client_for(user).get(url)
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def test_the_lot_page_marks_a_retrospective_release(quality_manager):
    lot = historical_lot(quality_manager)
    release(quality_manager, lot)

    text = page_text(quality_manager, reverse("pages:lot", args=[lot.pk]))

    signed = day(timezone.now())
    assert f"Released retrospectively, effective {day(RELEASED)}, signed {signed}" in text
    assert 'class="badge badge-retrospective"' in text
    assert f"effective {day(RELEASED)}" in text.split("Status history")[1]


def test_the_lot_page_of_a_normal_release_says_nothing_retrospective(quality_manager):
    lot = historical_lot(quality_manager, gmp_until=None, expires_on=timezone.localdate())
    release(quality_manager, lot, effective_date=None)

    text = page_text(quality_manager, reverse("pages:lot", args=[lot.pk]))

    assert "Released by" in text
    assert "Released retrospectively" not in text
    assert "badge-retrospective" not in text


def test_the_lot_page_shows_the_sec(quality_manager):
    lot = create(quality_manager, sec=VALID)

    text = page_text(quality_manager, reverse("pages:lot", args=[lot.pk]))

    assert EYE_READABLE in text


def test_the_label_prints_the_eye_readable_sec():
    ready = clinic_ready()
    sec = {f"sec_{name}": value for name, value in VALID.items() if name != "expiry_date"}
    lot = released_lot(product=ProductFactory(gtin=gtin(9772)), expires_on=EXPIRES, **sec)
    receive(ready, lot, 2)

    text = page_text(ready.clinician, reverse("pages:stock-label", args=[lot.pk]))

    assert EYE_READABLE in text


def test_a_label_without_sec_prints_none():
    ready = clinic_ready()
    lot = released_lot(product=ProductFactory(gtin=gtin(9789)))
    receive(ready, lot, 2)

    text = page_text(ready.clinician, reverse("pages:stock-label", args=[lot.pk]))

    assert 'class="sec"' not in text


def test_the_lot_list_finds_a_lot_by_its_sec(quality_manager):
    lot = create(quality_manager, sec=VALID)
    other = released_lot()

    found = page_text(quality_manager, reverse("pages:lots") + f"?sec={CODE[:21]}")
    eye = page_text(quality_manager, reverse("pages:lots") + "?sec=" + EYE_READABLE)

    assert lot.lot_number in found
    assert other.lot_number not in found
    assert lot.lot_number in eye


def sign(**fields: str) -> dict[str, str]:
    return {"password": PASSWORD, "meaning": "approval", "reason": "2018 batch record.", **fields}


def test_the_release_page_releases_retrospectively(quality_manager):
    lot = historical_lot(quality_manager)
    url = reverse("pages:lot-release", args=[lot.pk])

    response = client_for(quality_manager).post(url, sign(effective_date=RELEASED.isoformat()))

    assert response.status_code == 302
    change = LotStatusChange.objects.get(lot=lot)
    assert change.retrospective is True
    assert change.effective_day == RELEASED


def test_the_release_page_refuses_a_future_date_at_its_field(quality_manager):
    lot = historical_lot(quality_manager, gmp_until=None, expires_on=timezone.localdate())
    url = reverse("pages:lot-release", args=[lot.pk])
    tomorrow = (timezone.localdate() + datetime.timedelta(days=1)).isoformat()

    response = client_for(quality_manager).post(url, sign(effective_date=tomorrow))

    assert response.status_code == 200
    assert "A release cannot take effect in the future." in html.unescape(response.content.decode())
    assert not LotStatusChange.objects.filter(lot=lot).exists()


def test_the_release_page_judges_a_past_day_and_offers_the_signature(quality_manager):
    lot = historical_lot(quality_manager)
    url = reverse("pages:lot-release", args=[lot.pk])

    today = page_text(quality_manager, url)
    then = page_text(quality_manager, f"{url}?effective_date={RELEASED.isoformat()}")

    assert "cannot be released" in today
    assert 'name="password"' not in today
    assert "Every release requirement is met." in then
    assert 'name="password"' in then
    assert f'value="{RELEASED.isoformat()}"' in then
