import logging.config
import os
import threading
from typing import Any

from celery import Celery, signals

from common import request_id

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "traceability.settings")

app = Celery("traceability")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# A task carries the id of the request (or task) that queued it, and logs with it.
signals.before_task_publish.connect(request_id.task_publishing, weak=False)
signals.task_prerun.connect(request_id.task_starting, weak=False)
signals.task_postrun.connect(request_id.task_finished, weak=False)


def _logging_as_django(loglevel: int | None = None, **_: Any) -> None:
    """Worker and beat log through the settings' LOGGING (JSON in production, with request ids)
    rather than Celery's own format; `--loglevel` still sets the level."""
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)
    if loglevel:
        logging.getLogger().setLevel(loglevel)


_heartbeat_stop = threading.Event()


def _heartbeat_start(**_: Any) -> None:
    """The worker's main process records its heartbeat for the readiness check, from a thread of
    its own, so a long task in the pool does not delay it."""
    from django.conf import settings

    from common.health import WORKER, heartbeat_keep

    _heartbeat_stop.clear()
    threading.Thread(
        target=heartbeat_keep,
        args=(WORKER, settings.HEALTH_WORKER_HEARTBEAT_SECONDS, _heartbeat_stop),
        name="health-heartbeat",
        daemon=True,
    ).start()


def _heartbeat_stop_at_shutdown(**_: Any) -> None:
    _heartbeat_stop.set()


signals.setup_logging.connect(_logging_as_django, weak=False)
signals.worker_ready.connect(_heartbeat_start, weak=False)
signals.worker_shutdown.connect(_heartbeat_stop_at_shutdown, weak=False)
