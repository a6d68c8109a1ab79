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


@pytest.fixture(autouse=True)
def fast_password_hasher(settings):
    """PBKDF2 takes about half a second per hash or check on this machine, and every factory user
    and every signature needs one. Tests use a fast hasher (as cookiecutter-django does); the
    signature rules do not depend on the hasher, and production keeps Django's default."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def reference_data(db):
    """Transactional tests flush every table, including the data migrations seeded; put the marker
    panel and QC specification back."""
    from django.apps import apps

    from lots.reference_data import seed_reference_data

    seed_reference_data(apps)
