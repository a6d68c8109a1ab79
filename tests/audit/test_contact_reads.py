"""Reads of patient contact data are recorded in the database (DESIGN rule 7): every page and
response that shows contact details writes exactly one `ContactDataRead` row naming the reader,
the clinic and the patients shown; pages that show references only write nothing; the table is
append-only in the database; auditors, quality managers and clinic administrators read it through
the API and the admin, each in their scope (DESIGN rule 8)."""

from __future__ import annotations

import datetime
import logging

import psycopg.errors
import pytest
from django.db import ProgrammingError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import ContactDataRead
from audit.services import contact_data_read_record
from providers.models import Role
from recalls.models import Recall
from tests.admin_helpers import admin_client as browser
from tests.api_helpers import API, error_codes
from tests.factories import MembershipFactory, PatientFactory, clinic_ready
from tests.recalls.scenario import World, build_world, open_recall
from treatments.models import Patient, PatientContact
from treatments.services import patient_create

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]

READS = f"{API}/audit/contact-reads/"
CONTACT = {"full_name": "Rosalind Quist", "phone": "+1 214 555 0199"}


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def admin_url(model: str, view: str, *args) -> str:
    return reverse(f"admin:treatments_{model}_{view}", args=args)


def recall_patients_url(recall: Recall, clinic_id: int) -> str:
    return reverse("admin:recalls_recall_patients", args=[recall.pk, clinic_id])


def the_one_read() -> ContactDataRead:
    """The only row written: fails when there are none or several."""
    reads = list(ContactDataRead.objects.all())
    assert len(reads) == 1, [read.what for read in reads]
    return reads[0]


def inserts(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if q["sql"].startswith("INSERT")]


@pytest.fixture
def ready():
    return clinic_ready()


@pytest.fixture
def patient(ready) -> Patient:
    """A patient of the ready clinic with contact details on record."""
    return patient_create(
        actor=ready.clinician, clinic=ready.clinic, reference="LS-0042", contact=CONTACT
    )


@pytest.fixture
def world(quality_manager) -> World:
    return build_world(quality_manager)


@pytest.fixture
def recall(world) -> Recall:
    return open_recall(world)


# ---------------------------------------------------------------------------------------------
# The service


def test_a_read_of_many_patients_is_one_row_written_in_one_insert(ready, caplog):
    patients = [PatientFactory(clinic=ready.clinic) for _ in range(5)]
    with (
        CaptureQueriesContext(connection) as queries,
        caplog.at_level(logging.INFO, logger="traceability.contact_access"),
    ):
        contact_data_read_record(
            user=ready.administrator, patients=patients, what="admin patient list", via="admin"
        )
    assert len(inserts(queries)) == 1
    read = the_one_read()
    assert read.patient_ids == sorted(patient.pk for patient in patients)
    assert read.patient_count == 5
    assert read.clinic == ready.clinic
    assert read.user == ready.administrator
    assert read.user_name == ready.administrator.get_full_name()
    assert read.via == "admin"
    assert f"user={ready.administrator.pk} patient=" in caplog.text


def test_a_read_showing_no_patient_writes_nothing(ready):
    with CaptureQueriesContext(connection) as queries:
        assert (
            contact_data_read_record(user=ready.clinician, patients=[], what="x", via="api") == []
        )
    assert len(queries) == 0
    assert not ContactDataRead.objects.exists()


def test_a_list_spanning_two_clinics_writes_one_row_per_clinic_in_one_insert(ready):
    other = clinic_ready()
    here, there = PatientFactory(clinic=ready.clinic), PatientFactory(clinic=other.clinic)
    with CaptureQueriesContext(connection) as queries:
        contact_data_read_record(
            user=ready.clinician, patients=[here, there], what="admin patient list", via="admin"
        )
    assert len(inserts(queries)) == 1
    rows = {read.clinic_id: read.patient_ids for read in ContactDataRead.objects.all()}
    assert rows == {ready.clinic.pk: [here.pk], other.clinic.pk: [there.pk]}


def test_the_user_name_falls_back_to_the_username(ready):
    user = ready.clinician
    user.first_name = user.last_name = ""
    user.save()
    contact_data_read_record(
        user=user, clinic=ready.clinic, patient_ids=[ready.patient.pk], what="x", via="api"
    )
    assert the_one_read().user_name == user.username


# ---------------------------------------------------------------------------------------------
# The database keeps the record append-only


