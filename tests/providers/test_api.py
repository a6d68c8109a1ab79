"""API tests for manufacturers, clinics, practitioners and /me/: status codes, permissions and
wiring."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from providers.models import (
    Clinic,
    ClinicContact,
    Licence,
    Manufacturer,
    ManufacturerEvent,
    Practitioner,
    Role,
)
from tests.api_helpers import API, assert_list_queries_fixed, error_codes, error_fields
from tests.factories import (
    ClinicContactFactory,
    ClinicFactory,
    LicenceFactory,
    ManufacturerFactory,
    MembershipFactory,
    PractitionerFactory,
    UserFactory,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


# ---------------------------------------------------------------------------------------------
# Permissions


def test_an_anonymous_caller_is_refused_in_the_error_shape(api_client):
    response = api_client.get(f"{API}/manufacturers/")
    assert response.status_code in (401, 403)
    assert error_codes(response) == ["not_authenticated"]


def test_a_user_without_a_role_is_refused_with_no_role(db):
    response = client_for(UserFactory()).get(f"{API}/manufacturers/")
    assert response.status_code == 403
    assert error_codes(response) == ["no_role"]


def test_a_user_whose_only_role_is_inactive_is_refused_with_no_role(clinician):
    clinician.memberships.update(active=False)
    response = client_for(clinician).get(f"{API}/me/")
    assert response.status_code == 403
    assert error_codes(response) == ["no_role"]


def test_a_user_without_a_role_cannot_write_either(db):
    response = client_for(UserFactory()).post(
        f"{API}/manufacturers/", {"legal_name": "X", "country": "US"}, format="json"
    )
    assert response.status_code == 403
    assert error_codes(response) == ["no_role"]
    assert not Manufacturer.objects.exists()


@pytest.mark.parametrize("role_user", ["auditor", "clinician", "clinic_administrator"])
def test_roles_other_than_quality_manager_read_but_cannot_write(request, role_user):
    client = client_for(request.getfixturevalue(role_user))
    ManufacturerFactory()
    assert client.get(f"{API}/manufacturers/").status_code == 200

    response = client.post(
        f"{API}/manufacturers/", {"legal_name": "Acme Bio", "country": "US"}, format="json"
    )

    assert response.status_code == 403
    assert error_codes(response) == ["role_required"]
    assert not Manufacturer.objects.filter(legal_name="Acme Bio").exists()


def test_a_quality_manager_of_one_clinic_reads_but_cannot_write_for_the_network(clinic):
    user = UserFactory()
    MembershipFactory(user=user, role=Role.QUALITY_MANAGER, clinic=clinic)
    client = client_for(user)
    assert client.get(f"{API}/manufacturers/").status_code == 200

    response = client.post(
        f"{API}/manufacturers/", {"legal_name": "Acme Bio", "country": "US"}, format="json"
    )

    assert response.status_code == 403
    assert error_codes(response) == ["role_required"]


def test_a_refused_writer_is_told_so_before_the_body_is_parsed(auditor):
    response = client_for(auditor).post(
        f"{API}/manufacturers/", data="{not json", content_type="application/json"
    )
    assert response.status_code == 403
    assert error_codes(response) == ["role_required"]


def test_the_service_checks_the_role_too_when_the_membership_lapses_mid_request(
    quality_manager, monkeypatch
):
    # The permission class passes; the service's own check is what refuses.
    from providers import permissions

    monkeypatch.setattr(
        permissions.QualityManagerWrites, "has_permission", lambda self, request, view: True
    )
    client = client_for(quality_manager)
    quality_manager.memberships.update(role=Role.AUDITOR)

    response = client.post(
        f"{API}/manufacturers/", {"legal_name": "Acme Bio", "country": "US"}, format="json"
    )

    assert response.status_code == 403
    assert error_codes(response) == ["role_required"]


# ---------------------------------------------------------------------------------------------
# Manufacturers


def test_manufacturer_create_returns_the_new_manufacturer(qm_client):
    response = qm_client.post(
        f"{API}/manufacturers/",
        {"legal_name": "  Acme Bio Inc. ", "country": "US", "registration_number": "3012345678"},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["legal_name"] == "Acme Bio Inc."
    assert body["country"] == "US"
    assert Manufacturer.objects.get(pk=body["id"]).registration_number == "3012345678"


@pytest.mark.parametrize(
    ("country", "code"), [("XX", "jurisdiction_unknown"), ("us", "jurisdiction_invalid")]
)
def test_manufacturer_create_refuses_a_country_that_is_not_iso_3166(qm_client, country, code):
    response = qm_client.post(
        f"{API}/manufacturers/", {"legal_name": "Acme Bio", "country": country}, format="json"
    )
    assert response.status_code == 400
    assert code in error_codes(response)
    assert "country" in error_fields(response)


def test_manufacturer_create_refuses_a_duplicate_legal_name(qm_client):
    ManufacturerFactory(legal_name="Acme Bio")
    response = qm_client.post(
        f"{API}/manufacturers/", {"legal_name": "Acme Bio", "country": "US"}, format="json"
    )
    assert response.status_code == 400
    assert error_fields(response) == ["legal_name"]
    assert Manufacturer.objects.filter(legal_name="Acme Bio").count() == 1


def test_manufacturer_list_filters_by_country_and_name(qm_client):
    ManufacturerFactory(legal_name="Acme Bio", country="US")
    ManufacturerFactory(legal_name="Berlin Exo GmbH", country="DE")

    by_country = qm_client.get(f"{API}/manufacturers/", {"country": "DE"}).json()
    by_name = qm_client.get(f"{API}/manufacturers/", {"name": "acme"}).json()

    assert [m["legal_name"] for m in by_country["results"]] == ["Berlin Exo GmbH"]
    assert [m["legal_name"] for m in by_name["results"]] == ["Acme Bio"]


def test_manufacturer_detail_and_unknown_id(qm_client):
    manufacturer = ManufacturerFactory()
    assert qm_client.get(f"{API}/manufacturers/{manufacturer.pk}/").json()["id"] == manufacturer.pk
    missing = qm_client.get(f"{API}/manufacturers/{manufacturer.pk + 1000}/")
    assert missing.status_code == 404
    assert error_codes(missing) == ["not_found"]


def test_manufacturer_update_changes_fields_and_keeps_the_reason_in_history(qm_client):
    manufacturer = ManufacturerFactory(legal_name="Acme Bio", country="US")

    response = qm_client.patch(
        f"{API}/manufacturers/{manufacturer.pk}/",
        {"country": "DE", "reason": "moved its seat to Berlin"},
        format="json",
    )

    assert response.status_code == 200, response.content
    manufacturer.refresh_from_db()
    assert (manufacturer.legal_name, manufacturer.country) == ("Acme Bio", "DE")
    event = ManufacturerEvent.objects.filter(pgh_obj=manufacturer).latest("pgh_id")
    assert event.pgh_context.metadata["reason"] == "moved its seat to Berlin"


def test_manufacturer_update_needs_the_reason_field(qm_client):
    manufacturer = ManufacturerFactory(country="US")
    response = qm_client.patch(
        f"{API}/manufacturers/{manufacturer.pk}/", {"country": "DE"}, format="json"
    )
    assert response.status_code == 400
    assert error_fields(response) == ["reason"]
    manufacturer.refresh_from_db()
    assert manufacturer.country == "US"


def test_manufacturer_update_refuses_a_blank_reason(qm_client):
    manufacturer = ManufacturerFactory(country="US")
    response = qm_client.patch(
        f"{API}/manufacturers/{manufacturer.pk}/", {"country": "DE", "reason": "  "}, format="json"
    )
    assert response.status_code == 400
    assert error_codes(response) == ["reason_required"]
    manufacturer.refresh_from_db()
    assert manufacturer.country == "US"


def test_manufacturer_list_runs_a_fixed_number_of_queries(qm_client, django_assert_num_queries):
    assert_list_queries_fixed(
        qm_client,
        f"{API}/manufacturers/",
        lambda n: ManufacturerFactory.create_batch(n),
        django_assert_num_queries,
    )


# ---------------------------------------------------------------------------------------------
# Clinics


def test_clinic_create_with_contacts(qm_client):
    response = qm_client.post(
        f"{API}/clinics/",
        {
            "name": "Skin Clinic Austin",
            "address": "1 Congress Ave",
            "jurisdiction": "US-TX",
            "contacts": [
                {"name": "Front desk", "email": "Desk@Clinic.example"},
                {"name": "Medical director", "email": "md@clinic.example"},
            ],
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["jurisdiction"] == "US-TX"
    assert sorted(c["email"] for c in body["contacts"]) == [
        "desk@clinic.example",
        "md@clinic.example",
    ]


def test_clinic_create_with_a_bad_contact_email_names_the_nested_field(qm_client):
    response = qm_client.post(
        f"{API}/clinics/",
        {
            "name": "Skin Clinic Austin",
            "address": "1 Congress Ave",
            "jurisdiction": "US-TX",
            "contacts": [{"name": "Front desk", "email": "not-an-email"}],
        },
        format="json",
    )
    assert response.status_code == 400
    assert error_fields(response) == ["contacts.0.email"]
    assert error_codes(response) == ["invalid"]
    assert not Clinic.objects.filter(name="Skin Clinic Austin").exists()


def test_clinic_create_with_duplicate_contacts_changes_nothing(qm_client):
    contact = {"name": "Front desk", "email": "desk@clinic.example"}
    response = qm_client.post(
        f"{API}/clinics/",
        {"name": "Twice", "address": "x", "jurisdiction": "DE", "contacts": [contact, contact]},
        format="json",
    )
    assert response.status_code == 400
    error_codes(response)
    assert not Clinic.objects.filter(name="Twice").exists()


def test_clinic_list_is_scoped_to_the_clinics_a_clinician_belongs_to(clinician, clinic):
    ClinicFactory(name="Another clinic")
    response = client_for(clinician).get(f"{API}/clinics/")
    assert [c["id"] for c in response.json()["results"]] == [clinic.pk]


def test_clinic_detail_of_the_own_clinic_for_clinic_staff(clinician, clinic):
    ClinicContactFactory(clinic=clinic, email="desk@clinic.example")
    body = client_for(clinician).get(f"{API}/clinics/{clinic.pk}/").json()
    assert (body["id"], body["name"]) == (clinic.pk, clinic.name)
    assert [c["email"] for c in body["contacts"]] == ["desk@clinic.example"]


def test_clinic_detail_of_another_clinic_is_not_found_for_clinic_staff(clinician):
    other = ClinicFactory()
    response = client_for(clinician).get(f"{API}/clinics/{other.pk}/")
    assert response.status_code == 404
    assert error_codes(response) == ["not_found"]


def test_network_roles_see_every_clinic(auditor):
    clinics = ClinicFactory.create_batch(3)
    response = client_for(auditor).get(f"{API}/clinics/")
    assert {c["id"] for c in response.json()["results"]} == {c.pk for c in clinics}


def test_clinic_list_filters_by_jurisdiction_a_country_matching_its_subdivisions(qm_client):
    texas = ClinicFactory(jurisdiction="US-TX")
    california = ClinicFactory(jurisdiction="US-CA")
    ClinicFactory(jurisdiction="DE")

    country = qm_client.get(f"{API}/clinics/", {"jurisdiction": "US"}).json()["results"]
    state = qm_client.get(f"{API}/clinics/", {"jurisdiction": "US-CA"}).json()["results"]

    assert {c["id"] for c in country} == {texas.pk, california.pk}
    assert [c["id"] for c in state] == [california.pk]


def test_clinic_contact_add(qm_client):
    clinic = ClinicFactory()
    response = qm_client.post(
        f"{API}/clinics/{clinic.pk}/contacts/",
        {"name": "Pharmacy", "email": "pharmacy@clinic.example"},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert ClinicContact.objects.get(pk=response.json()["id"]).clinic == clinic


def test_clinic_contact_add_to_an_unknown_clinic_is_not_found(qm_client):
    response = qm_client.post(
        f"{API}/clinics/987654/contacts/",
        {"name": "Pharmacy", "email": "pharmacy@clinic.example"},
        format="json",
    )
    assert response.status_code == 404
    assert error_codes(response) == ["not_found"]


def test_clinic_list_runs_a_fixed_number_of_queries(qm_client, django_assert_num_queries):
    def add(n):
        for clinic in ClinicFactory.create_batch(n):
            ClinicContactFactory.create_batch(2, clinic=clinic)

    assert_list_queries_fixed(qm_client, f"{API}/clinics/", add, django_assert_num_queries)


def test_clinic_list_for_clinic_staff_runs_a_fixed_number_of_queries(
    clinician, django_assert_num_queries
):
    def add(n):
        for clinic in ClinicFactory.create_batch(n):
            MembershipFactory(user=clinician, clinic=clinic, role=Role.CLINICIAN)
            ClinicContactFactory(clinic=clinic)

    assert_list_queries_fixed(
        client_for(clinician), f"{API}/clinics/", add, django_assert_num_queries
    )


# ---------------------------------------------------------------------------------------------
# Practitioners


def test_practitioner_create_and_detail_with_licences(qm_client):
    response = qm_client.post(
        f"{API}/practitioners/", {"name": "Dr. Ada Lovelace", "profession": "physician"}, "json"
    )
    assert response.status_code == 201, response.content
    practitioner_id = response.json()["id"]

    licence = qm_client.post(
        f"{API}/practitioners/{practitioner_id}/licences/",
        {
            "number": " MD-1234 ",
            "jurisdiction": "US-TX",
            "valid_from": "2024-01-01",
            "valid_until": "2027-12-31",
        },
        format="json",
    )
    assert licence.status_code == 201, licence.content

    detail = qm_client.get(f"{API}/practitioners/{practitioner_id}/").json()
    assert detail["name"] == "Dr. Ada Lovelace"
    assert detail["licences"] == [
        {
            "id": licence.json()["id"],
            "number": "MD-1234",
            "jurisdiction": "US-TX",
            "valid_from": "2024-01-01",
            "valid_until": "2027-12-31",
        }
    ]


def test_practitioner_create_links_a_user_account(qm_client, clinician):
    response = qm_client.post(
        f"{API}/practitioners/",
        {"name": "Dr. C", "profession": "physician", "user": clinician.pk},
        format="json",
    )
    assert response.status_code == 201
    assert Practitioner.objects.get(pk=response.json()["id"]).user == clinician


def test_practitioner_create_with_an_unknown_user_is_a_400_naming_the_field(qm_client):
    response = qm_client.post(
        f"{API}/practitioners/",
        {"name": "Dr. C", "profession": "physician", "user": 987654},
        format="json",
    )
    assert response.status_code == 400
    assert error_codes(response) == ["does_not_exist"]
    assert error_fields(response) == ["user"]


def test_practitioner_create_refuses_an_unknown_profession(qm_client):
    response = qm_client.post(
        f"{API}/practitioners/", {"name": "Dr. C", "profession": "wizard"}, format="json"
    )
    assert response.status_code == 400
    assert error_codes(response) == ["invalid_choice"]


def test_licence_add_refuses_reversed_dates(qm_client):
    practitioner = PractitionerFactory()
    response = qm_client.post(
        f"{API}/practitioners/{practitioner.pk}/licences/",
        {
            "number": "MD-1",
            "jurisdiction": "DE",
            "valid_from": "2026-01-01",
            "valid_until": "2025-01-01",
        },
        format="json",
    )
    assert response.status_code == 400
    assert "licence_dates_reversed" in error_codes(response)
    assert not Licence.objects.exists()


def test_licence_add_refuses_dates_that_are_not_iso(qm_client):
    practitioner = PractitionerFactory()
    response = qm_client.post(
        f"{API}/practitioners/{practitioner.pk}/licences/",
        {
            "number": "MD-1",
            "jurisdiction": "DE",
            "valid_from": "01/02/2025",
            "valid_until": "2026-02-30",
        },
        format="json",
    )
    assert response.status_code == 400
    assert sorted(error_fields(response)) == ["valid_from", "valid_until"]


def test_practitioner_list_filters_by_name(qm_client):
    PractitionerFactory(name="Dr. Ada Lovelace")
    PractitionerFactory(name="Nurse Grace Hopper")
    response = qm_client.get(f"{API}/practitioners/", {"name": "lovelace"})
    assert [p["name"] for p in response.json()["results"]] == ["Dr. Ada Lovelace"]


def test_practitioner_list_runs_a_fixed_number_of_queries(qm_client, django_assert_num_queries):
    def add(n):
        for practitioner in PractitionerFactory.create_batch(n):
            LicenceFactory.create_batch(2, practitioner=practitioner)

    assert_list_queries_fixed(qm_client, f"{API}/practitioners/", add, django_assert_num_queries)


# ---------------------------------------------------------------------------------------------
# Me


def test_me_lists_username_full_name_and_roles_with_clinics(quality_manager, clinic):
    MembershipFactory(user=quality_manager, role=Role.CLINICIAN, clinic=clinic)
    MembershipFactory(user=quality_manager, role=Role.AUDITOR, clinic=None, active=False)

    body = client_for(quality_manager).get(f"{API}/me/").json()

    assert body["username"] == "qm"
    assert body["full_name"] == "Quinn Manager"
    assert sorted(body["roles"], key=lambda r: r["role"]) == [
        {"role": "clinician", "clinic": clinic.pk},
        {"role": "quality_manager", "clinic": None},
    ]


# ---------------------------------------------------------------------------------------------
# Correcting a clinic


def test_a_quality_manager_corrects_a_clinics_time_zone_with_a_reason(qm_client):
    from providers.models import ClinicEvent

    clinic = ClinicFactory(time_zone="UTC")

    response = qm_client.patch(
        f"{API}/clinics/{clinic.pk}/",
        {"time_zone": "Europe/Berlin", "reason": "the clinic is in Berlin"},
        format="json",
    )

    assert response.status_code == 200, response.content
    assert response.json()["time_zone"] == "Europe/Berlin"
    clinic.refresh_from_db()
    assert clinic.time_zone == "Europe/Berlin"
    event = ClinicEvent.objects.filter(pgh_obj=clinic).latest("pgh_id")
    assert event.pgh_context.metadata["reason"] == "the clinic is in Berlin"


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"time_zone": "Europe/Atlantis", "reason": "r"}, "time_zone_unknown", "time_zone"),
        ({"time_zone": "Europe/Berlin"}, "required", "reason"),
        ({"time_zone": "Europe/Berlin", "reason": " "}, "reason_required", "reason"),
        ({"jurisdiction": "XX", "reason": "r"}, "jurisdiction_unknown", "jurisdiction"),
    ],
)
def test_a_wrong_clinic_correction_is_refused_and_changes_nothing(qm_client, body, code, field):
    clinic = ClinicFactory(time_zone="UTC", jurisdiction="US-TX")

    response = qm_client.patch(f"{API}/clinics/{clinic.pk}/", body, format="json")

    assert response.status_code == 400
    assert (error_codes(response), error_fields(response)) == ([code], [field])
    clinic.refresh_from_db()
    assert (clinic.time_zone, clinic.jurisdiction) == ("UTC", "US-TX")


def test_clinic_staff_and_auditors_cannot_correct_a_clinic(auditor):
    clinic = ClinicFactory(time_zone="UTC")
    administrator = MembershipFactory(role=Role.CLINIC_ADMINISTRATOR, clinic=clinic).user
    body = {"time_zone": "Europe/Berlin", "reason": "r"}

    for user in (administrator, auditor):
        response = client_for(user).patch(f"{API}/clinics/{clinic.pk}/", body, format="json")
        assert response.status_code == 403
    clinic.refresh_from_db()
    assert clinic.time_zone == "UTC"
