"""A clinic reads its recall notice, its reminders and the acknowledgement page in its own
`language`: an English clinic's e-mail is the English it always was; a German clinic's is rendered
under German, so its dates are written the German way and every fixed string goes through the
German catalog (shown with a stand-in catalog entry: the real German text comes with the
translators' catalog). The recall's own reason, hazard and instructions stay as the quality
manager wrote them, and the webhook payload stays the same machine format."""

from __future__ import annotations

import contextlib
import datetime
import re
from collections.abc import Iterator
from unittest import mock
from urllib.parse import urlsplit

import pytest
from django.utils import formats, translation
from django.utils.translation import trans_real

from recalls import notices
from recalls.models import Acknowledgement, Channel, Notification, Recall
from recalls.services import recall_acknowledge
from recalls.services.acknowledgements import acknowledgement_url
from tests.recalls.conftest import affected_clinic, open_recall, recalled_lot

pytestmark = pytest.mark.django_db

GERMAN_DATE = re.compile(
    r"\b\d{1,2}\. (Januar|Februar|März|April|Mai|Juni|Juli|August|September|Oktober|November|"
    r"Dezember) \d{4}\b"
)
MARK = "[de] "


@contextlib.contextmanager
def german_catalog_with(*msgids: str) -> Iterator[None]:
    """The German catalog as it will be once these messages are translated: each reads as
    `[de] ` and its English text. Nothing else of the catalog changes."""
    german = trans_real.translation("de")
    original = german.gettext

    def gettext(message: str) -> str:
        return MARK + message if message in msgids else original(message)

    with mock.patch.object(german, "gettext", gettext):
        yield


def german_date(value) -> str:
    with translation.override("de"):
        return formats.date_format(value, "DATE_FORMAT")


def _german(clinic) -> None:
    clinic.language = "de"
    clinic.save()


def _email_notice(recall: Recall, clinic) -> Notification:
    return Notification.objects.get(recall=recall, clinic=clinic, channel=Channel.EMAIL)


def _html(message) -> str:
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    return html


@pytest.fixture
def two_clinics(quality_manager):
    """One recall reaching an English clinic and a German one."""
    lot = recalled_lot()
    english = affected_clinic(lot, units_held=4)
    german = affected_clinic(lot, units_held=2)
    _german(german.clinic)
    recall = open_recall(quality_manager, lot, recall_class="I", depth="patient")
    return lot, recall, english.clinic, german.clinic


# ---------------------------------------------------------------------------------------------
# The notice


def test_an_english_clinics_notice_is_the_english_it_always_was(two_clinics):
    lot, recall, english, _ = two_clinics
    # Even when the notice is built while a German page is being served.
    with translation.override("de"):
        message = notices.notice_email(_email_notice(recall, english))

    assert message.subject.startswith(f"URGENT: PRODUCT RECALL {recall.reference} (Class I): ")
    assert message.subject.endswith(f"stop using {lot.product.name} lot {lot.lot_number}")
    html = _html(message)
    assert '<html lang="en">' in html
    for body in (message.body, html):
        assert "THE PRODUCT BELOW IS RECALLED" in body.upper()
        assert "Quarantine every unit" in body
        assert f"lot {lot.lot_number}: 4 vial(s)" in body
        assert "Patients of " in body and "(1 treatment line)." in body
        assert lot.expires_on.isoformat() in body
        assert not GERMAN_DATE.search(body)
    assert f"Expiry: {lot.expires_on.isoformat()}" in message.body
    assert "Acknowledge this notice now, even if you hold no stock, by opening" in message.body


def test_a_german_clinics_notice_is_rendered_in_german(two_clinics):
    lot, recall, _, german = two_clinics
    message = notices.notice_email(_email_notice(recall, german))

    html = _html(message)
    assert '<html lang="de">' in html
    for body in (message.body, html):
        assert german_date(lot.expires_on) in body
        assert german_date(lot.manufactured_on) in body
        assert lot.expires_on.isoformat() not in body
        # The recall's own words stay as the quality manager wrote them.
        assert recall.reason in body and recall.hazard in body and recall.instructions in body
        assert recall.reference in body and lot.lot_number in body
    assert recall.reference in message.subject and lot.lot_number in message.subject


def test_once_translated_the_german_notice_reads_the_translation(two_clinics):
    _, recall, english, german = two_clinics
    subject = "PRODUCT RECALL %(reference)s (Class %(class)s): stop using %(products)s lot %(lots)s"
    translated = (
        subject,
        "URGENT:",
        "WHAT TO DO WITH YOUR STOCK",
        "What to do with your stock",
        "Stop using the lots above immediately.",
    )
    with german_catalog_with(*translated):
        message = notices.notice_email(_email_notice(recall, german))
        english_message = notices.notice_email(_email_notice(recall, english))

    assert message.subject.startswith(f"{MARK}URGENT: {MARK}PRODUCT RECALL {recall.reference}")
    assert f"{MARK}WHAT TO DO WITH YOUR STOCK" in message.body
    assert f"{MARK}What to do with your stock" in _html(message)
    for body in (message.body, _html(message)):
        assert f"{MARK}Stop using the lots above immediately." in body
    assert MARK not in english_message.subject + english_message.body + _html(english_message)


