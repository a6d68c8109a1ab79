"""Every log line of a request, and of the tasks it queued in a real worker, carries the request's
id, which the response returns in X-Request-ID."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from common.logging_json import JsonFormatter
from common.request_id import RequestIdFilter
from recalls.models import Notification, NotificationStatus, Recall
from tests.factories import PASSWORD
from tests.recalls import conftest as recall_fixtures
from tests.recalls.conftest import affected_clinic, recalled_lot, wait_until

smtp = recall_fixtures.smtp
smtp_server = recall_fixtures.smtp_server
celery_worker = recall_fixtures.celery_worker

NEW_ID = re.compile(r"[0-9a-f]{32}")
ROOT = Path(__file__).resolve().parent.parent
PRODUCTION_SECRET = "q8Zp1xR7mN4tB9wC3yL6hF0jD5gS8aE2uI7oP1qW4eR6tY9uI3oP5aS7dF0gH2k2V"


@pytest.fixture
def json_log() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The root logger's records as the JSON handler of the settings writes them."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)


def _lines_of(lines: list[dict[str, Any]], request_id: str) -> list[dict[str, Any]]:
    return [line for line in lines if line["request_id"] == request_id]


@pytest.mark.django_db
def test_a_requests_log_lines_carry_the_id_its_response_returns(json_log):
    response = Client().get("/api/v1/no-such-endpoint/")

    request_id = response["X-Request-ID"]
    assert NEW_ID.fullmatch(request_id)
    lines = _lines_of(json_log(), request_id)
    assert [line["logger"] for line in lines] == ["django.request"]
    assert lines[0]["level"] == "WARNING"
    assert "/api/v1/no-such-endpoint/" in lines[0]["message"]
    # and a line logged after the response is done carries no request's id.
    logging.getLogger("tests").warning("between requests")
    assert json_log()[-1]["request_id"] is None


@pytest.mark.django_db
def test_a_sane_incoming_request_id_is_kept(json_log):
    incoming = "lb-7f3a.2_request-" + "x" * 46

    response = Client().post("/health/live", headers={"X-Request-ID": incoming})

    assert response.status_code == 405
    assert response["X-Request-ID"] == incoming
    assert [line["logger"] for line in _lines_of(json_log(), incoming)] == ["django.request"]


@pytest.mark.parametrize(
    "incoming",
    [
        "has spaces",
        "x" * 65,
        'forged\n{"level": "INFO"}',
        "semi;colon",
        "",
    ],
)
@pytest.mark.django_db
def test_an_invalid_incoming_request_id_is_replaced(json_log, incoming):
    response = Client().get("/api/v1/no-such-endpoint/", headers={"X-Request-ID": incoming})

    request_id = response["X-Request-ID"]
    assert NEW_ID.fullmatch(request_id)
    assert request_id != incoming
    lines = json_log()
    assert len(_lines_of(lines, request_id)) == 1
    assert all(line["request_id"] != incoming for line in lines)


def _worker_lines(worker) -> list[dict[str, Any]]:
    """The worker's JSON log lines (its start-up banner is plain text)."""
    text = worker.log.read_text(errors="replace")
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def _succeeded(lines: list[dict[str, Any]], task: str) -> list[dict[str, Any]]:
    """The worker's lines saying a task whose name starts with `task` succeeded."""
    return [
        line
        for line in lines
        if line["logger"] == "celery.app.trace"
        and line["message"].startswith(f"Task {task}")
        and " succeeded " in line["message"]
    ]


def test_the_tasks_a_request_queues_log_with_its_id_in_a_real_worker(
    reference_data, quality_manager, smtp, celery_worker
):
    # Given a released lot a clinic used, and a worker that logs JSON,
    lot = recalled_lot()
    affected_clinic(lot, contacts=2)
    celery_worker.environment["LOG_FORMAT"] = "json"
    worker = celery_worker.start()
    client = Client()
    client.force_login(quality_manager)

    # when a quality manager opens a recall through the API with the load balancer's id,
    response = client.post(
        "/api/v1/recalls/",
        {
            "recall_class": "II",
            "depth": "patient",
            "reason": "Mycoplasma detected in retained sample",
            "hazard": "Infection",
            "instructions": "Stop use.",
            "is_drill": False,
            "password": PASSWORD,
            "scope": {"lots": [lot.pk]},
        },
        content_type="application/json",
        headers={"X-Request-ID": "open-recall-4711"},
    )
    assert response.status_code == 201, response.content
    assert response["X-Request-ID"] == "open-recall-4711"

    # then the fan-out task it queued, and the delivery tasks the fan-out queued in turn, log
    # their work in the worker with the request's id.
    recall = Recall.objects.get()
    wait_until(
        lambda: (
            set(Notification.objects.filter(recall=recall).values_list("status", flat=True))
            == {NotificationStatus.SENT}
        ),
        what=f"every notice sent\n{worker.log_tail()}",
    )
    # (a task's "succeeded" line follows its last write)
    wait_until(
        lambda: len(_succeeded(_worker_lines(worker), "recalls.")) > 1,
        what=f"the delivery tasks' lines\n{worker.log_tail()}",
    )
    lines = _worker_lines(worker)
    fan_out = _succeeded(lines, "recalls.recall_notices_send[")
    recall_tasks = _succeeded(lines, "recalls.")
    assert [line["request_id"] for line in fan_out] == ["open-recall-4711"]
    assert len(recall_tasks) > len(fan_out)
    assert {line["request_id"] for line in recall_tasks} == {"open-recall-4711"}
    # and the worker's own lines, outside any task, carry none.
    ready = [line for line in lines if line["message"].endswith(" ready.")]
    assert [line["request_id"] for line in ready] == [None]


def _logged_by_a_command(tmp_path, **environment: str) -> str:
    """What a management command's warning looks like on standard error, under `environment`."""
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            "import logging; logging.getLogger('lots').warning('expiry soon')",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=True,
        env={
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(tmp_path),
            "TRACEABILITY_VAR_DIR": str(tmp_path / "var"),
            # Only parsed: the command opens no connection.
            "DATABASE_URL": "postgresql://check@127.0.0.1:1/check",
            "CELERY_BROKER_URL": "redis://127.0.0.1:1/0",
            **environment,
        },
    )
    return result.stderr.strip().splitlines()[-1]


def test_the_production_profile_logs_json_and_development_text(tmp_path):
    production = _logged_by_a_command(
        tmp_path, TRACEABILITY_PROFILE="production", SECRET_KEY=PRODUCTION_SECRET
    )
    development = _logged_by_a_command(tmp_path)
    chosen = _logged_by_a_command(tmp_path, LOG_FORMAT="json")

    assert json.loads(production) == {
        **json.loads(production),
        "level": "WARNING",
        "logger": "lots",
        "message": "expiry soon",
        "request_id": None,
    }
    assert development.endswith(" WARNING lots [-] expiry soon")
    assert json.loads(chosen)["message"] == "expiry soon"
