"""Writes about manufacturers, clinics, practitioners, licences and memberships, and the role
checks every service relies on."""

from __future__ import annotations

import datetime

import pghistory
import pytest
from django.contrib.auth.models import AnonymousUser
from pghistory.models import Events

from common.errors import DomainError
from providers.models import Clinic, ClinicContact, Licence, Manufacturer, Membership, Role
from providers.selectors import require_role, user_has_role, user_roles
from providers.services import (
    clinic_contact_add,
    clinic_create,
    clinic_update,
    licence_add,
    manufacturer_create,
    manufacturer_update,
    membership_grant,
    practitioner_create,
    user_create,
)
from tests.factories import (
    PASSWORD,
    ClinicFactory,
    MembershipFactory,
    PractitionerFactory,
    UserFactory,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]

TODAY = datetime.date(2026, 6, 1)


def refused(call) -> DomainError:
    with pytest.raises(DomainError) as caught:
        call()
    return caught.value


# ---------------------------------------------------------------------------------------------
# Roles


def test_network_quality_manager_holds_the_role_at_every_clinic(quality_manager):
    assert user_has_role(quality_manager, Role.QUALITY_MANAGER)
    assert user_has_role(quality_manager, Role.QUALITY_MANAGER, clinic=ClinicFactory())


def test_clinic_role_applies_only_at_its_own_clinic(clinician, clinic):
    assert user_has_role(clinician, Role.CLINICIAN, clinic=clinic)
    assert not user_has_role(clinician, Role.CLINICIAN, clinic=ClinicFactory())
    assert not user_has_role(clinician, Role.QUALITY_MANAGER, clinic=clinic)


def test_inactive_membership_or_user_holds_no_role(quality_manager):
    Membership.objects.filter(user=quality_manager).update(active=False)
    assert not user_has_role(quality_manager, Role.QUALITY_MANAGER)

    Membership.objects.filter(user=quality_manager).update(active=True)
    quality_manager.is_active = False
    assert not user_has_role(quality_manager, Role.QUALITY_MANAGER)


def test_anonymous_user_holds_no_role():
    assert not user_has_role(AnonymousUser(), Role.AUDITOR)
    assert user_roles(AnonymousUser()) == set()


def test_require_role_refuses_with_403_and_a_code(auditor):
    error = refused(lambda: require_role(auditor, Role.QUALITY_MANAGER))

    assert (error.status, error.codes) == (403, ["role_required"])
    assert "quality manager" in error.problems[0].message


def test_user_roles_lists_active_roles(clinician, clinic):
    MembershipFactory(user=clinician, role=Role.CLINIC_ADMINISTRATOR, clinic=clinic, active=False)

    assert user_roles(clinician) == {Role.CLINICIAN}


# ---------------------------------------------------------------------------------------------
# Every write needs a quality manager


@pytest.mark.parametrize(
    "write",
    [
        lambda actor: manufacturer_create(actor=actor, legal_name="Exo Labs", country="US"),
        lambda actor: clinic_create(
            actor=actor, name="Skin Clinic", address="1 Main St", jurisdiction="DE", contacts=[]
        ),
        lambda actor: clinic_contact_add(
            actor=actor, clinic=ClinicFactory(), name="Desk", email="desk@clinic.example"
        ),
        lambda actor: practitioner_create(actor=actor, name="Dr Rivera", profession="physician"),
        lambda actor: licence_add(
            actor=actor,
            practitioner=PractitionerFactory(),
            number="TX-1",
            jurisdiction="US-TX",
            valid_from=TODAY,
            valid_until=TODAY,
        ),
        lambda actor: membership_grant(actor=actor, user=UserFactory(), role=Role.AUDITOR),
    ],
    ids=[
        "manufacturer_create",
        "clinic_create",
        "clinic_contact_add",
        "practitioner_create",
        "licence_add",
        "membership_grant",
    ],
)
@pytest.mark.parametrize("who", ["clinician", "clinic_administrator", "auditor", "no_role"])
def test_provider_services_refuse_a_user_who_is_not_a_quality_manager(request, write, who):
    actor = UserFactory() if who == "no_role" else request.getfixturevalue(who)

    error = refused(lambda: write(actor))

    assert (error.status, error.codes) == (403, ["role_required"])


