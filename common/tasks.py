"""The heartbeat task beat schedules (settings.CELERY_BEAT_SCHEDULE), for the readiness check."""

from __future__ import annotations

from celery import shared_task

from common.health import BEAT, heartbeat_record


@shared_task(
    name="common.beat_heartbeat_record", ignore_result=True, soft_time_limit=20, time_limit=30
)
def beat_heartbeat_record() -> None:
    """Beat sent this and a worker ran it: beat is alive (and a worker with it)."""
    heartbeat_record(BEAT)
