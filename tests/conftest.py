from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from providers.models import Role
from tests.factories import ClinicFactory, MembershipFactory, UserFactory


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def quality_manager(db):
    user = UserFactory(username="qm", first_name="Quinn", last_name="Manager")
    MembershipFactory(user=user, role=Role.QUALITY_MANAGER, clinic=None)
    return user


@pytest.fixture
def auditor(db):
    user = UserFactory(username="auditor")
    MembershipFactory(user=user, role=Role.AUDITOR, clinic=None)
    return user


@pytest.fixture
def clinic(db):
    return ClinicFactory()


@pytest.fixture
def clinician(db, clinic):
    user = UserFactory(username="clinician")
    MembershipFactory(user=user, role=Role.CLINICIAN, clinic=clinic)
    return user


@pytest.fixture
def clinic_administrator(db, clinic):
    user = UserFactory(username="clinicadmin")
    MembershipFactory(user=user, role=Role.CLINIC_ADMINISTRATOR, clinic=clinic)
    return user


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def qm_client(api_client, quality_manager):
    api_client.force_authenticate(quality_manager)
    return api_client