def test_a_user_cannot_grant_themselves_the_quality_manager_role(clinic_administrator):
    error = refused(
        lambda: membership_grant(
            actor=clinic_administrator, user=clinic_administrator, role=Role.QUALITY_MANAGER
        )
    )

    assert error.codes == ["role_required"]
    assert not Membership.objects.filter(role=Role.QUALITY_MANAGER).exists()


# ---------------------------------------------------------------------------------------------
# Manufacturers


def test_manufacturer_create_and_update_with_reason(quality_manager):
    manufacturer = manufacturer_create(
        actor=quality_manager, legal_name="  Exo Labs Inc.  ", country="US"
    )
    assert manufacturer.legal_name == "Exo Labs Inc."

    manufacturer_update(
        actor=quality_manager,
        manufacturer=manufacturer,
        reason="FEI number assigned",
        registration_number="3012345678",
    )

    assert Manufacturer.objects.get().registration_number == "3012345678"


@pytest.mark.parametrize(
    ("country", "code"), [("XX", "jurisdiction_unknown"), ("us", "jurisdiction_invalid")]
)
def test_manufacturer_create_refuses_an_unknown_country(quality_manager, country, code):
    error = refused(
        lambda: manufacturer_create(actor=quality_manager, legal_name="Exo Labs", country=country)
    )

    assert error.status == 400
    assert error.codes == [code]
    assert error.problems[0].field == "country"


def test_manufacturer_create_refuses_a_legal_name_already_used(quality_manager):
    manufacturer_create(actor=quality_manager, legal_name="Exo Labs", country="US")

    error = refused(
        lambda: manufacturer_create(actor=quality_manager, legal_name="Exo Labs ", country="DE")
    )

    assert error.codes == ["unique"]
    assert Manufacturer.objects.count() == 1


@pytest.mark.parametrize("reason", ["", "   "])
def test_manufacturer_and_clinic_updates_need_a_reason(quality_manager, clinic, reason):
    manufacturer = manufacturer_create(actor=quality_manager, legal_name="Exo Labs", country="US")

    manufacturer_error = refused(
        lambda: manufacturer_update(
            actor=quality_manager, manufacturer=manufacturer, reason=reason, country="DE"
        )
    )
    clinic_error = refused(
        lambda: clinic_update(actor=quality_manager, clinic=clinic, reason=reason, name="Renamed")
    )

    assert manufacturer_error.codes == clinic_error.codes == ["reason_required"]
    assert manufacturer_error.status == 400
    assert Manufacturer.objects.get().country == "US"
    clinic.refresh_from_db()
    assert clinic.name != "Renamed"


def test_manufacturer_update_records_the_reason_in_history(quality_manager):
    manufacturer = manufacturer_create(actor=quality_manager, legal_name="Exo Labs", country="US")

    manufacturer_update(
        actor=quality_manager,
        manufacturer=manufacturer,
        reason="  Moved to Germany.  ",
        country="DE",
    )

    update = Events.objects.get(pgh_obj_model="providers.Manufacturer", pgh_label="update")
    assert update.pgh_context["reason"] == "Moved to Germany."
    assert update.pgh_diff["country"] == ["US", "DE"]


def test_manufacturer_update_refuses_fields_it_does_not_edit(quality_manager):
    manufacturer = manufacturer_create(actor=quality_manager, legal_name="Exo Labs", country="US")

    error = refused(
        lambda: manufacturer_update(
            actor=quality_manager, manufacturer=manufacturer, reason="x", created_at=None
        )
    )

    assert (error.status, error.codes) == (400, ["field_not_editable"])
    assert error.problems[0].field == "created_at"


# ---------------------------------------------------------------------------------------------
# Clinics


@pytest.mark.parametrize("jurisdiction", ["DE", "US-TX", "US-CA", "GB-ENG"])
def test_clinic_create_accepts_iso_3166_jurisdictions(quality_manager, jurisdiction):
    clinic = clinic_create(
        actor=quality_manager,
        name="Skin Clinic",
        address="1 Main St",
        jurisdiction=jurisdiction,
        contacts=[{"name": "Front desk", "email": " Desk@Clinic.Example "}],
    )

    assert clinic.jurisdiction == jurisdiction
    assert list(clinic.contacts.values_list("email", flat=True)) == ["desk@clinic.example"]


