"""The treatments admin: patients and their contact details (shown only to the patient's own
clinic), treatments recorded through the service with every refusal shown, adverse events,
practitioners linked to clinics, and the two trace pages with a fixed number of queries."""

from __future__ import annotations

import datetime
import logging
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from lots.models import Lot, LotStatus
from providers.models import Clinic, ClinicPractitioner
from stock.models import StockBalance, StockState
from tests.admin_helpers import admin_client as browser
from tests.factories import (
    ClinicFactory,
    ConsentTextFactory,
    LotFactory,
    PatientFactory,
    PractitionerFactory,
    ProductFactory,
    clinic_ready,
    lot_for_release,
    receive,
    released_lot,
    treat,
)
from treatments.admin.traces import TRACE_LINES_PER_PAGE
from treatments.models import AdverseEvent, Patient, PatientContact, Treatment
from treatments.services import adverse_event_record, patient_create

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("reference_data")]

CONTACT = {
    "full_name": "Rosalind Quist",
    "phone": "+1 214 555 0199",
    "email": "rosalind.quist@example.com",
    "postal_address": "12 Elm Street, Dallas",
}
MODELS = ("patient", "treatment", "adverseevent", "consenttext")


def _url(model: str, view: str, *args) -> str:
    return reverse(f"admin:treatments_{model}_{view}", args=args)


def count_queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200, url
    return len(queries)


@pytest.fixture
def ready():
    return clinic_ready()


@pytest.fixture
def lot():
    return released_lot()


@pytest.fixture
def patient(ready):
    """A patient of the ready clinic, with contact details, and one treatment with an adverse
    event."""
    patient = patient_create(
        actor=ready.clinician, clinic=ready.clinic, reference="LS-0042", contact=CONTACT
    )
    lot = released_lot()
    receive(ready, lot, 5)
    treatment = treat(ready, lot, patient=patient)
    adverse_event_record(
        actor=ready.clinician,
        treatment=treatment,
        onset_on=timezone.localdate(),
        description="Redness",
        lot=lot,
    )
    return patient


# ---------------------------------------------------------------------------------------------
# Who sees what


@pytest.mark.parametrize("role", ["quality_manager", "auditor"])
def test_treatment_pages_answer_for_quality_manager_and_auditor(request, patient, role):
    client = browser(request.getfixturevalue(role))
    treatment = Treatment.objects.get()
    objects = {
        "patient": patient,
        "treatment": treatment,
        "adverseevent": AdverseEvent.objects.get(),
        "consenttext": ConsentTextFactory(),
    }
    assert client.get(reverse("admin:app_list", args=["treatments"])).status_code == 200
    for model in MODELS:
        assert client.get(_url(model, "changelist")).status_code == 200, model
        obj = objects[model]
        assert client.get(_url(model, "change", obj.pk)).status_code == 200, model
        assert client.get(_url(model, "audit_trail", obj.pk)).status_code == 200, model
    assert client.get(_url("patient", "trace_back", patient.pk)).status_code == 200
    assert client.get(_url("treatment", "trace_back", treatment.pk)).status_code == 200


@pytest.mark.parametrize("role", ["quality_manager", "auditor"])
def test_network_roles_cannot_add_patients_treatments_or_adverse_events(request, ready, role):
    client = browser(request.getfixturevalue(role))
    for model in ("patient", "treatment", "adverseevent", "consenttext"):
        assert client.get(_url(model, "add")).status_code == 403, model
    response = client.post(_url("patient", "add"), {"clinic": ready.clinic.pk, "reference": "X"})
    assert response.status_code == 403
    assert not Patient.objects.filter(reference="X").exists()


@pytest.mark.parametrize("role", ["quality_manager", "auditor"])
def test_contact_details_are_hidden_from_auditor_and_quality_manager(request, patient, role):
    client = browser(request.getfixturevalue(role))
    pages = [
        _url("patient", "changelist"),
        _url("patient", "change", patient.pk),
        _url("patient", "audit_trail", patient.pk) + "?related=1",
        _url("patient", "trace_back", patient.pk),
        _url("treatment", "changelist"),
        reverse("admin:lots_lot_trace_forward", args=[Treatment.objects.get().lines.get().lot_id]),
    ]
    for url in pages:
        content = client.get(url).content.decode()
        assert "LS-0042" in content, url
        for value in ("Rosalind", "Quist", "555 0199", "rosalind.quist"):
            assert value not in content, url
    contact = PatientContact.objects.get()
    assert client.get(_url("patientcontact", "changelist")).status_code == 403
    assert client.get(_url("patientcontact", "change", contact.pk)).status_code == 403
    index = client.get(reverse("admin:index")).content.decode()
    assert "patientcontact" not in index
    searched = client.get(_url("patient", "changelist"), {"q": "Quist"}).context["cl"]
    assert list(searched.result_list) == []