def refused_by_trigger(sql: str, params: list) -> str:
    with pytest.raises(ProgrammingError) as caught, transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
    # pgtrigger's Protect raises a PL/pgSQL exception (SQLSTATE P0001).
    assert isinstance(caught.value.__cause__, psycopg.errors.RaiseException)
    return str(caught.value)


def test_the_database_refuses_to_update_or_delete_a_read(ready, patient):
    [read] = contact_data_read_record(
        user=ready.clinician, patients=[patient], what="patient LS-0042 contact", via="api"
    )
    table = ContactDataRead._meta.db_table
    assert "Cannot update" in refused_by_trigger(
        f"UPDATE {table} SET what = 'nothing', patient_ids = '{{}}' WHERE id = %s",  # noqa: S608
        [read.pk],
    )
    assert "Cannot delete" in refused_by_trigger(
        f"DELETE FROM {table} WHERE id = %s",  # noqa: S608
        [read.pk],
    )
    read.refresh_from_db()
    assert (read.what, read.patient_ids) == ("patient LS-0042 contact", [patient.pk])


# ---------------------------------------------------------------------------------------------
# Treatments admin


@pytest.mark.parametrize("member", ["clinician", "administrator"])
def test_the_patient_page_records_one_read_by_the_own_clinic_staff(ready, patient, member):
    user = getattr(ready, member)
    content = browser(user).get(admin_url("patient", "change", patient.pk)).content.decode()
    assert "Rosalind Quist" in content
    read = the_one_read()
    assert (read.user, read.clinic, read.patient_ids, read.patient_count) == (
        user,
        ready.clinic,
        [patient.pk],
        1,
    )
    assert (read.what, read.via) == ("patient LS-0042 contact", "admin")


def test_the_patient_page_without_contact_details_records_nothing(ready):
    client = browser(ready.clinician)
    assert client.get(admin_url("patient", "change", ready.patient.pk)).status_code == 200
    assert not ContactDataRead.objects.exists()


def test_the_patient_list_with_names_records_one_read_of_the_named_patients(ready, patient):
    response = browser(ready.clinician).get(admin_url("patient", "changelist"))
    assert "Rosalind Quist" in response.content.decode()
    # ready.patient has no contact details: its row shows "-", no data read.
    assert set(response.context["cl"].result_list) == {patient, ready.patient}
    read = the_one_read()
    assert (read.user, read.clinic, read.patient_ids) == (
        ready.clinician,
        ready.clinic,
        [patient.pk],
    )
    assert (read.what, read.via) == ("admin patient list", "admin")


def test_the_contact_details_list_and_page_each_record_one_read(ready, patient):
    client = browser(ready.administrator)
    client.get(admin_url("patientcontact", "changelist"))
    listed = the_one_read()
    assert (listed.patient_ids, listed.what) == ([patient.pk], "admin patient contact list")
    contact = PatientContact.objects.get(patient=patient)
    page = client.get(admin_url("patientcontact", "change", contact.pk))
    assert "Rosalind Quist" in page.content.decode()
    read = ContactDataRead.objects.exclude(pk=listed.pk).get()
    assert (read.user, read.clinic, read.patient_ids) == (
        ready.administrator,
        ready.clinic,
        [patient.pk],
    )
    assert read.what == "patient LS-0042 contact"


def test_the_audit_trail_with_contact_history_records_one_read(ready, patient):
    client = browser(ready.clinician)
    trail = client.get(admin_url("patient", "audit_trail", patient.pk) + "?related=1")
    assert "Rosalind Quist" in trail.content.decode()
    read = the_one_read()
    assert (read.patient_ids, read.what) == ([patient.pk], "patient LS-0042 contact history")
    client.get(admin_url("patient", "audit_trail", patient.pk))  # the patient's own events only
    assert ContactDataRead.objects.count() == 1