@pytest.mark.parametrize(
    ("jurisdiction", "code"),
    [
        ("XX", "jurisdiction_unknown"),
        ("US-ZZ", "jurisdiction_unknown"),
        ("de", "jurisdiction_invalid"),
        ("us-tx", "jurisdiction_invalid"),
        ("Texas", "jurisdiction_invalid"),
    ],
)
def test_clinic_create_refuses_an_invalid_jurisdiction(quality_manager, jurisdiction, code):
    error = refused(
        lambda: clinic_create(
            actor=quality_manager,
            name="Skin Clinic",
            address="1 Main St",
            jurisdiction=jurisdiction,
            contacts=[{"name": "Front desk", "email": "desk@clinic.example"}],
        )
    )

    assert error.status == 400
    assert code in error.codes
    assert error.problems[error.codes.index(code)].field == "jurisdiction"
    assert not Clinic.objects.exists()
    assert not ClinicContact.objects.exists()


def test_clinic_create_with_a_bad_contact_creates_nothing(quality_manager):
    # given contacts of which the second repeats the first's address
    contacts = [
        {"name": "Front desk", "email": "desk@clinic.example"},
        {"name": "Manager", "email": "DESK@clinic.example"},
    ]

    # when the clinic is created, then it is refused as a whole
    error = refused(
        lambda: clinic_create(
            actor=quality_manager,
            name="Skin Clinic",
            address="1 Main St",
            jurisdiction="DE",
            contacts=contacts,
        )
    )
    assert error.status == 400
    assert not Clinic.objects.exists()
    assert not ClinicContact.objects.exists()


def test_clinic_create_inside_a_request_records_the_clinics_own_reason(quality_manager):
    # given the one pghistory context HistoryMiddleware holds for a whole HTTP request
    with pghistory.context(url="/api/v1/clinics/"):
        # when a clinic is created with a notification contact
        clinic = clinic_create(
            actor=quality_manager,
            name="Skin Clinic",
            address="1 Main St",
            jurisdiction="DE",
            contacts=[{"name": "Front desk", "email": "desk@clinic.example"}],
        )

    # then the clinic's history says why it was created (a nested service's reason used to
    # overwrite it: every history() inside the request merges into the same context row)
    clinic_event = Events.objects.get(pgh_obj_model="providers.Clinic", pgh_obj_id=str(clinic.pk))
    contact_event = Events.objects.get(pgh_obj_model="providers.ClinicContact")
    assert clinic_event.pgh_context["reason"] == "clinic created"
    assert contact_event.pgh_context["reason"] == "clinic created"
    assert clinic_event.pgh_context["user"] == quality_manager.pk


def test_clinic_contact_add_refuses_an_invalid_email(quality_manager, clinic):
    error = refused(
        lambda: clinic_contact_add(
            actor=quality_manager, clinic=clinic, name="Desk", email="not an address"
        )
    )

    assert error.codes == ["invalid"]
    assert error.problems[0].field == "email"


def test_clinic_update_validates_the_new_jurisdiction(quality_manager, clinic):
    error = refused(
        lambda: clinic_update(
            actor=quality_manager, clinic=clinic, reason="Moved", jurisdiction="US-ZZ"
        )
    )
    assert error.codes == ["jurisdiction_unknown"]

    clinic_update(actor=quality_manager, clinic=clinic, reason="Moved", jurisdiction="US-CA")
    clinic.refresh_from_db()
    assert clinic.jurisdiction == "US-CA"


# ---------------------------------------------------------------------------------------------
# Practitioners and licences


def add_licence(actor, practitioner, **overrides) -> Licence:
    arguments = {
        "actor": actor,
        "practitioner": practitioner,
        "number": "TX-M-12345",
        "jurisdiction": "US-TX",
        "valid_from": TODAY,
        "valid_until": TODAY + datetime.timedelta(days=730),
    }
    arguments.update(overrides)
    return licence_add(**arguments)


def test_licence_add_records_a_licence(quality_manager):
    practitioner = practitioner_create(
        actor=quality_manager, name=" Dr Rivera ", profession="physician"
    )

    licence = add_licence(quality_manager, practitioner, number=" TX-M-12345 ")

    assert practitioner.name == "Dr Rivera"
    assert licence.number == "TX-M-12345"
    assert licence.is_valid_on(TODAY)
    assert not licence.is_valid_on(TODAY - datetime.timedelta(days=1))


