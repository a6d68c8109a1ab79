"""Log records as one JSON object per line, for a log collector to index without parsing text."""

from __future__ import annotations

import datetime
import json
import logging
from typing import Any

# What every LogRecord has; anything else on a record was passed as `extra` by the code logging.
_RECORD_ATTRIBUTES = frozenset(
    set(vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None))) | {"message", "asctime"}
)
_PLAIN = (str, int, float, bool, type(None))


class JsonFormatter(logging.Formatter):
    """time (UTC, ISO 8601), level, logger, message, request_id (null outside a request), the
    exception's traceback if any, and each plain `extra` value (objects such as the request
    Django passes are left out: their text may hold what a log must not)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, tz=datetime.UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES and key not in entry and isinstance(value, _PLAIN):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)
