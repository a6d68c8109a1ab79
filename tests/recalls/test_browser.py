"""The recall as its recipients meet it, in a real browser (Debian's Chromium driven by
Playwright) against the live server: the e-mail arrives at a real SMTP server, the clinic opens
the signed link in it, reads the recall and acknowledges it without logging in."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from recalls.models import Acknowledgement, Notification, NotificationStatus
from tests.recalls.conftest import (
    acknowledgement_link,
    affected_clinic,
    message_text,
    open_recall,
    recalled_lot,
)

pytestmark = pytest.mark.usefixtures("reference_data")


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
    link = acknowledgement_link(message_text(message), live_server.url)

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
    assert page.locator("#name").evaluate("field => field.validity.valueMissing") is True
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
    link = acknowledgement_link(message_text(message), live_server.url)

    response = page.goto(link.rstrip("/")[:-3] + "xyz/")

    assert response is not None and response.status == 400
    expect(page.get_by_role("heading", level=1)).to_have_text("This link cannot be used")
    expect(page.get_by_role("alert")).to_contain_text("This acknowledgement link is not valid")
    assert recall.reference not in page.content()
    assert not Acknowledgement.objects.exists()


def sign_in(page, user) -> None:
    from tests.factories import PASSWORD

    user.is_staff = True  # the admin is for staff; roles decide what each one sees
    user.save(update_fields=["is_staff"])
    page.goto("/admin/login/")
    page.get_by_label("Username").fill(user.get_username())
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def test_a_quality_manager_opens_a_recall_in_the_admin_and_a_clinic_acknowledges_it(
    page, live_server, settings, smtp, eager_celery, quality_manager
):
    from lots.models import LotStatus
    from recalls.models import Recall
    from stock.models import StockBalance
    from tests.factories import PASSWORD

    settings.SITE_URL = live_server.url
    lot = recalled_lot()
    affected = affected_clinic(lot, units_held=3)
    sign_in(page, quality_manager)

    page.goto("/admin/recalls/recall/add/")
    page.locator("#id_recall_class").select_option("I")
    page.locator("#id_depth").select_option("patient")
    page.locator("#id_reason").fill("Endotoxin above the specification in retained samples")
    page.locator("#id_hazard").fill("Fever and septic shock after injection")
    # The lots field is an autocomplete over the lot admin's search, not a list of every lot.
    expect(page.locator("#id_lots option")).to_have_count(0)
    page.locator("#id_lots + .select2").click()
    page.locator("#id_lots + .select2 .select2-search__field").fill(lot.lot_number)
    page.locator(".select2-results__option", has_text=lot.lot_number).click()
    expect(page.locator("#id_lots option:checked")).to_have_text(str(lot))
    page.locator("#id_password").fill("not the password")
    page.get_by_role("button", name="Save", exact=True).click()

    # Refused: the error is on the page, the form keeps what was typed, nothing was written.
    expect(page.locator(".errorlist")).to_contain_text("password")
    expect(page.locator("#id_reason")).to_have_value(
        "Endotoxin above the specification in retained samples"
    )
    assert not Recall.objects.exists()

    page.locator("#id_password").fill(PASSWORD)
    page.get_by_role("button", name="Save", exact=True).click()

    expect(page).to_have_url(re.compile(r"/admin/recalls/recall/\d+/change/$"))
    recall = Recall.objects.get()
    expect(page.get_by_role("heading", level=2, name=recall.reference)).to_be_visible()
    lot.refresh_from_db()
    assert lot.status == LotStatus.RECALLED
    blocked = StockBalance.objects.get(clinic=affected.clinic, lot=lot, state="blocked")
    assert blocked.quantity == 3
    assert len(smtp.to(affected.contacts[0].email)) == 1

    # The clinic administrator signs in and acknowledges for the clinic from the recall's page.
    page.context.clear_cookies()
    sign_in(page, affected.ready.administrator)
    page.goto(f"/admin/recalls/recall/{recall.pk}/change/")
    clinic_row = page.locator(f"#recall-clinic-{affected.clinic.pk}")
    expect(clinic_row).to_contain_text("not acknowledged")
    clinic_row.get_by_role("link", name="Acknowledge…").click()
    expect(page.locator("#id_clinic")).to_have_value(str(affected.clinic.pk))
    page.get_by_role("button", name="Acknowledge", exact=True).click()

    expect(page.locator(".messagelist")).to_contain_text(
        f"{affected.clinic.name} acknowledged {recall.reference}"
    )
    acknowledgement = Acknowledgement.objects.get(recall=recall)
    assert (acknowledgement.clinic, acknowledgement.via) == (affected.clinic, "admin")
    assert acknowledgement.acknowledged_by == affected.ready.administrator
