"""PostgreSQL restarted while requests and a recall's fan-out are in flight.

The application is served by gunicorn and delivers through a real Celery worker, both pointed
at a PostgreSQL server of the test's own, which is shut down (fast: sessions cut, open
transactions rolled back) under load and started again. Every request is answered, each either
a success or a 503 in the API's error shape that says when to try again; what answered success
is in the database, whole, and what failed left nothing; the fan-out finishes by itself, each
notice sent once."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from tests.factories import PASSWORD
from tests.faults.conftest import PrivatePostgres, manage, worker_environment
from tests.recalls import conftest as recall_fixtures
from tests.recalls.conftest import ROOT, WorkerFactory, free_port, wait_until

smtp_server = recall_fixtures.smtp_server

MARKER = "FAULT-SEED "
CLIENTS = 6
NOTICES = 40
OUTAGE_SECONDS = 2.0

# Runs in `manage.py shell` against the private server: a quality manager with an API token,
# and a released lot four clinics used, with ten recall contacts each. Run again on the same
# database, its factories' numbers start past the earlier runs'.
SEED = r"""
import json

import factory
from django.contrib.auth import get_user_model
from knox.models import AuthToken

from providers.models import Role
from tests import factories
from tests.recalls.conftest import affected_clinic, recalled_lot

start = get_user_model().objects.count() * 1000
for candidate in vars(factories).values():
    if isinstance(candidate, type) and issubclass(candidate, factory.django.DjangoModelFactory):
        candidate.reset_sequence(start, force=True)
user = factories.UserFactory()
factories.MembershipFactory(user=user, role=Role.QUALITY_MANAGER, clinic=None)
lot = recalled_lot(product=factories.ProductFactory())
for _ in range(4):
    affected_clinic(lot, contacts=10)
_, token = AuthToken.objects.create(user)
print("FAULT-SEED " + json.dumps({"token": token, "lot": lot.pk}))
"""


@dataclass(frozen=True)
class Answer:
    name: str
    status: int | None  # None: no answer (connection dropped or refused)
    headers: dict[str, str]
    body: Any
    error: str = ""


@pytest.fixture
def served(private_postgres, private_redis, smtp_server, tmp_path) -> Iterator[dict[str, Any]]:
    """gunicorn (three sync workers, persistent database connections as in production) and one
    Celery worker, both on the private PostgreSQL and Redis; the seed's token and lot."""
    output = manage(private_postgres.url, "shell", "--no-imports", "--command", SEED)
    line = next(line for line in output.splitlines() if line.startswith(MARKER))
    seed = json.loads(line.removeprefix(MARKER))
    environment = {
        **worker_environment(
            database_url=private_postgres.url,
            broker_url=private_redis.url,
            smtp_port=smtp_server.port,
        ),
        "DEBUG": "false",
        "API_THROTTLE_USER": "1000000/second",
    }
    environment.pop("DATABASE_CONN_MAX_AGE", None)
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "traceability.wsgi",
            *f"--bind 127.0.0.1:{port} --workers 3 --worker-class sync --timeout 60".split(),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=(tmp_path / "gunicorn.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    workers = WorkerFactory(tmp_path, environment)
    try:
        wait_until(lambda: _listening(port) or server.poll() is not None, what="gunicorn")
        assert server.poll() is None, (tmp_path / "gunicorn.log").read_text()
        worker = workers.start()
        yield {
            **seed,
            "base": f"http://127.0.0.1:{port}",
            "worker": worker,
            "workers": workers,
            "log": tmp_path / "gunicorn.log",
        }
    finally:
        for worker in workers.started:
            worker.stop()
        server.terminate()
        server.wait(timeout=30)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), 1):
            return True
    except OSError:
        return False


def _post_manufacturer(session: requests.Session, base: str, name: str) -> Answer:
    try:
        response = session.post(
            f"{base}/api/v1/manufacturers/",
            json={"legal_name": name, "country": "US"},
            headers={"X-Request-ID": _request_id(name)},
            timeout=60,
        )
    except requests.RequestException as error:
        return Answer(name, None, {}, None, f"{type(error).__name__}: {error}")
    try:
        body = response.json()
    except ValueError:
        body = response.text
    return Answer(name, response.status_code, dict(response.headers), body)


