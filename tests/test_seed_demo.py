"""`manage.py seed_demo` tells the demo story through the services and can run again and again."""

from __future__ import annotations

import datetime
import io
import re

import pytest
from django.apps import apps
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.test import RequestFactory, override_settings
from django.utils import timezone
from pghistory.models import Events

from lots.models import Certificate, Lot, LotStatus, SourceKind, SourceRestriction
from lots.selectors import lot_release_check
from providers.models import (
    Clinic,
    ClinicContact,
    ClinicPractitioner,
    Licence,
    Membership,
    Role,
)
from recalls.models import (
    Acknowledgement,
    Notification,
    NotificationStatus,
    Recall,
    RecallClass,
    RecallDepth,
    RecallStatus,
)
from recalls.selectors import recall_effectiveness
from stock.models import MovementKind, Receipt, StockBalance, StockMovement, StockState
from stock.selectors import stock_balances_disagreeing
from treatments.models import (
    AdverseEvent,
    ConsentText,
    Patient,
    PatientContact,
    Treatment,
    TreatmentLine,
)

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
        *apps.get_app_config("recalls").get_models(),
        get_user_model(),
    ]
    return {model._meta.label: model.objects.count() for model in models}


def sign_in_request():
    """django-axes checks every sign-in against the lock-out, which needs the request."""
    return RequestFactory().post("/admin/login/")


def _logins(output: str) -> dict[str, tuple[str, str]]:
    logins = {}
    for role in Role:
        match = re.search(rf"^\s+{re.escape(str(role.label))}\s+(\S+)\s+(\S+)\s*$", output, re.M)
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
        user = authenticate(sign_in_request(), username=username, password=password)
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


# ---------------------------------------------------------------------------------------------
# Recalls


def test_an_open_recall_is_half_acknowledged_with_its_notices_sent(seeded):
    recall = Recall.objects.get(is_drill=False)
    assert (recall.status, recall.recall_class, recall.depth) == (
        RecallStatus.OPEN,
        RecallClass.CLASS_II,
        RecallDepth.PATIENT,
    )
    assert recall.opened_by.username == _logins(seeded["second"])[Role.QUALITY_MANAGER][0]
    assert recall.reason and recall.hazard and recall.instructions
    lot = recall.recall_lots.get().lot
    assert lot.status == LotStatus.RECALLED

    figures = recall_effectiveness(recall=recall)
    assert figures.clinics_total >= 2
    assert 0 < figures.clinics_acknowledged < figures.clinics_total
    assert figures.notices.total > 0 and figures.notices.sent == figures.notices.total
    assert recall.first_notice_sent_at is not None and recall.fully_acknowledged_at is None
    assert figures.patients_exposed > 0

    acknowledged = [clinic for clinic in figures.clinics if clinic.acknowledged]
    waiting = [clinic for clinic in figures.clinics if not clinic.acknowledged]
    for clinic in acknowledged:
        # Acknowledged by the clinic's own administrator, every unit accounted for, patients called.
        acknowledgement = Acknowledgement.objects.get(recall=recall, clinic_id=clinic.clinic_id)
        assert Membership.objects.filter(
            user=acknowledgement.acknowledged_by,
            clinic_id=clinic.clinic_id,
            role=Role.CLINIC_ADMINISTRATOR,
        ).exists()
        assert clinic.units_held > 0 and clinic.units_accounted == clinic.units_held
        assert clinic.patients_attempted >= 1 and clinic.patients_contacted >= 1
        assert not StockBalance.objects.filter(
            clinic_id=clinic.clinic_id, lot=lot, state=StockState.BLOCKED, quantity__gt=0
        ).exists()
    for clinic in waiting:
        # The clinic that has not answered yet still has its vials, blocked.
        assert clinic.units_accounted == 0 and clinic.patients_attempted == 0
        assert StockBalance.objects.filter(
            clinic_id=clinic.clinic_id, lot=lot, state=StockState.BLOCKED, quantity__gt=0
        ).exists()
    assert stock_balances_disagreeing() == []
    # The lot the README's examples scan, treat with and trace is left usable.
    assert Lot.objects.get(lot_number="HLX-A2501").status == LotStatus.RELEASED
    assert "waiting for: " in seeded["second"]