@pytest.fixture
def contact_reads():
    """The messages logged on traceability.contact_access (without pytest's logging plugin,
    which may be switched off)."""
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


@pytest.mark.parametrize("member", ["clinician", "administrator"])
def test_contact_details_are_shown_to_the_patients_own_clinic_and_the_reads_logged(
    patient, ready, member, contact_reads
):
    user = getattr(ready, member)
    client = browser(user)
    content = client.get(_url("patient", "change", patient.pk)).content.decode()
    assert "Rosalind Quist" in content and "+1 214 555 0199" in content
    assert any(f"user={user.pk} patient={patient.pk} " in message for message in contact_reads)
    found = client.get(_url("patient", "changelist"), {"q": "Quist"}).context["cl"].result_list
    assert list(found) == [patient]
    contacts = client.get(_url("patientcontact", "changelist")).context["cl"].result_list
    assert [contact.patient for contact in contacts] == [patient]
    trail = client.get(_url("patient", "audit_trail", patient.pk) + "?related=1")
    assert "Rosalind Quist" in trail.content.decode()


def test_another_clinics_staff_cannot_see_the_patient(patient, ready):
    elsewhere = clinic_ready()
    for user in (elsewhere.clinician, elsewhere.administrator):
        client = browser(user)
        listed = client.get(_url("patient", "changelist")).context["cl"].result_list
        assert patient not in listed
        assert client.get(_url("patient", "change", patient.pk)).status_code == 302
        assert client.get(_url("patient", "trace_back", patient.pk)).status_code == 404
        contact = PatientContact.objects.get(patient=patient)
        assert client.get(_url("patientcontact", "change", contact.pk)).status_code == 302
        contacts = client.get(_url("patientcontact", "changelist")).context["cl"].result_list
        assert patient.pk not in {row.patient_id for row in contacts}
        treatment = Treatment.objects.get(patient=patient)
        assert client.get(_url("treatment", "change", treatment.pk)).status_code == 302
        events = client.get(_url("adverseevent", "changelist")).context["cl"].result_list
        assert list(events) == []
        trace = client.get(
            reverse("admin:lots_lot_trace_forward", args=[treatment.lines.get().lot_id])
        )
        assert "LS-0042" not in trace.content.decode()


# ---------------------------------------------------------------------------------------------
# Writing through the services


def test_patient_added_with_contact_details_through_the_service(ready):
    client = browser(ready.clinician)
    response = client.post(
        _url("patient", "add"),
        {"clinic": ready.clinic.pk, "reference": "LS-0100", **CONTACT},
    )
    assert response.status_code == 302
    patient = Patient.objects.get(reference="LS-0100")
    assert patient.contact.full_name == "Rosalind Quist"
    refused = client.post(
        _url("patient", "add"), {"clinic": ready.clinic.pk, "reference": "LS-0100"}
    )
    assert refused.status_code == 200
    assert Patient.objects.filter(reference="LS-0100").count() == 1


def _treatment_form(ready, **fields) -> dict:
    performed = timezone.now() - datetime.timedelta(minutes=30)
    return {
        "clinic": ready.clinic.pk,
        "patient": ready.patient.pk,
        "practitioner": ready.practitioner.pk,
        "performed_at_0": performed.strftime("%Y-%m-%d"),
        "performed_at_1": performed.strftime("%H:%M:%S"),
        "indication": "skin_rejuvenation",
        "route": "topical",
        "anatomical_site": "face",
        **fields,
    }


def test_treatment_form_records_a_treatment_by_scan_and_draws_the_stock(ready):
    lot = released_lot(product=ProductFactory(gtin="09506000134352"))
    receive(ready, lot, 5)
    client = browser(ready.clinician)
    scan = f"(01)09506000134352(17){lot.expires_on:%y%m%d}(10){lot.lot_number}"
    response = client.post(
        _url("treatment", "add"), _treatment_form(ready, line_1_scan=scan, line_1_units=2)
    )
    assert response.status_code == 302
    treatment = Treatment.objects.get()
    assert [(line.lot, line.units) for line in treatment.lines.all()] == [(lot, 2)]
    assert treatment.recorded_by == ready.clinician
    balance = StockBalance.objects.get(clinic=ready.clinic, lot=lot, state=StockState.ACCEPTED)
    assert balance.quantity == 3


