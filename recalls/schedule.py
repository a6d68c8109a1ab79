"""When beat runs the recalls app's periodic work; the project's settings compose it. Nothing
here reads Django's settings, so the settings module can import it."""

from __future__ import annotations

from typing import Any

from celery.schedules import crontab

# Notices whose task the broker refused (it was down at their commit) are queued within this long of
# its return; each sweep left waiting longer (no worker) is dropped, the next one does the same.
QUEUE_SWEEP_SECONDS = 10.0

# Notices stuck with a dead worker go back to the queue every minute, unacknowledged recalls are
# reminded and escalated every quarter hour, and expiring stock and certificates are warned of
# once a day.
BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    "recalls-notices-queue-failed": {
        "task": "recalls.notices_queue_failed",
        "schedule": QUEUE_SWEEP_SECONDS,
        "options": {"expires": QUEUE_SWEEP_SECONDS - 1},
    },
    "recalls-notifications-requeue-stale": {
        "task": "recalls.notifications_requeue_stale",
        "schedule": 60.0,
    },
    "recalls-reminders-send": {
        "task": "recalls.recall_reminders_send",
        "schedule": 15 * 60.0,
    },
    "recalls-expiry-watch": {
        "task": "recalls.expiry_watch",
        "schedule": crontab(hour=6, minute=0),
    },
}
