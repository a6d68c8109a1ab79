"""The worker's side of a history import: one task per job, safe to deliver twice (a job runs
only from `queued`)."""

from __future__ import annotations

from celery import shared_task

from history import services

# An import of 10^5 rows takes well under a minute; a file ten times that still fits.
TIME_LIMIT = 30 * 60


@shared_task(
    name="history.history_import_run",
    acks_late=True,
    soft_time_limit=TIME_LIMIT - 30,
    time_limit=TIME_LIMIT,
)
def history_import_run(import_id: int) -> str:
    return services.history_import_run(import_id)