def test_treatment_form_refuses_with_every_code_and_records_nothing(ready):
    ready.clinic.consent_required = True
    ready.clinic.save()
    held = released_lot()
    receive(ready, held, 5)
    Lot.objects.filter(pk=held.pk).update(status=LotStatus.ON_HOLD)
    short = released_lot()
    receive(ready, short, 1)
    unlicensed = PractitionerFactory()
    ClinicPractitioner.objects.create(clinic=ready.clinic, practitioner=unlicensed)
    client = browser(ready.clinician)
    response = client.post(
        _url("treatment", "add"),
        _treatment_form(
            ready,
            practitioner=unlicensed.pk,
            line_1_lot=held.pk,
            line_1_units=1,
            line_2_lot=short.pk,
            line_2_units=3,
        ),
    )
    assert response.status_code == 200
    form = response.context["adminform"].form
    content = response.content.decode()
    for code in (
        "lot_on_hold",
        "stock_insufficient",
        "practitioner_not_licensed",
        "consent_required",
    ):
        assert f"({code})" in content, code
    assert "lot_on_hold" in str(form.errors["line_1_lot"])
    assert "stock_insufficient" in str(form.errors["line_2_units"])
    assert "consent_required" in str(form.errors["consent_text"])
    assert not Treatment.objects.exists()
    assert StockBalance.objects.get(clinic=ready.clinic, lot=short, state="accepted").quantity == 1


def test_treatment_form_shows_a_bad_scan_on_its_row(ready):
    client = browser(ready.clinician)
    response = client.post(
        _url("treatment", "add"),
        _treatment_form(ready, line_1_scan="(01)09506000134353(10)X", line_1_units=1),
    )
    assert "scan_gtin_invalid" in str(response.context["adminform"].form.errors["line_1_scan"])
    assert not Treatment.objects.exists()


def test_treatment_form_records_consent_and_the_treatment_stays_read_only(ready, lot):
    ready.clinic.consent_required = True
    ready.clinic.save()
    consent = ConsentTextFactory()
    receive(ready, lot, 2)
    client = browser(ready.clinician)
    taken = timezone.now() - datetime.timedelta(hours=1)
    response = client.post(
        _url("treatment", "add"),
        _treatment_form(
            ready,
            line_1_lot=lot.pk,
            line_1_units=1,
            consent_text=consent.pk,
            consent_taken_at_0=taken.strftime("%Y-%m-%d"),
            consent_taken_at_1=taken.strftime("%H:%M:%S"),
        ),
    )
    assert response.status_code == 302
    treatment = Treatment.objects.get()
    assert (treatment.consent_text, treatment.consent_taken_by) == (consent, ready.clinician)
    assert client.post(_url("treatment", "change", treatment.pk), {}).status_code == 403


def test_adverse_event_reported_through_the_service(ready, lot):
    receive(ready, lot, 2)
    treatment = treat(ready, lot)
    client = browser(ready.clinician)
    form = {"treatment": treatment.pk, "lot": lot.pk, "description": "Swelling"}
    too_early = treatment.performed_at.date() - datetime.timedelta(days=1)
    refused = client.post(_url("adverseevent", "add"), {**form, "onset_on": too_early})
    assert "adverse_event_before_treatment" in str(
        refused.context["adminform"].form.errors["onset_on"]
    )
    response = client.post(
        _url("adverseevent", "add"),
        {**form, "onset_on": treatment.performed_at.date(), "hospitalisation": "on"},
    )
    assert response.status_code == 302
    event = AdverseEvent.objects.get()
    assert event.is_serious and event.reported_by == ready.clinician


def test_a_clinic_administrator_links_a_practitioner_to_the_own_clinic_only(ready):
    practitioner = PractitionerFactory()
    other = ClinicFactory(name="Other Clinic")
    client = browser(ready.administrator)
    url = reverse("admin:providers_clinicpractitioner_add")
    form = client.get(url).context["adminform"].form
    assert list(form.fields["clinic"].queryset) == [ready.clinic]
    refused = client.post(url, {"clinic": other.pk, "practitioner": practitioner.pk})
    assert refused.status_code == 200
    assert not ClinicPractitioner.objects.filter(practitioner=practitioner).exists()
    response = client.post(url, {"clinic": ready.clinic.pk, "practitioner": practitioner.pk})
    assert response.status_code == 302
    assert ClinicPractitioner.objects.get(practitioner=practitioner).clinic == ready.clinic
    assert browser(ready.clinician).get(url).status_code == 403


