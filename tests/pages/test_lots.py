"""The lot pages through Django's test client: who reads what, the signed decisions (release,
reject, hold) and their refusals, the trace and its scoping, the certificates needing attention,
and a fixed number of queries whatever the size."""

from __future__ import annotations

import csv
import datetime
import io
import xml.etree.ElementTree as ET

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from lots.models import Certificate, CertificateKind, Lot, LotStatus, LotStatusChange
from pages.lots import certificates_needing_attention, lots_awaiting_release
from providers.models import Role
from tests.factories import (
    PASSWORD,
    LotFactory,
    ManufacturerFactory,
    MembershipFactory,
    ProductFactory,
    UserFactory,
    clinic_ready,
    lot_for_release,
    receive,
    releasable_lot,
    released_lot,
    store_certificate,
    treat,
)
from tests.pages.conftest import client_for

pytestmark = pytest.mark.usefixtures("reference_data")

SVG = "{http://www.w3.org/2000/svg}"


def _lot_url(lot: Lot) -> str:
    return reverse("pages:lot", args=[lot.pk])


def _release_url(lot: Lot) -> str:
    return reverse("pages:lot-release", args=[lot.pk])


def _sign(**fields: str) -> dict[str, str]:
    return {"password": PASSWORD, "meaning": "approval", "reason": "All records checked.", **fields}


def _svg(html: str) -> ET.Element:
    start = html.index("<svg")
    end = html.index("</svg>", start) + len("</svg>")
    return ET.fromstring(html[start:end])  # noqa: S314 - our own markup


def _svg_texts(html: str) -> list[str]:
    return [text.text or "" for text in _svg(html).iter(f"{SVG}text")]


# ---------------------------------------------------------------------------------------------
# Who reads lots


def test_a_visitor_who_is_not_signed_in_is_sent_to_sign_in(client):
    lot = LotFactory()

    for url in (reverse("pages:lots"), _lot_url(lot), _release_url(lot)):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("pages:sign-in"))


def test_a_user_without_a_role_is_refused_the_lots(db):
    user = UserFactory()

    response = client_for(user).get(reverse("pages:lots"))

    assert response.status_code == 403
    assert "Your role does not include this page." in response.content.decode()


def test_clinic_staff_read_lots_but_see_no_signing_control_nor_dossier(clinician):
    lot = LotFactory(lot_number="HX-7")

    listing = client_for(clinician).get(reverse("pages:lots"))
    detail = client_for(clinician).get(_lot_url(lot))

    assert listing.status_code == 200 and "HX-7" in listing.content.decode()
    html = detail.content.decode()
    assert detail.status_code == 200
    assert f"Lot HX-7 of {lot.product.name}" in html
    assert _release_url(lot) not in html
    assert "dossier" not in html.lower()


def test_clinic_staff_are_refused_the_release_form_and_cannot_release(clinician, quality_manager):
    lot = releasable_lot(quality_manager=quality_manager)
    clinician.set_password(PASSWORD)
    clinician.save()

    shown = client_for(clinician).get(_release_url(lot))
    posted = client_for(clinician).post(_release_url(lot), _sign())

    assert shown.status_code == 403 and posted.status_code == 403
    assert "Only a quality manager of the network" in posted.content.decode()
    lot.refresh_from_db()
    assert lot.status == LotStatus.QUARANTINED
    assert not LotStatusChange.objects.exists()


def test_a_clinic_quality_manager_is_not_a_network_signer(clinic, quality_manager):
    local = UserFactory()
    MembershipFactory(user=local, role=Role.QUALITY_MANAGER, clinic=clinic)
    lot = releasable_lot(quality_manager=quality_manager)

    response = client_for(local).post(_release_url(lot), _sign())

    assert response.status_code == 403
    lot.refresh_from_db()
    assert lot.status == LotStatus.QUARANTINED


def test_an_auditor_reads_the_lot_and_its_dossier_link_but_has_no_release_control(
    auditor, quality_manager
):
    lot = releasable_lot(quality_manager=quality_manager)
    auditor.set_password(PASSWORD)
    auditor.save()

    html = client_for(auditor).get(_lot_url(lot)).content.decode()
    refused = client_for(auditor).post(_release_url(lot), _sign())

    assert reverse("lot-dossier-pdf", args=[lot.pk]) in html
    assert _release_url(lot) not in html
    assert reverse("pages:lot-reject", args=[lot.pk]) not in html
    assert '<form method="post" class="card' not in html
    assert refused.status_code == 403
    lot.refresh_from_db()
    assert lot.status == LotStatus.QUARANTINED


