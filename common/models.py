"""The one table common/ keeps: when each background process was last seen alive."""

from __future__ import annotations

from django.db import models


class Heartbeat(models.Model):
    """A background process (the Celery worker, beat) writes its row now and then; the readiness
    check reads its age. One row per kind of process, overwritten: no history to keep."""

    process = models.CharField(max_length=32, primary_key=True)
    seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.process} seen at {self.seen_at.isoformat()}"
