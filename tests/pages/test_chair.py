"""The treatment at the chair, through Django's test client: a scan resolves to the lot with a
green or red answer and becomes a line; saving records the treatment through treatment_record,
and a refusal is shown in plain words with what to do next, saving nothing."""

from __future__ import annotations

import datetime
import html
import re
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import ContactDataRead
from lots.models import LotStatus
from stock.models import StockBalance, StockState
from tests.factories import (
    ConsentTextFactory,
    MembershipFactory,
    ProductFactory,
    UserFactory,
    clinic_ready,
    receive,
    released_lot,
)
from tests.pages.conftest import client_for
from tests.recalls.conftest import open_recall
from treatments.models import PatientContact, Treatment

pytestmark = pytest.mark.django_db

GS = "\x1d"
GTIN = "09506000134352"


def scan_of(lot: Any, *, form: str = "raw") -> str:
    """The vial's GS1 string as a scanner sends it: raw with the symbology identifier and GS
    separators, or the parenthesised human-readable form."""
    expiry = lot.expires_on.strftime("%y%m%d")
    if form == "hri":
        return f"(01){lot.product.gtin}(17){expiry}(10){lot.lot_number}"
    return f"]d201{lot.product.gtin}17{expiry}10{lot.lot_number}{GS}21SER123"


def chair_ready(*, stock: int = 5, consent_required: bool = False) -> Any:
    ready = clinic_ready(consent_required=consent_required)
    PatientContact.objects.create(patient=ready.patient, full_name="Ada Lovelace")
    from lots.models import Product

    product = Product.objects.filter(gtin=GTIN).first() or ProductFactory(
        gtin=GTIN, name="Exosome serum A"
    )
    lot = released_lot(product=product)
    if stock:
        receive(ready, lot, stock)
    ready.lot = lot
    return ready


def on_hand(ready: Any, lot: Any) -> int:
    balance = StockBalance.objects.filter(
        clinic=ready.clinic, lot=lot, state=StockState.ACCEPTED
    ).first()
    return balance.quantity if balance else 0


def post_scan(client: Any, ready: Any, text: str, **extra: Any) -> Any:
    return client.post(
        reverse("pages:chair-scan"),
        {"patient": ready.patient.pk, "scan": text, **extra},
        HTTP_HX_REQUEST="true",
    )


def save(client: Any, ready: Any, lot: Any, units: int = 1, **fields: Any) -> Any:
    data = {
        "patient": ready.patient.pk,
        "practitioner": ready.practitioner.pk,
        "route": "topical",
        "anatomical_site": "face",
        "indication": "skin_rejuvenation",
        "line_lot": [lot.pk],
        f"units_{lot.pk}": str(units),
        "performed_at": "",
        "consent_taken_at": "",
        **fields,
    }
    return client.post(reverse("pages:chair") + f"?patient={ready.patient.pk}", data)


def text_of(response: Any) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode())))


# --------------------------------------------------------------------------------------------
# The page


