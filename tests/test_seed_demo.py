"""`manage.py seed_demo` tells the demo story through the services and can run again and again."""

from __future__ import annotations

import datetime
import io
import re

import pytest
from django.apps import apps
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command
from django.db import transaction
from django.test import override_settings
from django.utils import timezone
from pghistory.models import Events

from lots.models import Certificate, Lot, LotStatus, SourceKind, SourceRestriction
from lots.selectors import lot_release_check
from providers.models import Clinic, ClinicPractitioner, Licence, Membership, Role
from stock.models import MovementKind, Receipt, StockMovement, StockState
from stock.selectors import stock_balances_disagreeing
from treatments.models import AdverseEvent, ConsentText, Patient, PatientContact, Treatment

pytestmark = pytest.mark.django_db

FAST_HASHING = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = FAST_HASHING


def _seed() -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def _row_counts() -> dict[str, int]:
    """Rows of every model the seed writes to, their history event tables included."""
    models = [
        *apps.get_app_config("providers").get_models(),
        *apps.get_app_config("lots").get_models(),
        *apps.get_app_config("stock").get_models(),
        *apps.get_app_config("treatments").get_models(),
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


@pytest.fixture(scope="module")
def seeded(django_db_setup, django_db_blocker, tmp_path_factory):
    """The seed run twice, once for the whole module (it writes a few hundred treatments): inside
    a transaction that is rolled back afterwards, so every test sees the same seeded database
    (each in its own savepoint) and nothing is left for other modules."""
    media_root = str(tmp_path_factory.mktemp("media"))
    with (
        django_db_blocker.unblock(),
        override_settings(PASSWORD_HASHERS=FAST_HASHING, MEDIA_ROOT=media_root),
        transaction.atomic(),
    ):
        first = _seed()
        after_first = _row_counts()
        second = _seed()
        yield {
            "first": first,
            "second": second,
            "counts": (after_first, _row_counts()),
            "media_root": media_root,
        }
        transaction.set_rollback(True)


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


def test_story_covers_clinics_certificates_and_the_expired_gmp(seeded, settings):
    settings.MEDIA_ROOT = seeded["media_root"]
    assert set(Clinic.objects.values_list("jurisdiction", flat=True)) == {"US-TX", "US-CA", "DE"}
    assert all(clinic.contacts.exists() for clinic in Clinic.objects.all())
    expired = Certificate.objects.get(number="GMP-PXL-2022")
    assert expired.valid_until < expired.uploaded_at.date()
    assert all(certificate.file.read(5) == b"%PDF-" for certificate in Certificate.objects.all())


# ---------------------------------------------------------------------------------------------
# Stock and treatments


def test_second_run_adds_no_stock_patients_or_treatments(seeded):
    after_first, after_second = seeded["counts"]
    for label in (
        "stock.Receipt",
        "stock.StockMovement",
        "stock.StockBalance",
        "treatments.Patient",
        "treatments.PatientContact",
        "treatments.Treatment",
        "treatments.TreatmentLine",
        "treatments.AdverseEvent",
        "treatments.TreatmentEvent",
        "providers.ClinicPractitioner",
        "lots.SourceRestriction",
    ):
        assert after_second[label] == after_first[label], label
    assert "already there: nothing added" in seeded["second"]


def test_a_few_hundred_treatments_by_several_practitioners_over_months(seeded):
    treatments = Treatment.objects.all()
    assert treatments.count() >= 200
    assert treatments.values("practitioner").distinct().count() >= 4
    assert treatments.values("clinic").distinct().count() == 3
    now = timezone.now()
    oldest = treatments.order_by("performed_at").first().performed_at
    assert now - oldest > datetime.timedelta(days=90)
    assert treatments.filter(performed_at__gt=now).count() == 0
    assert treatments.filter(consent_text__isnull=True).count() == 0
    # Every treatment is after its lots were made and received at the clinic.
    for treatment in treatments.prefetch_related("lines__lot"):
        for line in treatment.lines.all():
            assert line.lot.manufactured_on < treatment.performed_at.date()
            assert Receipt.objects.filter(
                clinic=treatment.clinic, lot=line.lot, received_at__lt=treatment.performed_at
            ).exists()
    assert PatientContact.objects.count() == Patient.objects.count() >= 90


def test_receipts_at_several_clinics_one_quarantined_after_a_temperature_excursion(seeded):
    assert Receipt.objects.values("clinic").distinct().count() >= 2
    quarantined = Receipt.objects.get(decision="quarantine")
    product = quarantined.lot.product
    assert quarantined.transport_max_celsius > product.storage_max_celsius
    assert stock_balances_disagreeing() == []


def test_a_transfer_a_wastage_and_adverse_events_exist(seeded):
    transfer = StockMovement.objects.get(kind=MovementKind.TRANSFER_OUT)
    arrived = StockMovement.objects.get(kind=MovementKind.TRANSFER_IN)
    assert (transfer.counterpart_clinic_id, arrived.clinic_id) == (
        arrived.clinic_id,
        transfer.counterpart_clinic_id,
    )
    assert StockMovement.objects.filter(
        kind=MovementKind.QUARANTINE_ACCEPT, clinic=arrived.clinic, state=StockState.ACCEPTED
    ).exists()
    assert StockMovement.objects.filter(kind=MovementKind.WASTAGE).exists()
    events = AdverseEvent.objects.select_related("lot")
    assert events.count() >= 1
    assert {event.lot.lot_number for event in events} == {"HLX-A2502"}
    assert Lot.objects.get(lot_number="HLX-A2502").status == LotStatus.ON_HOLD


def test_practitioners_are_linked_and_one_licence_has_lapsed(seeded):
    today = timezone.localdate()
    assert Licence.objects.filter(valid_until__lt=today).exists()
    lapsed = Licence.objects.get(valid_until__lt=today).practitioner
    assert not Treatment.objects.filter(
        practitioner=lapsed, performed_at__date__gt=lapsed.licences.get().valid_until
    ).exists()
    username = _logins(seeded["second"])[Role.CLINICIAN][0]
    clinician = get_user_model().objects.get(username=username)
    membership = Membership.objects.get(user=clinician, role=Role.CLINICIAN)
    assert ClinicPractitioner.objects.filter(
        clinic=membership.clinic, practitioner__user=clinician, active=True
    ).exists()
    assert Treatment.objects.filter(recorded_by=clinician).exists()


def test_the_de_clinic_bans_human_derived_products_for_cosmetic_use(seeded):
    restriction = SourceRestriction.objects.get(jurisdiction="DE", source_kind=SourceKind.HUMAN)
    assert restriction.scope == "cosmetic_uses"
    de = Clinic.objects.get(jurisdiction="DE")
    assert not Treatment.objects.filter(
        clinic=de,
        lines__lot__product__source_kind=SourceKind.HUMAN,
        indication__in=["skin_rejuvenation", "hair"],
    ).exists()
    event = Events.objects.tracks(restriction).get()
    assert event.pgh_context["reason"]


def test_the_consent_text_says_no_exosome_product_is_fda_approved(seeded):
    consent = ConsentText.objects.get(code="exosome-informed-consent", version=1)
    assert "No exosome product is approved by the U.S. Food and Drug Administration" in (
        consent.body
    )


def test_output_summarises_the_counts(seeded):
    for line in ("treatments", "patients", "transfers", "wastage write-offs", "adverse events"):
        assert re.search(rf"^\s+{line}\s+\d+", seeded["first"], re.M), line
    assert re.search(rf"^\s+treatments\s+{Treatment.objects.count()}$", seeded["second"], re.M)
