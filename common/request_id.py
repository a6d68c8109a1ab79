"""One id per request, on every log line the request writes and on the tasks it queues.

The id lives in a context variable: the middleware sets it for the request, a logging filter copies
it onto each record, and Celery's signals carry it in the headers of every task published meanwhile
and set it again in the worker while that task runs, so a request and the work it caused are found
together in the logs.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from contextvars import ContextVar, Token
from typing import Any

from django.http import HttpRequest, HttpResponse

HEADER = "X-Request-ID"
# The task message header that carries the id to the worker.
TASK_HEADER = "request_id"
# What a proxy or client may choose; anything else (too long, spaces, control characters that
# could forge a log line) is replaced by an id of our own.
ACCEPTED = re.compile(r"[A-Za-z0-9._-]{1,64}")

_current: ContextVar[str | None] = ContextVar("request_id", default=None)
# Each running task's token, to restore what was there before when it ends.
_task_tokens: dict[str, Token[str | None]] = {}


def current_request_id() -> str | None:
    return _current.get()


def request_id_for(incoming: str | None) -> str:
    """The incoming id when it is a sane one, else a new one."""
    if incoming and ACCEPTED.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """First in the chain, so every other middleware's log lines carry the id too. The id is
    left in place until the response is closed (`request_finished`): Django logs a 4xx or 5xx
    answer after the middleware has returned it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_for(request.headers.get(HEADER))
        _current.set(request_id)
        response = self.get_response(request)
        response[HEADER] = request_id
        return response


def request_finished(**_: Any) -> None:
    """Django's request_finished: lines logged between requests carry no request's id."""
    _current.set(None)


class RequestIdFilter(logging.Filter):
    """Puts the current request id on each record as `request_id` (none outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = _current.get()
        if request_id is not None:
            record.request_id = request_id
        return True


def task_publishing(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """Celery's before_task_publish: the task goes out with the id of the request (or task)
    that queues it."""
    request_id = _current.get()
    if headers is not None and request_id is not None:
        headers.setdefault(TASK_HEADER, request_id)


def task_starting(task_id: str, task: Any, **_: Any) -> None:
    """Celery's task_prerun: the task's log lines carry the id it was queued with. A task run
    eagerly inside a request has no header and keeps the request's id."""
    request_id = getattr(task.request, TASK_HEADER, None)
    if isinstance(request_id, str) and ACCEPTED.fullmatch(request_id):
        _task_tokens[task_id] = _current.set(request_id)


def task_finished(task_id: str, **_: Any) -> None:
    """Celery's task_postrun: the worker's next task starts without this one's id."""
    token = _task_tokens.pop(task_id, None)
    if token is not None:
        _current.reset(token)