def _open_recall(served: dict[str, Any], *, request_id: str) -> requests.Response:
    return requests.post(
        f"{served['base']}/api/v1/recalls/",
        json={
            "recall_class": "I",
            "depth": "patient",
            "reason": "Endotoxin above the specification in retained samples",
            "hazard": "Fever after injection",
            "instructions": "Stop use.",
            "is_drill": False,
            "password": PASSWORD,
            "scope": {"lots": [served["lot"]]},
        },
        headers={"Authorization": f"Token {served['token']}", "X-Request-ID": request_id},
        timeout=60,
    )


def _request_id(name: str) -> str:
    return name.replace(" ", "-")


def _json_lines(path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def _client(base: str, token: str, number: int, stop: threading.Event, answers: list[Answer]):
    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"
    sent = 0
    while not stop.is_set():
        answers.append(_post_manufacturer(session, base, f"Fault Bio {number}-{sent}"))
        sent += 1


def _rows(server: PrivatePostgres, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with server.connect() as connection:
        return connection.execute(sql, params).fetchall()


def _notice_statuses(server: PrivatePostgres, recall_id: int) -> Counter[str]:
    sql = "SELECT status FROM recalls_notification WHERE recall_id = %s"
    return Counter(status for (status,) in _rows(server, sql, recall_id))


def _message_ids(server: PrivatePostgres, recall_id: int) -> set[str]:
    sql = "SELECT message_id FROM recalls_notification WHERE recall_id = %s"
    return {
        f"<{message_id}@traceability.example>" for (message_id,) in _rows(server, sql, recall_id)
    }


def test_a_database_restart_under_load_answers_503_to_retry_and_loses_or_doubles_nothing(
    private_postgres, smtp_server, served
):
    base, token = served["base"], served["token"]
    # Given a recall whose 40 notices are being sent (a slow mail server: 0.25 s each, so the
    # fan-out lasts about five seconds over the worker's two processes),
    smtp_server.delay_seconds = 0.25
    opened = _open_recall(served, request_id="fault-recall-open")
    assert opened.status_code == 201, opened.text
    recall_id = opened.json()["id"]
    wait_until(lambda: smtp_server.messages, what="the fan-out to begin")

    # and clients creating manufacturers as fast as the server answers, and a load balancer
    # asking for readiness,
    stop = threading.Event()
    answers: list[Answer] = []
    clients = [
        threading.Thread(target=_client, args=(base, token, number, stop, answers))
        for number in range(CLIENTS)
    ]
    readiness: list[tuple[float, int]] = []

    def probe() -> None:
        while not stop.is_set():
            response = requests.get(f"{base}/health/ready", timeout=30)
            readiness.append((time.monotonic(), response.status_code))
            time.sleep(0.2)

    prober = threading.Thread(target=probe)
    for thread in [*clients, prober]:
        thread.start()

    # when the database is shut down mid-flight and comes back after two seconds,
    try:
        time.sleep(1)
        sent_before = len(smtp_server.messages)
        private_postgres.stop()
        down_at = time.monotonic()
        time.sleep(OUTAGE_SECONDS)
        private_postgres.start()
        up_at, after = time.monotonic(), len(answers)
        wait_until(
            lambda: any(answer.status == 201 for answer in answers[after:]),
            what="a request to succeed after the restart",
        )
        recovered_at = time.monotonic()
        time.sleep(1)
    finally:
        stop.set()
        for thread in [*clients, prober]:
            thread.join(timeout=90)

    # then every request was answered: a success, or a 503 in the error shape that names the
    # database and says when to send it again; never a 500, never a dropped connection;
    statuses = Counter(answer.status for answer in answers)
    assert set(statuses) == {201, 503}, [a for a in answers if a.status not in (201, 503)][:3]
    for answer in answers:
        if answer.status == 503:
            assert answer.body == {
                "errors": [
                    {
                        "code": "database_unavailable",
                        "message": answer.body["errors"][0]["message"],
                        "field": None,
                    }
                ]
            }
            assert int(answer.headers["Retry-After"]) > 0
    # what succeeded is stored, with its history, and what failed left nothing;
    created = {answer.name for answer in answers if answer.status == 201}
    stored = _rows(
        private_postgres,
        "SELECT m.legal_name, count(e.pgh_id) FROM providers_manufacturer m "
        "LEFT JOIN providers_manufacturerevent e ON e.pgh_obj_id = m.id "
        "WHERE m.legal_name LIKE 'Fault Bio %%' GROUP BY m.legal_name",
    )
    assert {name for name, _ in stored} == created
    assert {events for _, events in stored} == {1}
    # each 503 is logged under the request's id, which the answer returns;
    unavailable = {
        line["request_id"]
        for line in _json_lines(served["log"])
        if line["message"].startswith("database unavailable")
    }
    for answer in answers:
        assert answer.headers["X-Request-ID"] == _request_id(answer.name)
    assert {_request_id(a.name) for a in answers if a.status == 503} <= unavailable
    # readiness said 503 while the database was away, and 200 again after;
    seen = [status for at, status in readiness if down_at < at < up_at]
    assert 503 in seen
    assert readiness[-1][1] == 200
    # and the fan-out finished by itself, every notice sent, each once.
    wait_until(
        lambda: _notice_statuses(private_postgres, recall_id) == Counter(sent=NOTICES),
        what=f"every notice sent\n{served['worker'].log_tail()}",
        timeout=90,
    )
    delivered_at = time.monotonic()
    # the batches in flight waited for the database rather than leave their claims to the
    # lease, and the worker's lines for the fan-out, before and after the restart, carry the id
    # of the request that opened the recall;
    worker_lines = _json_lines(served["worker"].log)
    waited = [line for line in worker_lines if "database unavailable" in line["message"]]
    assert waited
    delivered = [
        line
        for line in worker_lines
        if line["logger"] == "celery.app.trace" and " succeeded " in line["message"]
    ]
    assert {line["request_id"] for line in waited + delivered} == {"fault-recall-open"}
    message_ids = _message_ids(private_postgres, recall_id)
    assert smtp_server.counts() == Counter(dict.fromkeys(message_ids, 1))
    print(
        f"{CLIENTS} clients; {len(answers)} requests: {statuses[201]} answered 201, "
        f"{statuses[503]} answered 503; {sent_before} of {NOTICES} notices sent before the "
        f"shutdown; database down {up_at - down_at:.1f} s; first 201 {recovered_at - up_at:.1f} s "
        f"after it was back; every notice sent {delivered_at - up_at:.1f} s after it was back"
    )


def test_a_fan_out_that_starts_while_the_database_is_down_runs_again_once_it_is_back(
    private_postgres, smtp_server, served
):
    # Given a recall opened while no worker runs (its fan-out waits in the broker),
    served["worker"].stop()
    opened = _open_recall(served, request_id="fault-recall-queued")
    assert opened.status_code == 201, opened.text
    recall_id = opened.json()["id"]

    # when the database goes away and a worker takes the fan-out meanwhile,
    private_postgres.stop()
    worker = served["workers"].start()
    wait_until(
        lambda: any(
            "recalls.recall_notices_send" in line and "Retry in" in line
            for line in worker.log.read_text().splitlines()
        ),
        what=f"the fan-out to meet the database down\n{worker.log_tail()}",
    )
    private_postgres.start()

    # then the fan-out runs again after its backoff and every notice is sent, each once.
    wait_until(
        lambda: _notice_statuses(private_postgres, recall_id) == Counter(sent=NOTICES),
        what=f"every notice sent\n{worker.log_tail()}",
    )
    assert smtp_server.counts() == Counter(
        dict.fromkeys(_message_ids(private_postgres, recall_id), 1)
    )
