"""`manage.py seed_demo` tells the demo story through the services and can run again and again."""

from __future__ import annotations

import io
import re

import pytest
from django.apps import apps
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command
from pghistory.models import Events

from lots.models import Certificate, Lot, LotStatus
from lots.selectors import lot_release_check
from providers.models import Clinic, Membership, Role

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _seed() -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def _row_counts() -> dict[str, int]:
    """Rows of every providers and lots model, their history event tables included."""
    models = [
        *apps.get_app_config("providers").get_models(),
        *apps.get_app_config("lots").get_models(),
        get_user_model(),
    ]
    return {model._meta.label: model.objects.count() for model in models}


def _logins(output: str) -> dict[str, tuple[str, str]]:
    logins = {}
    for role in Role:
        match = re.search(rf"^\s+{re.escape(role.label)}\s+(\S+)\s+(\S+)\s*$", output, re.M)
        assert match, f"no login line for {role.label}"
        logins[role.value] = (match.group(1), match.group(2))
    return logins


@pytest.fixture
def seeded(db):
    first = _seed()
    after_first = _row_counts()
    second = _seed()
    return {"first": first, "second": second, "counts": (after_first, _row_counts())}


def test_second_run_creates_nothing(seeded):
    after_first, after_second = seeded["counts"]
    assert after_second == after_first
    assert after_first["lots.Lot"] >= 5
    assert after_first["lots.LotEvent"] > after_first["lots.Lot"]


def test_lots_exist_in_every_status(seeded):
    statuses = set(Lot.objects.values_list("status", flat=True))
    assert statuses >= {
        LotStatus.QUARANTINED,
        LotStatus.RELEASED,
        LotStatus.REJECTED,
        LotStatus.ON_HOLD,
    }


def test_one_lot_is_refused_release_for_several_reasons_and_the_output_says_so(seeded):
    lot = Lot.objects.get(lot_number="PXL-P2501")
    codes = {problem.code for problem in lot_release_check(lot=lot).problems}
    assert codes >= {
        "donor_not_eligible",
        "donor_marker_reactive",
        "qc_result_missing",
        "qc_out_of_spec",
        "coa_missing",
        "gmp_certificate_expired",
    }
    for output in (seeded["first"], seeded["second"]):
        assert "Release of PXL-P2501 refused" in output
        for code in codes:
            assert f"- {code}:" in output


def test_output_has_one_working_login_per_role_and_the_urls(seeded):
    first, second = _logins(seeded["first"]), _logins(seeded["second"])
    assert {username for username, _ in second.values()} == {u for u, _ in first.values()}
    for role, (username, password) in second.items():
        user = authenticate(username=username, password=password)
        assert user is not None and user.is_staff, role
        assert Membership.objects.filter(user=user, role=role, active=True).exists(), role
        assert first[role][1] != password, "each run sets a fresh password"
    assert "http://127.0.0.1:8000/admin/" in seeded["second"]
    assert "/api/docs/" in seeded["second"]


def test_history_rows_carry_the_demo_quality_manager_and_a_reason(seeded):
    quality_manager = get_user_model().objects.get(
        username=_logins(seeded["second"])["quality_manager"][0]
    )
    lot = Lot.objects.get(lot_number="HLX-A2502")
    events = list(Events.objects.tracks(lot).order_by("pgh_created_at"))
    assert [event.pgh_label for event in events] == ["insert", "update", "update"]
    assert {event.pgh_context["user"] for event in events} == {quality_manager.pk}
    assert "erythema" in events[-1].pgh_context["reason"]


def test_story_covers_clinics_certificates_and_the_expired_gmp(seeded):
    assert set(Clinic.objects.values_list("jurisdiction", flat=True)) == {"US-TX", "US-CA", "DE"}
    assert all(clinic.contacts.exists() for clinic in Clinic.objects.all())
    expired = Certificate.objects.get(number="GMP-PXL-2022")
    assert expired.valid_until < expired.uploaded_at.date()
    assert all(certificate.file.read(5) == b"%PDF-" for certificate in Certificate.objects.all())
