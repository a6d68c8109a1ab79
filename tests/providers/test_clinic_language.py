"""Each clinic has a language in which its recall notices and acknowledgement page are written
(English or German): set when the clinic is created and changed with a reason, in the API and the
admin; any other value is refused naming the field, and changes nothing."""

from __future__ import annotations

import pytest
from django.urls import reverse

from providers.models import Clinic
from tests.admin_helpers import admin_client as admin_browser
from tests.api_helpers import API, error_fields, row_counts
from tests.factories import ClinicFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]


def clinic_body(**fields) -> dict[str, object]:
    return {"name": "Hautzentrum", "address": "Zeil 10", "jurisdiction": "DE", **fields}


def test_a_clinic_is_english_unless_told_otherwise(qm_client):
    response = qm_client.post(f"{API}/clinics/", clinic_body(), format="json")
    assert response.status_code == 201, response.content
    assert response.json()["language"] == "en"


@pytest.mark.parametrize("language", ["en", "de"])
def test_a_clinic_is_created_in_a_language_the_product_speaks(qm_client, language):
    response = qm_client.post(f"{API}/clinics/", clinic_body(language=language), format="json")
    assert response.status_code == 201, response.content
    clinic = Clinic.objects.get(pk=response.json()["id"])
    assert clinic.language == language
    assert qm_client.get(f"{API}/clinics/{clinic.pk}/").json()["language"] == language


@pytest.mark.parametrize("language", ["fr", "DE", "de-DE", "", "x\x00y", 7, None, "e" * 300])
def test_any_other_language_is_refused_naming_the_field_and_changes_nothing(qm_client, language):
    before = row_counts()
    response = qm_client.post(f"{API}/clinics/", clinic_body(language=language), format="json")
    assert response.status_code == 400, response.content
    assert error_fields(response) == ["language"]
    assert row_counts() == before


def test_a_quality_manager_changes_a_clinics_language_with_a_reason(qm_client):
    clinic = ClinicFactory(language="en")
    response = qm_client.patch(
        f"{API}/clinics/{clinic.pk}/",
        {"language": "de", "reason": "the clinic asked for German notices"},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["language"] == "de"
    clinic.refresh_from_db()
    assert clinic.language == "de"


def test_clinic_staff_cannot_change_a_clinics_language(clinic_administrator, clinic, api_client):
    api_client.force_authenticate(clinic_administrator)
    response = api_client.patch(
        f"{API}/clinics/{clinic.pk}/", {"language": "de", "reason": "x"}, format="json"
    )
    assert response.status_code == 403
    clinic.refresh_from_db()
    assert clinic.language == "en"


def test_the_admin_shows_and_changes_the_language(quality_manager):
    clinic = ClinicFactory(language="en", time_zone="UTC")
    client = admin_browser(quality_manager)
    url = reverse("admin:providers_clinic_change", args=[clinic.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert 'name="language"' in page.content.decode()
    data = {
        "name": clinic.name,
        "address": clinic.address,
        "jurisdiction": clinic.jurisdiction,
        "consent_required": "on",
        "time_zone": "UTC",
    }

    refused_page = client.post(url, {**data, "language": "fr", "reason": "x"})
    assert "language" in refused_page.context["adminform"].form.errors
    assert Clinic.objects.get(pk=clinic.pk).language == "en"

    response = client.post(url, {**data, "language": "de", "reason": "German notices"})
    assert response.status_code == 302
    assert Clinic.objects.get(pk=clinic.pk).language == "de"