def test_the_chair_opens_for_the_patient_with_no_time_filled_in():
    ready = chair_ready()
    response = client_for(ready.clinician).get(
        reverse("pages:chair") + f"?patient={ready.patient.pk}"
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="scan"' in page and "data-scan" in page
    assert "Ada Lovelace" in page
    for name in ("performed_at", "consent_taken_at"):
        field = re.search(rf'<input[^>]*name="{name}"[^>]*>', page)
        assert field is not None and "value=" not in field.group(0)
    # The practitioners offered are the clinic's own.
    assert ready.practitioner.name in page
    # Showing the name is recorded as a read of contact data.
    read = ContactDataRead.objects.get()
    assert read.via == "page" and read.patient_ids == [ready.patient.pk]


def test_the_chair_without_a_patient_sends_to_finding_one():
    ready = chair_ready()
    response = client_for(ready.clinician).get(reverse("pages:chair"))
    assert response.status_code == 302 and response.url == reverse("pages:patients")


def test_another_clinics_patient_is_not_found_at_the_chair():
    ready, other = chair_ready(), clinic_ready()
    client = client_for(other.clinician)
    response = client.get(reverse("pages:chair") + f"?patient={ready.patient.pk}")
    assert response.status_code == 404
    assert "No such patient at your clinic" in response.content.decode()
    assert post_scan(client, ready, scan_of(ready.lot)).status_code == 404
    assert save(client, ready, ready.lot).status_code == 404
    assert not Treatment.objects.exists()
    assert not ContactDataRead.objects.exists()


@pytest.mark.parametrize("role", ["auditor", "quality_manager"])
def test_network_roles_get_no_chair(role):
    ready = chair_ready()
    user = UserFactory()
    MembershipFactory(user=user, role=role, clinic=None)
    client = client_for(user)
    response = client.get(reverse("pages:chair") + f"?patient={ready.patient.pk}")
    assert response.status_code == 403
    assert "record treatments" in response.content.decode()
    assert save(client, ready, ready.lot).status_code == 403
    assert not Treatment.objects.exists()


# --------------------------------------------------------------------------------------------
# Scanning


@pytest.mark.parametrize(
    "form",
    ["raw", "hri", "leading-gs", "gs-spelled"],
)
def test_a_scan_in_each_form_a_scanner_sends_resolves_green_with_stock_on_hand(form):
    ready = chair_ready(stock=5)
    lot = ready.lot
    text = {
        "raw": scan_of(lot),
        "hri": scan_of(lot, form="hri"),
        "leading-gs": GS + scan_of(lot)[3:],
        "gs-spelled": scan_of(lot).replace(GS, "<GS>"),
    }[form]
    response = post_scan(client_for(ready.clinician), ready, text)
    assert response.status_code == 200
    page = response.content.decode()
    assert 'class="answer ok"' in page
    words = text_of(response)
    assert f"Use it: lot {lot.lot_number} of Exosome serum A may be used here." in words
    assert "5 units accepted" in words
    # The lot becomes a line with one unit, and the regulatory statement follows.
    assert f'name="line_lot" value="{lot.pk}"' in page
    assert f'name="units_{lot.pk}" value="1"' in page
    assert 'hx-swap-oob="beforeend:#lines"' in page
    assert f"lot {lot.lot_number}: IND 012345" in page


@pytest.mark.parametrize("line_lot", ["²", "\uff11\uff12", "9" * 5000, "-3"])
def test_a_line_that_names_no_lot_is_dropped_from_the_scan(line_lot):
    ready = chair_ready()
    lot = ready.lot
    response = post_scan(
        client_for(ready.clinician), ready, scan_of(lot), line_lot=[line_lot, lot.pk]
    )
    assert response.status_code == 200
    assert f'id="line-{lot.pk}"' in response.content.decode()


def test_scanning_the_same_lot_again_adds_a_unit_to_its_line():
    ready = chair_ready()
    lot = ready.lot
    response = post_scan(
        client_for(ready.clinician),
        ready,
        scan_of(lot),
        line_lot=[lot.pk],
        **{f"units_{lot.pk}": "2"},
    )
    page = response.content.decode()
    assert f'id="line-{lot.pk}" hx-swap-oob="true"' in page
    assert f'name="units_{lot.pk}" value="3"' in page
    assert "beforeend:#lines" not in page


def test_a_recalled_lot_scans_red_naming_the_recall(quality_manager):
    ready = chair_ready()
    lot = ready.lot
    recall = open_recall(quality_manager, lot)
    response = post_scan(client_for(ready.clinician), ready, scan_of(lot))
    page, words = response.content.decode(), text_of(response)
    assert 'class="answer bad"' in page
    assert f"Do not use lot {lot.lot_number}." in words
    assert "was recalled on" in words and f"see recall {recall.reference}" in words
    assert "set the vial aside" in words
    assert "5 blocked by a recall" in words


@pytest.mark.parametrize(
    ("status", "words"),
    [
        (LotStatus.ON_HOLD, "is on hold: do not use it. Set the vial aside until quality"),
        (LotStatus.QUARANTINED, "not released for use. Set the vial aside and use a released lot"),
    ],
)
def test_a_lot_not_usable_scans_red_with_the_reason(status, words):
    ready = chair_ready()
    ready.lot.status = status
    ready.lot.save()
    response = post_scan(client_for(ready.clinician), ready, scan_of(ready.lot))
    assert 'class="answer bad"' in response.content.decode()
    assert words in text_of(response)


def test_an_expired_lot_scans_red():
    ready = chair_ready()
    lot = ready.lot
    lot.expires_on = timezone.localdate() - datetime.timedelta(days=1)
    lot.save()
    response = post_scan(client_for(ready.clinician), ready, scan_of(lot))
    assert f"expired on {lot.expires_on.isoformat()}" in text_of(response)
    assert 'class="answer bad"' in response.content.decode()


def test_a_lot_with_no_stock_here_scans_red():
    ready = chair_ready(stock=0)
    response = post_scan(client_for(ready.clinician), ready, scan_of(ready.lot))
    assert f"has no accepted stock of Lot {ready.lot.lot_number}" in text_of(response)
    assert 'class="answer bad"' in response.content.decode()


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("hello", "not a GS1 element string"),
        ("(01)09506000134369(10)X1", "No product with GTIN"),
        ("(01)09506000134352(10)NOPE", "has no lot NOPE on record"),
    ],
)
def test_a_scan_not_understood_scans_red_and_adds_no_line(text, words):
    ready = chair_ready()
    response = post_scan(client_for(ready.clinician), ready, text)
    assert words in text_of(response)
    assert 'class="answer bad"' in response.content.decode()
    assert "line_lot" not in response.content.decode()


# --------------------------------------------------------------------------------------------
# Saving


