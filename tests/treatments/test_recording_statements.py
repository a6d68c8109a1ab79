"""Recording a treatment over the API sends the same number of statements whatever its number of
lines: the token, the caller's roles, the rows the rules read, the balances' conditional UPDATE
(one statement for every line), the treatment, its movements and its lines. Nothing is read twice
and nothing written is read back."""

from __future__ import annotations

import pytest
from knox.models import AuthToken
from rest_framework.test import APIClient

from stock.models import StockBalance, StockState
from tests.api_helpers import API, error_codes, error_fields
from tests.treatments.test_api import (
    accepted_units,
    make_site,
    receive,
    released_lot,
    treatment_body,
)
from treatments.models import Treatment

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]

# The token and its owner's other tokens (knox) and the caller's roles; the clinic, patient,
# practitioner and consent text named in the body; the savepoint of treatment_record (a
# transaction of its own outside a test); the lots afresh with their products, balances and
# authorisations; the practitioner's membership and licence with the source restrictions; the
# treatment, the balances' conditional UPDATE, the movements and the lines; the savepoint's
# release.
STATEMENTS = 15


@pytest.mark.parametrize("line_count", [1, 3])
def test_recording_a_treatment_sends_the_same_statements_whatever_its_lines(
    quality_manager, clinic, line_count, django_assert_num_queries
):
    site = make_site(quality_manager, clinic=clinic)
    lots = [site.lot, *(released_lot(quality_manager) for _ in range(line_count - 1))]
    for lot in lots[1:]:
        receive(site.clinic, lot, 100)
    _, token = AuthToken.objects.create(site.clinician)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    body = treatment_body(site, lines=[{"lot": lot.pk, "units": 2} for lot in lots])

    with django_assert_num_queries(STATEMENTS):
        response = client.post(f"{API}/treatments/", body, format="json")

    assert response.status_code == 201, response.content
    assert [line["lot"] for line in response.json()["lines"]] == [lot.pk for lot in lots]
    assert response.json()["adverse_events"] == []
    balances = StockBalance.objects.filter(
        clinic=site.clinic, lot__in=lots, state=StockState.ACCEPTED
    ).values_list("quantity", flat=True)
    assert sorted(balances) == [98] * line_count


def test_an_unknown_lot_is_refused_at_its_line_and_changes_nothing(quality_manager, clinic):
    site = make_site(quality_manager, clinic=clinic)
    _, token = AuthToken.objects.create(site.clinician)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    body = treatment_body(
        site, lines=[{"lot": site.lot.pk, "units": 1}, {"lot": 987654321, "units": 1}]
    )

    response = client.post(f"{API}/treatments/", body, format="json")

    assert response.status_code == 400, response.content
    assert error_codes(response) == ["does_not_exist"]
    assert error_fields(response) == ["lines[1].lot"]
    assert not Treatment.objects.exists()
    assert accepted_units(site.clinic, site.lot) == 100
