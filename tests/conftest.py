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


@pytest.fixture(autouse=True)
def generous_throttles(settings):
    """The API's throttles count per address and account in a cache that outlives a test; the
    suite makes more requests a minute than any client should. Throttle tests set their own."""
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            "anonymous": "100000/minute",
            "user": "100000/minute",
            "token_obtain": "100000/minute",
        },
    }


_signing_failures_seen = 0


@pytest.fixture(autouse=True)
def _forget_signing_attempts(django_db_blocker):
    """A wrong signing password is recorded on a connection of its own and committed (see
    common.lockout), so no test transaction rolls it back: those a test left are forgotten
    before the next one starts (before, not after: at teardown the test's transaction may still
    hold a lock on them), or one test's wrong passwords would lock out the next test's user."""
    global _signing_failures_seen
    from common import lockout

    if lockout.recorded_failures != _signing_failures_seen:
        from axes.models import AccessAttempt

        with django_db_blocker.unblock():
            lockout.in_own_transaction(
                lambda: AccessAttempt.objects.filter(user_agent=lockout.SIGNING_AGENT).delete(),
                default=None,
            )
        _signing_failures_seen = lockout.recorded_failures


@pytest.fixture
def reference_data(db):
    """Transactional tests flush every table, including the data migrations seeded; put the marker
    panel and QC specification back."""
    from django.apps import apps

    from lots.reference_data import seed_reference_data

    seed_reference_data(apps)


# ---------------------------------------------------------------------------------------------
# A real browser: Debian's Chromium driven by Playwright (dev.py test installs it when missing).


def _chromium_executable() -> str:
    import os
    import shutil

    path = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium")
    path = path or shutil.which("chromium-browser")
    if not path:
        pytest.fail(
            "Browser tests need Chromium: apt-get install chromium (Debian), or set CHROMIUM_PATH",
            pytrace=False,
        )
    return path


@pytest.fixture
def page(live_server, monkeypatch):
    """A Chromium page against pytest-django's live server, started and stopped per test.

    Playwright's sync API keeps an event loop running on this thread while it is started, and
    Django refuses ORM calls on a thread with a running loop. Started after the database fixtures
    and stopped before their teardown, and with the check lifted only meanwhile, the loop never
    meets another test's database work; the test's own ORM calls are plain synchronous ones.
    While the loop runs, asgiref hands the test body a connection of its own (per context, not
    per thread): it is closed before the loop stops, or it would outlive the test database."""
    from django.db import connections
    from playwright.sync_api import sync_playwright

    executable = _chromium_executable()
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        context = browser.new_context(base_url=live_server.url, locale="en-GB")
        context.set_default_timeout(15_000)
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()
            connections.close_all()
