"""Giving a lot registered without one its Single European Code: once, by a quality manager, with
a reason, every part checked as at registration, and a released lot's signature left valid."""

from __future__ import annotations

import pytest
from pghistory.models import Events

from common.errors import DomainError
from lots.models import Lot, LotStatus, SourceKind
from lots.services import lot_hold, lot_release, lot_sec_set
from providers.models import Role
from signatures.models import Signature
from signatures.services import signature_verify
from tests.api_helpers import API, error_codes, error_fields
from tests.factories import (
    PASSWORD,
    LotFactory,
    MembershipFactory,
    ProductFactory,
    UserFactory,
    releasable_lot,
)
from tests.lots.test_sec import CODE, EXPIRES, EYE_READABLE, VALID, create
from tests.openapi_helpers import assert_matches_schema

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]

REASON = "Coded by the importing tissue establishment"


def uncoded(**fields) -> Lot:
    return LotFactory(expires_on=EXPIRES, **fields)


def refused(call, code: str, status: int) -> DomainError:
    with pytest.raises(DomainError) as caught:
        call()
    assert caught.value.codes == [code]
    assert caught.value.status == status
    return caught.value


def test_a_quality_manager_gives_the_code_with_a_reason(quality_manager):
    lot = uncoded()

    lot_sec_set(actor=quality_manager, lot=lot, sec=VALID, reason=REASON)

    stored = Lot.objects.get(pk=lot.pk)
    assert stored.sec.code == CODE
    event = Events.objects.filter(pgh_obj_model="lots.Lot", pgh_obj_id=lot.pk).last()
    assert event.pgh_context["reason"] == REASON
    assert set(event.pgh_diff) == {f"sec_{name}" for name in VALID if name != "expiry_date"}


def test_parts_are_read_in_either_case_and_without_blanks(quality_manager):
    lot = uncoded()
    loose = {name: f"  {value.lower()} " for name, value in VALID.items()}

    lot_sec_set(actor=quality_manager, lot=lot, sec=loose, reason=REASON)

    assert Lot.objects.get(pk=lot.pk).sec.code == CODE


def test_a_code_once_given_is_not_changed(quality_manager):
    lot = create(quality_manager, sec=VALID)

    error = refused(
        lambda: lot_sec_set(
            actor=quality_manager,
            lot=lot,
            sec={**VALID, "split_number": "001"},
            reason="Typo",
        ),
        "sec_already_set",
        409,
    )

    assert EYE_READABLE in error.problems[0].message
    assert Lot.objects.get(pk=lot.pk).sec.code == CODE


def test_a_code_another_lot_carries_is_refused(quality_manager):
    create(quality_manager, sec=VALID)
    lot = uncoded()

    refused(
        lambda: lot_sec_set(actor=quality_manager, lot=lot, sec=VALID, reason=REASON),
        "sec_taken",
        409,
    )

    assert Lot.objects.get(pk=lot.pk).sec is None


def test_a_lot_not_of_human_origin_takes_none(quality_manager):
    lot = uncoded(product=ProductFactory(source_kind=SourceKind.SYNTHETIC, tissue=""))

    refused(
        lambda: lot_sec_set(actor=quality_manager, lot=lot, sec=VALID, reason=REASON),
        "sec_not_applicable",
        400,
    )


def test_an_expiry_other_than_the_lots_is_refused(quality_manager):
    lot = uncoded()

    refused(
        lambda: lot_sec_set(
            actor=quality_manager,
            lot=lot,
            sec={**VALID, "expiry_date": "20310701"},
            reason=REASON,
        ),
        "sec_expiry_date_mismatch",
        400,
    )


def test_a_reason_is_required(quality_manager):
    refused(
        lambda: lot_sec_set(actor=quality_manager, lot=uncoded(), sec=VALID, reason="  "),
        "reason_required",
        400,
    )


@pytest.mark.parametrize("role", [Role.CLINICIAN, Role.CLINIC_ADMINISTRATOR, Role.AUDITOR, None])
def test_only_a_quality_manager_gives_the_code(role):
    user = UserFactory() if role is None else MembershipFactory(role=role).user
    lot = uncoded()

    refused(
        lambda: lot_sec_set(actor=user, lot=lot, sec=VALID, reason=REASON),
        "role_required",
        403,
    )
    assert Lot.objects.get(pk=lot.pk).sec is None


def test_a_released_lot_is_held_coded_and_released_again(quality_manager):
    lot = releasable_lot(quality_manager=quality_manager)
    Lot.objects.filter(pk=lot.pk).update(expires_on=EXPIRES)
    sign = {"actor": quality_manager, "lot_id": lot.pk, "password": PASSWORD}
    first = lot_release(**sign, meaning="approval", reason="Evidence reviewed")

    # a released lot is not coded: the code is part of what the release signed
    refused(
        lambda: lot_sec_set(actor=quality_manager, lot=lot, sec=VALID, reason=REASON),
        "lot_not_editable",
        409,
    )
    assert Lot.objects.get(pk=lot.pk).sec is None

    lot_hold(**sign, meaning="responsibility", reason="To give it its SEC")
    lot_sec_set(actor=quality_manager, lot=lot, sec=VALID, reason=REASON)
    second = lot_release(**sign, meaning="approval", reason="Released again with its SEC")

    assert Lot.objects.get(pk=lot.pk).status == LotStatus.RELEASED
    latest = Signature.objects.get(kind="lot_release", record_id=second.pk)
    earlier = Signature.objects.get(kind="lot_release", record_id=first.pk)
    assert signature_verify(latest).status == "valid"
    assert signature_verify(earlier).status == "superseded"


def test_the_api_gives_the_code_and_answers_the_lot(qm_client):
    lot = uncoded()

    response = qm_client.post(
        f"{API}/lots/{lot.pk}/sec/", {"sec": VALID, "reason": REASON}, format="json"
    )

    assert response.status_code == 200, response.content
    assert_matches_schema(response, "post", "/api/v1/lots/{lot_id}/sec/")
    assert response.json()["sec"]["code"] == CODE


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"reason": REASON}, "sec", "required"),
        ({"sec": VALID}, "reason", "required"),
        ({"sec": {**VALID, "coding_system": "X"}, "reason": REASON}, "sec.coding_system", None),
        ({"sec": "DE000123", "reason": REASON}, "sec", "invalid"),
    ],
)
def test_the_api_refuses_a_bad_body_naming_the_field(qm_client, body, field, code):
    lot = uncoded()

    response = qm_client.post(f"{API}/lots/{lot.pk}/sec/", body, format="json")

    assert response.status_code == 400, response.content
    assert error_fields(response) == [field]
    if code is not None:
        assert error_codes(response) == [code]
    assert Lot.objects.get(pk=lot.pk).sec is None


def test_the_api_answers_404_for_no_such_lot(qm_client):
    response = qm_client.post(
        f"{API}/lots/987654321/sec/", {"sec": VALID, "reason": REASON}, format="json"
    )

    assert response.status_code == 404
