"""The load balancer's endpoints against the real services: PostgreSQL, the machine's Redis and
RabbitMQ, kombu's directory broker, and a real Celery worker writing its heartbeat."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.db import connections
from django.test import Client
from django.utils import timezone

from common.models import Heartbeat
from common.tasks import beat_heartbeat_record
from tests.recalls import conftest as recall_fixtures
from tests.recalls.conftest import free_port, wait_until

smtp = recall_fixtures.smtp
smtp_server = recall_fixtures.smtp_server
machine_broker = recall_fixtures.machine_broker
celery_worker = recall_fixtures.celery_worker

LIVE = "/health/live"
READY = "/health/ready"


@pytest.fixture
def client() -> Client:
    # A client that keeps no cookies from one request to the next, as a load balancer.
    return Client(enforce_csrf_checks=True)


@pytest.fixture
def directory_broker(settings, tmp_path):
    """kombu's filesystem transport, as the development defaults configure it."""
    folders = {name: tmp_path / name for name in ("out", "processed", "control")}
    for folder in folders.values():
        folder.mkdir()
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(folders["out"]),
        "data_folder_out": str(folders["out"]),
        "processed_folder": str(folders["processed"]),
        "control_folder": str(folders["control"]),
    }
    return folders


@pytest.fixture
def broker_down(settings):
    """Redis's address with nothing listening, and a password that must never be shown."""
    port = free_port()
    settings.CELERY_BROKER_URL = f"redis://:broker-s3cret@127.0.0.1:{port}/0"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    return port


@dataclass
class DatabaseOutage:
    """The default connection pointed at a closed port until `end()`."""

    port: int
    saved: dict[str, Any]

    def end(self) -> None:
        connection = connections["default"]
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(self.saved)


@pytest.fixture
def database_down(transactional_db) -> Iterator[DatabaseOutage]:
    connection = connections["default"]
    outage = DatabaseOutage(free_port(), dict(connection.settings_dict))
    connection.close()
    # The embedded server's socket directory sits in OPTIONS; it would win over HOST.
    options = {key: value for key, value in outage.saved["OPTIONS"].items() if key != "host"}
    connection.settings_dict.update(HOST="127.0.0.1", PORT=str(outage.port), OPTIONS=options)
    try:
        yield outage
    finally:
        outage.end()


def _assert_error_shape(body):
    assert body["errors"], body
    for problem in body["errors"]:
        assert set(problem) == {"code", "message", "field"}


def test_live_answers_200_without_asking_the_database_or_broker(client, broker_down):
    # No database access is allowed in this test: pytest-django would refuse any query.
    response = client.get(LIVE)

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_live_answers_200_while_the_database_is_down(client, database_down):
    assert client.get(LIVE).status_code == 200


@pytest.mark.django_db
def test_ready_is_200_with_the_database_and_the_machine_broker_up(client, settings, machine_broker):
    settings.CELERY_BROKER_URL = machine_broker
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}

    response = client.get(READY)

    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["broker"]["status"] == "ok"
    assert body["checks"]["broker"]["detail"] in {"Connected (redis).", "Connected (amqp)."}
    for check in body["checks"].values():
        assert set(check) == {"status", "required", "latency_ms", "detail"}
        assert check["latency_ms"] >= 0
    assert "127.0.0.1" not in response.content.decode()
    assert "guest" not in response.content.decode()


@pytest.mark.django_db
def test_ready_is_200_with_the_development_directory_broker(client, directory_broker):
    response = client.get(READY)

    assert response.status_code == 200, response.json()
    assert response.json()["checks"]["broker"]["detail"] == "Connected (filesystem)."


@pytest.mark.django_db
def test_ready_is_503_when_the_directory_broker_cannot_be_written(client, directory_broker):
    directory_broker["out"].rmdir()

    response = client.get(READY)

    assert response.status_code == 503
    assert [problem["code"] for problem in response.json()["errors"]] == ["broker_unavailable"]


@pytest.mark.django_db
def test_ready_is_503_in_the_error_shape_when_the_broker_is_down(client, broker_down):
    response = client.get(READY)

    body = response.json()
    assert response.status_code == 503
    _assert_error_shape(body)
    assert [(p["code"], p["field"]) for p in body["errors"]] == [("broker_unavailable", "broker")]
    assert body["checks"]["broker"]["status"] == "fail"
    assert body["checks"]["database"]["status"] == "ok"
    text = response.content.decode()
    assert "broker-s3cret" not in text
    assert str(broker_down) not in text
    assert "127.0.0.1" not in text