def test_quality_manager_changes_the_consent_requirement_with_a_reason(quality_manager):
    clinic = ClinicFactory(consent_required=True)
    client = browser(quality_manager)
    url = reverse("admin:providers_clinic_change", args=[clinic.pk])
    data = {
        "name": clinic.name,
        "address": clinic.address,
        "jurisdiction": clinic.jurisdiction,
        "time_zone": clinic.time_zone,
        "language": clinic.language,
    }
    refused = client.post(url, data)
    assert "reason" in refused.context["adminform"].form.errors
    assert Clinic.objects.get(pk=clinic.pk).consent_required
    response = client.post(url, {**data, "reason": "consent recorded on paper"})
    assert response.status_code == 302
    assert not Clinic.objects.get(pk=clinic.pk).consent_required


# ---------------------------------------------------------------------------------------------
# Traces


def test_lot_page_links_the_forward_trace_and_the_trace_links_the_csv(quality_manager, patient):
    lot = Treatment.objects.get().lines.get().lot
    client = browser(quality_manager)
    trace_url = reverse("admin:lots_lot_trace_forward", args=[lot.pk])
    assert trace_url in client.get(reverse("admin:lots_lot_change", args=[lot.pk])).content.decode()
    content = client.get(trace_url).content.decode()
    assert f"/api/v1/traces/forward/?lot={lot.pk}&amp;format=csv" in content
    assert "LS-0042" in content and "Redness" in content
    assert (
        _url("patient", "trace_back", patient.pk)
        in client.get(_url("patient", "change", patient.pk)).content.decode()
    )


def test_forward_trace_page_runs_a_fixed_number_of_queries(quality_manager, ready, lot):
    client = browser(quality_manager)
    receive(ready, lot, 20)
    treat(ready, lot)
    url = reverse("admin:lots_lot_trace_forward", args=[lot.pk])
    small = count_queries(client, url)
    elsewhere = clinic_ready()
    receive(elsewhere, lot, 20)
    for setting in (ready, elsewhere):
        for _ in range(3):
            treatment = treat(setting, lot, patient=PatientFactory(clinic=setting.clinic))
            adverse_event_record(
                actor=setting.clinician,
                treatment=treatment,
                onset_on=timezone.localdate(),
                description="Itching",
            )
    content = client.get(url).content.decode()
    assert content.count("Itching") == 6
    assert count_queries(client, url) == small


def used_in(ready, lot, count: int) -> list[int]:
    """`lot` used once in each of `count` treatments of new patients, recorded in an order other
    than their times'; the treatment ids in the trace's order (time, then treatment)."""
    receive(ready, lot, count)
    now = timezone.now()
    for minutes in sorted(range(count), key=lambda n: (n * 37) % count):
        treat(
            ready,
            lot,
            patient=PatientFactory(clinic=ready.clinic),
            performed_at=now - datetime.timedelta(minutes=10 + minutes),
        )
    return list(
        Treatment.objects.filter(lines__lot=lot)
        .order_by("performed_at", "pk")
        .values_list("pk", flat=True)
    )


def summary(content: str) -> str:
    """The trace's summary line, its whitespace as a browser shows it."""
    start = content.index('id="trace-summary"')
    return " ".join(content[start : content.index("</p>", start)].split())


def trace_rows(content: str) -> list[int]:
    """The treatments in the trace's table of lines, in the order shown."""
    table = content[content.index('id="trace-treatments"') : content.index('id="trace-stock"')]
    return [int(pk) for pk in re.findall(r"/admin/treatments/treatment/(\d+)/change/", table)]