@pytest.mark.parametrize("role", ["quality_manager", "auditor"])
def test_network_roles_see_references_only_and_record_nothing(request, ready, patient, role):
    client = browser(request.getfixturevalue(role))
    for url in (
        admin_url("patient", "change", patient.pk),
        admin_url("patient", "changelist"),
        admin_url("patient", "audit_trail", patient.pk) + "?related=1",
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        assert "Rosalind Quist" not in response.content.decode()
    assert not ContactDataRead.objects.exists()


# ---------------------------------------------------------------------------------------------
# Treatments API


def test_the_contact_endpoint_records_one_read(ready, patient):
    response = client_for(ready.clinician).get(f"{API}/patients/{patient.pk}/contact/")
    assert response.status_code == 200
    read = the_one_read()
    assert (read.user, read.clinic, read.patient_ids) == (
        ready.clinician,
        ready.clinic,
        [patient.pk],
    )
    assert (read.what, read.via) == ("patient LS-0042 contact", "api")


def test_a_refused_or_empty_contact_request_records_nothing(ready, patient, auditor):
    assert client_for(auditor).get(f"{API}/patients/{patient.pk}/contact/").status_code == 403
    missing = client_for(ready.clinician).get(f"{API}/patients/{ready.patient.pk}/contact/")
    assert missing.status_code == 404
    elsewhere = clinic_ready()
    response = client_for(elsewhere.clinician).get(f"{API}/patients/{patient.pk}/contact/")
    assert response.status_code == 404
    assert not ContactDataRead.objects.exists()


# ---------------------------------------------------------------------------------------------
# A recall's patient list


def test_the_recall_patient_list_through_the_api_records_one_read_of_the_page(world, recall):
    url = f"{API}/recalls/{recall.pk}/patients/?clinic={world.a.clinic.pk}"
    client = client_for(world.a.clinician)
    assert "Alice Anders" in client.get(url).content.decode()
    read = the_one_read()
    assert (read.user, read.clinic, read.via) == (world.a.clinician, world.a.clinic, "api")
    assert read.patient_ids == sorted([world.a1.pk, world.a2.pk])
    assert read.what == f"recall {recall.reference} patient list"

    page = client.get(url + "&limit=1").json()["results"]
    shown = Patient.objects.get(clinic=world.a.clinic, reference=page[0]["reference"])
    assert ContactDataRead.objects.exclude(pk=read.pk).get().patient_ids == [shown.pk]


def test_the_recall_patient_list_in_the_admin_records_one_read(world, recall):
    page = browser(world.b.administrator).get(recall_patients_url(recall, world.b.clinic.pk))
    assert "Bella Berg" in page.content.decode()
    read = the_one_read()
    assert (read.user, read.clinic, read.patient_ids) == (
        world.b.administrator,
        world.b.clinic,
        [world.b1.pk],
    )
    assert (read.what, read.via) == (f"recall {recall.reference} patient list", "admin")


@pytest.mark.parametrize("role", ["quality_manager", "auditor"])
def test_network_roles_on_the_recall_patient_list_record_nothing(request, world, recall, role):
    user = request.getfixturevalue(role)
    api = client_for(user).get(f"{API}/recalls/{recall.pk}/patients/?clinic={world.a.clinic.pk}")
    assert api.status_code == 200
    page = browser(user).get(recall_patients_url(recall, world.a.clinic.pk))
    assert page.status_code == 200
    assert not ContactDataRead.objects.exists()


def test_a_clinic_level_recall_shows_no_contact_details_and_records_nothing(world):
    recall = open_recall(world, depth="clinic")
    url = f"{API}/recalls/{recall.pk}/patients/?clinic={world.a.clinic.pk}"
    assert client_for(world.a.clinician).get(url).status_code == 200
    page = browser(world.a.clinician).get(recall_patients_url(recall, world.a.clinic.pk))
    assert page.status_code == 200
    assert not ContactDataRead.objects.exists()


# ---------------------------------------------------------------------------------------------
# Reading the record: API


@pytest.fixture
def reads(world):
    """One read at each clinic, by its own clinician."""
    a = contact_data_read_record(
        user=world.a.clinician,
        patients=[world.a1, world.a2],
        what="admin patient list",
        via="admin",
    )[0]
    b = contact_data_read_record(
        user=world.b.clinician, patients=[world.b1], what="patient B contact", via="api"
    )[0]
    return a, b


def listed_ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def test_auditors_and_quality_managers_see_every_read(world, reads, auditor, quality_manager):
    a, b = reads
    for user in (auditor, quality_manager):
        assert listed_ids(client_for(user).get(READS)) == [b.pk, a.pk]
    row = client_for(auditor).get(READS).json()["results"][1]
    assert row == {
        "id": a.pk,
        "at": row["at"],
        "user": world.a.clinician.pk,
        "user_name": world.a.clinician.get_full_name(),
        "clinic": {"id": world.a.clinic.pk, "name": world.a.clinic.name},
        "patient_ids": sorted([world.a1.pk, world.a2.pk]),
        "patient_count": 2,
        "what": "admin patient list",
        "via": "admin",
    }


def test_a_clinic_administrator_sees_the_own_clinics_reads_only(world, reads):
    a, _ = reads
    assert listed_ids(client_for(world.a.administrator).get(READS)) == [a.pk]
    filtered = client_for(world.a.administrator).get(READS, {"clinic": world.b.clinic.pk})
    assert listed_ids(filtered) == []


def test_clinicians_are_refused(world, reads):
    response = client_for(world.a.clinician).get(READS)
    assert response.status_code == 403
    assert error_codes(response) == ["role_required"]


def test_a_clinic_scoped_auditor_sees_that_clinics_reads(world, reads):
    local = MembershipFactory(role=Role.AUDITOR, clinic=world.b.clinic).user
    assert listed_ids(client_for(local).get(READS)) == [reads[1].pk]


def test_the_list_filters_by_patient_clinic_user_and_time(world, reads, auditor):
    a, b = reads
    client = client_for(auditor)
    assert listed_ids(client.get(READS, {"patient": world.a2.pk})) == [a.pk]
    assert listed_ids(client.get(READS, {"patient": world.b1.pk})) == [b.pk]
    assert listed_ids(client.get(READS, {"clinic": world.a.clinic.pk})) == [a.pk]
    assert listed_ids(client.get(READS, {"user": world.b.clinician.pk})) == [b.pk]
    later = (timezone.now() + datetime.timedelta(minutes=1)).isoformat()
    assert listed_ids(client.get(READS, {"at_after": later})) == []
    assert listed_ids(client.get(READS, {"at_before": later})) == [b.pk, a.pk]
    bad = client.get(READS, {"patient": "abc"})
    assert bad.status_code == 400
    assert error_codes(bad)


def test_the_list_runs_a_fixed_number_of_queries(world, auditor, django_assert_num_queries):
    client = client_for(auditor)

    def add(count: int) -> None:
        for _ in range(count):
            contact_data_read_record(
                user=world.a.clinician, patients=[world.a1], what="admin patient list", via="admin"
            )

    add(1)
    with CaptureQueriesContext(connection) as one_row:
        assert len(listed_ids(client.get(READS))) == 1
    add(29)
    with django_assert_num_queries(len(one_row)):
        assert len(listed_ids(client.get(READS))) == 30


def test_reading_the_record_writes_nothing(world, reads, auditor):
    client_for(auditor).get(READS)
    browser(auditor).get(reverse("admin:audit_contactdataread_changelist"))
    assert ContactDataRead.objects.count() == 2


# ---------------------------------------------------------------------------------------------
# Reading the record: admin


def audit_url(view: str, *args) -> str:
    return reverse(f"admin:audit_contactdataread_{view}", args=args)


@pytest.mark.parametrize("role", ["quality_manager", "auditor"])
def test_network_roles_see_every_read_in_the_admin(request, world, reads, role):
    client = browser(request.getfixturevalue(role))
    listing = client.get(audit_url("changelist"))
    assert listing.status_code == 200
    assert set(listing.context["cl"].result_list) == set(reads)
    assert (
        client.get(audit_url("changelist"), {"via__exact": "api"}).context["cl"].result_list[0]
        == reads[1]
    )
    assert client.get(audit_url("change", reads[0].pk)).status_code == 200


def test_a_clinic_administrator_sees_the_own_clinics_reads_in_the_admin(world, reads):
    client = browser(world.a.administrator)
    assert list(client.get(audit_url("changelist")).context["cl"].result_list) == [reads[0]]
    assert client.get(audit_url("change", reads[0].pk)).status_code == 200
    assert client.get(audit_url("change", reads[1].pk)).status_code == 302  # not theirs


def test_clinicians_do_not_see_the_record_in_the_admin(world, reads):
    client = browser(world.a.clinician)
    assert client.get(audit_url("changelist")).status_code == 403
    assert "contactdataread" not in client.get(reverse("admin:index")).content.decode()


def test_nobody_adds_changes_or_deletes_a_read_in_the_admin(world, reads, quality_manager):
    client = browser(quality_manager)
    read = reads[0]
    assert client.get(audit_url("add")).status_code == 403
    assert client.post(audit_url("change", read.pk), {"what": "edited"}).status_code == 403
    assert client.post(audit_url("delete", read.pk), {"post": "yes"}).status_code == 403
    page = client.get(audit_url("change", read.pk)).content.decode()
    assert 'name="_save"' not in page
    read.refresh_from_db()
    assert read.what == "admin patient list"