def test_ready_is_503_in_the_error_shape_when_the_database_is_down(
    client, database_down, directory_broker
):
    response = client.get(READY)

    body = response.json()
    assert response.status_code == 503
    _assert_error_shape(body)
    assert [(p["code"], p["field"]) for p in body["errors"]] == [
        ("database_unavailable", "database")
    ]
    assert body["checks"]["database"]["status"] == "fail"
    assert body["checks"]["broker"]["status"] == "ok"
    # The heartbeats are read from the database too; not required, they only warn.
    assert body["checks"]["worker"]["status"] == "warn"
    text = response.content.decode()
    assert str(database_down.port) not in text
    assert "127.0.0.1" not in text
    assert "postgres" not in text.lower()


def test_ready_answers_200_again_once_the_database_is_back(client, database_down, directory_broker):
    assert client.get(READY).status_code == 503

    database_down.end()

    assert client.get(READY).status_code == 200


@pytest.mark.django_db
def test_ready_neither_throttles_nor_sets_cookies(client, settings, directory_broker):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "anonymous": "1/minute",
        },
    }

    responses = [client.get(READY) for _ in range(3)]

    assert [response.status_code for response in responses] == [200, 200, 200]
    assert all(not response.cookies for response in responses)


@pytest.mark.django_db
def test_probes_are_answered_whatever_host_the_load_balancer_names(client, directory_broker):
    foreign = {"Host": "10.0.4.17:8000", "X-Request-ID": "lb-probe-1"}

    live = client.get(LIVE, headers=foreign)
    ready = client.get(READY, headers=foreign)
    page = client.get("/api/v1/lots/", headers=foreign)

    assert (live.status_code, ready.status_code) == (200, 200)
    assert ready["X-Request-ID"] == "lb-probe-1"
    assert page.status_code == 400


@pytest.mark.django_db
def test_probes_are_not_redirected_to_https(client, settings, directory_broker):
    settings.SECURE_SSL_REDIRECT = True

    assert client.get(READY).status_code == 200
    assert client.get("/api/v1/lots/").status_code == 301


@pytest.mark.django_db
def test_ready_refuses_writes(client):
    assert client.post(READY).status_code == 405


@pytest.mark.django_db
def test_worker_and_beat_only_warn_unless_required(client, settings, directory_broker):
    response = client.get(READY)
    checks = response.json()["checks"]
    assert response.status_code == 200
    assert checks["worker"] == {**checks["worker"], "status": "warn", "detail": "Never seen."}
    assert checks["beat"]["status"] == "warn"

    settings.HEALTH_REQUIRED_CHECKS = ["database", "broker", "worker", "beat"]
    response = client.get(READY)

    assert response.status_code == 503
    codes = [problem["code"] for problem in response.json()["errors"]]
    assert codes == ["worker_not_seen", "beat_not_seen"]


def test_the_worker_heartbeat_and_beat_heartbeat_seen_after_a_real_worker_runs(
    client, settings, celery_worker
):
    """On the broker a newcomer has, which the worker uses too."""
    # Given the worker and beat required, and no worker started yet,
    settings.HEALTH_REQUIRED_CHECKS = ["database", "broker", "worker", "beat"]
    assert client.get(READY).status_code == 503

    # when a worker starts, and runs the heartbeat task beat sends every minute,
    worker = celery_worker.start()
    wait_until(
        lambda: Heartbeat.objects.filter(process="worker").exists(),
        what=f"the worker's heartbeat\n{worker.log_tail()}",
    )
    beat_heartbeat_record.delay()
    wait_until(
        lambda: Heartbeat.objects.filter(process="beat").exists(),
        what=f"beat's heartbeat run by the worker\n{worker.log_tail()}",
    )

    # then the endpoint is ready, each heartbeat seen moments ago.
    response = client.get(READY)
    body = response.json()
    assert response.status_code == 200, body
    assert body["checks"]["worker"]["status"] == "ok"
    assert body["checks"]["beat"]["status"] == "ok"
    assert body["checks"]["worker"]["detail"].startswith("Last seen ")


def test_beat_schedules_the_heartbeat_task(settings):
    entries = [entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()]

    assert "common.beat_heartbeat_record" in entries


@pytest.mark.django_db
def test_a_stale_heartbeat_fails_a_required_check(client, settings, directory_broker):
    settings.HEALTH_REQUIRED_CHECKS = ["database", "broker", "worker"]
    Heartbeat.objects.create(process="worker", seen_at=timezone.now() - timedelta(minutes=10))

    response = client.get(READY)

    assert response.status_code == 503
    assert response.json()["checks"]["worker"]["detail"].startswith("Last seen 600 s ago")
