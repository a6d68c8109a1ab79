"""Importing records of the past from an earlier system (an EMR that charted batch numbers by
hand), under the rules of live recording, each record judged on its own date.

A file is all or nothing: every row is checked first, and any problem means nothing is written,
with a report of every problem (line, column, code, the rule's words). A dry run checks and writes
as a real import does, inside a transaction it then rolls back, so it reports what the import
would report, the database's own constraints included. The rows are judged in Python from a
fixed number of reads and written set-based, so a file of 10^5 treatments takes seconds.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import psycopg
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from common.errors import DomainError, Problem
from common.services import history
from history import lot_records, receipts, treatments
from history.models import HistoryImport, ImportKind, ImportStatus
from history.reading import RowProblem, RowsRefused, read_rows
from providers.access import access_for
from providers.models import Clinic

KINDS: dict[str, ModuleType] = {
    ImportKind.TREATMENTS.value: treatments,
    ImportKind.RECEIPTS.value: receipts,
    ImportKind.LOTS.value: lot_records,
}
# Kinds whose records are a clinic's: the import names the clinic.
CLINIC_KINDS = (ImportKind.TREATMENTS.value, ImportKind.RECEIPTS.value)
# Phase ("checking" or "writing"), rows done, rows in the file.
Progress = Callable[[str, int, int], None]
# A job's progress is written at most this often (seconds).
PROGRESS_INTERVAL = 0.5
# The first key of the jobs' advisory locks (the second is the job's id): "hi" in ASCII.
LOCK_NAMESPACE = 0x6869


@dataclass
class Outcome:
    rows: int
    written: int = 0
    problems: list[RowProblem] = field(default_factory=list)

    @property
    def report(self) -> list[dict[str, Any]]:
        return [problem.as_dict() for problem in self.problems]


def require_history_import(actor: Any, kind: str, clinic: Clinic | None) -> None:
    """The kind is one this system imports, a clinic's records name the clinic, and the actor
    may import them (for the clinic)."""
    if kind not in KINDS:
        raise DomainError.single(
            "invalid_choice",
            _("%(kind)s is not a kind of import; the kinds are: %(kinds)s.")
            % {"kind": kind, "kinds": ", ".join(KINDS)},
            field="kind",
            status=400,
        )
    if kind in CLINIC_KINDS and clinic is None:
        raise DomainError.single(
            "required", _("Name the clinic whose records these are."), field="clinic", status=400
        )
    if kind not in CLINIC_KINDS and clinic is not None:
        raise DomainError.single(
            "clinic_not_applicable",
            _("Lots are the network's, not a clinic's: name no clinic."),
            field="clinic",
            status=400,
        )
    if not access_for(actor).imports_history(kind, None if clinic is None else clinic.pk):
        if clinic is None:
            message = _("Importing lots needs the quality manager role.")
        else:
            message = _(
                "Importing the history of %(clinic)s needs the clinic administrator role there."
            ) % {"clinic": clinic.name}
        raise DomainError.single("role_required", message, status=403)


def _nothing(phase: str, done: int, total: int) -> None:
    """Progress nobody watches."""


def history_import(
    *,
    actor: Any,
    clinic: Clinic | None,
    kind: str,
    data: bytes,
    dry_run: bool = False,
    progress: Progress = _nothing,
) -> Outcome:
    """Check every row of the file and, if none has a problem, write them all in one
    transaction (rolled back for a dry run). The outcome lists every problem, sorted by line."""
    require_history_import(actor, kind, clinic)
    importer = KINDS[kind]
    problems: list[RowProblem] = []
    rows = read_rows(data, importer.COLUMNS, problems)
    total = len(rows)
    progress("checking", 0, total)
    digest = hashlib.sha256(data).hexdigest()
    try:
        with transaction.atomic():
            planned = importer.check(
                clinic=clinic,
                actor=actor,
                rows=rows,
                problems=problems,
                progress=lambda done: progress("checking", done, total),
            )
            if problems:
                return Outcome(total, 0, sorted(problems, key=_place))
            progress("writing", 0, total)
            with history(actor, f"history import: {kind} of file sha256 {digest}"):
                written = importer.write(
                    clinic=clinic,
                    actor=actor,
                    planned=planned,
                    progress=lambda done: progress("writing", done, total),
                )
            if dry_run:
                transaction.set_rollback(True)
    except RowsRefused as refused:
        return Outcome(total, 0, sorted(refused.problems, key=_place))
    except DomainError as error:
        # The stock moved between the check and the write (a live use of the same units).
        return Outcome(total, 0, [RowProblem.at(None, p.field, p) for p in error.problems])
    except IntegrityError as error:
        return Outcome(
            total,
            0,
            [
                RowProblem.at(
                    None,
                    None,
                    Problem(
                        "write_refused",
                        _("The database refused the import; nothing was written: %(error)s")
                        % {"error": error},
                    ),
                )
            ],
        )
    return Outcome(total, written, [])


def _place(problem: RowProblem) -> tuple[int, str]:
    return (problem.line or 0, problem.column or "")


# ---------------------------------------------------------------------------------------------
# Imports as jobs (the API): queued, run by a worker, watched while they run


@transaction.atomic
def history_import_queue(
    *, actor: Any, clinic: Clinic | None, kind: str, data: bytes, file_name: str, dry_run: bool
) -> HistoryImport:
    """Keep the file as a job and queue it for a worker once the job is committed."""
    from history.tasks import history_import_run

    require_history_import(actor, kind, clinic)
    job = HistoryImport.objects.create(
        kind=kind,
        clinic=clinic,
        uploaded_by=actor,
        file_name=file_name[:200],
        file_sha256=hashlib.sha256(data).hexdigest(),
        content=data,
        dry_run=dry_run,
    )
    transaction.on_commit(lambda: history_import_run.delay(job.pk))
    return job


UNFINISHED = (ImportStatus.QUEUED, ImportStatus.CHECKING, ImportStatus.WRITING)


def history_import_run(job_id: int) -> str:
    """Run a job that has not finished, once at a time: a task delivered twice while the first
    runs finds the job's lock taken and leaves it; a task redelivered after its worker died
    (its transaction rolled back, nothing written) runs the job again from the start."""
    with _job_lock(job_id) as mine:
        if not mine:
            return "running elsewhere"
        claimed = HistoryImport.objects.filter(pk=job_id, status__in=UNFINISHED).update(
            status=ImportStatus.CHECKING
        )
        if not claimed:
            return "finished"
        return _run(job_id)


@contextmanager
def _job_lock(job_id: int) -> Iterator[bool]:
    """A session-level advisory lock on the job, released at the end or when the worker's
    connection drops with it."""
    key = [LOCK_NAMESPACE, job_id]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", key)
        mine = bool(cursor.fetchone()[0])
    try:
        yield mine
    finally:
        if mine:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", key)


def _run(job_id: int) -> str:
    job = HistoryImport.objects.select_related("clinic", "uploaded_by").get(pk=job_id)
    with _ProgressWriter(job.pk) as progress:
        try:
            outcome = history_import(
                actor=job.uploaded_by,
                clinic=job.clinic,
                kind=job.kind,
                data=bytes(job.content),
                dry_run=job.dry_run,
                progress=progress,
            )
        except DomainError as error:  # the uploader lost the role since
            outcome = Outcome(0, 0, [RowProblem.at(None, p.field, p) for p in error.problems])
        except Exception:
            HistoryImport.objects.filter(pk=job_id).update(
                status=ImportStatus.FAILED, finished_at=timezone.now()
            )
            raise
    status = ImportStatus.REFUSED if outcome.problems else ImportStatus.DONE
    HistoryImport.objects.filter(pk=job_id).update(
        status=status,
        rows_total=outcome.rows,
        rows_done=outcome.rows,
        rows_written=0 if job.dry_run else outcome.written,
        report=outcome.report,
        finished_at=timezone.now(),
    )
    return str(status)


class _ProgressWriter:
    """Writes a job's progress on a connection of its own, committed at once, so that whoever
    watches the job sees it while the import's own transaction is still open."""

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        self.last = 0.0
        self.side: psycopg.Connection[Any] | None = None

    def __enter__(self) -> _ProgressWriter:
        connection.ensure_connection()
        params = connection.get_connection_params()
        params.pop("cursor_factory", None)
        self.side = psycopg.connect(**params, autocommit=True)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.side is not None:
            self.side.close()

    def __call__(self, phase: str, done: int, total: int) -> None:
        now = time.monotonic()
        if self.side is None or (now - self.last < PROGRESS_INTERVAL and done not in (0, total)):
            return
        self.last = now
        self.side.execute(
            f"UPDATE {HistoryImport._meta.db_table} "  # noqa: S608 - our table; values bound
            "SET status = %s, rows_total = %s, rows_done = %s WHERE id = %s",
            [phase, total, done, self.job_id],
        )