def test_a_quality_manager_sees_the_decisions_the_lot_status_allows(quality_manager):
    quarantined = LotFactory()
    released = released_lot()

    first = client_for(quality_manager).get(_lot_url(quarantined)).content.decode()
    second = client_for(quality_manager).get(_lot_url(released)).content.decode()

    assert _release_url(quarantined) in first
    assert reverse("pages:lot-reject", args=[quarantined.pk]) in first
    assert reverse("pages:lot-hold", args=[quarantined.pk]) not in first
    assert reverse("pages:lot-hold", args=[released.pk]) in second
    assert _release_url(released) not in second


def test_an_unknown_lot_is_a_not_found_page(quality_manager):
    for name in ("pages:lot", "pages:lot-release"):
        response = client_for(quality_manager).get(reverse(name, args=[987654]))
        assert response.status_code == 404
        assert "There is no such lot." in response.content.decode()


# ---------------------------------------------------------------------------------------------
# The lot page


def test_the_lot_page_shows_donors_qc_against_specification_and_certificates(quality_manager):
    lot = lot_for_release(quality_manager=quality_manager, skip_qc=("sterility",))
    endotoxin = lot.qc_results.get(test__code="endotoxin")
    endotoxin.numeric_value = 99
    endotoxin.save()
    donor = lot.donors.get()
    coa = Certificate.objects.get(lot=lot)

    html = client_for(quality_manager).get(_lot_url(lot)).content.decode()

    assert f"{donor.code}" in html and "Eligible" in html and "Non-reactive" in html
    assert "Endotoxin" in html and "Fail" in html and "Pass" in html
    assert "Missing" in html  # sterility has no result
    assert coa.sha256 in html
    assert "No Sterility result on file." in html  # the release check, every unmet requirement
    assert "Endotoxin is 99" in html


def test_an_expired_manufacturer_certificate_is_shown_as_expired(quality_manager):
    manufacturer = ManufacturerFactory()
    lot = lot_for_release(
        quality_manager=quality_manager,
        product=ProductFactory(manufacturer=manufacturer),
        gmp=False,
    )
    store_certificate(
        kind=CertificateKind.GMP,
        manufacturer=manufacturer,
        uploaded_by=quality_manager,
        valid_from=timezone.localdate() - datetime.timedelta(days=800),
        valid_until=timezone.localdate() - datetime.timedelta(days=35),
        number="GMP-OLD",
    )

    html = client_for(quality_manager).get(_lot_url(lot)).content.decode()

    row = html[html.index("GMP-OLD") :]
    assert "badge-expired" in row[: row.index("</tr>")]
    assert "GMP certificate expired on" in html


def test_after_release_the_lot_page_shows_the_signature(quality_manager):
    lot = releasable_lot(quality_manager=quality_manager)

    response = client_for(quality_manager).post(_release_url(lot), _sign(), follow=True)

    html = response.content.decode()
    assert response.redirect_chain[-1][0] == _lot_url(lot)
    assert "badge-released" in html
    assert "Released by Quinn Manager" in html
    assert "All records checked." in html
    assert f"Lot {lot.lot_number} of {lot.product.name} is released." in html


# ---------------------------------------------------------------------------------------------
# Signed decisions


def test_the_release_form_lists_every_unmet_requirement_before_signing(quality_manager):
    lot = lot_for_release(quality_manager=quality_manager, coa=False, skip_qc=("mycoplasma",))

    html = client_for(quality_manager).get(_release_url(lot)).content.decode()

    assert "2 requirements are not met" in html
    assert "No certificate of analysis for this lot is on file." in html
    assert "No Mycoplasma result on file." in html
    assert 'name="password"' not in html  # nothing to sign while the gate is shut


def test_a_release_refused_by_the_gate_lists_the_problems_and_changes_nothing(quality_manager):
    lot = lot_for_release(quality_manager=quality_manager, gmp=False)

    response = client_for(quality_manager).post(_release_url(lot), _sign())

    html = response.content.decode()
    assert response.status_code == 200
    assert "cannot be released" in html
    assert f"No GMP or ISO 13485 certificate for {lot.manufacturer.legal_name}" in html
    lot.refresh_from_db()
    assert lot.status == LotStatus.QUARANTINED
    assert not LotStatusChange.objects.exists()


def test_a_releasable_lot_offers_the_signature_form(quality_manager):
    lot = releasable_lot(quality_manager=quality_manager)

    html = client_for(quality_manager).get(_release_url(lot)).content.decode()

    assert "Every release requirement is met." in html
    assert 'name="password"' in html and 'name="meaning"' in html and 'name="reason"' in html
    assert "rejection" not in html  # a release is not signed with the meaning "rejection"


