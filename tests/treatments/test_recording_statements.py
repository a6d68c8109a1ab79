"""Recording a treatment over the API sends the same number of statements whatever its number of
lines: the token with the caller's roles, the rows the rules read, the treatment, its movements
with its lines, and the balances' conditional UPDATE (each one statement for every line). Nothing
is read twice and nothing written is read back."""

from __future__ import annotations

import datetime
import json

import pytest
from django.db import connection
from django.shortcuts import get_object_or_404
from knox.models import AuthToken
from pghistory.models import Events
from rest_framework.test import APIClient

from lots.models import Lot, Product
from providers.models import Clinic, Practitioner
from stock.models import MovementKind, StockBalance, StockMovement, StockState
from stock.selectors import stock_balances_disagreeing
from tests.api_helpers import API, error_codes, error_fields
from tests.factories import ClinicFactory
from tests.treatments.test_api import (
    accepted_units,
    ago,
    client_for,
    make_site,
    receive,
    released_lot,
    treatment_body,
)
from treatments.api.treatments import TreatmentDetailOutputSerializer
from treatments.models import ConsentText, Patient, Treatment, TreatmentLine
from treatments.selectors import treatment_list

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]

# The token with its account and the account's roles (one statement); the clinic, patient,
# practitioner and consent text named in the body (one statement); the savepoint of
# treatment_record (a transaction of its own outside a test); the lots afresh with their products,
# balances and authorisations, with the practitioner's membership and licence and the source
# restrictions (one statement); the treatment; the balances' conditional UPDATE with the
# movements and the lines (one statement); the savepoint's release.
STATEMENTS = 7
BERLIN_WINTER = datetime.timezone(datetime.timedelta(hours=1))


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


@pytest.mark.parametrize("with_consent", [True, False])
def test_the_answer_to_a_recorded_treatment_is_what_its_serializer_writes(
    quality_manager, with_consent
):
    # given a clinic stocked with two lots, that asks for consent or not
    site = make_site(quality_manager, clinic=ClinicFactory(consent_required=with_consent))
    second = released_lot(quality_manager)
    receive(site.clinic, second, 100)
    body = treatment_body(
        site,
        lines=[{"lot": second.pk, "units": 3}, {"lot": site.lot.pk, "units": 1}],
        notes="Left cheek",
        # an offset other than the server's, and microseconds, both as the client sent them
        performed_at=ago(minutes=5).astimezone(BERLIN_WINTER).isoformat(),
    )
    if with_consent:
        body["consent"]["taken_at"] = ago(minutes=10).astimezone(BERLIN_WINTER).isoformat()
    else:
        body["consent"] = None

    # when it is recorded over the API
    response = client_for(site.clinician).post(f"{API}/treatments/", body, format="json")

    # then the answer, written from what was recorded, is what the detail serializer writes of
    # the treatment read back
    assert response.status_code == 201, response.content
    treatment = get_object_or_404(
        treatment_list(user=site.clinician).select_related(
            "consent_text", "consent_taken_by", "recorded_by"
        ),
        pk=response.json()["id"],
    )
    expected = json.loads(json.dumps(TreatmentDetailOutputSerializer(treatment).data))
    assert response.json() == expected
    assert (response.json()["consent"] is not None) is with_consent
    assert [line["units"] for line in response.json()["lines"]] == [3, 1]


