"""A retrospective release: a lot released long ago, entered with its real release date. Every
rule is judged as of that date, the signature is given now, and it is marked as retrospective."""

from __future__ import annotations

import datetime

import pytest
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from django.utils import timezone
from pghistory.models import Events

from common.errors import DomainError
from lots.models import CertificateKind, Lot, LotDonor, LotStatus, LotStatusChange, SourceKind
from lots.selectors import lot_use_problems
from lots.services import lot_hold, lot_release
from recalls.dossier import lot_dossier_html
from signatures.models import Signature
from tests.admin_helpers import admin_client
from tests.api_helpers import API, error_codes, error_fields
from tests.factories import (
    PASSWORD,
    ClinicFactory,
    LotFactory,
    ManufacturerFactory,
    ProductFactory,
    eligible_donor,
    record_passing_qc,
    store_certificate,
)
from tests.openapi_helpers import assert_matches_schema

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]

MADE = datetime.date(2018, 1, 10)
EXPIRES = datetime.date(2019, 1, 10)
RELEASED = datetime.date(2018, 3, 1)


def historical_lot(
    quality_manager,
    *,
    gmp_until: datetime.date | None = datetime.date(2019, 12, 31),
    source_kind: str = SourceKind.HUMAN,
    expires_on: datetime.date = EXPIRES,
) -> Lot:
    """A 2018 lot with the evidence it was released on: donor tested and QC done in early 2018, a
    CoA from January 2018, and a GMP certificate valid then and long expired now."""
    manufacturer = ManufacturerFactory()
    tissue = "adipose" if source_kind == SourceKind.HUMAN else ""
    product = ProductFactory(manufacturer=manufacturer, source_kind=source_kind, tissue=tissue)
    lot = LotFactory(
        product=product,
        manufactured_on=MADE,
        expires_on=expires_on,
        created_by=quality_manager,
    )
    if product.is_human_derived:
        donor = eligible_donor(
            decided_by=quality_manager,
            tissue=product.tissue,
            collection_date=datetime.date(2017, 12, 1),
        )
        LotDonor.objects.create(lot=lot, donor=donor)
    record_passing_qc(lot)
    store_certificate(
        kind=CertificateKind.COA,
        manufacturer=manufacturer,
        lot=lot,
        uploaded_by=quality_manager,
        valid_from=datetime.date(2018, 1, 15),
        number=f"COA-{lot.lot_number}",
    )
    store_certificate(
        kind=CertificateKind.GMP,
        manufacturer=manufacturer,
        uploaded_by=quality_manager,
        valid_from=datetime.date(2017, 1, 1),
        valid_until=gmp_until,
        number=f"GMP-{manufacturer.pk}",
    )
    return lot


def release(actor, lot, **overrides) -> LotStatusChange:
    arguments = {
        "actor": actor,
        "lot_id": lot.pk,
        "password": PASSWORD,
        "meaning": "approval",
        "reason": "Entered from the 2018 batch record: released by QA on 1 March 2018.",
        "effective_date": RELEASED,
    }
    arguments.update(overrides)
    return lot_release(**arguments)


def refusal(actor, lot, **overrides) -> DomainError:
    with pytest.raises(DomainError) as raised:
        release(actor, lot, **overrides)
    return raised.value


def test_certificate_valid_then_is_accepted_although_expired_now(quality_manager):
    lot = historical_lot(quality_manager)
    before = timezone.now()

    change = release(quality_manager, lot)

    lot.refresh_from_db()
    assert lot.status == LotStatus.RELEASED
    assert change.retrospective is True
    assert change.effective_at == datetime.datetime(2018, 3, 1, tzinfo=datetime.UTC)
    assert change.signed_at >= before
    assert lot.release_effective_at == change.effective_at
    stored = LotStatusChange.objects.get(pk=change.pk)
    assert (stored.effective_at, stored.retrospective) == (change.effective_at, True)


def test_the_same_lot_is_refused_today(quality_manager):
    lot = historical_lot(quality_manager)

    codes = refusal(quality_manager, lot, effective_date=None).codes

    assert {"lot_expired", "gmp_certificate_expired"} <= set(codes)
    assert Lot.objects.get(pk=lot.pk).status == LotStatus.QUARANTINED


def test_a_lot_expired_on_the_effective_date_is_refused(quality_manager):
    lot = historical_lot(quality_manager)

    error = refusal(quality_manager, lot, effective_date=datetime.date(2019, 1, 11))

    assert "lot_expired" in error.codes
    assert LotStatusChange.objects.filter(lot=lot).count() == 0


def test_a_lot_is_usable_through_its_expiry_day(quality_manager):
    lot = historical_lot(quality_manager)

    change = release(quality_manager, lot, effective_date=EXPIRES)

    assert change.retrospective is True


def test_a_certificate_not_valid_on_the_effective_date_is_refused(quality_manager):
    lot = historical_lot(quality_manager, gmp_until=datetime.date(2018, 2, 1))

    error = refusal(quality_manager, lot)

    assert error.codes == ["gmp_certificate_expired"]


