"""Liveness and readiness for a load balancer or orchestrator.

`live` says only that the process answers. `ready` runs each check (the database, the broker, the
Celery worker's heartbeat, beat's last tick) with a short timeout and answers 200 when every
required one passes (settings.HEALTH_REQUIRED_CHECKS), else 503 in the API's error shape. A check
not required still runs and shows "warn" when it fails, so a deployment without a worker is
ready and still tells its operator the worker is missing. Details name what failed, never a host,
user or password: the endpoints answer anyone.
"""

from __future__ import annotations

import datetime
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connections, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import Resolver404, resolve
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe
from kombu.connection import Connection

from common.errors import Problem
from common.models import Heartbeat

logger = logging.getLogger(__name__)

# Where traceability/urls.py puts the probes; other paths are not even resolved here.
PROBE_PREFIX = "/health/"
WORKER = "worker"
BEAT = "beat"


class Unhealthy(Exception):
    """A check's failure, with a detail fit to show anyone."""


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    required: bool
    latency_ms: float
    detail: str

    @property
    def status(self) -> str:
        if self.passed:
            return "ok"
        return "fail" if self.required else "warn"

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "required": self.required,
            "latency_ms": self.latency_ms,
            "detail": self.detail,
        }


def _timeout_seconds() -> float:
    return float(settings.HEALTH_CHECK_TIMEOUT_SECONDS)


def database() -> str:
    """`SELECT 1` on the default database under a statement timeout."""
    with transaction.atomic(using="default"), connections["default"].cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = %s", [int(_timeout_seconds() * 1000)])
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return _("SELECT 1 answered.")


def broker() -> str:
    """A connection to the configured Celery broker, without retries. The directory broker the
    development default uses is ready when its folders exist and can be written."""
    timeout = _timeout_seconds()
    options = dict(getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", None) or {})
    with Connection(  # type: ignore[no-untyped-call]
        settings.CELERY_BROKER_URL,
        connect_timeout=timeout,
        transport_options={**options, "socket_connect_timeout": timeout, "socket_timeout": timeout},
    ) as connection:
        connection.ensure_connection(max_retries=0, timeout=timeout)
        transport = str(connection.transport.driver_type)
    if transport == "filesystem":
        for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
            folder = options.get(key)
            if folder and not os.access(folder, os.W_OK | os.X_OK):
                raise Unhealthy(_("The broker's %(folder)s cannot be written.") % {"folder": key})
    return _("Connected (%(transport)s).") % {"transport": transport}


def heartbeat_record(process: str) -> None:
    """Say that `process` is alive now: one statement, however often it is called."""
    Heartbeat.objects.bulk_create(
        [Heartbeat(process=process, seen_at=timezone.now())],
        update_conflicts=True,
        unique_fields=["process"],
        update_fields=["seen_at"],
    )


def _seen_recently(process: str, max_age_seconds: float) -> str:
    # The primary, always: a lagging replica would show a live worker as stale.
    rows = Heartbeat.objects.using("default").filter(process=process)
    seen_at = rows.values_list("seen_at", flat=True).first()
    if seen_at is None:
        raise Unhealthy(_("Never seen."))
    age = (timezone.now() - seen_at).total_seconds()
    if age > max_age_seconds:
        raise Unhealthy(
            _("Last seen %(age)d s ago, more than %(limit)d s.")
            % {"age": age, "limit": max_age_seconds}
        )
    return _("Last seen %(age)d s ago.") % {"age": max(age, 0)}


def worker() -> str:
    """A Celery worker wrote its heartbeat recently."""
    return _seen_recently(WORKER, settings.HEALTH_WORKER_MAX_AGE_SECONDS)


def beat() -> str:
    """A worker ran the heartbeat task beat schedules, recently."""
    return _seen_recently(BEAT, settings.HEALTH_BEAT_MAX_AGE_SECONDS)


CHECKS: dict[str, Callable[[], str]] = {
    "database": database,
    "broker": broker,
    WORKER: worker,
    BEAT: beat,
}
PROBLEM_CODES = {
    "database": "database_unavailable",
    "broker": "broker_unavailable",
    WORKER: "worker_not_seen",
    BEAT: "beat_not_seen",
}


def run_check(name: str, check: Callable[[], str], *, required: bool) -> CheckResult:
    """Run one check and time it. Any exception fails it; only the exception's type is shown,
    as its message may name a host or a user."""
    started = time.perf_counter()
    try:
        detail, passed = check(), True
    except Unhealthy as failure:
        detail, passed = str(failure), False
    except Exception as error:
        detail = _("Unreachable (%(error)s).") % {"error": type(error).__name__}
        passed = False
    latency_ms = round((time.perf_counter() - started) * 1000, 1)
    return CheckResult(name, passed, required, latency_ms, detail)


def readiness() -> list[CheckResult]:
    required = set(settings.HEALTH_REQUIRED_CHECKS)
    return [run_check(name, check, required=name in required) for name, check in CHECKS.items()]


def _checked_at() -> str:
    return timezone.now().astimezone(datetime.UTC).isoformat()


@csrf_exempt
@require_safe
@never_cache
def live(request: HttpRequest) -> JsonResponse:
    """The process answers requests; nothing else is asked, so a restart is never triggered by a
    database or broker outage."""
    return JsonResponse({"status": "ok"})


@csrf_exempt
@require_safe
@never_cache
def ready(request: HttpRequest) -> JsonResponse:
    """200 when every required check passes; 503 with one problem per failed required check."""
    results = readiness()
    checks = {result.name: result.as_dict() for result in results}
    failed = [result for result in results if result.status == "fail"]
    if not failed:
        return JsonResponse({"status": "ok", "checked_at": _checked_at(), "checks": checks})
    problems = [
        Problem(
            PROBLEM_CODES[result.name],
            _("The %(check)s check failed: %(detail)s")
            % {"check": result.name, "detail": result.detail},
            result.name,
        )
        for result in failed
    ]
    body = {
        "errors": [problem.as_dict() for problem in problems],
        "status": "fail",
        "checked_at": _checked_at(),
        "checks": checks,
    }
    return JsonResponse(body, status=503)


class ProbeMiddleware:
    """Answers the two probes before the rest of the chain: a load balancer asks with its own
    idea of the Host header (often the instance's address, not in ALLOWED_HOSTS), over plain
    HTTP, and needs no session, language or sign-in. The paths stay in the URL configuration;
    only the views below are answered here."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        view = _probe_view(request.path_info)
        if view is not None:
            return view(request)
        return self.get_response(request)


def _probe_view(path: str) -> Callable[[HttpRequest], HttpResponse] | None:
    if not path.startswith(PROBE_PREFIX):
        return None
    try:
        view: Callable[[HttpRequest], HttpResponse] = resolve(path).func
    except Resolver404:
        return None
    return view if view in (live, ready) else None


def heartbeat_keep(process: str, every_seconds: float, stop: threading.Event) -> None:
    """Record `process`'s heartbeat now and every `every_seconds` until `stop` is set; meant
    for a thread of its own. A database outage skips beats rather than ending the thread, and
    the thread's connection is closed between beats."""
    while True:
        try:
            heartbeat_record(process)
        except DatabaseError:
            logger.warning("could not record the %s heartbeat", process, exc_info=True)
        finally:
            connections.close_all()
        if stop.wait(every_seconds):
            return