def test_a_drill_is_closed_by_the_quality_manager_with_its_timing_report(seeded):
    drill = Recall.objects.get(is_drill=True)
    assert drill.status == RecallStatus.CLOSED and not drill.close_override
    assert drill.closed_by.username == _logins(seeded["second"])[Role.QUALITY_MANAGER][0]
    lot = drill.recall_lots.get().lot
    assert lot.status == LotStatus.RELEASED, "a drill changes no lot"
    assert lot != Recall.objects.get(is_drill=False).recall_lots.get().lot

    figures = recall_effectiveness(recall=drill)
    assert figures.clinics_total >= 2 and figures.clinics_acknowledged == figures.clinics_total
    assert figures.notices.sent == figures.notices.total > 0
    assert figures.units_held > 0 and figures.units_outstanding == 0
    # A drill's dispositions are records: no stock left the shelves.
    assert not StockMovement.objects.filter(
        lot=lot, kind__in=[MovementKind.RETURN, MovementKind.DESTRUCTION]
    ).exists()
    timing = figures.timing
    moments = [
        timing.seconds_to_first_notice,
        timing.seconds_to_all_notices_sent,
        timing.seconds_to_full_acknowledgement,
        timing.seconds_to_close,
    ]
    assert None not in moments
    assert 0 <= moments[0] <= moments[1] <= moments[2] <= moments[3]
    assert re.search(
        rf"^\s+{drill.reference}\s+closed, drill.*\n\s+timing from opening: all notices sent "
        r"[\d.]+ s, all acknowledged [\d.]+ s, closed [\d.]+ s$",
        seeded["second"],
        re.M,
    )


def test_second_run_opens_no_recall_and_sends_or_acknowledges_nothing_again(seeded):
    after_first, after_second = seeded["counts"]
    for label in (
        "recalls.Recall",
        "recalls.RecallExposure",
        "recalls.RecallStock",
        "recalls.Notification",
        "recalls.Acknowledgement",
        "recalls.StockDisposition",
        "recalls.PatientContactAttempt",
        "recalls.RecallEvent",
    ):
        assert after_second[label] == after_first[label], label
    assert after_first["recalls.Recall"] == 2
    assert after_first["recalls.Acknowledgement"] == 3
    assert "delivered with" in seeded["first"]
    assert "delivered with" not in seeded["second"]
    assert not Notification.objects.exclude(status=NotificationStatus.SENT).exists()


def test_benchmark_demo_mode_times_a_recall_over_the_demo_data_and_leaves_it_as_it_was(seeded):
    recalls_before = Recall.objects.count()
    out = io.StringIO()
    call_command("benchmark_recall", "--demo", "--repeat", "2", stdout=out)
    output = out.getvalue()

    lot_number = re.search(r"^demo data: lot (\S+) ", output, re.M).group(1)
    figures = re.search(
        r"^recall_open: exposures frozen (\d+), notices written (\d+), clinic stock rows "
        r"frozen (\d+); median [\d.]+ s, min [\d.]+ s over 2 runs",
        output,
        re.M,
    )
    assert figures, output
    exposures, notices, stock_rows = map(int, figures.groups())
    lot = Lot.objects.get(lot_number=lot_number)
    lines = TreatmentLine.objects.filter(lot=lot)
    # The default is the busiest lot not in an open recall.
    assert (
        exposures
        == lines.count()
        == max(
            candidate.treatment_lines.count()
            for candidate in Lot.objects.exclude(recall_lots__active=True)
        )
    )
    reached = {*lines.values_list("treatment__clinic", flat=True)} | {
        *StockBalance.objects.filter(lot=lot, quantity__gt=0).values_list("clinic", flat=True)
    }
    assert notices == ClinicContact.objects.filter(clinic__in=reached, active=True).count()
    assert stock_rows == len(
        {*StockBalance.objects.filter(lot=lot, quantity__gt=0).values_list("clinic", flat=True)}
    )
    # Every run was rolled back: no recall, the lot still released, the demo login unchanged.
    assert Recall.objects.count() == recalls_before
    assert lot.status == LotStatus.RELEASED
    username, password = _logins(seeded["second"])[Role.QUALITY_MANAGER]
    assert authenticate(sign_in_request(), username=username, password=password) is not None


@pytest.mark.parametrize(
    ("option", "value"), [("--exposures", "0"), ("--exposures", "-2"), ("--clinics", "0")]
)
def test_benchmark_recall_refuses_a_size_below_one_naming_it_before_generating(option, value):
    lots_before = Lot.objects.count()
    with pytest.raises(CommandError, match=f"{option} must be at least 1"):
        call_command("benchmark_recall", option, value, stdout=io.StringIO())
    assert Lot.objects.count() == lots_before