def test_an_effective_date_in_the_future_is_refused_naming_the_field(quality_manager):
    lot = historical_lot(quality_manager)

    error = refusal(
        quality_manager, lot, effective_date=timezone.now() + datetime.timedelta(hours=2)
    )

    assert error.status == 400
    assert error.codes == ["release_effective_in_future"]
    assert [problem.field for problem in error.problems] == ["effective_date"]


def test_an_effective_date_before_manufacture_is_refused(quality_manager):
    lot = historical_lot(quality_manager)

    error = refusal(quality_manager, lot, effective_date=datetime.date(2018, 1, 9))

    assert error.codes == ["release_effective_before_manufacture"]
    assert error.problems[0].field == "effective_date"


def test_evidence_dated_after_the_effective_date_is_refused(quality_manager):
    lot = historical_lot(quality_manager)

    # QC results are dated on the day of manufacture; the CoA on 15 January.
    error = refusal(quality_manager, lot, effective_date=datetime.date(2018, 1, 12))

    assert set(error.codes) == {"release_evidence_after_effective_date"}
    assert "coa" in {problem.field for problem in error.problems}


def test_a_release_cannot_take_effect_before_the_lots_latest_change(quality_manager):
    lot = historical_lot(quality_manager)
    release(quality_manager, lot, effective_date=datetime.date(2018, 6, 1))
    lot_hold(
        actor=quality_manager,
        lot_id=lot.pk,
        password=PASSWORD,
        meaning="responsibility",
        reason="Complaint under investigation.",
    )

    error = refusal(quality_manager, lot)

    assert error.codes == ["release_effective_before_last_change"]


def test_a_normal_release_is_unchanged(quality_manager):
    lot = historical_lot(quality_manager, gmp_until=None, expires_on=timezone.localdate())

    change = release(quality_manager, lot, effective_date=None)

    assert change.retrospective is False
    assert change.effective_at == change.signed_at
    lot.refresh_from_db()
    assert lot.release_effective_at == change.signed_at


def test_the_retrospective_release_is_signed_now_with_its_effective_date(quality_manager):
    lot = historical_lot(quality_manager)

    change = release(quality_manager, lot)

    signature = Signature.objects.get(record_id=change.pk, kind="lot_release")
    assert signature.signed_at == change.signed_at
    assert signature.content["act"]["retrospective"] is True
    assert signature.content["act"]["effective_at"].startswith("2018-03-01")


def test_the_history_names_the_effective_date(quality_manager):
    lot = historical_lot(quality_manager)

    change = release(quality_manager, lot)

    event = Events.objects.filter(pgh_obj_model="lots.LotStatusChange", pgh_obj_id=change.pk).get()
    assert event.pgh_context["effective_at"] == change.effective_at.isoformat()
    assert event.pgh_data["retrospective"] is True


