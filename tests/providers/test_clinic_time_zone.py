"""Each clinic keeps an IANA time zone in which its calendar days are judged: the field, its
validation by the services, the API and the admin. What the zone changes in the rules is tested
with those rules (tests/treatments and tests/stock, test_clinic_time_zone.py)."""

from __future__ import annotations

import datetime

import pytest
from django.urls import reverse
from pghistory.models import Events
from rest_framework.test import APIClient

from common.errors import DomainError
from providers.models import Clinic, ClinicEvent, Role
from providers.services import clinic_create, clinic_update
from tests.admin_helpers import admin_client as admin_browser
from tests.api_helpers import API, error_codes, error_fields, row_counts
from tests.factories import ClinicFactory, MembershipFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]

# 22:30 UTC on 31 March 2026 is 00:30 on 1 April in Berlin (CEST, UTC+2 since 29 March).
BERLIN_AFTER_MIDNIGHT = datetime.datetime(2026, 3, 31, 22, 30, tzinfo=datetime.UTC)

NOT_A_ZONE = [
    "Europe/Berln",  # misspelt
    "europe/berlin",  # zone names are spelt exactly
    "Berlin",
    "+02:00",  # an offset is not a zone: it does not follow daylight saving time
    "localtime",  # the server's own setting, not a place
    "Factory",
    "../../etc/passwd",
]


def refused(call) -> DomainError:
    with pytest.raises(DomainError) as caught:
        call()
    return caught.value


def create(actor, **fields) -> Clinic:
    return clinic_create(
        actor=actor,
        name=fields.pop("name", "Hautzentrum"),
        address="Zeil 10, Frankfurt am Main",
        jurisdiction="DE",
        contacts=[],
        **fields,
    )


# ---------------------------------------------------------------------------------------------
# The field and the clinic's day


def test_a_clinic_created_without_a_time_zone_judges_its_days_in_utc(quality_manager):
    clinic = create(quality_manager)

    clinic.refresh_from_db()
    assert clinic.time_zone == "UTC"
    assert clinic.local_date(BERLIN_AFTER_MIDNIGHT) == datetime.date(2026, 3, 31)


@pytest.mark.parametrize(
    ("time_zone", "day"),
    [
        ("UTC", datetime.date(2026, 3, 31)),
        ("Europe/Berlin", datetime.date(2026, 4, 1)),
        ("America/Chicago", datetime.date(2026, 3, 31)),
        ("Asia/Tokyo", datetime.date(2026, 4, 1)),
    ],
)
def test_the_clinic_day_of_one_instant_depends_on_the_clinic_time_zone(
    quality_manager, time_zone, day
):
    clinic = create(quality_manager, time_zone=time_zone)

    assert Clinic.objects.get(pk=clinic.pk).time_zone == time_zone
    assert clinic.local_date(BERLIN_AFTER_MIDNIGHT) == day


def test_the_clinic_day_follows_daylight_saving_time(db):
    chicago = ClinicFactory(time_zone="America/Chicago")

    # 05:30 UTC is 23:30 the day before in winter (CST, UTC-6), 00:30 in summer (CDT, UTC-5).
    winter = datetime.datetime(2026, 1, 15, 5, 30, tzinfo=datetime.UTC)
    summer = datetime.datetime(2026, 7, 15, 5, 30, tzinfo=datetime.UTC)
    assert chicago.local_date(winter) == datetime.date(2026, 1, 14)
    assert chicago.local_date(summer) == datetime.date(2026, 7, 15)


# ---------------------------------------------------------------------------------------------
# Validation by the services


@pytest.mark.parametrize("time_zone", NOT_A_ZONE)
def test_clinic_create_refuses_an_unknown_time_zone_and_creates_nothing(quality_manager, time_zone):
    error = refused(lambda: create(quality_manager, time_zone=time_zone))

    assert error.status == 400
    assert "time_zone_unknown" in error.codes
    assert error.problems[error.codes.index("time_zone_unknown")].field == "time_zone"
    assert not Clinic.objects.exists()
    assert not ClinicEvent.objects.exists()


