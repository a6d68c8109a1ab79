"""Recording a treatment over the API sends a fixed number of statements: a fixed part for the
request (the token, the caller's roles, the rules' reference rows, the treatment and its history)
and a fixed part per line (its lot, its balance's conditional UPDATE). Nothing is read twice and
nothing written is read back."""

from __future__ import annotations

import pytest
from knox.models import AuthToken
from rest_framework.test import APIClient

from stock.models import StockBalance, StockState
from tests.api_helpers import API
from tests.treatments.test_api import make_site, receive, released_lot, treatment_body

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]

# The token and its owner's other tokens (knox), the caller's roles; clinic, patient,
# practitioner and consent text named in the body; the savepoint of treatment_record (a
# transaction of its own outside a test); the practitioner's membership and licence, the
# product authorisations, the source restrictions and the balances; the treatment, the
# movements and the lines; the savepoint's release.
PER_REQUEST = 16
# The line's lot (with its product) and the conditional UPDATE of its balance.
PER_LINE = 2


@pytest.mark.parametrize("line_count", [1, 3])
def test_recording_a_treatment_sends_a_fixed_number_of_statements_per_line(
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

    with django_assert_num_queries(PER_REQUEST + PER_LINE * line_count):
        response = client.post(f"{API}/treatments/", body, format="json")

    assert response.status_code == 201, response.content
    assert [line["lot"] for line in response.json()["lines"]] == [lot.pk for lot in lots]
    assert response.json()["adverse_events"] == []
    balances = StockBalance.objects.filter(
        clinic=site.clinic, lot__in=lots, state=StockState.ACCEPTED
    ).values_list("quantity", flat=True)
    assert sorted(balances) == [98] * line_count