def test_licence_add_refuses_reversed_dates(quality_manager):
    practitioner = PractitionerFactory()

    error = refused(
        lambda: add_licence(
            quality_manager, practitioner, valid_until=TODAY - datetime.timedelta(days=1)
        )
    )

    assert (error.status, error.codes) == (400, ["licence_dates_reversed"])
    assert not Licence.objects.exists()


def test_licence_add_allows_a_licence_valid_for_one_day(quality_manager):
    licence = add_licence(quality_manager, PractitionerFactory(), valid_until=TODAY)

    assert licence.is_valid_on(TODAY)


def test_licence_add_refuses_a_number_already_issued_in_the_jurisdiction(quality_manager):
    add_licence(quality_manager, PractitionerFactory())

    same_place = refused(lambda: add_licence(quality_manager, PractitionerFactory()))
    elsewhere = add_licence(quality_manager, PractitionerFactory(), jurisdiction="US-CA")

    assert same_place.codes == ["unique_together"]
    assert elsewhere.pk


def test_licence_add_refuses_an_unknown_jurisdiction(quality_manager):
    error = refused(
        lambda: add_licence(quality_manager, PractitionerFactory(), jurisdiction="US-ZZ")
    )

    assert error.codes == ["jurisdiction_unknown"]


def test_practitioner_create_refuses_an_unknown_profession(quality_manager):
    error = refused(
        lambda: practitioner_create(actor=quality_manager, name="Dr Rivera", profession="wizard")
    )

    assert (error.status, error.codes) == (400, ["invalid_choice"])


# ---------------------------------------------------------------------------------------------
# Memberships


@pytest.mark.parametrize("role", [Role.CLINICIAN, Role.CLINIC_ADMINISTRATOR])
def test_membership_grant_refuses_a_clinic_role_without_a_clinic(quality_manager, role):
    user = UserFactory()

    error = refused(lambda: membership_grant(actor=quality_manager, user=user, role=role))

    assert (error.status, error.codes) == (400, ["membership_clinic_required"])
    assert not Membership.objects.filter(user=user).exists()


@pytest.mark.parametrize("role", [Role.QUALITY_MANAGER, Role.AUDITOR])
def test_membership_grant_allows_a_network_role_without_a_clinic(quality_manager, role):
    user = UserFactory()

    membership = membership_grant(actor=quality_manager, user=user, role=role)

    assert membership.clinic is None
    assert user_has_role(user, role, clinic=ClinicFactory())


def test_membership_grant_gives_a_clinic_role_at_that_clinic(quality_manager, clinic):
    user = UserFactory()

    membership_grant(actor=quality_manager, user=user, role=Role.CLINICIAN, clinic=clinic)

    assert user_has_role(user, Role.CLINICIAN, clinic=clinic)


def test_membership_grant_refuses_the_same_network_role_twice(quality_manager):
    user = UserFactory()
    membership_grant(actor=quality_manager, user=user, role=Role.AUDITOR)

    error = refused(lambda: membership_grant(actor=quality_manager, user=user, role=Role.AUDITOR))

    assert error.status == 400
    assert Membership.objects.filter(user=user).count() == 1


def test_membership_grant_refuses_an_unknown_role(quality_manager):
    error = refused(
        lambda: membership_grant(actor=quality_manager, user=UserFactory(), role="superuser")
    )

    assert error.codes == ["invalid_choice"]


def test_membership_grant_without_an_actor_bootstraps_the_first_quality_manager():
    user = UserFactory()

    membership_grant(actor=None, user=user, role=Role.QUALITY_MANAGER)

    assert user_has_role(user, Role.QUALITY_MANAGER)


# ---------------------------------------------------------------------------------------------
# Users


def test_user_create_stores_a_hashed_password(quality_manager):
    user = user_create(
        actor=quality_manager,
        username="qa.lead",
        password=PASSWORD,
        first_name="Ada",
        last_name="Lee",
    )

    assert user.pk
    assert user.password != PASSWORD
    assert user.check_password(PASSWORD)
    assert user.get_full_name() == "Ada Lee"


def test_user_create_refuses_an_invalid_username(quality_manager):
    error = refused(
        lambda: user_create(actor=quality_manager, username="no spaces allowed", password=PASSWORD)
    )

    assert error.status == 400
    assert error.problems[0].field == "username"
