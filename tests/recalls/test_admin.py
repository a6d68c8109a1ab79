"""The recalls admin: a thin client of the recall services and selectors. Who sees which recall and
which clinic's rows, opening a recall with every refusal shown and nothing written, the follow-up
pages (widen, acknowledge, disposition, contact attempt, close), the evidence downloads, the fixed
query counts of the list and of a recall's page, and webhook secrets that are never shown back."""

from __future__ import annotations

import base64
import csv
import io
import logging
import os
import re

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from lots.models import LotStatus
from recalls.models import (
    Acknowledgement,
    AcknowledgementVia,
    ExpiryWarning,
    ExpiryWarningKind,
    Notification,
    NotificationStatus,
    PatientContactAttempt,
    Recall,
    RecallExposure,
    RecallLot,
    RecallScope,
    RecallStatus,
    RecallStock,
    StockDisposition,
    WebhookEndpoint,
)
from recalls.services import (
    RecallScopeRequest,
    recall_acknowledge,
    recall_contact_attempt_record,
    recall_disposition_record,
    recall_open,
    recall_widen,
)
from recalls.services.closing import recall_close_problems
from stock.models import StockBalance, StockState
from tests.admin_helpers import admin_client as browser
from tests.factories import (
    PASSWORD,
    ClinicContactFactory,
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
from tests.recalls.scenario import all_row_counts, build_world, open_recall

pytestmark = pytest.mark.django_db

READ_ONLY_MODELS = (
    "notification",
    "acknowledgement",
    "stockdisposition",
    "patientcontactattempt",
    "expirywarning",
)


def _url(model: str, view: str, *args) -> str:
    return reverse(f"admin:recalls_{model}_{view}", args=args)


def recall_url(view: str, recall: Recall, *args) -> str:
    return _url("recall", view, recall.pk, *args)


def secret(size: int = 32) -> str:
    return "whsec_" + base64.b64encode(os.urandom(size)).decode()


def form_errors(response) -> dict:
    return {name: " ".join(errors) for name, errors in response.context["form"].errors.items()}


def open_form(lots, **fields) -> dict:
    return {
        "recall_class": "II",
        "depth": "patient",
        "reason": "Mycoplasma detected in retained sample",
        "hazard": "Infection at the injection site",
        "instructions": "Stop use; keep the vials frozen.",
        "lots": [lot.pk for lot in lots],
        "password": PASSWORD,
        **fields,
    }


@pytest.fixture
def world(quality_manager):
    return build_world(quality_manager)


@pytest.fixture
def recall(world):
    return open_recall(world)


@pytest.fixture
def qm(world):
    return browser(world.quality_manager)


@pytest.fixture
def contact_reads():
    """Messages logged on traceability.contact_access (without pytest's logging plugin)."""
    messages: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    logger = logging.getLogger("traceability.contact_access")
    handler, level = Collect(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield messages
    logger.removeHandler(handler)
    logger.setLevel(level)


# ---------------------------------------------------------------------------------------------
# Who sees what


@pytest.mark.parametrize("role", ["quality_manager", "auditor"])
def test_every_recall_page_answers_for_quality_manager_and_auditor(request, world, recall, role):
    client = browser(request.getfixturevalue(role))
    recall_acknowledge(
        recall=recall,
        clinic=world.a.clinic,
        via=AcknowledgementVia.ADMIN,
        actor=world.a.administrator,
    )
    listing = client.get(_url("recall", "changelist"))
    assert listing.status_code == 200
    assert list(listing.context["cl"].result_list) == [recall]
    assert "1 of 2 (50 %)" in listing.content.decode()

    detail = client.get(recall_url("change", recall))
    assert detail.status_code == 200
    content = detail.content.decode()
    for text in (world.a.clinic.name, world.b.clinic.name, world.lot.lot_number, "Endotoxin"):
        assert text in content, text
    assert detail.context["effectiveness"].clinics_acknowledged == 1
    assert detail.context["exposure_count"] == 3
    for view in ("exposures_csv", "notices_csv", "report_pdf", "audit_trail"):
        assert recall_url(view, recall) in content, view
    assert client.get(recall_url("audit_trail", recall)).status_code == 200
    for model in (*READ_ONLY_MODELS, "webhookendpoint"):
        assert client.get(_url(model, "changelist")).status_code == 200, model
    acknowledgement = Acknowledgement.objects.get()
    assert client.get(_url("acknowledgement", "change", acknowledgement.pk)).status_code == 200
    notice = Notification.objects.filter(recall=recall).first()
    assert client.get(_url("notification", "change", notice.pk)).status_code == 200


def test_the_quality_manager_is_offered_every_follow_up_and_the_auditor_none(
    world, recall, auditor
):
    expected = {"widen", "acknowledge", "disposition", "close"}
    qm_page = browser(world.quality_manager).get(recall_url("change", recall)).content.decode()
    auditor_page = browser(auditor).get(recall_url("change", recall)).content.decode()
    for view in expected:
        assert recall_url(view, recall) in qm_page, view
        assert recall_url(view, recall) not in auditor_page, view
    assert (
        _url("recall", "add")
        in browser(world.quality_manager).get(_url("recall", "changelist")).content.decode()
    )
    assert (
        _url("recall", "add")
        not in browser(auditor).get(_url("recall", "changelist")).content.decode()
    )


def test_the_auditor_writes_nothing_anywhere(world, recall, auditor):
    client = browser(auditor)
    before = all_row_counts()
    patients = recall_url("patients", recall, world.a.clinic.pk)
    pages = {
        _url("recall", "add"): open_form([world.lot]),
        recall_url("widen", recall): {"lots": [world.lot.pk], "reason": "x", "password": PASSWORD},
        recall_url("acknowledge", recall): {"clinic": world.a.clinic.pk},
        recall_url("disposition", recall): {
            "clinic": world.a.clinic.pk,
            "lot": world.lot.pk,
            "kind": "destroyed",
            "quantity": 1,
        },
        recall_url("close", recall): {"reason": "x", "override": "on", "password": PASSWORD},
        _url("webhookendpoint", "add"): {"name": "x", "url": "https://x.test", "secret": secret()},
    }
    for url, data in pages.items():
        assert client.get(url).status_code == 403, url
        assert client.post(url, data).status_code == 403, url
    assert client.post(patients, {"patient": world.a1.pk, "outcome": "reached"}).status_code == 403
    assert client.get(patients).context["form"] is None
    assert client.post(recall_url("change", recall), {}).status_code == 403
    assert client.post(recall_url("delete", recall), {"post": "yes"}).status_code == 403
    assert all_row_counts() == before


def test_nobody_deletes_or_adds_the_records_a_recall_leaves(world, recall, qm):
    notice = Notification.objects.filter(recall=recall).first()
    for model in READ_ONLY_MODELS:
        assert qm.get(_url(model, "add")).status_code == 403, model
    assert qm.post(_url("notification", "delete", notice.pk), {"post": "yes"}).status_code == 403
    assert qm.post(recall_url("delete", recall), {"post": "yes"}).status_code == 403
    assert qm.post(recall_url("change", recall), {"reason": "edited"}).status_code == 403
    assert Recall.objects.get().reason == recall.reason


def test_a_staff_user_without_a_role_is_refused(world, recall):
    client = browser(UserFactory())
    assert client.get(_url("recall", "changelist")).status_code == 403
    for view in ("exposures_csv", "report_pdf", "acknowledge"):
        assert client.get(recall_url(view, recall)).status_code == 403, view


def test_clinic_staff_see_their_own_clinic_only(world, recall):
    client = browser(world.a.administrator)
    assert list(client.get(_url("recall", "changelist")).context["cl"].result_list) == [recall]
    detail = client.get(recall_url("change", recall))
    assert detail.status_code == 200
    assert [c["progress"].clinic_id for c in detail.context["clinics"]] == [world.a.clinic.pk]
    assert [item["row"].clinic_id for item in detail.context["stock"]] == [world.a.clinic.pk]
    assert detail.context["exposure_count"] == 2
    assert world.b.clinic.name not in detail.content.decode()
    notices = client.get(_url("notification", "changelist")).context["cl"].result_list
    assert {notice.clinic_id for notice in notices} == {world.a.clinic.pk}
    form = client.get(recall_url("acknowledge", recall)).context["form"]
    assert list(form.fields["clinic"].queryset) == [world.a.clinic]
    for view in ("widen", "close"):
        assert client.get(recall_url(view, recall)).status_code == 403, view
    assert client.get(_url("recall", "add")).status_code == 403


def test_clinic_staff_of_a_clinic_the_recall_did_not_reach_cannot_see_it(world, recall):
    elsewhere = clinic_ready()
    for user in (elsewhere.administrator, elsewhere.clinician):
        client = browser(user)
        assert list(client.get(_url("recall", "changelist")).context["cl"].result_list) == []
        assert client.get(recall_url("change", recall)).status_code == 302  # "does not exist"
        for view in ("acknowledge", "disposition", "exposures_csv", "notices_csv", "report_pdf"):
            assert client.get(recall_url(view, recall)).status_code == 404, view
        assert client.get(recall_url("patients", recall, world.a.clinic.pk)).status_code == 404
        assert client.get(recall_url("audit_trail", recall)).status_code == 403
        for model in READ_ONLY_MODELS:
            assert list(client.get(_url(model, "changelist")).context["cl"].result_list) == [], (
                model
            )


def test_clinic_staff_never_see_another_clinics_patients(world, recall, contact_reads):
    client = browser(world.b.administrator)
    assert client.get(recall_url("patients", recall, world.a.clinic.pk)).status_code == 403
    refused = client.post(
        recall_url("patients", recall, world.a.clinic.pk),
        {"patient": world.a1.pk, "outcome": "reached"},
    )
    assert refused.status_code == 403
    own = client.get(recall_url("patients", recall, world.b.clinic.pk))
    content = own.content.decode()
    assert "Bella Berg" in content and world.b1.reference in content
    for text in ("Alice Anders", "Arthur Ames", world.a1.reference, world.a2.reference):
        assert text not in content
        assert text not in client.get(recall_url("change", recall)).content.decode()
    assert not PatientContactAttempt.objects.exists()
    assert any(f"patient={world.b1.pk} " in message for message in contact_reads)


@pytest.mark.parametrize("role", ["quality_manager", "auditor"])
def test_network_roles_see_patient_references_never_contact_details(
    request, world, recall, role, contact_reads
):
    client = browser(request.getfixturevalue(role))
    response = client.get(recall_url("patients", recall, world.a.clinic.pk))
    assert response.status_code == 200
    content = response.content.decode()
    assert world.a1.reference in content and world.a2.reference in content
    for text in ("Alice Anders", "Arthur Ames", "555 0100", "patient.example"):
        assert text not in content
    assert contact_reads == []


# ---------------------------------------------------------------------------------------------
# Opening


@pytest.mark.parametrize("is_drill", [False, True])
def test_opening_through_the_admin_does_what_the_service_does(world, qm, is_drill):
    data = open_form([world.lot], **({"is_drill": "on"} if is_drill else {}))
    response = qm.post(_url("recall", "add"), data)

    recall = Recall.objects.get()
    assert response.status_code == 302
    assert response.url == recall_url("change", recall)
    assert recall.reference.startswith("DRILL-" if is_drill else "RC-")
    assert (recall.recall_class, recall.depth, recall.is_drill) == ("II", "patient", is_drill)
    assert recall.opened_by == world.quality_manager
    assert recall.reason == "Mycoplasma detected in retained sample"
    assert len(recall.opened_signature_digest) == 64
    scope = RecallScope.objects.get(recall=recall)
    assert (scope.round, list(scope.lots.all())) == (1, [world.lot])
    assert RecallExposure.objects.filter(recall=recall).count() == 3
    held = dict(RecallStock.objects.filter(recall=recall).values_list("clinic_id", "quantity_held"))
    assert held == {world.a.clinic.pk: 2, world.b.clinic.pk: 3}
    notified = set(Notification.objects.filter(recall=recall).values_list("clinic_id", flat=True))
    assert notified == {world.a.clinic.pk, world.b.clinic.pk}
    world.lot.refresh_from_db()
    blocked = StockBalance.objects.filter(lot=world.lot, state=StockState.BLOCKED)
    if is_drill:
        assert world.lot.status == LotStatus.RELEASED
        assert not blocked.exists()
    else:
        assert world.lot.status == LotStatus.RECALLED
        assert sum(balance.quantity for balance in blocked) == 5
    assert f"Recall {recall.reference} opened" in qm.get(response.url).content.decode()


def test_opening_by_product_and_manufacture_dates(world, qm):
    lot = world.lot
    data = open_form(
        [],
        product=lot.product_id,
        manufactured_from=lot.manufactured_on.isoformat(),
        manufactured_to=lot.manufactured_on.isoformat(),
    )
    assert qm.post(_url("recall", "add"), data).status_code == 302
    scope = RecallScope.objects.get()
    assert (scope.product, scope.manufactured_from) == (lot.product, lot.manufactured_on)
    assert list(RecallLot.objects.values_list("lot_id", flat=True)) == [lot.pk]


@pytest.mark.parametrize(
    ("fields", "field", "expected"),
    [
        ({"password": "not my password"}, "password", "(signature_password_invalid)"),
        ({"lots": []}, "lots", "(trace_scope_missing)"),
        ({"lots": [], "product": "empty"}, "lots", "(recall_scope_empty)"),
        (
            {"lots": [], "product": "lot", "manufactured_from": "2030-01-02"},
            "manufactured_from",
            "(scope_dates_reversed)",
        ),
        ({"reason": "   "}, "reason", "This field is required."),
    ],
)
def test_a_refused_opening_shows_the_problem_on_its_field_and_writes_nothing(
    world, qm, fields, field, expected
):
    if fields.get("product") == "empty":
        fields["product"] = ProductFactory().pk
    elif fields.get("product") == "lot":
        fields.update(product=world.lot.product_id, manufactured_to="2030-01-01")
    before = all_row_counts()
    response = qm.post(_url("recall", "add"), {**open_form([world.lot]), **fields})

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == [field]
    assert expected in " ".join(errors[field])
    assert expected in response.content.decode()
    assert all_row_counts() == before
    world.lot.refresh_from_db()
    assert world.lot.status == LotStatus.RELEASED


def test_opening_a_lot_already_in_an_open_recall_names_it(world, recall, qm):
    before = all_row_counts()
    response = qm.post(_url("recall", "add"), open_form([world.lot]))
    errors = response.context["adminform"].form.errors
    assert "lot_in_open_recall" in " ".join(errors["lots"])
    assert recall.reference in " ".join(errors["lots"])
    assert all_row_counts() == before


@pytest.fixture
def bulk():
    """200 lots of one product, BULK-000 to BULK-199: more than any page offers at once."""
    product = ProductFactory(name="Bulk serum")
    creator = UserFactory()
    return [
        LotFactory(product=product, lot_number=f"BULK-{n:03d}", created_by=creator)
        for n in range(200)
    ]


def test_the_opening_form_renders_only_the_chosen_lots_and_donor(world, qm, bulk):
    donor = DonorFactory(code="DN-ADMIN-7")
    DonorFactory(code="DN-ADMIN-8")

    page = qm.get(_url("recall", "add")).content.decode()
    assert "BULK-" not in page and "DN-ADMIN-" not in page
    autocomplete = reverse("admin:autocomplete")
    for field in ("lots", "donor"):
        assert re.search(
            rf'data-ajax--url="{autocomplete}"[^>]*data-app-label="recalls" '
            rf'data-model-name="recallscope" data-field-name="{field}"',
            page,
        ), field

    refused = qm.post(
        _url("recall", "add"), open_form([bulk[5]], donor=donor.pk, password="not my password")
    )
    content = refused.content.decode()
    assert "signature_password_invalid" in content
    assert set(re.findall(r"BULK-\d{3}", content)) == {"BULK-005"}
    assert "DN-ADMIN-7" in content and "DN-ADMIN-8" not in content
    assert not Recall.objects.exists()


def _autocomplete(client, field: str, term: str) -> dict:
    query = {"app_label": "recalls", "model_name": "recallscope", "field_name": field, "term": term}
    response = client.get(reverse("admin:autocomplete"), query)
    assert response.status_code == 200
    return response.json()


def test_the_opening_form_finds_lots_and_donors_twenty_at_a_time(world, qm, bulk):
    donor = DonorFactory(code="DN-ADMIN-7")

    narrow = _autocomplete(qm, "lots", "k-19")
    assert {row["id"] for row in narrow["results"]} == {str(lot.pk) for lot in bulk[190:]}
    assert narrow["pagination"] == {"more": False}
    broad = _autocomplete(qm, "lots", "bulk")
    assert len(broad["results"]) == 20 and broad["pagination"] == {"more": True}
    assert _autocomplete(qm, "donor", "admin-7")["results"] == [
        {"id": str(donor.pk), "text": "DN-ADMIN-7"}
    ]


@pytest.mark.parametrize("role", ["auditor", "clinician", "administrator"])
def test_only_a_quality_manager_opens_a_recall(request, world, role):
    user = request.getfixturevalue("auditor") if role == "auditor" else getattr(world.a, role)
    client = browser(user)
    assert client.get(_url("recall", "add")).status_code == 403
    assert client.post(_url("recall", "add"), open_form([world.lot])).status_code == 403
    assert not Recall.objects.exists()


# ---------------------------------------------------------------------------------------------
# The change list


def count_queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200, url
    return len(queries)


@pytest.mark.parametrize("who", ["quality_manager", "administrator_of_a"])
def test_the_change_list_runs_a_fixed_number_of_queries(world, recall, who):
    user = world.quality_manager if who == "quality_manager" else world.a.administrator
    client = browser(user)
    url = _url("recall", "changelist")
    one = count_queries(client, url)
    for _ in range(4):
        lot = released_lot()
        receive(world.a, lot, 3)
        receive(world.b, lot, 2)
        more = open_recall(world, lots=[lot], recall_class="III")
        recall_acknowledge(
            recall=more,
            clinic=world.a.clinic,
            via=AcknowledgementVia.ADMIN,
            actor=world.a.administrator,
        )
    response = client.get(url)
    assert len(response.context["cl"].result_list) == 5
    # Network roles count both clinics; clinic staff their own (as the effectiveness selector).
    done, first = (
        ("1 of 2 (50 %)", "0 of 2 (0 %)")
        if who == "quality_manager"
        else ("1 of 1 (100 %)", "0 of 1 (0 %)")
    )
    content = response.content.decode()
    assert (content.count(done), content.count(first)) == (4, 1)
    assert count_queries(client, url) == one


def count_page_queries(client: Client, url: str) -> int:
    # The admin's change form looks the content type up once per process; start each page cold.
    ContentType.objects.clear_cache()
    return count_queries(client, url)


def recall_of(quality_manager, lots) -> Recall:
    return recall_open(
        actor=quality_manager,
        password=PASSWORD,
        recall_class="I",
        depth="patient",
        reason="Endotoxin above specification in retained sample",
        hazard="Fever, sepsis",
        scope=RecallScopeRequest(lot_ids=[lot.pk for lot in lots]),
    )


@pytest.mark.parametrize("who", ["quality_manager", "administrator"])
def test_the_recall_page_runs_a_fixed_number_of_queries(quality_manager, who):
    # Given a recall that reached one clinic through one exposure ...
    WebhookEndpoint.objects.create(name="ERP", url="https://erp.example.test", secret=secret())
    first = clinic_ready()
    ClinicContactFactory(clinic=first.clinic)
    lot = released_lot()
    receive(first, lot, 2)
    treat(first, lot, 1)
    small = recall_of(quality_manager, [lot])

    # ... and one that reached four clinics in two rounds, with follow-up at each clinic.
    clinics = [first, *(clinic_ready() for _ in range(3))]
    lots = [released_lot() for _ in range(3)]
    for ready in clinics[1:]:
        ClinicContactFactory(clinic=ready.clinic)
    for ready in clinics:
        second_patient = PatientFactory(clinic=ready.clinic)
        for each in lots:
            receive(ready, each, 6)
            treat(ready, each, 1)
            treat(ready, each, 2, patient=second_patient)
    large = recall_of(quality_manager, lots[:2])
    recall_widen(
        actor=quality_manager,
        password=PASSWORD,
        recall=large,
        scope=RecallScopeRequest(lot_ids=[lots[2].pk]),
        reason="Same donor",
    )
    for ready in clinics[:2]:
        recall_acknowledge(
            recall=large, clinic=ready.clinic, via=AcknowledgementVia.ADMIN, actor=quality_manager
        )
        recall_disposition_record(
            recall=large,
            clinic=ready.clinic,
            lot=lots[0],
            kind="destroyed",
            quantity=1,
            actor=quality_manager,
        )
        recall_contact_attempt_record(
            recall=large, patient=ready.patient, outcome="reached", actor=ready.clinician
        )

    # When the user opens each recall's page, then both run the same number of queries.
    client = browser(quality_manager if who == "quality_manager" else first.administrator)
    one = count_page_queries(client, recall_url("change", small))
    response = client.get(recall_url("change", large))
    shown = 4 if who == "quality_manager" else 1
    assert len(response.context["clinics"]) == shown
    assert response.context["exposure_count"] == shown * 6
    assert len(response.context["stock"]) == shown * 3
    assert count_page_queries(client, recall_url("change", large)) == one


def test_the_change_list_filters_by_status_class_and_drill(world, recall, qm):
    lot = released_lot()
    receive(world.a, lot, 1)
    drill = open_recall(world, lots=[lot], is_drill=True, recall_class="III")
    url = _url("recall", "changelist")
    assert list(qm.get(url, {"is_drill__exact": "1"}).context["cl"].result_list) == [drill]
    assert list(qm.get(url, {"recall_class__exact": "I"}).context["cl"].result_list) == [recall]
    assert list(qm.get(url, {"status__exact": "closed"}).context["cl"].result_list) == []


# ---------------------------------------------------------------------------------------------
# Following a recall up


def test_widening_through_the_admin_adds_the_new_lot(world, recall, qm):
    lot = released_lot(created_by=world.quality_manager)
    receive(world.b, lot, 2)
    url = recall_url("widen", recall)
    assert qm.get(url).status_code == 200
    before = all_row_counts()
    wrong = qm.post(url, {"lots": [lot.pk], "reason": "Same run", "password": "wrong"})
    assert "signature_password_invalid" in form_errors(wrong)["password"]
    assert all_row_counts() == before

    response = qm.post(url, {"lots": [lot.pk], "reason": "Same run", "password": PASSWORD})
    assert response.status_code == 302
    assert "1 lot(s) added in round 2" in qm.get(response.url).content.decode()
    assert list(RecallScope.objects.filter(recall=recall).values_list("round", flat=True)) == [1, 2]
    assert RecallLot.objects.get(recall=recall, lot=lot).round == 2
    assert RecallStock.objects.get(recall=recall, lot=lot).quantity_held == 2

    again = qm.post(url, {"lots": [lot.pk], "reason": "Same run", "password": PASSWORD})
    assert "recall_scope_nothing_new" in form_errors(again)["lots"]


def test_a_clinic_administrator_acknowledges_for_the_own_clinic(world, recall):
    client = browser(world.a.administrator)
    url = recall_url("acknowledge", recall)
    page = client.get(url, {"clinic": world.a.clinic.pk})
    assert page.context["form"].initial["clinic"] == str(world.a.clinic.pk)
    other = client.post(url, {"clinic": world.b.clinic.pk})
    assert "clinic" in form_errors(other)
    assert not Acknowledgement.objects.exists()

    response = client.post(url, {"clinic": world.a.clinic.pk})
    assert response.status_code == 302
    acknowledgement = Acknowledgement.objects.get()
    assert acknowledgement.via == AcknowledgementVia.ADMIN
    assert acknowledgement.acknowledged_by == world.a.administrator
    assert acknowledgement.acknowledged_by_name == world.a.administrator.get_full_name()

    twice = client.post(url, {"clinic": world.a.clinic.pk})
    assert "recall_already_acknowledged" in form_errors(twice)["clinic"]
    assert Acknowledgement.objects.count() == 1
    assert browser(world.a.clinician).get(url).status_code == 403


def test_the_quality_manager_acknowledges_on_behalf_of_every_clinic(world, recall, qm):
    url = recall_url("acknowledge", recall)
    for ready, name in ((world.a, "Dr. Ames"), (world.b, "Dr. Berg")):
        assert qm.post(url, {"clinic": ready.clinic.pk, "name": name}).status_code == 302
    names = set(Acknowledgement.objects.values_list("acknowledged_by_name", flat=True))
    assert names == {"Dr. Ames", "Dr. Berg"}
    recall.refresh_from_db()
    assert recall.fully_acknowledged_at is not None


def test_a_disposition_is_recorded_through_the_service(world, recall):
    client = browser(world.a.administrator)
    url = recall_url("disposition", recall)
    detail = client.get(recall_url("change", recall)).content.decode()
    assert f"{url}?clinic={world.a.clinic.pk}&amp;lot={world.lot.pk}" in detail
    data = {"clinic": world.a.clinic.pk, "lot": world.lot.pk, "kind": "destroyed"}

    too_many = client.post(url, {**data, "quantity": 3})
    assert "disposition_exceeds_held" in form_errors(too_many)["quantity"]
    assert not StockDisposition.objects.exists()

    response = client.post(url, {**data, "quantity": 2})
    assert response.status_code == 302
    disposition = StockDisposition.objects.get()
    assert (disposition.clinic, disposition.quantity, disposition.recorded_by) == (
        world.a.clinic,
        2,
        world.a.administrator,
    )
    blocked = StockBalance.objects.get(clinic=world.a.clinic, lot=world.lot, state="blocked")
    assert blocked.quantity == 0
    assert browser(world.a.clinician).post(url, {**data, "quantity": 1}).status_code == 403
    other_clinic = client.post(url, {**data, "clinic": world.b.clinic.pk, "quantity": 1})
    assert "clinic" in form_errors(other_clinic)
    assert StockDisposition.objects.count() == 1


def test_a_clinician_records_a_contact_attempt_and_sees_the_own_patients_details(
    world, recall, contact_reads
):
    client = browser(world.a.clinician)
    url = recall_url("patients", recall, world.a.clinic.pk)
    page = client.get(url)
    content = page.content.decode()
    assert "Alice Anders" in content and "Arthur Ames" in content
    assert "no-store" in page["Cache-Control"]
    assert any(
        f"user={world.a.clinician.pk}" in message and recall.reference in message
        for message in contact_reads
    )
    patients = page.context["form"].fields["patient"].queryset
    assert set(patients) == {world.a1, world.a2}

    not_exposed_here = client.post(url, {"patient": world.b1.pk, "outcome": "reached"})
    assert "patient" in form_errors(not_exposed_here)
    response = client.post(url, {"patient": world.a1.pk, "outcome": "reached", "note": "Called"})
    assert response.status_code == 302
    attempt = PatientContactAttempt.objects.get()
    assert (attempt.patient, attempt.outcome, attempt.attempted_by) == (
        world.a1,
        "reached",
        world.a.clinician,
    )
    listed = client.get(url).context["patients"]
    assert {p.pk: p.contacted for p in listed} == {world.a1.pk: True, world.a2.pk: False}
    attempts = _url("patientcontactattempt", "changelist")
    assert attempts in client.get(reverse("admin:index")).content.decode()

    # Network roles reach the attempts from the recall's page, filtered to the recall.
    qm = browser(world.quality_manager)
    filtered = f"{attempts}?recall__id__exact={recall.pk}"
    assert filtered in qm.get(recall_url("change", recall)).content.decode()
    assert list(qm.get(filtered).context["cl"].result_list) == [attempt]


def test_no_contact_attempt_is_taken_once_the_recall_is_closed(world, recall):
    client = browser(world.a.clinician)
    url = recall_url("patients", recall, world.a.clinic.pk)
    form = client.get(url).context["form"]
    assert form is not None
    Recall.objects.filter(pk=recall.pk).update(
        status=RecallStatus.CLOSED, closed_at=timezone.now(), closed_by=world.quality_manager
    )
    assert client.get(url).context["form"] is None
    assert client.post(url, {"patient": world.a1.pk, "outcome": "reached"}).status_code == 403
    assert not PatientContactAttempt.objects.exists()


def test_patients_of_a_clinic_level_recall_are_listed_without_contact_details(world):
    recall = open_recall(world, depth="clinic")
    client = browser(world.a.administrator)
    page = client.get(recall_url("patients", recall, world.a.clinic.pk))
    assert page.context["form"] is None
    assert world.a1.reference in page.content.decode()
    assert "Alice Anders" not in page.content.decode()
    refused = client.post(
        recall_url("patients", recall, world.a.clinic.pk),
        {"patient": world.a1.pk, "outcome": "reached"},
    )
    assert refused.status_code == 403


def test_closing_lists_what_is_open_refuses_without_override_and_closes_with_it(world, recall, qm):
    url = recall_url("close", recall)
    page = qm.get(url)
    open_items = page.context["open_items"]
    assert {problem.code for problem in open_items} == {
        "clinic_not_acknowledged",
        "stock_not_accounted",
    }
    assert world.a.clinic.name in page.content.decode()

    refused = qm.post(url, {"reason": "Done", "password": PASSWORD})
    assert refused.status_code == 200
    errors = refused.context["form"].non_field_errors()
    assert len(errors) == len(recall_close_problems(recall)) == 4
    assert "clinic_not_acknowledged" in " ".join(errors)
    recall.refresh_from_db()
    assert recall.status == RecallStatus.OPEN

    wrong = qm.post(url, {"reason": "Done", "override": "on", "password": "nope"})
    assert "signature_password_invalid" in form_errors(wrong)["password"]

    response = qm.post(
        url, {"reason": "Stock destroyed on site", "override": "on", "password": PASSWORD}
    )
    assert response.status_code == 302
    recall.refresh_from_db()
    assert (recall.status, recall.close_override, recall.closed_by) == (
        RecallStatus.CLOSED,
        True,
        world.quality_manager,
    )
    assert not RecallLot.objects.filter(recall=recall, active=True).exists()
    assert recall_url("widen", recall) not in qm.get(recall_url("change", recall)).content.decode()


def test_a_recall_with_everything_done_closes_without_override(world, recall, qm):
    for ready in (world.a, world.b):
        recall_acknowledge(
            recall=recall,
            clinic=ready.clinic,
            via=AcknowledgementVia.ADMIN,
            actor=ready.administrator,
        )
    disposition = recall_url("disposition", recall)
    for ready, held in ((world.a, 2), (world.b, 3)):
        data = {
            "clinic": ready.clinic.pk,
            "lot": world.lot.pk,
            "kind": "returned",
            "quantity": held,
        }
        assert qm.post(disposition, data).status_code == 302
    assert qm.get(recall_url("close", recall)).context["open_items"] == []
    response = qm.post(recall_url("close", recall), {"reason": "All done", "password": PASSWORD})
    assert response.status_code == 302
    recall.refresh_from_db()
    assert (recall.status, recall.close_override) == (RecallStatus.CLOSED, False)


def test_follow_up_forms_need_the_csrf_token(world, recall):
    client = browser(world.a.administrator, enforce_csrf_checks=True)
    response = client.post(recall_url("acknowledge", recall), {"clinic": world.a.clinic.pk})
    assert response.status_code == 403
    assert not Acknowledgement.objects.exists()
    page = client.get(recall_url("acknowledge", recall)).content.decode()
    assert 'name="csrfmiddlewaretoken"' in page


# ---------------------------------------------------------------------------------------------
# Evidence and audit trail


def csv_rows(response) -> list[dict]:
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def test_the_evidence_downloads_are_scoped_like_the_api(world, recall, auditor):
    network = browser(auditor)
    rows = csv_rows(network.get(recall_url("exposures_csv", recall)))
    assert len(rows) == 3
    assert {row["clinic_id"] for row in rows} == {str(world.a.clinic.pk), str(world.b.clinic.pk)}
    notices = network.get(recall_url("notices_csv", recall))
    assert notices["Content-Type"].startswith("text/csv")
    assert len(csv_rows(notices)) == Notification.objects.filter(recall=recall).count()

    clinic = browser(world.b.clinician)
    rows = csv_rows(clinic.get(recall_url("exposures_csv", recall)))
    assert [row["patient_reference"] for row in rows] == [world.b1.reference]
    assert {
        row["clinic_id"] for row in csv_rows(clinic.get(recall_url("notices_csv", recall)))
    } == {str(world.b.clinic.pk)}
    for client in (network, clinic):
        pdf = client.get(recall_url("report_pdf", recall))
        assert pdf.status_code == 200
        assert pdf["Content-Type"] == "application/pdf"
        assert pdf.content.startswith(b"%PDF")


def test_the_recall_audit_trail_hides_other_clinics_follow_up_from_clinic_staff(world, recall, qm):
    recall_acknowledge(
        recall=recall,
        clinic=world.a.clinic,
        via=AcknowledgementVia.ADMIN,
        actor=world.a.administrator,
    )
    trail = recall_url("audit_trail", recall) + "?related=1"
    label = Acknowledgement._meta.label
    assert label in qm.get(trail).content.decode()
    assert label not in browser(world.b.administrator).get(trail).content.decode()


# ---------------------------------------------------------------------------------------------
# Read-only lists


def test_failed_notices_show_their_last_error_and_filter_by_status(world, recall, qm):
    failed = Notification.objects.filter(recall=recall, clinic=world.b.clinic).first()
    Notification.objects.filter(pk=failed.pk).update(
        status=NotificationStatus.FAILED, attempts=5, last_error="550 mailbox unavailable"
    )
    url = _url("notification", "changelist")
    listed = qm.get(url, {"status__exact": "failed"})
    assert list(listed.context["cl"].result_list) == [failed]
    assert "550 mailbox unavailable" in listed.content.decode()
    detail = qm.get(recall_url("change", recall)).content.decode()
    assert "550 mailbox unavailable" in detail
    assert (
        "550 mailbox unavailable"
        not in browser(world.a.administrator).get(recall_url("change", recall)).content.decode()
    )


def test_expiry_warnings_of_other_clinics_stay_hidden(world, qm):
    mine = ExpiryWarning.objects.create(
        kind=ExpiryWarningKind.STOCK,
        clinic=world.a.clinic,
        lot=world.lot,
        threshold_days=30,
        claimed_at=timezone.now(),
    )
    theirs = ExpiryWarning.objects.create(
        kind=ExpiryWarningKind.STOCK,
        clinic=world.b.clinic,
        lot=world.lot,
        threshold_days=30,
        claimed_at=timezone.now(),
    )
    url = _url("expirywarning", "changelist")
    assert set(qm.get(url).context["cl"].result_list) == {mine, theirs}
    listed = browser(world.a.clinician).get(url).context["cl"].result_list
    assert list(listed) == [mine]


# ---------------------------------------------------------------------------------------------
# Webhook endpoints


def test_a_webhook_secret_is_never_shown_back_and_kept_on_a_blank_edit(world, qm, auditor):
    original = secret()
    response = qm.post(
        _url("webhookendpoint", "add"),
        {
            "name": "ERP",
            "url": "https://erp.example.test/hooks",
            "secret": original,
            "active": "on",
        },
    )
    assert response.status_code == 302
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret == original
    change = _url("webhookendpoint", "change", endpoint.pk)
    for client in (qm, browser(auditor)):
        for url in (_url("webhookendpoint", "changelist"), change):
            content = client.get(url).content.decode()
            assert original not in content, url
            assert original[6:] not in content, url
            assert f"whsec_…{original[-4:]}" in content, url

    kept = qm.post(
        change,
        {"name": "ERP v2", "url": endpoint.url, "active": "on", "secret": "", "reason": "Renamed"},
    )
    assert kept.status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.name, endpoint.secret) == ("ERP v2", original)

    replacement = secret(48)
    qm.post(
        change,
        {
            "name": "ERP v2",
            "url": endpoint.url,
            "active": "on",
            "secret": replacement,
            "reason": "Rotated",
        },
    )
    endpoint.refresh_from_db()
    assert endpoint.secret == replacement
    trail = qm.get(_url("webhookendpoint", "audit_trail", endpoint.pk)).content.decode()
    assert "Rotated" in trail and f"whsec_…{replacement[-4:]}" in trail
    assert original[6:] not in trail and replacement[6:] not in trail


def test_a_clinic_webhook_secret_stays_masked_in_the_clinics_audit_trail(world, qm):
    value = secret()
    qm.post(
        _url("webhookendpoint", "add"),
        {
            "name": "Clinic A PMS",
            "url": "https://pms.example.test",
            "secret": value,
            "clinic": world.a.clinic.pk,
            "active": "on",
        },
    )
    endpoint = WebhookEndpoint.objects.get(clinic=world.a.clinic)
    trail = reverse("admin:providers_clinic_audit_trail", args=[world.a.clinic.pk])
    for client in (qm, browser(world.a.administrator)):
        content = client.get(trail + "?related=1").content.decode()
        assert f"recalls.WebhookEndpoint #{endpoint.pk}" in content
        assert value[6:] not in content
        assert f"whsec_…{value[-4:]}" in content


@pytest.mark.parametrize(
    "value",
    [
        "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0",  # no whsec_ prefix
        "whsec_not base64 at all!",
        "whsec_" + base64.b64encode(b"short").decode(),
        "whsec_" + base64.b64encode(os.urandom(70)).decode()[:90],
    ],
)
def test_a_malformed_webhook_secret_is_refused_with_a_clear_error(world, qm, value):
    response = qm.post(
        _url("webhookendpoint", "add"),
        {"name": "ERP", "url": "ftp://erp.example.test/hooks", "secret": value, "active": "on"},
    )
    assert response.status_code == 200
    form_errors = response.context["adminform"].form.errors
    assert "webhook_url_scheme" in " ".join(form_errors["url"])  # every problem at once
    errors = " ".join(form_errors["secret"])
    assert "webhook_secret_invalid" in errors
    assert "whsec_ followed by the base64" in errors
    assert value not in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_a_webhook_needs_a_secret_and_a_change_needs_a_reason(world, qm):
    add = _url("webhookendpoint", "add")
    data = {"name": "ERP", "url": "https://erp.example.test/hooks", "active": "on"}
    assert "webhook_secret_required" in " ".join(
        qm.post(add, {**data, "secret": ""}).context["adminform"].form.errors["secret"]
    )
    assert qm.post(add, {**data, "secret": secret()}).status_code == 302
    endpoint = WebhookEndpoint.objects.get()
    refused = qm.post(_url("webhookendpoint", "change", endpoint.pk), {**data, "name": "Other"})
    assert "reason_required" in " ".join(refused.context["adminform"].form.errors["reason"])
    endpoint.refresh_from_db()
    assert endpoint.name == "ERP"


def test_only_quality_managers_keep_webhook_endpoints(world, auditor):
    endpoint = WebhookEndpoint.objects.create(
        name="ERP", url="https://erp.example.test/hooks", secret=secret()
    )
    for user in (auditor, world.a.administrator):
        client = browser(user)
        assert client.get(_url("webhookendpoint", "add")).status_code == 403
        response = client.post(
            _url("webhookendpoint", "change", endpoint.pk),
            {"name": "Hijacked", "url": "https://evil.test", "active": "on", "reason": "x"},
        )
        assert response.status_code == 403
    endpoint.refresh_from_db()
    assert endpoint.name == "ERP"


@pytest.mark.parametrize("depth", ["patient", "clinic"])
def test_the_level_help_says_what_the_level_reads_for_the_recalls_depth(quality_manager, depth):
    """A patient-level recall's level is the lower of the clinics acknowledged and the patients
    contacted; a clinic-level recall's, the clinics acknowledged."""
    recall = open_recall(build_world(quality_manager), depth=depth)
    page = browser(quality_manager).get(recall_url("change", recall)).content.decode()
    patients = "the lower of the share of clinics reached that acknowledged and the share of "
    if depth == "patient":
        assert patients + "exposed patients contacted; A = 100 % of both" in page
    else:
        assert patients not in page
        assert "A = 100 % of the clinics reached acknowledged" in page