def test_forward_trace_shows_its_lines_a_page_at_a_time_with_totals_over_every_page(
    quality_manager, ready
):
    # Given a lot used in 230 treatments
    lot = released_lot(quantity=1000)
    ordered = used_in(ready, lot, 230)
    client = browser(quality_manager)
    url = reverse("admin:lots_lot_trace_forward", args=[lot.pk])

    # When its trace is opened, then paged
    first = client.get(url).content.decode()
    third = client.get(url, {"p": 3}).content.decode()

    # Then each page shows its hundred lines (the last, the rest) in the trace's order, and the
    # totals count every line
    assert TRACE_LINES_PER_PAGE == 100
    assert trace_rows(first) == ordered[:100]
    assert trace_rows(client.get(url, {"p": 2}).content.decode()) == ordered[100:200]
    assert trace_rows(third) == ordered[200:]
    for page in (first, third):
        assert (
            "230 treatment line(s) in 230 treatment(s), 230 unit(s) used, 230 patient(s) at 1"
            in (summary(page))
        )
        assert f"/api/v1/traces/forward/?lot={lot.pk}&amp;format=csv" in page
    assert "Lines 1 to 100 of 230." in first and "Lines 201 to 230 of 230." in third
    assert '<span class="this-page">1</span>' in first
    assert '<a href="?p=3" class="end">3</a>' in first
    assert '<span class="this-page">3</span>' in third and '<a href="?p=1">1</a>' in third


@pytest.mark.parametrize("asked", ["4", "99999999999999999999", "0", "-1", "three", ""])
def test_forward_trace_page_out_of_range_shows_the_nearest_page(quality_manager, ready, asked):
    lot = released_lot(quantity=1000)
    ordered = used_in(ready, lot, 120)
    response = browser(quality_manager).get(
        reverse("admin:lots_lot_trace_forward", args=[lot.pk]), {"p": asked}
    )
    assert response.status_code == 200
    shown = trace_rows(response.content.decode())
    assert shown == (ordered[:100] if asked in ("three", "") else ordered[100:])


def test_forward_trace_page_runs_the_same_queries_for_3_lines_as_for_300(quality_manager, ready):
    lot, busy = released_lot(quantity=1000), released_lot(quantity=1000)
    used_in(ready, lot, 3)
    used_in(ready, busy, 300)
    client = browser(quality_manager)

    small = count_queries(client, reverse("admin:lots_lot_trace_forward", args=[lot.pk]))
    large = count_queries(client, reverse("admin:lots_lot_trace_forward", args=[busy.pk]))
    last = count_queries(client, reverse("admin:lots_lot_trace_forward", args=[busy.pk]) + "?p=3")

    assert small == large == last


def test_forward_trace_totals_count_only_the_clinics_a_member_sees(quality_manager, ready):
    lot = released_lot(quantity=1000)
    used_in(ready, lot, 2)
    elsewhere = clinic_ready()
    used_in(elsewhere, lot, 3)
    url = reverse("admin:lots_lot_trace_forward", args=[lot.pk])

    network = browser(quality_manager).get(url).content.decode()
    own = browser(elsewhere.clinician).get(url).content.decode()

    assert "5 treatment line(s) in 5 treatment(s), 5 unit(s) used, 5 patient(s) at 2 clinic(s)" in (
        summary(network)
    )
    assert "3 treatment line(s) in 3 treatment(s), 3 unit(s) used, 3 patient(s) at 1 clinic(s)" in (
        summary(own)
    )
    assert "Only the clinics you belong to are shown." in summary(own)
    assert len(trace_rows(own)) == 3


def test_backward_trace_page_runs_a_fixed_number_of_queries(quality_manager, ready):
    client = browser(quality_manager)
    first = lot_for_release(quality_manager=quality_manager, donors=1)
    Lot.objects.filter(pk=first.pk).update(status=LotStatus.RELEASED)
    receive(ready, first, 10)
    treat(ready, first)
    url = _url("patient", "trace_back", ready.patient.pk)
    small = count_queries(client, url)
    for _ in range(3):
        lot = lot_for_release(quality_manager=quality_manager, donors=2)
        Lot.objects.filter(pk=lot.pk).update(status=LotStatus.RELEASED)
        receive(ready, lot, 10)
        treat(ready, [first, lot])
    content = client.get(url).content.decode()
    assert content.count("trace-lot-") == 4
    assert count_queries(client, url) == small


def test_lots_listed_for_a_treatment_are_the_clinics_usable_stock(ready, lot):
    receive(ready, lot, 3)
    LotFactory()  # no stock here
    client = browser(ready.clinician)
    form = client.get(_url("treatment", "add")).context["adminform"].form
    assert list(form.fields["line_1_lot"].queryset) == [lot]
    assert list(form.fields["practitioner"].queryset) == [ready.practitioner]
    assert list(form.fields["patient"].queryset) == [ready.patient]
