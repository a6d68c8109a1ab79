"""The signature list and verification endpoints, and `manage.py signatures_verify`."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from lots.models import LotStatusChange
from lots.services import lot_release
from signatures.models import Signature
from tests.api_helpers import API, assert_list_queries_fixed, error_codes
from tests.factories import PASSWORD, releasable_lot
from tests.signatures.helpers import tamper

pytestmark = [pytest.mark.django_db]


def release(actor, lot) -> LotStatusChange:
    return lot_release(
        actor=actor, lot_id=lot.pk, password=PASSWORD, meaning="approval", reason="Reviewed"
    )


@pytest.fixture
def signed(quality_manager):
    lot = releasable_lot(quality_manager=quality_manager)
    release(quality_manager, lot)
    return lot, Signature.objects.get(subject=f"lots.lot:{lot.pk}")


def client_for(user) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


# ---------------------------------------------------------------------------------------------
# API


def test_an_auditor_lists_signatures_with_their_parts(signed, auditor):
    lot, signature = signed
    response = client_for(auditor).get(f"{API}/signatures/", {"subject": f"lots.lot:{lot.pk}"})
    assert response.status_code == 200, response.content
    [row] = response.json()["results"]
    assert row["id"] == signature.pk
    assert row["kind"] == "lot_release"
    assert row["record"] == signature.record_label
    assert row["printed_name"] == "Quinn Manager"
    assert row["meaning"] == "approval"
    assert row["content_sha256"] == signature.content_sha256
    assert row["content"]["state"]["lot"]["lot_number"] == lot.lot_number


def test_the_list_filters_by_kind_record_and_signer(signed, auditor, quality_manager):
    _, signature = signed
    client = client_for(auditor)
    for query, expected in [
        ({"kind": "lot_release"}, 1),
        ({"kind": "recall_open"}, 0),
        ({"record": signature.record_label}, 1),
        ({"record": "lots.lotstatuschange:999999"}, 0),
        ({"signer": quality_manager.pk}, 1),
        ({"signed_from": "2000-01-01"}, 1),
        ({"signed_to": "2000-01-01"}, 0),
    ]:
        response = client.get(f"{API}/signatures/", query)
        assert response.status_code == 200, (query, response.content)
        assert response.json()["count"] == expected, query


@pytest.mark.parametrize(
    "query",
    [{"subject": "lot 12"}, {"record": "lots.lot:0"}, {"signer": "abc"}, {"signed_from": "x"}],
)
def test_bad_filters_are_a_400_in_the_error_shape(auditor, query):
    response = client_for(auditor).get(f"{API}/signatures/", query)
    assert response.status_code == 400
    assert error_codes(response)


def test_the_list_runs_a_fixed_number_of_queries(
    quality_manager, auditor, django_assert_num_queries
):
    def add_rows(count: int) -> None:
        for _ in range(count):
            release(quality_manager, releasable_lot(quality_manager=quality_manager))

    assert_list_queries_fixed(
        client_for(auditor), f"{API}/signatures/", add_rows, django_assert_num_queries
    )


def test_verify_answers_valid_for_an_untouched_record(signed, auditor, quality_manager):
    _, signature = signed
    for user in (auditor, quality_manager):
        response = client_for(user).get(f"{API}/signatures/{signature.pk}/verify/")
        assert response.status_code == 200, response.content
        body = response.json()
        assert (body["status"], body["valid"], body["differences"]) == ("valid", True, [])
        assert body["recomputed_sha256"] == signature.content_sha256
        assert body["signature"]["id"] == signature.pk


def test_verify_names_what_changed(signed, auditor):
    lot, signature = signed
    tamper("UPDATE lots_lot SET quantity = quantity + 1 WHERE id = %s", [lot.pk])
    response = client_for(auditor).get(f"{API}/signatures/{signature.pk}/verify/")
    body = response.json()
    assert (body["status"], body["valid"]) == ("invalid", False)
    assert body["differences"] == [
        {
            "path": "state.lot.quantity",
            "signed": lot.quantity,
            "now": lot.quantity + 1,
            "signed_present": True,
            "now_present": True,
        }
    ]


@pytest.mark.parametrize("path", ["999999", "9223372036854775808"])
def test_verify_of_an_unknown_signature_is_a_404_in_the_error_shape(auditor, path):
    response = client_for(auditor).get(f"{API}/signatures/{path}/verify/")
    assert response.status_code == 404
    assert error_codes(response) == ["not_found"]


def test_a_non_numeric_id_is_a_404_in_the_error_shape(auditor):
    response = client_for(auditor).get(f"{API}/signatures/abc/verify/")
    assert response.status_code == 404
    assert error_codes(response) == ["not_found"]


@pytest.mark.parametrize("role", ["clinician", "clinic_administrator"])
def test_clinic_staff_are_refused(request, signed, role):
    _, signature = signed
    client = client_for(request.getfixturevalue(role))
    for url in (f"{API}/signatures/", f"{API}/signatures/{signature.pk}/verify/"):
        response = client.get(url)
        assert response.status_code == 403
        assert error_codes(response) == ["role_required"]


def test_anonymous_callers_are_refused(signed):
    _, signature = signed
    for url in (f"{API}/signatures/", f"{API}/signatures/{signature.pk}/verify/"):
        response = client_for(None).get(url)
        assert response.status_code in (401, 403)
        assert error_codes(response)


def test_an_auditor_never_writes(signed, auditor):
    _, signature = signed
    client = client_for(auditor)
    for method in ("post", "put", "patch", "delete"):
        for url in (f"{API}/signatures/", f"{API}/signatures/{signature.pk}/verify/"):
            response = getattr(client, method)(url, {}, format="json")
            assert response.status_code == 403, (method, url)
    assert Signature.objects.get(pk=signature.pk).reason == "Reviewed"


def test_a_quality_manager_cannot_write_either(signed, quality_manager):
    response = client_for(quality_manager).post(f"{API}/signatures/", {}, format="json")
    assert response.status_code == 405
    assert error_codes(response)


# ---------------------------------------------------------------------------------------------
# Command


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("signatures_verify", *args, stdout=out)
    return out.getvalue()


def test_the_command_passes_when_every_signature_holds(signed):
    # The factories decide donors through the ORM, unsigned: look at lot decisions only.
    output = run("--kind", "lot_release")
    assert "1 signature(s): 1 valid, 0 superseded, 0 invalid." in output


def test_the_command_fails_naming_the_broken_signature_and_the_difference(signed, quality_manager):
    lot, signature = signed
    other = releasable_lot(quality_manager=quality_manager)
    release(quality_manager, other)
    tamper("UPDATE lots_lot SET expires_on = expires_on + 1 WHERE id = %s", [lot.pk])
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 signature"):
        call_command("signatures_verify", stdout=out)
    output = out.getvalue()
    assert f"signature {signature.pk} (lot_release of {signature.record_label}): invalid" in output
    assert "state.lot.expires_on" in output
    assert "2 signature(s): 1 valid, 0 superseded, 1 invalid." in output

    assert "1 signature(s): 1 valid" in run("--record", f"lots.lot:{other.pk}")
    with pytest.raises(CommandError):
        run("--signature", str(signature.pk))
    with pytest.raises(CommandError, match="--record"):
        run("--record", "lot 12")


def test_the_command_finds_a_deleted_signature(signed, quality_manager):
    lot, signature = signed
    assert "0 signed act(s) without their signature" in run("--kind", "lot_release")
    tamper("DELETE FROM signatures_signature WHERE id = %s", [signature.pk])
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 missing"):
        call_command("signatures_verify", "--kind", "lot_release", stdout=out)
    change = LotStatusChange.objects.get(lot=lot)
    assert f"lots.lotstatuschange:{change.pk}: the lot_release of" in out.getvalue()
    assert "has no signature (missing)" in out.getvalue()


def test_the_command_refuses_a_signature_that_is_not_there_and_an_unknown_kind(signed):
    _lot, signature = signed
    with pytest.raises(CommandError, match=f"No signature has id {signature.pk + 1000}"):
        run("--signature", str(signature.pk + 1000))
    with pytest.raises(CommandError, match="No signature of kind recall_open has id"):
        run("--signature", str(signature.pk), "--kind", "recall_open")
    with pytest.raises(CommandError, match=r"--kind is one of: .*lot_release"):
        run("--kind", "lot_relase")
    assert "1 signature(s): 1 valid" in run("--signature", str(signature.pk))
