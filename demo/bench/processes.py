"""What the servers and workers a benchmark starts need: the database it measures, and an end."""

from __future__ import annotations

import os
import signal
import subprocess
from urllib.parse import quote

from django.db import connection


def database_url() -> str:
    """The URL of the database this process uses (a test's own, under pytest), for a gunicorn
    or Celery process to use. The embedded server is reached through its socket directory, which
    dj-database-url keeps in OPTIONS (`?host=/path`) rather than in HOST."""
    database = connection.settings_dict
    credentials = quote(database["USER"] or "", safe="")
    if database.get("PASSWORD"):
        credentials += ":" + quote(database["PASSWORD"], safe="")
    host = database.get("HOST") or (database.get("OPTIONS") or {}).get("host") or "127.0.0.1"
    name = quote(database["NAME"], safe="")
    if host.startswith("/"):
        return f"postgresql://{credentials}@/{name}?host={quote(host, safe='')}"
    return f"postgresql://{credentials}@{host}:{database.get('PORT') or 5432}/{name}"


def stop(process: subprocess.Popen[bytes], grace_seconds: float = 20) -> None:
    """End a server or worker started in its own session, with its children: SIGTERM to the
    group, and SIGKILL if it has not gone within the grace period (a worker's warm shutdown can
    wait on a pool child that never answers; a benchmark has nothing to save by waiting)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=grace_seconds)
