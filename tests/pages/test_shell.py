"""The shell of the clinic pages: the door (sign-in, lock-out, sign-out), the refusal page, the
language and time zone each user reads the pages in, and the formats of numbers and times."""

from __future__ import annotations

import datetime
import re
import zoneinfo
from decimal import Decimal

import pytest
from django.template import Context, Template
from django.test import Client
from django.utils import timezone, translation
from hypothesis import given
from hypothesis import strategies as st

from pages.models import AccountPreference
from pages.templatetags.pages import day, quantity, when
from providers.models import Role
from tests.factories import PASSWORD, ClinicFactory, MembershipFactory, UserFactory
from tests.pages.conftest import client_for

pytestmark = pytest.mark.django_db


def sign_in(client: Client, username: str, password: str, next_url: str = "/"):
    return client.post(f"/sign-in/?next={next_url}", {"username": username, "password": password})


# ---------------------------------------------------------------------------------------------
# The door


@pytest.mark.parametrize("path", ["/", "/lots/", "/stock/", "/recalls/", "/treatments/"])
def test_a_visitor_who_is_not_signed_in_is_sent_to_sign_in(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == f"/sign-in/?next={path}"


def test_signing_in_leads_to_the_page_asked_for(clinician):
    client = Client()
    response = sign_in(client, "clinician", PASSWORD, next_url="/stock/")
    assert response.status_code == 302
    assert response["Location"] == "/stock/"
    assert client.get("/").status_code == 200


def test_a_wrong_password_is_refused_on_the_form_and_signs_nobody_in(clinician):
    client = Client()
    response = sign_in(client, "clinician", "not the password")
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    assert client.get("/")["Location"].startswith("/sign-in/")


def test_repeated_wrong_passwords_lock_the_account_on_the_pages_too(clinician, settings):
    settings.AXES_FAILURE_LIMIT = 3
    answers = [sign_in(Client(), "clinician", "wrong").status_code for _ in range(3)]
    locked = sign_in(Client(), "clinician", PASSWORD)
    assert answers == [200, 200, 403]
    assert locked.status_code == 403
    assert "locked" in locked.content.decode()


def test_signing_out_ends_the_session(clinician):
    client = Client()
    sign_in(client, "clinician", PASSWORD)
    response = client.post("/sign-out/")
    assert response.status_code == 302
    assert client.get("/").status_code == 302


def test_signing_out_is_not_done_by_a_link_a_page_could_embed(clinician):
    client = client_for(clinician)
    assert client.get("/sign-out/").status_code == 405
    assert client.get("/").status_code == 200


def test_a_user_without_a_role_meets_the_refusal_page_not_a_bare_403():
    client = client_for(UserFactory())
    response = client.get("/")
    assert response.status_code == 403
    page = response.content.decode()
    assert "This page is not open to you" in page
    assert "Your role does not include this page." in page
    assert 'href="/static/pages/app.css"' in page


def test_a_deactivated_role_no_longer_opens_the_pages(clinician):
    clinician.memberships.update(active=False)
    assert client_for(clinician).get("/").status_code == 403


def test_the_admins_view_site_link_leads_to_the_pages(client, quality_manager):
    quality_manager.is_staff = True
    quality_manager.save()
    client.force_login(quality_manager)
    admin = client.get("/admin/").content.decode()
    assert 'href="/"' in admin
    assert client.get("/").status_code == 200


# ---------------------------------------------------------------------------------------------
# Language


def test_the_browsers_language_is_used_without_a_choice(clinician):
    client = client_for(clinician)
    german = client.get("/", headers={"accept-language": "de-DE,de;q=0.9"}).content.decode()
    english = client.get("/", headers={"accept-language": "en-US"}).content.decode()
    assert '<html lang="de">' in german
    assert '<html lang="en">' in english


def test_a_users_own_language_wins_over_the_browsers(clinician):
    AccountPreference.objects.create(user=clinician, language="de")
    page = client_for(clinician).get("/", headers={"accept-language": "en-US"}).content.decode()
    assert '<html lang="de">' in page


def test_choosing_a_language_keeps_it_for_the_user_and_the_browser(clinician):
    client = client_for(clinician)
    response = client.post("/language/", {"language": "de", "next": "/stock/"})
    assert response.status_code == 302
    assert response["Location"] == "/stock/"
    assert AccountPreference.objects.get(user=clinician).language == "de"
    assert response.cookies["django_language"].value == "de"


@pytest.mark.parametrize("language", ["fr", "", "de-XX-weird", "<script>"])
def test_a_language_the_product_does_not_speak_changes_nothing(clinician, language):
    client = client_for(clinician)
    response = client.post("/language/", {"language": language, "next": "/"})
    assert response.status_code == 302
    assert not AccountPreference.objects.filter(user=clinician).exists()
    assert "django_language" not in response.cookies


@pytest.mark.parametrize(
    "next_url", ["https://elsewhere.example/", "//elsewhere.example/", "javascript:alert(1)"]
)
def test_the_language_form_never_sends_the_user_to_another_site(clinician, next_url):
    response = client_for(clinician).post("/language/", {"language": "en", "next": next_url})
    assert response["Location"] == "/"


# ---------------------------------------------------------------------------------------------
# Time zone


def test_clinic_staff_read_times_on_their_clinics_clock():
    berlin = ClinicFactory(time_zone="Europe/Berlin")
    user = MembershipFactory(role=Role.CLINIC_ADMINISTRATOR, clinic=berlin).user
    assert "Europe/Berlin" in client_for(user).get("/").content.decode()


def test_network_roles_read_the_networks_zone_unless_they_chose_their_own(quality_manager):
    assert ">UTC<" in client_for(quality_manager).get("/").content.decode()
    AccountPreference.objects.create(user=quality_manager, time_zone="America/Chicago")
    assert "America/Chicago" in client_for(quality_manager).get("/").content.decode()


def test_when_names_the_zone_it_shows_a_moment_in():
    moment = datetime.datetime(2026, 12, 3, 13, 5, tzinfo=datetime.UTC)
    with timezone.override(zoneinfo.ZoneInfo("Europe/Berlin")), translation.override("en"):
        assert when(moment) == "Dec. 3, 2026, 2:05 p.m. CET"
    with timezone.override(zoneinfo.ZoneInfo("America/Chicago")), translation.override("de"):
        assert when(moment) == "3. Dezember 2026 07:05 CST"
    assert when(None) == "—"


def test_day_is_the_calendar_day_in_the_active_zone():
    late = datetime.datetime(2026, 12, 3, 23, 30, tzinfo=datetime.UTC)
    with timezone.override(zoneinfo.ZoneInfo("Europe/Berlin")), translation.override("en"):
        assert day(late) == "Dec. 4, 2026"
    with timezone.override(zoneinfo.ZoneInfo("America/Chicago")), translation.override("en"):
        assert day(late) == "Dec. 3, 2026"


@pytest.mark.parametrize("name", ["when", "day", "quantity"])
def test_a_value_that_is_not_there_reads_as_a_dash_whatever_the_filter(name):
    # A lookup that fails in a template (a patient without contact details has no
    # `patient.contact`) reaches the filter as the empty string, a missing field as None.
    rendered = Template(
        "{% load pages %}[{{ patient.contact.date_of_birth|" + name + " }}]"
        "[{{ missing|" + name + " }}]"
    ).render(Context({"patient": object(), "missing": None}))
    assert rendered == "[—][—]"


# ---------------------------------------------------------------------------------------------
# Quantities

SCIENTIFIC = re.compile(r"^(-?[\d.,]+) × 10([⁻⁰¹²³⁴⁵⁶⁷⁸⁹]+)$")
FROM_SUPERSCRIPT = str.maketrans("⁻⁰¹²³⁴⁵⁶⁷⁸⁹", "-0123456789")


@pytest.mark.parametrize(
    ("value", "english", "german"),
    [
        (Decimal("4800000000.0000"), "4.8 × 10⁹", "4,8 × 10⁹"),
        (Decimal("12.50"), "12.5", "12,5"),
        (Decimal("0"), "0", "0"),
        (9999, "9999", "9999"),
        (10000, "1 × 10⁴", "1 × 10⁴"),
        (99_999_999_999, "1 × 10¹¹", "1 × 10¹¹"),
        (None, "—", "—"),
    ],
)
def test_quantities_read_as_a_clinic_writes_them(value, english, german):
    with translation.override("en"):
        assert quantity(value) == english
    with translation.override("de"):
        assert quantity(value) == german


@given(st.floats(min_value=1e4, max_value=1e300) | st.floats(min_value=-1e300, max_value=-1e4))
def test_a_large_quantity_in_scientific_notation_keeps_its_value(value):
    with translation.override("en"):
        shown = quantity(value)
    match = SCIENTIFIC.match(shown)
    assert match, shown
    mantissa, exponent = float(match[1]), int(match[2].translate(FROM_SUPERSCRIPT))
    assert 1 <= abs(mantissa) < 10
    assert abs(mantissa * 10**exponent - value) <= abs(value) * 0.006