def test_releasing_signs_and_releases(quality_manager):
    lot = releasable_lot(quality_manager=quality_manager)

    response = client_for(quality_manager).post(_release_url(lot), _sign(meaning="review"))

    assert response.status_code == 302
    lot.refresh_from_db()
    assert lot.status == LotStatus.RELEASED
    change = LotStatusChange.objects.get(lot=lot)
    assert (change.signed_by, change.meaning) == (quality_manager, "review")


def test_a_wrong_password_is_refused_inline_and_changes_nothing(quality_manager):
    lot = releasable_lot(quality_manager=quality_manager)

    response = client_for(quality_manager).post(
        _release_url(lot), _sign(password="not my password")
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert "The password you re-entered to sign is not correct." in html
    assert 'name="reason"' in html and "All records checked." in html  # the form keeps its input
    lot.refresh_from_db()
    assert lot.status == LotStatus.QUARANTINED
    assert not LotStatusChange.objects.exists()


def test_a_locked_out_signer_is_refused_even_with_the_right_password(quality_manager, settings):
    settings.AXES_FAILURE_LIMIT = 2
    lot = releasable_lot(quality_manager=quality_manager)
    client = client_for(quality_manager)
    for _attempt in range(2):
        client.post(_release_url(lot), _sign(password="wrong"))

    response = client.post(_release_url(lot), _sign())

    assert "Too many wrong passwords in a row" in response.content.decode()
    lot.refresh_from_db()
    assert lot.status == LotStatus.QUARANTINED
    assert not LotStatusChange.objects.exists()


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"reason": ""}, "reason", "This field is required."),
        ({"password": ""}, "password", "This field is required."),
        ({"meaning": "rejection"}, "meaning", "Select a valid choice."),
    ],
)
def test_bad_signing_input_is_refused_on_its_field_and_changes_nothing(
    quality_manager, fields, field, message
):
    lot = releasable_lot(quality_manager=quality_manager)

    response = client_for(quality_manager).post(_release_url(lot), _sign(**fields))

    assert response.status_code == 200
    assert any(message in error for error in response.context["form"].errors[field])
    lot.refresh_from_db()
    assert lot.status == LotStatus.QUARANTINED


def test_a_lot_is_rejected_with_a_signature(quality_manager):
    lot = lot_for_release(quality_manager=quality_manager, coa=False)
    url = reverse("pages:lot-reject", args=[lot.pk])

    shown = client_for(quality_manager).get(url).content.decode()
    response = client_for(quality_manager).post(
        url, {"password": PASSWORD, "meaning": "rejection", "reason": "No CoA will come."}
    )

    assert 'name="password"' in shown
    assert response.status_code == 302
    lot.refresh_from_db()
    assert lot.status == LotStatus.REJECTED


def test_a_released_lot_is_put_on_hold_and_a_quarantined_one_cannot_be(quality_manager):
    released = released_lot()
    quarantined = LotFactory()

    held = client_for(quality_manager).post(
        reverse("pages:lot-hold", args=[released.pk]),
        {"password": PASSWORD, "meaning": "review", "reason": "Complaint under review."},
    )
    page = client_for(quality_manager).get(reverse("pages:lot-hold", args=[quarantined.pk]))
    refused = client_for(quality_manager).post(
        reverse("pages:lot-hold", args=[quarantined.pk]),
        {"password": PASSWORD, "meaning": "review", "reason": "Try."},
    )

    assert held.status_code == 302
    released.refresh_from_db()
    assert released.status == LotStatus.ON_HOLD
    assert "cannot take this decision" in page.content.decode()
    assert "Only a released lot can be put on hold" in refused.content.decode()
    quarantined.refresh_from_db()
    assert quarantined.status == LotStatus.QUARANTINED


# ---------------------------------------------------------------------------------------------
# The trace


def _treated_lot(ready, count: int) -> Lot:
    lot = released_lot()
    receive(ready, lot, count + 5)
    for _n in range(count):
        treat(ready, lot)
    return lot


def test_a_heavy_lot_draws_one_counted_node_per_busy_clinic(quality_manager):
    ready = clinic_ready()
    lot = _treated_lot(ready, 40)

    html = client_for(quality_manager).get(_lot_url(lot)).content.decode()

    texts = _svg_texts(html)
    assert "40 treatments" in texts
    assert not [text for text in texts if text.startswith("Patient ")]
    assert ready.clinic.name in texts


