"""The treatments page's CSV is written by PostgreSQL (COPY), cells formatted in SQL: byte for byte
what the Python writer wrote row by row (csv.writer over csv_cell), for awkward text, times in
other zones, treatments without lines or with several, whoever reads it, whatever the filters."""

from __future__ import annotations

import datetime
import zoneinfo
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from common.csv import FORMULA_STARTS, csv_lines, csv_stream
from lots.models import Lot, Product
from pages.treatments import listing
from pages.treatments.listing import CSV_HEADER
from providers.models import Clinic, Practitioner, Role
from tests.factories import MembershipFactory, UserFactory, practitioner_at, receive, treat
from tests.pages.conftest import client_for
from tests.pages.test_chair import chair_ready
from treatments.models import Patient, Treatment

pytestmark = pytest.mark.django_db

LIST = reverse("pages:treatments")

AWKWARD = [
    "=cmd|' /C calc'!A0",
    "+1",
    "-2",
    "@x",
    "\tTab",
    "\rReturn",
    'The "Clinic", Ltd.',
    "two\nlines",
    "carriage\rreturn inside",
    "Zürich Königstraße — 東京",
    "a'quote",
    " =leading space",
    "trailing space ",
]


def written_by_python(treatments: Any) -> bytes:
    """The CSV as the page wrote it before COPY: csv.writer over csv_cell, a treatment at a time
    with its lines (by id) read alongside."""

    def rows() -> Iterator[list[Any]]:
        for treatment in treatments.iterator(chunk_size=2000):
            yield [
                treatment.pk,
                treatment.performed_at,
                treatment.clinic.name,
                treatment.patient.reference,
                treatment.practitioner.name,
                treatment.indication,
                treatment.route,
                treatment.anatomical_site,
                "; ".join(
                    f"{line.lot.lot_number} ({line.lot.product.name}) x{line.units}"
                    for line in treatment.lines.all()
                ),
            ]

    return "".join(csv_lines(CSV_HEADER, rows())).encode()


def downloaded(user: Any, query: dict[str, Any]) -> bytes:
    response = client_for(user).get(LIST, {"format": "csv", **query})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    return b"".join(response.streaming_content)


@pytest.fixture
def awkward():
    """Two clinics whose names, patients, practitioners, sites, lots and products hold text a
    spreadsheet would run or a CSV must quote, treated at times given in several zones."""
    ready, other = chair_ready(stock=80), chair_ready(stock=10)
    Clinic.objects.filter(pk=ready.clinic.pk).update(name='=Clinic, "A"\nZürich')
    Product.objects.filter(pk=ready.lot.product_id).update(name='-Serum "B", 東京')
    second = Lot.objects.create(
        **{
            field.name: getattr(ready.lot, field.name)
            for field in Lot._meta.concrete_fields
            if not field.primary_key and field.name != "lot_number"
        },
        lot_number="@LOT-2",
    )
    receive(ready, second, 40)
    zones = [zoneinfo.ZoneInfo(name) for name in ("Asia/Tokyo", "America/Los_Angeles", "UTC")]
    base = timezone.now().replace(microsecond=0) - datetime.timedelta(days=3)
    for index, text in enumerate(AWKWARD):
        patient = Patient.objects.create(clinic=ready.clinic, reference=text[:40])
        practitioner = practitioner_at(ready.clinic)
        Practitioner.objects.filter(pk=practitioner.pk).update(name=AWKWARD[-1 - index])
        practitioner.refresh_from_db()
        at = (base + datetime.timedelta(hours=index, microseconds=index * 1234 % 7)).astimezone(
            zones[index % 3]
        )
        lots = [ready.lot, second] if index % 3 == 0 else [second] if index % 3 == 1 else ready.lot
        treat(
            ready,
            lots,
            1 + index % 2,
            patient=patient,
            practitioner=practitioner,
            performed_at=at,
            anatomical_site=text,
        )
    treat(ready, ready.lot, performed_at=base - datetime.timedelta(days=1))
    treat(other, other.lot, anatomical_site="+elsewhere")
    return ready, other, second


def test_the_page_csv_is_byte_for_byte_what_the_python_writer_wrote(awkward, monkeypatch):
    ready, other, _ = awkward
    network = UserFactory()
    MembershipFactory(user=network, role=Role.AUDITOR, clinic=None)
    readers = [network, ready.clinician, other.clinician]
    queries = [
        {},
        {"lot": "@lot-2"},
        {"lot": ready.lot.lot_number},
        {"practitioner": Practitioner.objects.get(name="+1").pk},
        {"performed_from": timezone.localdate().isoformat()},
        {"performed_to": (timezone.localdate() - datetime.timedelta(days=3)).isoformat()},
        {"performed_from": "not a date"},
    ]
    compared = 0
    for user in readers:
        for query in queries:
            with monkeypatch.context() as old_page:
                # The page as it was: its filtered treatments through the Python writer.
                old_page.setattr(listing, "csv_source", lambda treatments: treatments)
                old_page.setattr(
                    listing,
                    "csv_copy_response",
                    lambda name, header, treatments: csv_stream(
                        [written_by_python(treatments)], name
                    ),
                )
                expected = downloaded(user, query)
            got = downloaded(user, query)
            assert got == expected, (user, query)
            compared += expected.count(b"\n") > 1
    assert compared >= 12
    everything = downloaded(network, {})
    assert everything.count(b"\r\n") >= Treatment.objects.count() + 1
    for start in FORMULA_STARTS:
        assert f",'{start}".encode() in everything or f"\"'{start}".encode() in everything


def test_the_page_csv_is_one_copy_whatever_the_number_of_treatments():
    ready = chair_ready(stock=40)
    client = client_for(ready.clinician)

    def statements() -> tuple[int, bool]:
        with CaptureQueriesContext(connection) as queries:
            b"".join(client.get(LIST, {"format": "csv"}).streaming_content)
        sql = [query["sql"] for query in queries.captured_queries]
        return len(sql), any(statement.startswith("COPY (") for statement in sql)

    treat(ready, ready.lot)
    few, copied = statements()
    assert copied
    for _ in range(20):
        treat(ready, ready.lot)
    assert statements() == (few, True)
