"""The recall pages with Django's test client: who sees what, the opening preview and signature,
the recall's page (chart, acknowledgements, dispositions, notices, closing) and the clinic's
patient call list."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import ContactDataRead
from lots.models import LotDonor, LotStatus
from pages.recalls.scope_search import MATCH_LIMIT
from recalls.models import (
    Acknowledgement,
    Notification,
    NotificationStatus,
    PatientContactAttempt,
    Recall,
    RecallStatus,
    StockDisposition,
)
from recalls.services import recall_close
from stock.models import StockBalance
from tests.factories import (
    PASSWORD,
    DonorFactory,
    LotFactory,
    PatientFactory,
    ProductFactory,
    UserFactory,
    clinic_ready,
    receive,
    released_lot,
    treat,
)
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

    [mine] = open_recalls_for(world.a.ready.clinician)
    assert mine == world.recall
    assert (mine.clinics_total, mine.clinics_acknowledged, mine.units_held) == (1, 0, 3)
    [every] = open_recalls_for(quality_manager)
    assert (every.clinics_total, every.patients_exposed, every.units_held) == (2, 2, 5)
    outsider = clinic_ready()
    assert open_recalls_for(outsider.administrator) == []
    recall_close(
        recall=world.recall, actor=quality_manager, password=PASSWORD, reason="Done", override=True
    )
    assert open_recalls_for(quality_manager) == []


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


# ---------------------------------------------------------------------------------------------
# Opening: preview, then signature


def _opening(lot: Any, **changes: Any) -> dict[str, Any]:
    data = {
        "lots": [lot.pk],
        "recall_class": "II",
        "depth": "patient",
        "reason": "Sterility failure in retained samples",
        "hazard": "Risk of infection at the injection site",
        "instructions": "Stop use; keep the vials for collection.",
    }
    data.update(changes)
    return data


@pytest.fixture
def scope_world(quality_manager) -> tuple[Any, Any, Any]:
    """One lot at two clinics: A treated two patients (1 + 2 units) and holds 4 units; B treated
    one patient (1 unit) and holds 6."""
    lot = released_lot()
    a, b = clinic_ready(), clinic_ready()
    receive(a, lot, 7)
    receive(b, lot, 7)
    treat(a, lot, 1)
    treat(a, lot, 2, patient=PatientFactory(clinic=a.clinic))
    treat(b, lot, 1)
    return lot, a, b


def test_the_preview_counts_the_clinics_patients_and_units_the_scope_reaches(
    scope_world, quality_manager
):
    lot, a, b = scope_world
    response = client_for(quality_manager).post(NEW, {**_opening(lot), "action": "preview"})
    page = response.content.decode()
    assert response.status_code == 200
    assert '<dd id="reach-clinics">2</dd>' in page
    assert '<dd id="reach-patients">3</dd>' in page
    assert '<dd id="reach-units-used">4</dd>' in page
    assert '<dd id="reach-units-held">10</dd>' in page
    assert a.clinic.name in page and b.clinic.name in page
    assert 'name="password"' in page
    assert not Recall.objects.exists()  # a preview changes nothing


def test_the_preview_runs_the_same_queries_for_one_lot_and_for_three(scope_world, quality_manager):
    lot, a, b = scope_world
    client = client_for(quality_manager)
    with CaptureQueriesContext(connection) as one:
        client.post(NEW, {**_opening(lot), "action": "preview"})
    more = [released_lot(product=lot.product) for _ in range(2)]
    for extra in more:
        receive(a, extra, 2)
        receive(b, extra, 1)
    with CaptureQueriesContext(connection) as three:
        client.post(
            NEW, {**_opening(lot, lots=[lot.pk, *[m.pk for m in more]]), "action": "preview"}
        )
    assert len(three) == len(one)


def test_the_quality_manager_opens_the_recall_after_the_preview(scope_world, quality_manager):
    lot, a, _b = scope_world
    response = client_for(quality_manager).post(
        NEW, {**_opening(lot), "action": "sign", "password": PASSWORD}
    )
    recall = Recall.objects.get()
    assert response.status_code == 302 and response["Location"] == detail(recall)
    assert (recall.recall_class, recall.depth) == ("II", "patient")
    lot.refresh_from_db()
    assert lot.status == LotStatus.RECALLED
    assert StockBalance.objects.get(clinic=a.clinic, lot=lot, state="blocked").quantity == 4


def test_a_wrong_password_is_refused_inline_and_nothing_changes(scope_world, quality_manager):
    lot, _a, _b = scope_world
    response = client_for(quality_manager).post(
        NEW, {**_opening(lot), "action": "sign", "password": "not it"}
    )
    page = response.content.decode()
    assert response.status_code in (400, 403)
    assert "nothing was changed" in page
    assert "Sterility failure in retained samples" in page  # the form keeps what was typed
    assert not Recall.objects.exists()
    lot.refresh_from_db()
    assert lot.status == LotStatus.RELEASED


def test_a_lot_already_in_an_open_recall_is_refused_inline(world, quality_manager):
    client = client_for(quality_manager)
    preview = client.post(NEW, {**_opening(world.lot), "action": "preview"}).content.decode()
    assert f"already in open recall {world.recall.reference}" in preview
    response = client.post(NEW, {**_opening(world.lot), "action": "sign", "password": PASSWORD})
    assert response.status_code == 409
    assert f"is already in open recall {world.recall.reference}" in response.content.decode()
    assert Recall.objects.count() == 1


def test_an_opening_without_scope_or_reason_is_refused_inline(quality_manager):
    response = client_for(quality_manager).post(
        NEW,
        {"recall_class": "I", "depth": "clinic", "reason": "", "hazard": "x", "action": "preview"},
    )
    page = response.content.decode()
    assert response.status_code == 400
    assert "Name the lots, a product, a manufacturer or a donor" in page
    assert "This field is required" in page
    assert not Recall.objects.exists()


def test_only_a_quality_manager_opens_a_recall(world, auditor):
    for user in (auditor, world.a.ready.administrator, world.a.ready.clinician):
        response = client_for(user).get(NEW)
        assert response.status_code == 403
        assert "Only a quality manager opens a recall" in response.content.decode()
        posted = client_for(user).post(
            NEW, {**_opening(world.lot), "action": "sign", "password": PASSWORD}
        )
        assert posted.status_code == 403
    assert Recall.objects.count() == 1


# ---------------------------------------------------------------------------------------------
# Opening: finding the lots and the donor instead of a list of every one

LOT_SEARCH = reverse("pages:recall-new-lots")
DONOR_SEARCH = reverse("pages:recall-new-donors")


@pytest.fixture
def many_lots() -> list[Any]:
    """200 lots of one product, numbered BULK-000 to BULK-199."""
    product = ProductFactory(name="Vesicle serum", gtin="09506000134352")
    creator = UserFactory()
    return [
        LotFactory(product=product, lot_number=f"BULK-{n:03d}", created_by=creator)
        for n in range(200)
    ]


def _ticked(page: str) -> list[str]:
    """The lot ids the page's checkboxes post, ticked or not."""
    return re.findall(r'<input type="checkbox" name="lots" value="(\d+)"', page)


