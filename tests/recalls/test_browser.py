"""The recall as its recipients meet it, in a real browser (Debian's Chromium driven by
Playwright) against the live server: the e-mail arrives at a real SMTP server, the clinic opens
the signed link in it, reads the recall and acknowledges it without logging in."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from recalls.models import Acknowledgement, Notification, NotificationStatus
from tests.recalls.conftest import affected_clinic, message_text, open_recall, recalled_lot

pytestmark = pytest.mark.usefixtures("reference_data")


@pytest.fixture
def eager_celery():
    """The recall's delivery task runs in this process when the opening commits, so the notice
    reaches the SMTP server before the test reads it (the worker tests cover the real worker)."""
    from traceability.celery import app

    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager = False
    app.conf.task_eager_propagates = False


def link_in(body: str, site_url: str) -> str:
    match = re.search(re.escape(site_url) + r"/[^\s\"<]+", body)
    assert match, "the notice carries no acknowledgement link"
    return match.group(0)


def test_a_clinic_acknowledges_the_recall_from_the_link_in_its_email(
    page, live_server, settings, smtp, eager_celery, quality_manager
):
    settings.SITE_URL = live_server.url
    lot = recalled_lot()
    affected = affected_clinic(lot, units_held=3)
    recall = open_recall(quality_manager, lot, recall_class="I")

    notice = Notification.objects.get(recall=recall, channel="email")
    assert notice.status == NotificationStatus.SENT
    [message] = smtp.to(affected.contacts[0].email)
    link = link_in(message_text(message), live_server.url)

    page.goto(link)
    expect(page).to_have_title(f"URGENT: Recall {recall.reference}")
    expect(page.get_by_text("URGENT: Class I")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        f"Recall {recall.reference} — {affected.clinic.name}"
    )
    recalled, held = page.get_by_role("table").all()
    expect(recalled.get_by_role("row").nth(1).get_by_role("cell")).to_have_text(
        [
            lot.lot_number,
            lot.product.name,
            lot.product.gtin,
            lot.manufacturer.legal_name,
            f"{lot.expires_on:%Y-%m-%d}",
        ]
    )
    expect(held.get_by_role("row").nth(1).get_by_role("cell")).to_have_text([lot.lot_number, "3"])
    assert affected.patient_name not in page.content()  # the link shows no patient data

    # The name is required: the browser itself refuses an empty form, and nothing is recorded.
    page.get_by_role("button", name=f"Acknowledge recall {recall.reference}").click()
    assert page.url == link
    assert not Acknowledgement.objects.exists()

    page.get_by_label(f"Your name (acknowledging for {affected.clinic.name})").fill("Dana Doe")
    page.get_by_role("button", name=f"Acknowledge recall {recall.reference}").click()

    expect(page.get_by_role("status")).to_contain_text(
        f"Thank you. {affected.clinic.name} acknowledged recall {recall.reference}: Dana Doe"
    )
    acknowledgement = Acknowledgement.objects.get(recall=recall)
    assert (acknowledgement.clinic, acknowledgement.via) == (affected.clinic, "link")
    assert acknowledgement.acknowledged_by_name == "Dana Doe"

    # The link is single-use: opened again, it says so and offers no form.
    page.goto(link)
    expect(page.get_by_role("status")).to_contain_text("already acknowledged this recall")
    expect(page.get_by_role("button")).to_have_count(0)
    assert Acknowledgement.objects.count() == 1


def test_an_altered_link_is_refused_in_the_browser_and_records_nothing(
    page, live_server, settings, smtp, eager_celery, quality_manager
):
    settings.SITE_URL = live_server.url
    lot = recalled_lot()
    affected = affected_clinic(lot)
    recall = open_recall(quality_manager, lot, drill=True)
    [message] = smtp.to(affected.contacts[0].email)
    link = link_in(message_text(message), live_server.url)

    response = page.goto(link.rstrip("/")[:-3] + "xyz/")

    assert response is not None and response.status == 400
    expect(page.get_by_role("heading", level=1)).to_have_text("This link cannot be used")
    expect(page.get_by_role("alert")).to_contain_text("This acknowledgement link is not valid")
    assert recall.reference not in page.content()
    assert not Acknowledgement.objects.exists()