def test_clinic_create_refuses_an_empty_time_zone_naming_the_field(quality_manager):
    error = refused(lambda: create(quality_manager, time_zone=""))

    assert [(p.code, p.field) for p in error.problems] == [("blank", "time_zone")]
    assert not Clinic.objects.exists()


def test_a_time_zone_spelt_in_the_wrong_case_is_refused_with_the_right_spelling(quality_manager):
    error = refused(lambda: create(quality_manager, time_zone="america/new_york"))

    assert error.codes == ["time_zone_unknown"]
    assert "America/New_York" in error.problems[0].message


@pytest.mark.parametrize("time_zone", NOT_A_ZONE)
def test_clinic_update_refuses_an_unknown_time_zone_and_changes_nothing(quality_manager, time_zone):
    clinic = create(quality_manager, time_zone="Europe/Berlin")
    events = ClinicEvent.objects.count()

    error = refused(
        lambda: clinic_update(
            actor=quality_manager, clinic=clinic, reason="Moved", time_zone=time_zone
        )
    )

    assert error.status == 400
    assert "time_zone_unknown" in error.codes
    assert Clinic.objects.get(pk=clinic.pk).time_zone == "Europe/Berlin"
    assert ClinicEvent.objects.count() == events


def test_clinic_update_sets_the_time_zone_with_its_reason_in_the_history(quality_manager):
    clinic = create(quality_manager)

    clinic_update(
        actor=quality_manager,
        clinic=clinic,
        reason="The clinic is in Frankfurt",
        time_zone="Europe/Berlin",
    )

    assert Clinic.objects.get(pk=clinic.pk).time_zone == "Europe/Berlin"
    event = Events.objects.filter(pgh_obj_model="providers.Clinic").order_by("-pgh_id").first()
    assert event.pgh_diff == {"time_zone": ["UTC", "Europe/Berlin"]}
    assert event.pgh_context["reason"] == "The clinic is in Frankfurt"


def test_only_a_quality_manager_moves_a_clinic_to_another_time_zone(quality_manager):
    # The zone decides on which day a lot counts as expired at the clinic, so it is the network
    # quality manager's record, as the jurisdiction is.
    clinic = create(quality_manager)
    administrator = MembershipFactory(role=Role.CLINIC_ADMINISTRATOR, clinic=clinic).user

    error = refused(
        lambda: clinic_update(
            actor=administrator, clinic=clinic, reason="Local time", time_zone="Etc/GMT+12"
        )
    )

    assert error.status == 403
    assert Clinic.objects.get(pk=clinic.pk).time_zone == "UTC"


# ---------------------------------------------------------------------------------------------
# API


def clinic_body(**fields) -> dict[str, object]:
    return {"name": "Hautzentrum", "address": "Zeil 10", "jurisdiction": "DE", **fields}


def test_api_clinic_create_with_a_time_zone_shows_it_in_list_and_detail(qm_client):
    response = qm_client.post(
        f"{API}/clinics/", clinic_body(time_zone="Europe/Berlin"), format="json"
    )

    assert response.status_code == 201, response.content
    assert response.json()["time_zone"] == "Europe/Berlin"
    clinic_id = response.json()["id"]
    assert qm_client.get(f"{API}/clinics/{clinic_id}/").json()["time_zone"] == "Europe/Berlin"
    listed = qm_client.get(f"{API}/clinics/").json()["results"]
    assert [(c["id"], c["time_zone"]) for c in listed] == [(clinic_id, "Europe/Berlin")]


def test_api_clinic_create_without_a_time_zone_is_on_utc(qm_client):
    response = qm_client.post(f"{API}/clinics/", clinic_body(), format="json")

    assert response.status_code == 201, response.content
    assert response.json()["time_zone"] == "UTC"


