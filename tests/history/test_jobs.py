"""A job runs once at a time: a task delivered twice while the first runs leaves the job alone; a
task redelivered after its worker died runs the unfinished job again (its transaction was rolled
back, so nothing had been written)."""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection

from history.models import HistoryImport, ImportStatus
from history.services import LOCK_NAMESPACE, history_import_run
from tests.history.conftest import csv_bytes, treatment_row
from treatments.models import Treatment

pytestmark = pytest.mark.django_db


def job(ready, lot, status: str) -> HistoryImport:
    return HistoryImport.objects.create(
        kind="treatments",
        clinic=ready.clinic,
        uploaded_by=ready.administrator,
        file_sha256="0" * 64,
        content=csv_bytes([treatment_row(ready, lot)]),
        status=status,
    )


@pytest.mark.parametrize(
    "status", [ImportStatus.QUEUED, ImportStatus.CHECKING, ImportStatus.WRITING]
)
def test_an_unfinished_job_runs_to_its_end(ready, lot, status):
    unfinished = job(ready, lot, status)
    assert history_import_run(unfinished.pk) == ImportStatus.DONE
    unfinished.refresh_from_db()
    assert (unfinished.status, unfinished.rows_written) == (ImportStatus.DONE, 1)
    assert Treatment.objects.count() == 1


@pytest.mark.parametrize("status", [ImportStatus.DONE, ImportStatus.REFUSED, ImportStatus.FAILED])
def test_a_finished_job_is_not_run_again(ready, lot, status):
    finished = job(ready, lot, status)
    assert history_import_run(finished.pk) == "finished"
    assert Treatment.objects.count() == 0


def test_a_job_another_worker_is_running_is_left_alone(ready, lot):
    running = job(ready, lot, ImportStatus.CHECKING)
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    with psycopg.connect(**params, autocommit=True) as other_worker:
        other_worker.execute("SELECT pg_advisory_lock(%s, %s)", [LOCK_NAMESPACE, running.pk])
        assert history_import_run(running.pk) == "running elsewhere"
    running.refresh_from_db()
    assert running.status == ImportStatus.CHECKING
    assert Treatment.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_progress_shows_to_others_while_the_imports_transaction_is_open(ready, lot):
    from django.db import transaction

    from history.services import _ProgressWriter

    running = job(ready, lot, ImportStatus.CHECKING)
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    with transaction.atomic(), _ProgressWriter(running.pk) as progress:
        progress("writing", 0, 10)
        with psycopg.connect(**params, autocommit=True) as watcher:
            seen = watcher.execute(
                "SELECT status, rows_done, rows_total FROM history_historyimport WHERE id = %s",
                [running.pk],
            ).fetchone()
    assert seen == ("writing", 0, 10)