def test_clinic_staff_see_only_their_own_clinics_treatments_and_stock(quality_manager):
    north, south = clinic_ready(), clinic_ready()
    lot = released_lot()
    receive(north, lot, 10)
    receive(south, lot, 10)
    treat(north, lot)
    treat(south, lot)

    html = client_for(north.clinician).get(_lot_url(lot)).content.decode()
    network = client_for(quality_manager).get(_lot_url(lot)).content.decode()

    assert north.clinic.name in html and f"Patient {north.patient.reference}" in html
    assert south.clinic.name not in html
    assert south.patient.reference not in html
    assert south.clinic.name in network and f"Patient {south.patient.reference}" in network
    assert north.patient.reference in network


def test_the_trace_never_names_a_patient(quality_manager):
    from treatments.models import PatientContact

    ready = clinic_ready()
    lot = _treated_lot(ready, 1)
    PatientContact.objects.create(patient=ready.patient, full_name="Ada Lovelace")

    html = client_for(ready.clinician).get(_lot_url(lot)).content.decode()

    assert "Lovelace" not in html
    assert f"Patient {ready.patient.reference}" in html


# ---------------------------------------------------------------------------------------------
# The list


def test_the_list_filters_by_status_product_manufacturer_expiry_and_lot_number(quality_manager):
    today = timezone.localdate()
    product = ProductFactory()
    wanted = LotFactory(product=product, lot_number="HX-1234", status=LotStatus.RELEASED)
    LotFactory(product=product, lot_number="HX-9999", status=LotStatus.QUARANTINED)
    other = LotFactory(lot_number="ZZ-1234", status=LotStatus.RELEASED)
    old = LotFactory(
        lot_number="OLD-1",
        manufactured_on=today - datetime.timedelta(days=400),
        expires_on=today - datetime.timedelta(days=1),
    )
    client = client_for(quality_manager)

    def shown(**query):
        response = client.get(reverse("pages:lots"), query)
        return {lot.lot_number for lot, _expired in response.context["rows"]}

    assert shown(q="1234") == {"HX-1234", "ZZ-1234"}
    assert shown(q="1234", status="released", product=product.pk) == {wanted.lot_number}
    assert shown(manufacturer=other.manufacturer_id) == {"ZZ-1234"}
    assert shown(expiry="expired") == {old.lot_number}
    assert old.lot_number not in shown(expiry="usable")


def test_a_bad_filter_is_shown_on_its_field_and_lists_nothing(quality_manager):
    LotFactory()

    response = client_for(quality_manager).get(reverse("pages:lots"), {"status": "melted"})

    assert response.status_code == 200
    assert response.context["form"].errors["status"]
    assert response.context["rows"] == []


def test_the_list_pages_fifty_at_a_time(quality_manager):
    for n in range(55):
        LotFactory(lot_number=f"P-{n:03d}")
    client = client_for(quality_manager)

    first = client.get(reverse("pages:lots"))
    second = client.get(reverse("pages:lots"), {"page": 2})

    assert len(first.context["rows"]) == 50 and len(second.context["rows"]) == 5
    assert "Page 1 of 2" in first.content.decode()
    assert "Previous" in second.content.decode()


def test_the_list_downloads_as_csv_what_it_filters_with_formula_cells_guarded(quality_manager):
    LotFactory(lot_number="-1+1", status=LotStatus.RELEASED)
    LotFactory(lot_number="HIDDEN", status=LotStatus.QUARANTINED)

    response = client_for(quality_manager).get(
        reverse("pages:lots"), {"status": "released", "format": "csv"}
    )

    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][0] == "lot_number"
    assert [row[0] for row in rows[1:]] == ["'-1+1"]


def _count_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


def test_the_list_runs_the_same_number_of_queries_for_three_lots_and_fifty(quality_manager):
    client = client_for(quality_manager)
    for _n in range(3):
        LotFactory()
    few = _count_queries(client, reverse("pages:lots") + "?status=quarantined")
    for _n in range(60):
        LotFactory()
    many = _count_queries(client, reverse("pages:lots") + "?status=quarantined")

    assert few == many


def test_the_lot_page_runs_the_same_number_of_queries_for_a_small_and_a_large_lot(
    quality_manager,
):
    client = client_for(quality_manager)
    small_clinic = clinic_ready()
    small = releasable_lot(quality_manager=quality_manager)
    Lot.objects.filter(pk=small.pk).update(status=LotStatus.RELEASED)
    receive(small_clinic, small, 5)
    treat(small_clinic, small)

    large = releasable_lot(quality_manager=quality_manager, donors=3)
    Lot.objects.filter(pk=large.pk).update(status=LotStatus.RELEASED)
    busy, quiet = clinic_ready(), clinic_ready()
    receive(busy, large, 30)
    receive(quiet, large, 5)
    for _n in range(15):
        treat(busy, large)
    for _n in range(3):
        treat(quiet, large)

    assert _count_queries(client, _lot_url(small)) == _count_queries(client, _lot_url(large))