@pytest.mark.parametrize("time_zone", ["Europe/Berln", "+02:00", "localtime", ""])
def test_api_clinic_create_with_an_unknown_time_zone_is_400_and_changes_nothing(
    qm_client, time_zone
):
    before = row_counts()

    response = qm_client.post(f"{API}/clinics/", clinic_body(time_zone=time_zone), format="json")

    assert response.status_code == 400
    if time_zone:
        assert error_codes(response) == ["time_zone_unknown"]
    else:
        # An empty value stops at the input serializer, still naming the field.
        assert error_codes(response) == ["blank"]
    assert error_fields(response) == ["time_zone"]
    assert row_counts() == before


@pytest.mark.parametrize("time_zone", ["x\x00y", "Europe/" + "x" * 100, 7, None])
def test_api_clinic_create_with_a_malformed_time_zone_is_400_naming_the_field(qm_client, time_zone):
    before = row_counts()

    response = qm_client.post(f"{API}/clinics/", clinic_body(time_zone=time_zone), format="json")

    assert response.status_code == 400, response.content
    assert set(error_fields(response)) == {"time_zone"}
    assert row_counts() == before


# ---------------------------------------------------------------------------------------------
# Admin


def test_admin_adds_a_clinic_with_its_time_zone_chosen_from_the_list(quality_manager):
    client = admin_browser(quality_manager)
    url = reverse("admin:providers_clinic_add")
    form = client.get(url).context["adminform"].form
    choices = [value for value, _ in form.fields["time_zone"].choices]
    assert choices[0] == "UTC" and "Europe/Berlin" in choices and "localtime" not in choices
    assert form.fields["time_zone"].initial == "UTC"

    response = client.post(
        url,
        {
            "name": "Hautzentrum",
            "address": "Zeil 10",
            "jurisdiction": "DE",
            "time_zone": "Europe/Berlin",
            "language": "de",
        },
    )

    assert response.status_code == 302
    assert Clinic.objects.get(name="Hautzentrum").time_zone == "Europe/Berlin"


def test_admin_changes_a_clinic_time_zone_with_a_reason(quality_manager):
    clinic = ClinicFactory(jurisdiction="US-TX")
    client = admin_browser(quality_manager)
    url = reverse("admin:providers_clinic_change", args=[clinic.pk])
    data = {
        "name": clinic.name,
        "address": clinic.address,
        "jurisdiction": clinic.jurisdiction,
        "consent_required": "on",
        "time_zone": "America/Chicago",
        "language": "en",
    }

    refused_page = client.post(url, {**data, "time_zone": "Mars/Olympus_Mons", "reason": "x"})
    assert "time_zone" in refused_page.context["adminform"].form.errors
    assert Clinic.objects.get(pk=clinic.pk).time_zone == "UTC"

    response = client.post(url, {**data, "reason": "The clinic is in Dallas"})
    assert response.status_code == 302
    assert Clinic.objects.get(pk=clinic.pk).time_zone == "America/Chicago"


def test_admin_shows_clinic_staff_their_clinic_time_zone_read_only(db):
    clinic = ClinicFactory(time_zone="Europe/Berlin")
    administrator = MembershipFactory(role=Role.CLINIC_ADMINISTRATOR, clinic=clinic).user
    client = admin_browser(administrator)

    response = client.get(reverse("admin:providers_clinic_change", args=[clinic.pk]))

    assert response.status_code == 200
    assert "Europe/Berlin" in response.content.decode()


def test_api_clinic_list_shows_clinic_staff_the_time_zone(db):
    clinic = ClinicFactory(time_zone="America/Los_Angeles")
    user = UserFactory()
    MembershipFactory(user=user, role=Role.CLINICIAN, clinic=clinic)
    client = APIClient()
    client.force_authenticate(user)

    response = client.get(f"{API}/clinics/")

    assert [c["time_zone"] for c in response.json()["results"]] == ["America/Los_Angeles"]