def test_a_german_clinics_reminder_is_rendered_in_german(two_clinics):
    lot, recall, _, german = two_clinics
    notification = _email_notice(recall, german)
    Notification.objects.filter(pk=notification.pk).update(sent_at=recall.opened_at)
    notification.refresh_from_db()
    sent = notification.sent_at
    with translation.override("de"):
        sent_german = formats.date_format(sent.astimezone(datetime.UTC), "DATETIME_FORMAT")

    with german_catalog_with(
        "REMINDER %(number)s: recall %(reference)s (Class %(class)s) not yet acknowledged by "
        "%(clinic)s",
        "The original notice follows.",
    ):
        message = notices.reminder_email(notification, number=2)

    assert message.subject.startswith(f"DRINGEND: {MARK}REMINDER 2: recall {recall.reference}")
    assert german.name in message.subject
    assert f"{MARK}The original notice follows." in message.body
    assert f"{sent_german} UTC" in message.body
    assert '<html lang="de">' in _html(message)
    assert german_date(lot.expires_on) in message.body


def test_the_webhook_payload_stays_the_machine_format_in_any_language(two_clinics):
    _, recall, _, german = two_clinics
    webhook = Notification(recall=recall, clinic=german, channel=Channel.WEBHOOK, round=1)
    english = notices.webhook_payload(webhook)
    with translation.override("de"), german_catalog_with("PRODUCT RECALL", "Class"):
        assert notices.webhook_payload(webhook) == english
    assert english["data"]["class"] == "I" and english["data"]["depth"] == "patient"


# ---------------------------------------------------------------------------------------------
# The acknowledgement page


def _page(client, notification: Notification, **headers):
    return client.get(urlsplit(acknowledgement_url(notification)).path, **headers)


def test_a_german_clinics_acknowledgement_page_is_in_german(client, two_clinics):
    lot, recall, _, german = two_clinics
    notification = _email_notice(recall, german)

    response = _page(client, notification, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 200
    assert response["Content-Language"] == "de"
    page = response.content.decode()
    assert '<html lang="de">' in page
    assert german_date(lot.expires_on) in page and lot.expires_on.isoformat() not in page
    assert recall.reason in page and recall.hazard in page

    with german_catalog_with("Recalled lots", "Acknowledge recall %(reference)s"):
        page = _page(client, notification).content.decode()
    assert f"{MARK}Recalled lots" in page
    assert f"{MARK}Acknowledge recall {recall.reference}" in page


def test_an_english_clinics_page_stays_english_for_a_german_browser(client, two_clinics):
    lot, recall, english, _ = two_clinics

    with german_catalog_with("Recalled lots"):
        response = _page(client, _email_notice(recall, english), HTTP_ACCEPT_LANGUAGE="de")

    page = response.content.decode()
    assert '<html lang="en">' in page
    assert "Recalled lots" in page and MARK not in page
    assert lot.expires_on.isoformat() in page


def test_a_german_clinics_acknowledgement_and_refusal_are_in_german(client, two_clinics):
    _, recall, _, german = two_clinics
    notification = _email_notice(recall, german)
    path = urlsplit(acknowledgement_url(notification)).path

    with german_catalog_with("Give the name of the person acknowledging the recall."):
        refused = client.post(path, {"name": "  "})
    assert refused.status_code == 400
    assert f"{MARK}Give the name of the person acknowledging the recall." in refused.text

    done = client.post(path, {"name": "Dr. Weber"})
    assert done.status_code == 200
    acknowledgement = Acknowledgement.objects.get(recall=recall, clinic=german)
    at = acknowledgement.acknowledged_at.astimezone(datetime.UTC)
    with translation.override("de"):
        at_german = formats.date_format(at, "DATETIME_FORMAT")
    assert '<html lang="de">' in done.text
    assert f"Dr. Weber, {at_german} UTC" in done.text


def test_a_link_for_no_clinic_answers_in_the_browsers_language(client):
    response = client.get("/recalls/acknowledge/not-a-token/", HTTP_ACCEPT_LANGUAGE="de")
    assert response.status_code == 400
    assert '<html lang="de">' in response.text


def test_an_acknowledgement_by_api_shows_on_the_german_page(client, quality_manager, two_clinics):
    _, recall, _, german = two_clinics
    recall_acknowledge(recall=recall, clinic=german, via="api", actor=quality_manager, name="QM")
    page = _page(client, _email_notice(recall, german)).content.decode()
    assert '<html lang="de">' in page and "QM, " in page
    assert GERMAN_DATE.search(page)