def test_the_database_refuses_an_effective_time_after_signing(quality_manager):
    lot = historical_lot(quality_manager)
    change = release(quality_manager, lot)
    later = LotStatusChange(
        lot=lot,
        action="release",
        from_status="on_hold",
        to_status="released",
        signed_by=quality_manager,
        signer_name="Q",
        signed_at=change.signed_at,
        effective_at=change.signed_at + datetime.timedelta(days=1),
        retrospective=True,
        meaning="approval",
        reason="x",
        record_digest="0" * 64,
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        later.save()


@pytest.mark.parametrize("role", ["origin", "replica"])
def test_an_insert_without_an_effective_time_takes_the_signing_time(quality_manager, role):
    # A bulk loader writes with ordinary triggers off (replica); the default fires there too.
    lot = historical_lot(quality_manager)
    signed_at = timezone.now()

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL session_replication_role = {role}")
        cursor.execute(
            "INSERT INTO lots_lotstatuschange (lot_id, action, from_status, to_status, "
            "signed_by_id, signer_name, signed_at, meaning, reason, record_digest) "
            "VALUES (%s, 'hold', 'released', 'on_hold', %s, 'Q', %s, 'review', 'x', %s) "
            "RETURNING id",
            [lot.pk, quality_manager.pk, signed_at, "0" * 64],
        )
        (change_id,) = cursor.fetchone()

    stored = LotStatusChange.objects.get(pk=change_id)
    assert (stored.effective_at, stored.retrospective) == (signed_at, False)


def test_a_use_before_the_effective_date_is_refused_and_one_after_accepted(quality_manager):
    lot = historical_lot(quality_manager)
    release(quality_manager, lot)
    lot.refresh_from_db()
    clinic = ClinicFactory()

    before = lot_use_problems(
        lot=lot, clinic=clinic, day=datetime.date(2018, 2, 28), where="lines[0].lot"
    )
    on_the_day = lot_use_problems(lot=lot, clinic=clinic, day=RELEASED, where="lines[0].lot")

    assert [(p.code, p.field) for p in before] == [("treatment_before_release", "lines[0].lot")]
    assert on_the_day == []


# ---------------------------------------------------------------------------------------------
# API


def body(**overrides):
    return {
        "password": PASSWORD,
        "meaning": "approval",
        "reason": "Entered from the 2018 batch record.",
        "effective_date": "2018-03-01",
        **overrides,
    }


def test_api_release_shows_it_retrospective(qm_client, quality_manager):
    lot = historical_lot(quality_manager)

    response = qm_client.post(f"{API}/lots/{lot.pk}/release/", body(), format="json")

    assert response.status_code == 200, response.json()
    change = response.json()["status_change"]
    assert change["retrospective"] is True
    assert change["effective_at"].startswith("2018-03-01T00:00:00")
    assert change["signed_at"] > change["effective_at"]
    assert_matches_schema(response, "post", "/api/v1/lots/{lot_id}/release/")
    detail = qm_client.get(f"{API}/lots/{lot.pk}/").json()
    assert detail["status_changes"][0]["retrospective"] is True


def test_api_accepts_a_date_and_time(qm_client, quality_manager):
    lot = historical_lot(quality_manager)

    response = qm_client.post(
        f"{API}/lots/{lot.pk}/release/",
        body(effective_date="2018-03-01T14:30:00+01:00"),
        format="json",
    )

    assert response.status_code == 200, response.json()
    assert response.json()["status_change"]["effective_at"].startswith("2018-03-01T13:30:00")


def test_api_refuses_a_future_effective_date_naming_the_field(qm_client, quality_manager):
    lot = historical_lot(quality_manager)
    tomorrow = (timezone.localdate() + datetime.timedelta(days=1)).isoformat()

    response = qm_client.post(
        f"{API}/lots/{lot.pk}/release/", body(effective_date=tomorrow), format="json"
    )

    assert response.status_code == 400
    assert error_codes(response) == ["release_effective_in_future"]
    assert error_fields(response) == ["effective_date"]


@pytest.mark.parametrize("given", ["2018-02-30", "1 March 2018", "", 20180301])
def test_api_refuses_a_malformed_effective_date(qm_client, quality_manager, given):
    lot = historical_lot(quality_manager)

    response = qm_client.post(
        f"{API}/lots/{lot.pk}/release/", body(effective_date=given), format="json"
    )

    assert response.status_code == 400
    assert error_fields(response) == ["effective_date"]
    assert Lot.objects.get(pk=lot.pk).status == LotStatus.QUARANTINED


def test_api_release_without_effective_date_is_not_retrospective(qm_client, quality_manager):
    lot = historical_lot(
        quality_manager,
        gmp_until=None,
        expires_on=timezone.localdate(),
        source_kind=SourceKind.SYNTHETIC,
    )
    body_now = body()
    del body_now["effective_date"]

    response = qm_client.post(f"{API}/lots/{lot.pk}/release/", body_now, format="json")

    assert response.status_code == 200, response.json()
    change = response.json()["status_change"]
    assert change["retrospective"] is False
    assert change["effective_at"] == change["signed_at"]


# ---------------------------------------------------------------------------------------------
# The admin's signature page


@pytest.fixture
def qm_admin(quality_manager):
    return admin_client(quality_manager)


def test_the_admin_releases_a_lot_retrospectively(qm_admin, quality_manager):
    lot = historical_lot(quality_manager)
    url = reverse("admin:lots_lot_sign", args=[lot.pk, "release"])
    assert "effective_date" in qm_admin.get(url).content.decode()

    response = qm_admin.post(
        url,
        {
            "signature": "1",
            "password": PASSWORD,
            "meaning": "approval",
            "reason": "Entered from the 2018 batch record",
            "effective_date": RELEASED.isoformat(),
        },
    )

    assert response.status_code == 302, response.content[:2000]
    change = LotStatusChange.objects.get(lot=lot)
    assert change.retrospective is True
    assert change.effective_at.date() == RELEASED


def test_the_admin_names_an_effective_date_the_rules_refuse_and_changes_nothing(
    qm_admin, quality_manager
):
    lot = historical_lot(quality_manager)
    url = reverse("admin:lots_lot_sign", args=[lot.pk, "release"])

    response = qm_admin.post(
        url,
        {
            "signature": "1",
            "password": PASSWORD,
            "meaning": "approval",
            "reason": "Entered from the 2018 batch record",
            "effective_date": "2017-06-01",
        },
    )

    assert response.status_code == 200
    assert "release_effective_before_manufacture" in str(response.context["form"].errors)
    assert not LotStatusChange.objects.filter(lot=lot).exists()


def test_the_admin_offers_no_effective_date_for_a_hold(qm_admin, quality_manager):
    lot = historical_lot(quality_manager)

    page = qm_admin.get(reverse("admin:lots_lot_sign", args=[lot.pk, "hold"]))

    assert "effective_date" not in page.content.decode()


def test_the_lot_dossier_marks_the_release_retrospective(quality_manager):
    lot = historical_lot(quality_manager)
    release(quality_manager, lot)

    html = lot_dossier_html(lot=Lot.objects.get(pk=lot.pk))

    assert f"<strong>Retrospective</strong>, effective {RELEASED.isoformat()}" in html
