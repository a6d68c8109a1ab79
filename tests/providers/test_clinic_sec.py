"""Whether a clinic requires the Single European Code on human-derived lots: by default what its
jurisdiction's law asks (EU and EEA states), stated otherwise where the clinic knows better, and
changed with a reason like any other field."""

from __future__ import annotations

import pytest
from pghistory.models import Events

from common.validators import SEC_JURISDICTIONS, sec_required_in
from providers.models import Clinic
from providers.services import clinic_create, clinic_update
from tests.api_helpers import API, error_codes, error_fields
from tests.openapi_helpers import assert_matches_schema

pytestmark = pytest.mark.django_db


def create(actor, jurisdiction: str, **fields) -> Clinic:
    return clinic_create(
        actor=actor,
        name=f"Clinic in {jurisdiction}",
        address="1 Main Street",
        jurisdiction=jurisdiction,
        contacts=[],
        **fields,
    )


@pytest.mark.parametrize("jurisdiction", sorted(SEC_JURISDICTIONS))
def test_every_eu_and_eea_state_requires_the_code(jurisdiction):
    assert sec_required_in(jurisdiction)


@pytest.mark.parametrize(
    ("jurisdiction", "required"),
    [
        ("DE", True),
        ("DE-BY", True),
        ("FR-IDF", True),
        ("NO", True),
        ("US", False),
        ("US-TX", False),
        ("CH", False),  # Switzerland is in neither the EU nor the EEA
        ("GB", False),
        ("TR", False),
    ],
)
def test_a_new_clinic_follows_its_jurisdictions_law(quality_manager, jurisdiction, required):
    clinic = create(quality_manager, jurisdiction)

    assert clinic.requires_sec is required
    assert Clinic.objects.get(pk=clinic.pk).requires_sec is required


@pytest.mark.parametrize(("jurisdiction", "stated"), [("DE", False), ("US-TX", True)])
def test_a_stated_requirement_wins_over_the_default(quality_manager, jurisdiction, stated):
    clinic = create(quality_manager, jurisdiction, requires_sec=stated)

    assert Clinic.objects.get(pk=clinic.pk).requires_sec is stated


def test_the_requirement_is_changed_with_its_reason_in_the_history(quality_manager):
    clinic = create(quality_manager, "US-TX")

    clinic_update(
        actor=quality_manager,
        clinic=clinic,
        reason="Now supplies an EU tissue establishment",
        requires_sec=True,
    )

    assert Clinic.objects.get(pk=clinic.pk).requires_sec is True
    event = Events.objects.filter(pgh_obj_model="providers.Clinic").order_by("-pgh_id").first()
    assert event.pgh_diff == {"requires_sec": [False, True]}
    assert event.pgh_context["reason"] == "Now supplies an EU tissue establishment"


def test_the_api_shows_creates_and_changes_the_requirement(qm_client):
    body = {"name": "Hautzentrum", "address": "Zeil 10", "jurisdiction": "DE"}

    created = qm_client.post(f"{API}/clinics/", body, format="json")

    assert created.status_code == 201, created.content
    assert_matches_schema(created, "post", "/api/v1/clinics/")
    assert created.json()["requires_sec"] is True
    clinic_id = created.json()["id"]
    changed = qm_client.patch(
        f"{API}/clinics/{clinic_id}/",
        {"requires_sec": False, "reason": "Synthetic products only"},
        format="json",
    )
    assert changed.status_code == 200, changed.content
    assert qm_client.get(f"{API}/clinics/{clinic_id}/").json()["requires_sec"] is False


def test_the_api_takes_a_stated_requirement_at_creation(qm_client):
    body = {"name": "Austin Skin", "address": "1 Main", "jurisdiction": "US-TX"}

    created = qm_client.post(f"{API}/clinics/", {**body, "requires_sec": True}, format="json")

    assert created.status_code == 201
    assert created.json()["requires_sec"] is True


@pytest.mark.parametrize("value", ["maybe", 2, [True]])
def test_the_api_refuses_a_requirement_that_is_not_yes_or_no(qm_client, value):
    body = {"name": "Hautzentrum", "address": "Zeil 10", "jurisdiction": "DE"}

    response = qm_client.post(f"{API}/clinics/", {**body, "requires_sec": value}, format="json")

    assert response.status_code == 400
    assert error_codes(response) == ["invalid"]
    assert error_fields(response) == ["requires_sec"]
    assert not Clinic.objects.exists()
