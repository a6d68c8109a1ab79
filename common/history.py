"""History tracking as every tracked model of the project declares it: pghistory's own tracker,
with the index the audit search reads each event table by."""

from __future__ import annotations

from typing import Any

import pghistory
from django.db import models


def track_history(**kwargs: Any) -> Any:
    """`pghistory.track(**kwargs)`, the event model indexed newest first: the audit search asks
    each event table for its newest events (in a window, of a record, of a user) and merges
    them, so a page of the whole history reads a few index entries per table instead of every
    event there is."""
    meta = dict(kwargs.pop("meta", None) or {})
    meta["indexes"] = [
        *meta.get("indexes", []),
        models.Index(fields=["-pgh_created_at", "-pgh_id"]),
    ]
    return pghistory.track(meta=meta, **kwargs)