def test_clinic_staff_lot_page_query_count_does_not_grow_with_treatments():
    ready = clinic_ready()
    small = _treated_lot(ready, 1)
    large = _treated_lot(ready, 14)
    client = client_for(ready.clinician)

    assert _count_queries(client, _lot_url(small)) == _count_queries(client, _lot_url(large))


# ---------------------------------------------------------------------------------------------
# Certificates needing attention and lots awaiting release (the home page shows both)


def test_certificates_needing_attention_lists_expired_and_expiring_ones(quality_manager):
    today = datetime.date(2026, 12, 6)
    expired_maker, soon_maker, fine_maker, renewed_maker = (
        ManufacturerFactory() for _n in range(4)
    )

    def gmp(maker, until, number):
        return store_certificate(
            kind=CertificateKind.GMP,
            manufacturer=maker,
            uploaded_by=quality_manager,
            valid_from=datetime.date(2023, 1, 1),
            valid_until=until,
            number=number,
        )

    expired = gmp(expired_maker, datetime.date(2026, 11, 1), "GMP-EXP")
    soon = gmp(soon_maker, today + datetime.timedelta(days=60), "GMP-SOON")
    gmp(fine_maker, today + datetime.timedelta(days=61), "GMP-FINE")
    gmp(renewed_maker, datetime.date(2026, 10, 1), "GMP-OLD")
    gmp(renewed_maker, datetime.date(2028, 1, 1), "GMP-NEW")

    found = certificates_needing_attention(today=today)

    assert [(item.certificate, item.expired, item.days_left) for item in found] == [
        (expired, True, -35),
        (soon, False, 60),
    ]
    now = certificates_needing_attention(today=today, within_days=0)
    assert [item.certificate for item in now] == [expired]


def test_an_expired_certificate_superseded_by_a_valid_one_needs_no_attention(quality_manager):
    maker = ManufacturerFactory()
    old = store_certificate(
        kind=CertificateKind.GMP,
        manufacturer=maker,
        uploaded_by=quality_manager,
        valid_until=timezone.localdate() - datetime.timedelta(days=3),
        number="GMP-1",
    )
    newer = Certificate(
        kind=CertificateKind.GMP,
        manufacturer=maker,
        issuer=old.issuer,
        number="GMP-2",
        valid_from=old.valid_from,
        valid_until=timezone.localdate() + datetime.timedelta(days=400),
        sha256="b" * 64,
        size_bytes=old.size_bytes,
        supersedes=old,
        uploaded_by=quality_manager,
        uploaded_at=timezone.now(),
    )
    newer.file.name = old.file.name
    newer.save()

    assert certificates_needing_attention(today=timezone.localdate()) == []


def test_the_certificates_page_shows_an_expired_gmp_certificate_as_expired(
    clinician, quality_manager
):
    maker = ManufacturerFactory(legal_name="PXL Biologics")
    store_certificate(
        kind=CertificateKind.GMP,
        manufacturer=maker,
        uploaded_by=quality_manager,
        valid_from=timezone.localdate() - datetime.timedelta(days=1100),
        valid_until=timezone.localdate() - datetime.timedelta(days=35),
        number="GMP-PXL-2022",
    )

    html = client_for(clinician).get(reverse("pages:lot-certificates")).content.decode()

    row = html[html.index("PXL Biologics") :]
    row = row[: row.index("</tr>")]
    assert "GMP-PXL-2022" in row and "badge-expired" in row and "Expired" in row


def test_lots_awaiting_release_lists_quarantined_lots_with_their_problems(
    quality_manager, django_assert_max_num_queries
):
    ready = releasable_lot(quality_manager=quality_manager)
    blocked = lot_for_release(quality_manager=quality_manager, coa=False)
    released_lot()
    for _n in range(3):
        LotFactory()

    with django_assert_max_num_queries(1 + 2 * 8):
        found = lots_awaiting_release(limit=2)

    assert [item.lot for item in found] == [ready, blocked]
    assert found[0].releasable and found[0].problems == []
    assert [problem.code for problem in found[1].problems] == ["coa_missing"]
    assert len(lots_awaiting_release()) == 5
