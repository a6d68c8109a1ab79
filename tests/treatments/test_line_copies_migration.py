"""Migrations treatments.0006 and 0007 on a database that already holds treatments: every line
written before them is given its treatment's clinic, patient and practitioner, and the covering
index is built."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from tests.factories import clinic_ready, receive, released_lot, treat
from treatments.models import LINE_COPIES, Treatment, TreatmentLine

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("reference_data")]

BEFORE = [
    ("treatments", "0005_covered_foreign_key_indexes_dropped"),
    ("recalls", "0010_notification_queue_failed_at"),
]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


def latest():
    executor = MigrationExecutor(connection)
    return executor.loader.graph.leaf_nodes()


def test_the_lines_written_before_get_their_treatments_parties_and_the_index():
    ready = clinic_ready()
    other = clinic_ready()
    lot = released_lot()
    receive(ready, lot, 5)
    receive(other, lot, 5)
    treatments = [treat(ready, lot), treat(other, lot, 2), treat(ready, lot)]

    migrate(BEFORE)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'treatments_treatmentline'"
        )
        columns = {name for (name,) in cursor.fetchall()}
    assert "clinic_id" not in columns

    migrate(latest())

    for treatment in Treatment.objects.filter(pk__in=[t.pk for t in treatments]):
        line = TreatmentLine.objects.get(treatment=treatment)
        assert tuple(line.serializable_value(f) for f in LINE_COPIES) == tuple(
            treatment.serializable_value(f) for f in LINE_COPIES
        )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'treatment_line_lot_covering'"
        )
        (definition,) = cursor.fetchone()
    assert "INCLUDE (id, units, clinic_id, patient_id, practitioner_id)" in definition