def test_saving_records_the_treatment_at_save_time_and_draws_the_stock():
    ready = chair_ready(stock=5)
    ConsentTextFactory()
    before = timezone.now()
    response = save(client_for(ready.clinician), ready, ready.lot, 2, consent="on")
    treatment = Treatment.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("pages:treatment", args=[treatment.pk]) + "?saved=1"
    assert before <= treatment.performed_at <= timezone.now()
    assert treatment.consent_taken_at == treatment.performed_at
    assert treatment.consent_taken_by == ready.clinician
    assert "IND 012345" in treatment.consent_regulatory_statement
    assert on_hand(ready, ready.lot) == 3
    confirmation = client_for(ready.clinician).get(response.url)
    words = text_of(confirmation)
    assert f"Treatment {treatment.pk} of patient {ready.patient.reference} is saved." in words
    assert "3 units left at this clinic." in words


def test_a_time_given_by_the_user_is_kept_with_consent_at_that_time():
    ready = chair_ready()
    ConsentTextFactory()
    at = timezone.localtime() - datetime.timedelta(hours=1)
    response = save(
        client_for(ready.clinician),
        ready,
        ready.lot,
        consent="on",
        performed_at=at.strftime("%Y-%m-%dT%H:%M"),
    )
    assert response.status_code == 302
    treatment = Treatment.objects.get()
    assert treatment.performed_at == at.replace(second=0, microsecond=0)
    assert treatment.consent_taken_at == treatment.performed_at


def test_consent_given_after_the_treatment_time_is_refused_in_plain_words():
    ready = chair_ready()
    ConsentTextFactory()
    now = timezone.localtime()
    response = save(
        client_for(ready.clinician),
        ready,
        ready.lot,
        consent="on",
        performed_at=(now - datetime.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
        consent_taken_at=(now - datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
    )
    assert response.status_code == 409
    assert "Consent must be taken before the treatment. Leave the consent time empty" in text_of(
        response
    )
    assert not Treatment.objects.exists()


def test_a_recalled_lot_is_refused_naming_the_recall_and_nothing_changes(quality_manager):
    ready = chair_ready(stock=5)
    recall = open_recall(quality_manager, ready.lot)
    response = save(client_for(ready.clinician), ready, ready.lot)
    assert response.status_code == 409
    words = text_of(response)
    assert "Not saved:" in words
    assert f"Lot {ready.lot.lot_number} was recalled on" in words
    assert f"set the vial aside, see recall {recall.reference}" in words
    # The line stays on the form, marked, so the user sees which vial.
    assert f'name="line_lot" value="{ready.lot.pk}"' in response.content.decode()
    assert not Treatment.objects.exists()


def test_consent_required_by_the_clinic_and_not_given_is_refused():
    ready = chair_ready(consent_required=True)
    ConsentTextFactory()
    response = save(client_for(ready.clinician), ready, ready.lot)
    assert response.status_code == 409
    assert "requires the patient's informed consent before treatment. Tick consent" in text_of(
        response
    )
    assert not Treatment.objects.exists()


def test_too_many_units_is_refused_with_the_stock_on_hand():
    ready = chair_ready(stock=2)
    response = save(client_for(ready.clinician), ready, ready.lot, units=3)
    assert response.status_code == 409
    assert "has 2 accepted unit(s)" in text_of(response)
    assert "Lower the units, or receive the stock first." in text_of(response)
    assert on_hand(ready, ready.lot) == 2


@pytest.mark.parametrize("units", ["0", "-1", "two", "", "²", "\uff11", "9" * 5000])
def test_units_that_are_not_a_count_are_an_inline_error(units):
    ready = chair_ready()
    response = save(
        client_for(ready.clinician), ready, ready.lot, **{f"units_{ready.lot.pk}": units}
    )
    assert response.status_code == 409
    assert "Give the units used, a whole number above zero." in text_of(response)
    assert not Treatment.objects.exists()


def test_no_lot_scanned_is_refused():
    ready = chair_ready()
    response = save(client_for(ready.clinician), ready, ready.lot, line_lot=[])
    assert response.status_code == 409
    assert "Name at least one lot used. Scan the vial used." in text_of(response)


def test_missing_fields_are_marked_and_nothing_is_saved():
    ready = chair_ready()
    response = save(client_for(ready.clinician), ready, ready.lot, anatomical_site="", route="x")
    assert response.status_code == 409
    assert "Check the fields marked below." in text_of(response)
    assert response.content.decode().count('class="field-error"') >= 2
    assert not Treatment.objects.exists()


def test_another_clinics_practitioner_cannot_be_chosen():
    ready, other = chair_ready(), clinic_ready()
    response = save(
        client_for(ready.clinician), ready, ready.lot, practitioner=other.practitioner.pk
    )
    assert response.status_code == 409
    assert not Treatment.objects.exists()


def test_a_consent_time_without_consent_ticked_is_an_inline_error():
    ready = chair_ready()
    ConsentTextFactory()
    at = timezone.localtime() - datetime.timedelta(minutes=5)
    response = save(
        client_for(ready.clinician),
        ready,
        ready.lot,
        consent_taken_at=at.strftime("%Y-%m-%dT%H:%M"),
    )
    assert response.status_code == 409
    assert "A consent time is given: tick consent, or clear the time." in text_of(response)
    assert not Treatment.objects.exists()