def _checked(page: str) -> list[str]:
    return re.findall(r'<input type="checkbox" name="lots" value="(\d+)"[^>]* checked>', page)


def test_the_form_shows_only_the_chosen_lots_and_the_matches_never_every_lot(
    many_lots, quality_manager
):
    client = client_for(quality_manager)
    empty = client.get(NEW).content.decode()
    assert "BULK-" not in empty
    assert _ticked(empty) == []
    assert 'name="lot_search"' in empty and 'hx-get="/recalls/new/lots/"' in empty

    chosen = many_lots[150]
    response = client.post(
        NEW, {**_opening(chosen), "reason": "", "lot_search": "bulk-01", "action": "find"}
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "This field is required" not in page  # finding is not submitting
    assert _checked(page) == [str(chosen.pk)]
    assert _ticked(page) == [str(chosen.pk), *[str(lot.pk) for lot in many_lots[10:20]]]
    shown = set(re.findall(r"BULK-\d{3}", page))
    assert shown == {"BULK-150", *[f"BULK-{n:03d}" for n in range(10, 20)]}
    assert 'value="bulk-01"' in page


def test_the_lot_search_finds_by_part_of_the_number_and_stops_at_the_limit(
    many_lots, quality_manager
):
    client = client_for(quality_manager)
    narrow = client.get(LOT_SEARCH, {"lot_search": "K-19"}).content.decode()
    assert _ticked(narrow) == [str(lot.pk) for lot in many_lots[190:200]]
    assert "Only the first" not in narrow

    broad = client.get(LOT_SEARCH, {"lot_search": "bulk", "lots": [many_lots[199].pk]})
    page = broad.content.decode()
    assert broad.status_code == 200
    assert _checked(page) == [str(many_lots[199].pk)]
    # The chosen lot, then the first 25 others in lot number order, and a word that there are more.
    assert _ticked(page) == [str(lot.pk) for lot in [many_lots[199], *many_lots[:MATCH_LIMIT]]]
    assert f"Only the first {MATCH_LIMIT} matches are shown" in page

    by_product = client.get(LOT_SEARCH, {"lot_search": "vesicle"}).content.decode()
    assert len(_ticked(by_product)) == MATCH_LIMIT
    nothing = client.get(LOT_SEARCH, {"lot_search": "NOPE"}).content.decode()
    assert _ticked(nothing) == [] and "No lot matches “NOPE”." in nothing


@pytest.mark.parametrize("posted", ["²", "\uff11\uff12", "9" * 30, "-1", "lot"])
def test_a_chosen_id_that_is_no_number_is_left_out(many_lots, quality_manager, posted):
    chosen = many_lots[3]
    for search, field in ((LOT_SEARCH, "lots"), (DONOR_SEARCH, "donor")):
        response = client_for(quality_manager).get(
            search, {field: [posted, chosen.pk if field == "lots" else ""]}
        )
        assert response.status_code == 200
    lots = client_for(quality_manager).get(LOT_SEARCH, {"lots": [posted, chosen.pk]})
    assert _checked(lots.content.decode()) == [str(chosen.pk)]


def test_the_lot_search_reads_a_scanned_gs1_code(many_lots, quality_manager):
    client = client_for(quality_manager)
    lot = many_lots[42]
    for scan in ("(01)09506000134352(10)BULK-042", "]d20109506000134352\x1d10BULK-042"):
        page = client.get(LOT_SEARCH, {"lot_search": scan}).content.decode()
        assert _ticked(page) == [str(lot.pk)], scan
    misread = client.get(LOT_SEARCH, {"lot_search": "(01)09506000134350(10)BULK-042"})
    assert _ticked(misread.content.decode()) == []
    assert "fails the GS1 check digit" in misread.content.decode()


def test_the_search_runs_the_same_queries_for_one_chosen_lot_and_for_ten(
    many_lots, quality_manager
):
    client = client_for(quality_manager)

    def queries(chosen: list[Any], term: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            client.get(LOT_SEARCH, {"lot_search": term, "lots": [lot.pk for lot in chosen]})
        return len(captured)

    assert queries(many_lots[:1], "K-19") == queries(many_lots[:10], "bulk")


def test_a_chosen_lot_and_donor_survive_a_form_error(many_lots, quality_manager):
    donor = DonorFactory(code="DN-SURVIVE")
    others = DonorFactory.create_batch(3)
    chosen = many_lots[7]
    response = client_for(quality_manager).post(
        NEW, {**_opening(chosen), "donor": donor.pk, "reason": "", "action": "preview"}
    )
    page = response.content.decode()
    assert response.status_code == 400
    assert "This field is required" in page
    assert _checked(page) == [str(chosen.pk)]
    assert "BULK-007" in page and "BULK-008" not in page
    assert f'<option value="{donor.pk}" selected>Donor DN-SURVIVE</option>' in page
    [donor_select] = re.findall(r'<select name="donor".*?</select>', page, flags=re.DOTALL)
    assert donor_select.count("<option") == 2  # "no donor" and the chosen one
    assert not any(other.code in page for other in others)
    assert not Recall.objects.exists()


def test_the_donor_search_finds_by_part_of_the_code(quality_manager):
    wanted = DonorFactory(code="DN-ALPHA-1")
    DonorFactory(code="DN-BETA-1")
    client = client_for(quality_manager)
    page = client.get(DONOR_SEARCH, {"donor_search": "alpha"}).content.decode()
    assert f'<option value="{wanted.pk}">Donor DN-ALPHA-1</option>' in page
    assert "DN-BETA-1" not in page
    assert "DN-" not in client.get(NEW).content.decode()
    found = client.post(NEW, {"donor_search": "alpha", "action": "find"}).content.decode()
    assert "DN-ALPHA-1" in found and "DN-BETA-1" not in found


def test_a_recall_by_a_donor_found_by_its_code_reaches_that_donors_lots(quality_manager):
    lot = released_lot()
    donor = DonorFactory(code="DN-SCOPE")
    LotDonor.objects.create(lot=lot, donor=donor)
    response = client_for(quality_manager).post(
        NEW, {**_opening(lot, lots=[]), "donor": donor.pk, "action": "preview"}
    )
    assert response.status_code == 200
    assert '<dd id="reach-lots">1</dd>' in response.content.decode()
    assert f'name="donor" value="{donor.pk}"' in response.content.decode()


def test_only_a_quality_manager_searches_lots_and_donors(world, auditor):
    for url, field in ((LOT_SEARCH, "lot_search"), (DONOR_SEARCH, "donor_search")):
        for user in (auditor, world.a.ready.administrator, world.a.ready.clinician):
            response = client_for(user).get(url, {field: world.lot.lot_number[:3]})
            assert response.status_code == 403, (url, user)
            assert world.lot.lot_number not in response.content.decode()
        anonymous = Client().get(url, {field: world.lot.lot_number})
        assert anonymous.status_code == 302
        assert anonymous["Location"].startswith(reverse("pages:sign-in"))


# ---------------------------------------------------------------------------------------------
# One recall


def test_the_recall_page_shows_the_recall_and_each_clinic(world, quality_manager):
    page = client_for(quality_manager).get(detail(world.recall)).content.decode()
    for text in (
        world.recall.reason,
        world.recall.hazard,
        world.recall.instructions,
        f"Lot {world.lot.lot_number} of {world.lot.product.name}",
        world.a.clinic.name,
        world.b.clinic.name,
        "Close the recall",
    ):
        assert text in page
    assert world.a.patient_name not in page  # network roles never read contact details


def test_an_auditor_reads_the_recall_without_any_write_control(world, auditor):
    client = client_for(auditor)
    page = client.get(detail(world.recall)).content.decode()
    assert world.recall.reference in page
    assert '<form method="post" class="inline"' not in page and "Close the recall" not in page
    assert "Record returned or destroyed units" not in page
    assert world.a.patient_name not in page and world.a.patient_phone not in page
    response = client.post(
        detail(world.recall), {"action": "acknowledge", "clinic": world.a.clinic.pk}
    )
    assert response.status_code == 403
    assert client.get(patients_url(world.recall, world.a.clinic)).status_code == 403
    assert client.get(reverse("pages:recall-close", args=[world.recall.pk])).status_code == 403
    assert not Acknowledgement.objects.exists()


def test_clinic_staff_see_their_own_clinic_only_and_acknowledge_it(world):
    client = client_for(world.a.ready.administrator)
    page = client.get(detail(world.recall)).content.decode()
    assert world.a.clinic.name in page and world.b.clinic.name not in page
    assert f"Acknowledge for {world.a.clinic.name}" in page
    response = client.post(
        detail(world.recall), {"action": "acknowledge", "clinic": world.a.clinic.pk}
    )
    assert response.status_code == 302
    acknowledgement = Acknowledgement.objects.get()
    assert (acknowledgement.clinic, acknowledgement.via) == (world.a.clinic, "admin")
    # Another clinic's acknowledgement cannot be named from here.
    response = client.post(
        detail(world.recall), {"action": "acknowledge", "clinic": world.b.clinic.pk}
    )
    assert response.status_code == 404
    assert Acknowledgement.objects.count() == 1


def test_clinic_staff_record_a_disposition_and_too_many_units_are_refused(world):
    client = client_for(world.a.ready.administrator)
    key = f"{world.a.clinic.pk}-{world.lot.pk}"
    too_many = client.post(
        detail(world.recall),
        {"action": "disposition", "stock": key, "kind": "destroyed", "quantity": 9},
    )
    assert too_many.status_code == 409
    assert "nothing was changed" in too_many.content.decode()
    assert not StockDisposition.objects.exists()
    done = client.post(
        detail(world.recall),
        {"action": "disposition", "stock": key, "kind": "destroyed", "quantity": 2},
    )
    assert done.status_code == 302
    assert StockDisposition.objects.get().quantity == 2
    other = f"{world.b.clinic.pk}-{world.lot.pk}"
    refused = client.post(
        detail(world.recall),
        {"action": "disposition", "stock": other, "kind": "destroyed", "quantity": 1},
    )
    assert refused.status_code == 400
    assert StockDisposition.objects.count() == 1


def test_the_quality_manager_resends_a_failed_notice(world, quality_manager):
    notice = Notification.objects.filter(recall=world.recall).first()
    Notification.objects.filter(pk=notice.pk).update(
        status=NotificationStatus.FAILED, last_error="550 mailbox unavailable"
    )
    client = client_for(quality_manager)
    page = client.get(detail(world.recall)).content.decode()
    assert "550 mailbox unavailable" in page and ">Resend<" in page
    no_reason = client.post(detail(world.recall), {"action": "resend", "notice": notice.pk})
    assert no_reason.status_code == 400
    notice.refresh_from_db()
    assert notice.status == NotificationStatus.FAILED
    response = client.post(
        detail(world.recall), {"action": "resend", "notice": notice.pk, "reason": "Mailbox fixed"}
    )
    assert response.status_code == 302
    notice.refresh_from_db()
    assert notice.status != NotificationStatus.FAILED


def test_closing_shows_what_is_still_open_and_is_signed(world, quality_manager):
    client = client_for(quality_manager)
    url = reverse("pages:recall-close", args=[world.recall.pk])
    page = client.get(url).content.decode()
    assert f"{world.a.clinic.name} has not acknowledged {world.recall.reference}" in page
    refused = client.post(url, {"reason": "Done", "password": PASSWORD})
    assert refused.status_code == 409
    assert "The recall was not closed" in refused.content.decode()
    world.recall.refresh_from_db()
    assert world.recall.status == RecallStatus.OPEN
    wrong = client.post(url, {"reason": "Done", "override": "on", "password": "nope"})
    assert wrong.status_code in (400, 403)
    closed = client.post(
        url, {"reason": "Stock destroyed off-system", "override": "on", "password": PASSWORD}
    )
    assert closed.status_code == 302
    world.recall.refresh_from_db()
    assert world.recall.status == RecallStatus.CLOSED and world.recall.close_override


# ---------------------------------------------------------------------------------------------
# The chart


def test_the_chart_is_well_formed_svg_whose_points_match_the_events(world, quality_manager):
    from pages.charts import BOTTOM, HEIGHT, TOP
    from recalls.services import (
        recall_acknowledge,
        recall_contact_attempt_record,
        recall_disposition_record,
    )

    recall_acknowledge(
        recall=world.recall, clinic=world.a.clinic, via="admin", actor=quality_manager
    )
    recall_disposition_record(
        recall=world.recall,
        clinic=world.a.clinic,
        lot=world.lot,
        kind="destroyed",
        quantity=2,
        actor=world.a.ready.administrator,
    )
    recall_disposition_record(
        recall=world.recall,
        clinic=world.b.clinic,
        lot=world.lot,
        kind="returned",
        quantity=2,
        actor=world.b.ready.administrator,
    )
    recall_contact_attempt_record(
        recall=world.recall,
        patient=world.a.ready.patient,
        outcome="unreachable",
        actor=world.a.ready.clinician,
    )
    recall_contact_attempt_record(
        recall=world.recall,
        patient=world.a.ready.patient,
        outcome="reached",
        actor=world.a.ready.clinician,
    )
    page = client_for(quality_manager).get(detail(world.recall)).content.decode()
    start = page.index("<svg")
    svg = ET.fromstring(page[start : page.index("</svg>", start) + len("</svg>")])  # noqa: S314 - our own page
    ns = {"s": "http://www.w3.org/2000/svg"}
    assert svg.get("role") == "img"
    assert svg.find("s:title", ns).text.startswith(f"Progress of recall {world.recall.reference}")
    assert "1 of 2 clinics acknowledged" in svg.find("s:desc", ns).text
    assert not svg.findall(".//s:script", ns)
    series = {g.get("data-series"): g for g in svg.findall("s:g[@class='series']", ns)}
    assert set(series) == {"acknowledged", "contacted", "accounted"}

    def counts(key: str) -> list[int]:
        return [int(m.get("data-count")) for m in series[key].findall("s:g[@class='marker']", ns)]

    assert counts("acknowledged") == [1]
    assert counts("contacted") == [1]  # the unreachable attempt is not a contact
    assert counts("accounted") == [2, 4]
    # The last step of units accounted for stands at 4 of 5 units: 80 % of the plot's height.
    last = series["accounted"].findall("s:g[@class='marker']", ns)[-1]
    plot = HEIGHT - TOP - BOTTOM
    assert float(last.get("data-y")) == pytest.approx(TOP + plot * (1 - 4 / 5), abs=0.1)
    path = series["accounted"].find("s:path", ns).get("d")
    assert path.count(" V ") == 2


# ---------------------------------------------------------------------------------------------
# The patient call list


def test_the_clinic_calls_its_patients_and_the_read_is_recorded(world):
    client = client_for(world.a.ready.clinician)
    url = patients_url(world.recall, world.a.clinic)
    response = client.get(url)
    page = response.content.decode()
    assert response.status_code == 200
    assert world.a.patient_name in page and world.a.patient_phone in page
    assert world.b.patient_name not in page
    read = ContactDataRead.objects.get()
    assert read.via == "page" and read.user == world.a.ready.clinician
    patient = world.a.ready.patient
    option = f'<option value="{patient.pk}">{world.a.patient_name} ({patient.reference})</option>'
    assert option in page  # the patient is picked by the name the list shows
    done = client.post(
        url, {"patient": world.a.ready.patient.pk, "outcome": "reached", "note": "ok"}
    )
    assert done.status_code == 302
    assert PatientContactAttempt.objects.get().patient == world.a.ready.patient


def test_a_patient_not_on_the_list_cannot_be_picked(world):
    client = client_for(world.a.ready.clinician)
    response = client.post(
        patients_url(world.recall, world.a.clinic),
        {"patient": world.b.ready.patient.pk, "outcome": "reached"},
    )
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    assert not PatientContactAttempt.objects.exists()


def test_another_clinic_and_network_roles_never_see_the_call_list(world, quality_manager, auditor):
    url = patients_url(world.recall, world.a.clinic)
    for user in (world.b.ready.clinician, world.b.ready.administrator, quality_manager, auditor):
        response = client_for(user).get(url)
        assert response.status_code == 403
        assert world.a.patient_name not in response.content.decode()
    assert not ContactDataRead.objects.exists()


def test_the_call_list_runs_the_same_queries_for_one_patient_and_for_four(quality_manager):
    ready = clinic_ready()
    one_lot, four_lot = released_lot(), released_lot()
    receive(ready, one_lot, 3)
    receive(ready, four_lot, 6)
    treat(ready, one_lot, 1)
    treat(ready, four_lot, 1)
    for _ in range(3):
        treat(ready, four_lot, 1, patient=PatientFactory(clinic=ready.clinic))
    one = open_recall(quality_manager, one_lot)
    four = open_recall(quality_manager, four_lot)
    client = client_for(ready.clinician)
    counts = []
    for recall in (one, four):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(patients_url(recall, ready.clinic)).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_a_closed_recall_offers_no_write_control_and_refuses_a_write(world, quality_manager):
    recall_close(
        recall=world.recall, actor=quality_manager, password=PASSWORD, reason="Done", override=True
    )
    client = client_for(world.a.ready.administrator)
    page = client.get(detail(world.recall)).content.decode()
    assert "Acknowledge for" not in page and "Record returned or destroyed units" not in page
    response = client.post(
        detail(world.recall), {"action": "acknowledge", "clinic": world.a.clinic.pk}
    )
    assert response.status_code == 409
    assert "takes no more changes" in response.content.decode()
    assert not Acknowledgement.objects.exists()
    closing = client_for(quality_manager).get(reverse("pages:recall-close", args=[world.recall.pk]))
    assert closing.status_code == 302
