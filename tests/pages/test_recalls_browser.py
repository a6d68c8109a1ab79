"""The recall pages in a real browser: a quality manager finds the lots by typing (with htmx, and
without JavaScript through the form's Find button), previews and opens a recall, the clinic
acknowledges through the link in its e-mail, and the recall's page shows the progress; every page
passes axe-core."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from recalls.models import Acknowledgement, Recall
from tests.factories import PASSWORD, released_lot
from tests.pages.conftest import assert_accessible, sign_in
from tests.recalls import conftest as recall_fixtures
from tests.recalls.conftest import (
    acknowledgement_link,
    affected_clinic,
    message_text,
    recalled_lot,
)

# The recall tests' SMTP server and eager Celery, found by pytest under these names.
smtp = recall_fixtures.smtp
smtp_server = recall_fixtures.smtp_server
eager_celery = recall_fixtures.eager_celery

pytestmark = pytest.mark.usefixtures("reference_data")


def test_a_quality_manager_opens_a_recall_and_sees_a_clinic_acknowledge_it(
    wide_page, live_server, settings, smtp, eager_celery, quality_manager
):
    page = wide_page
    settings.SITE_URL = live_server.url
    lot = recalled_lot()
    affected = affected_clinic(lot, units_held=3)
    sign_in(page, quality_manager)

    page.goto("/recalls/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Recalls")
    assert_accessible(page)
    page.get_by_role("link", name="Open a recall").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Open a recall")
    assert_accessible(page)

    # Lots are found by typing, not picked from every lot: part of the number finds the first;
    # it stays ticked while a second search finds the other.
    other = released_lot(lot_number="ZX-77-B")
    lot_search = page.get_by_label("Find lots by lot number, product or GS1 code")
    lot_search.fill(lot.lot_number[:-1])
    first = page.get_by_label(f"Lot {lot.lot_number} of {lot.product.name}")
    first.check()
    lot_search.fill("zx-77")
    second = page.get_by_label(f"Lot ZX-77-B of {other.product.name}")
    second.check()
    expect(first).to_be_checked()
    expect(page.locator("#lot-options input[name=lots]")).to_have_count(2)
    assert_accessible(page)
    page.get_by_label("Class").select_option("I")
    page.get_by_label("Depth").select_option("patient")
    page.get_by_label("Reason").fill("Endotoxin above the specification in retained samples")
    page.get_by_label("Hazard").fill("Fever and septic shock after injection")
    page.get_by_role("button", name="Preview what it reaches").click()

    expect(page.locator("#reach-lots")).to_have_text("2")
    expect(page.locator("#reach-clinics")).to_have_text("1")
    expect(page.locator("#reach-patients")).to_have_text("1")
    expect(page.locator("#reach-units-held")).to_have_text("3")
    assert_accessible(page)
    assert not Recall.objects.exists()

    page.get_by_label("Your password").fill("not the password")
    page.get_by_role("button", name="Sign and open the recall").click()
    expect(page.get_by_role("alert").first).to_contain_text("nothing was changed")
    assert not Recall.objects.exists()

    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_role("button", name="Sign and open the recall").click()
    recall = Recall.objects.get()
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"Recall {recall.reference}")
    assert set(recall.recall_lots.values_list("lot_id", flat=True)) == {lot.pk, other.pk}
    row = page.locator(f"#recall-clinic-{affected.clinic.pk}")
    expect(row).to_contain_text("not acknowledged")
    expect(page.get_by_role("progressbar", name="Clinics acknowledged")).to_have_attribute(
        "aria-valuenow", "0"
    )
    expect(page.locator("svg.graph[role=img]")).to_be_visible()
    assert_accessible(page)

    # The clinic acknowledges through the link in its e-mail, without signing in.
    [message] = smtp.to(affected.contacts[0].email)
    link = acknowledgement_link(message_text(message), live_server.url)
    clinic_page = page.context.new_page()
    clinic_page.goto(link)
    assert_accessible(clinic_page)
    clinic_page.get_by_label(f"Your name (acknowledging for {affected.clinic.name})").fill(
        "Dana Doe"
    )
    clinic_page.get_by_role("button", name=f"Acknowledge recall {recall.reference}").click()
    expect(clinic_page.get_by_role("status")).to_contain_text("Thank you.")
    assert Acknowledgement.objects.filter(recall=recall, clinic=affected.clinic).exists()
    clinic_page.close()

    page.reload()
    expect(row).to_contain_text("Dana Doe")
    expect(page.get_by_role("progressbar", name="Clinics acknowledged")).to_have_attribute(
        "aria-valuenow", "1"
    )
    expect(page.locator("svg.graph .series[data-series=acknowledged] .marker")).to_have_count(1)

    page.get_by_role("link", name="Close the recall…").click()
    expect(page.locator("#open-items")).to_contain_text("not yet returned or destroyed")
    assert_accessible(page)


def test_without_javascript_the_find_button_offers_the_matching_lots(
    wide_page, live_server, quality_manager
):
    lot = recalled_lot(lot_number="NOJS-001")
    recalled_lot(lot_number="OTHER-002", product=lot.product)
    context = wide_page.context.browser.new_context(
        base_url=live_server.url, locale="en-GB", java_script_enabled=False
    )
    page = context.new_page()
    try:
        sign_in(page, quality_manager)
        page.goto("/recalls/new/")
        page.get_by_label("Reason").fill("Endotoxin above the specification")
        page.get_by_label("Find lots by lot number, product or GS1 code").fill("nojs")
        page.get_by_role("button", name="Find lots").click()
        expect(page.get_by_label("Reason")).to_have_value("Endotoxin above the specification")
        page.get_by_label(f"Lot NOJS-001 of {lot.product.name}").check()
        expect(page.locator("#lot-options input[name=lots]")).to_have_count(1)
        page.get_by_label("Hazard").fill("Fever after injection")
        page.get_by_role("button", name="Preview what it reaches").click()
        expect(page.locator("#reach-lots")).to_have_text("1")
        expect(page.get_by_text(f"Lot NOJS-001 of {lot.product.name}")).to_be_visible()
    finally:
        context.close()


def test_a_clinician_calls_the_patients_from_the_call_list(
    wide_page, live_server, smtp, eager_celery, quality_manager
):
    from tests.recalls.conftest import open_recall

    page = wide_page
    lot = recalled_lot()
    affected = affected_clinic(lot)
    recall = open_recall(quality_manager, lot)
    sign_in(page, affected.ready.clinician)
    page.goto(f"/recalls/{recall.pk}/")
    assert_accessible(page)
    page.get_by_role("link", name="Patient call list").click()
    expect(page.get_by_role("cell", name=affected.patient_phone)).to_be_visible()
    assert_accessible(page)
    page.get_by_label("Patient").select_option(
        label=f"{affected.patient_name} ({affected.ready.patient.reference})"
    )
    page.get_by_label("Outcome").select_option("reached")
    page.get_by_role("button", name="Record the call").click()
    expect(page.get_by_role("status").first).to_contain_text("recorded")
    expect(page.get_by_role("row", name=affected.patient_name)).to_contain_text("contacted")