def test_the_rows_written_in_sql_are_those_answered_and_their_history_is_kept(quality_manager):
    # given a clinic stocked with two lots
    site = make_site(quality_manager, clinic=ClinicFactory(consent_required=True))
    second = released_lot(quality_manager)
    receive(site.clinic, second, 100)
    body = treatment_body(
        site, lines=[{"lot": site.lot.pk, "units": 2}, {"lot": second.pk, "units": 5}]
    )

    # when a treatment is recorded over the API
    response = client_for(site.clinician).post(f"{API}/treatments/", body, format="json")

    # then the rows the answer names are those in the database, each line pointing at its
    # treatment and its own movement, and carrying its treatment's time
    assert response.status_code == 201, response.content
    answer = response.json()
    treatment = Treatment.objects.get(pk=answer["id"])
    lines = list(TreatmentLine.objects.filter(treatment=treatment).order_by("pk"))
    assert [(line.lot_id, line.units, line.stock_movement_id) for line in lines] == [
        (line["lot"], line["units"], line["stock_movement"]) for line in answer["lines"]
    ]
    assert {line.performed_at for line in lines} == {treatment.performed_at}
    # and the ledger holds one movement for each line, by the clinician, agreeing with the balances
    movements = StockMovement.objects.filter(pk__in=[line.stock_movement_id for line in lines])
    assert sorted(
        (m.lot_id, m.delta, m.kind, m.state, m.reason, m.actor_id, m.occurred_at) for m in movements
    ) == sorted(
        (
            line.lot_id,
            -line.units,
            MovementKind.TREATMENT,
            StockState.ACCEPTED,
            f"treatment {treatment.pk}",
            site.clinician.pk,
            treatment.performed_at,
        )
        for line in lines
    )
    assert (accepted_units(site.clinic, site.lot), accepted_units(site.clinic, second)) == (98, 95)
    assert stock_balances_disagreeing() == []
    assert (treatment.recorded_by_id, treatment.consent_taken_by_id) == (site.clinician.pk,) * 2
    # and the history holds each row's insertion, by the clinician, for the reason given
    inserted = Events.objects.filter(pgh_label="insert").filter(
        pgh_obj_model__in=["treatments.Treatment", "treatments.TreatmentLine"]
    )
    assert sorted((event.pgh_obj_model, event.pgh_obj_id) for event in inserted) == sorted(
        [("treatments.Treatment", str(treatment.pk))]
        + [("treatments.TreatmentLine", str(line.pk)) for line in lines]
    )
    assert {(event.pgh_context["user"], event.pgh_context["reason"]) for event in inserted} == {
        (site.clinician.pk, "treatment recorded")
    }


def test_ids_that_name_no_row_are_refused_beside_the_bodys_other_errors(quality_manager, clinic):
    # given a body naming no clinic, an out-of-range practitioner and no consent text, with a
    # time and a consent time it cannot read, and another clinic's patient
    site = make_site(quality_manager, clinic=clinic)
    other = make_site(quality_manager)
    body = treatment_body(
        site,
        clinic=987654321,
        patient=other.patient.pk,
        practitioner=2**64,
        performed_at="yesterday",
        consent={"consent_text": 987654322, "taken_at": "before"},
    )

    # when it is recorded
    response = client_for(site.clinician).post(f"{API}/treatments/", body, format="json")

    # then every problem is listed at once, in the body's order, each id refused as unknown
    assert response.status_code == 400, response.content
    assert error_fields(response) == [
        "clinic",
        "patient",
        "practitioner",
        "performed_at",
        "consent.consent_text",
        "consent.taken_at",
    ]
    assert error_codes(response)[:3] == ["does_not_exist"] * 3
    assert error_codes(response)[4] == "does_not_exist"
    messages = [problem["message"] for problem in response.json()["errors"]]
    assert messages[0] == 'Invalid pk "987654321" - object does not exist.'
    assert messages[1] == f'Invalid pk "{other.patient.pk}" - object does not exist.'
    assert messages[4] == 'Invalid pk "987654322" - object does not exist.'
    assert not Treatment.objects.exists()


@pytest.mark.parametrize("field", ["clinic", "patient", "practitioner"])
def test_an_id_that_is_not_a_whole_number_is_refused_at_its_field(quality_manager, clinic, field):
    site = make_site(quality_manager, clinic=clinic)
    body = treatment_body(site, **{field: "first"})

    response = client_for(site.clinician).post(f"{API}/treatments/", body, format="json")

    assert response.status_code == 400, response.content
    assert error_codes(response) == ["invalid"]
    assert error_fields(response) == [field]


@pytest.mark.parametrize(
    "model", [Lot, Product, Clinic, Patient, Practitioner, ConsentText], ids=lambda m: m.__name__
)
def test_the_rows_recording_reads_in_sql_need_no_conversion(model):
    # treatment_record and its input serializer read these rows in SQL of their own and build
    # the instances from the columns as they come: a field that converts its database value (a
    # JSONField, a custom field) would need the ORM's converters there.
    converting = [
        field.name
        for field in model._meta.concrete_fields
        if field.get_db_converters(connection) or hasattr(field, "from_db_value")
    ]
    assert converting == []
