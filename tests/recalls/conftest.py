"""Real parts for recall delivery tests: an SMTP server (aiosmtpd), an HTTP receiver that verifies
Standard Webhooks signatures, and a Celery worker process against the real broker."""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from aiosmtpd.controller import Controller
from django.db import connection
from standardwebhooks import Webhook, WebhookVerificationError

ROOT = Path(__file__).resolve().parents[2]
WAIT_SECONDS = 60


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(condition: Callable[[], Any], *, what: str, timeout: float = WAIT_SECONDS) -> Any:
    """Poll `condition` until it is truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout} s waiting for {what}")
        time.sleep(0.1)


# ---------------------------------------------------------------------------------------------
# SMTP


@dataclass
class SmtpInbox:
    """What the SMTP server received, and how it should answer."""

    port: int = 0
    messages: list[Message] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    # Address -> SMTP replies to give at RCPT, one per attempt, before accepting it.
    rcpt_replies: dict[str, list[str]] = field(default_factory=dict)
    # Address -> reply given at every RCPT (a permanent refusal).
    refuse: dict[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def message_ids(self) -> list[str]:
        with self.lock:
            return [str(message["Message-ID"]) for message in self.messages]

    def to(self, address: str) -> list[Message]:
        with self.lock:
            return [message for message in self.messages if address in str(message["To"])]

    def counts(self) -> Counter[str]:
        return Counter(self.message_ids())


class _SmtpHandler:
    def __init__(self, inbox: SmtpInbox) -> None:
        self.inbox = inbox

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self.inbox.lock:
            if address in self.inbox.refuse:
                return self.inbox.refuse[address]
            planned = self.inbox.rcpt_replies.get(address)
            if planned:
                return planned.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        # Recorded before the reply: a sender that dies while we wait has still delivered, as
        # with a real server that queued the message but whose "250" never arrived.
        with self.inbox.lock:
            self.inbox.messages.append(message)
            self.inbox.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        if self.inbox.delay_seconds:
            await asyncio.sleep(self.inbox.delay_seconds)
        return "250 Message accepted for delivery"


class SmtpServer(SmtpInbox):
    """The inbox with its server, which can be taken down (connections refused, as when a mail
    server is down) and brought back on the same port."""

    controller: Controller | None = None

    def up(self) -> None:
        self.controller = Controller(_SmtpHandler(self), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def down(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer(port=free_port())
    server.up()
    try:
        yield server
    finally:
        server.down()


@pytest.fixture
def smtp(settings, smtp_server) -> SmtpServer:
    """The SMTP server, with Django's SMTP backend pointed at it."""
    inbox = smtp_server
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = inbox.port
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_TIMEOUT = 10
    settings.DEFAULT_FROM_EMAIL = "recalls@traceability.example"
    return inbox


def message_text(message: Message, subtype: str = "plain") -> str:
    for part in message.walk():
        if part.get_content_type() == f"text/{subtype}":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode(part.get_content_charset() or "utf-8")
    raise AssertionError(f"no text/{subtype} part")


def acknowledgement_link(body: str, site_url: str) -> str:
    """The signed acknowledgement link a notice's body carries."""
    match = re.search(re.escape(site_url) + r"/recalls/acknowledge/[^\s\"<]+", body)
    assert match, "the notice carries no acknowledgement link"
    return match.group(0)


@pytest.fixture
def eager_celery():
    """Tasks queued in this process run at once, here (unit and browser level: the worker tests
    run a real worker against the real broker)."""
    from traceability.celery import app

    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager = False
    app.conf.task_eager_propagates = False


# ---------------------------------------------------------------------------------------------
# HTTP receiver


@dataclass
class WebhookDelivery:
    path: str
    webhook_id: str
    payload: dict[str, Any]


@dataclass
class WebhookReceiver:
    """An HTTP server that verifies each request's Standard Webhooks signature with the secret of
    the endpoint (its path) and records what it accepted."""

    port: int = 0
    secrets: dict[str, str] = field(default_factory=dict)
    deliveries: list[WebhookDelivery] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # signatures that did not verify
    attempted: list[str] = field(default_factory=list)  # ids of every verified request
    # Path -> statuses to answer, one per request, before answering 200.
    answers: dict[str, list[int]] = field(default_factory=dict)
    delay_seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def endpoint(self, name: str) -> tuple[str, str]:
        """A new endpoint: (url, secret)."""
        secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
        path = f"/hooks/{name}"
        with self.lock:
            self.secrets[path] = secret
        return f"http://127.0.0.1:{self.port}{path}", secret

    def webhook_ids(self) -> list[str]:
        with self.lock:
            return [delivery.webhook_id for delivery in self.deliveries]

    def counts(self) -> Counter[str]:
        return Counter(self.webhook_ids())

    def at(self, name: str) -> list[WebhookDelivery]:
        with self.lock:
            return [d for d in self.deliveries if d.path == f"/hooks/{name}"]


def _handler(receiver: WebhookReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self, status: int) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with receiver.lock:
                secret = receiver.secrets.get(self.path)
                planned = receiver.answers.get(self.path)
                status = planned.pop(0) if planned else 200
            if secret is None:
                self._answer(404)
                return
            try:
                payload = Webhook(secret).verify(body, dict(self.headers.items()))
            except WebhookVerificationError:
                with receiver.lock:
                    receiver.rejected.append(self.headers.get("webhook-id", ""))
                self._answer(401)
                return
            with receiver.lock:
                receiver.attempted.append(self.headers["webhook-id"])
            if status == 200:
                with receiver.lock:
                    receiver.deliveries.append(
                        WebhookDelivery(self.path, self.headers["webhook-id"], payload)
                    )
                if receiver.delay_seconds:
                    time.sleep(receiver.delay_seconds)
            self._answer(status)

    return Handler


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# ---------------------------------------------------------------------------------------------
# Celery worker process


def worker_database_url() -> str:
    """The URL of the database pytest-django created, for a worker process to use."""
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"], safe="")
    # The embedded server is reached through its socket directory, which dj-database-url puts in
    # OPTIONS (`?host=/path`), not in HOST.
    host = db.get("HOST") or (db.get("OPTIONS") or {}).get("host") or "127.0.0.1"
    if host.startswith("/"):
        return f"postgresql://{credentials}@/{db['NAME']}?host={quote(host, safe='')}"
    return f"postgresql://{credentials}@{host}:{db.get('PORT') or 5432}/{db['NAME']}"


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    log: Path
    name: str

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL the worker and its pool children (their own process group): no goodbye, no
        acknowledgement, no cleanup; as when a machine dies."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=WAIT_SECONDS)

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()


@dataclass
class WorkerFactory:
    tmp_path: Path
    environment: dict[str, str]
    started: list[WorkerProcess] = field(default_factory=list)

    def start(self) -> WorkerProcess:
        name = f"recalls-test-{uuid.uuid4().hex[:8]}@%h"
        log = self.tmp_path / f"worker-{len(self.started)}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "traceability",
                    "worker",
                    "--pool=prefork",
                    "--concurrency=2",
                    "-Q",
                    "celery",
                    "-n",
                    name,
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    "--loglevel=INFO",
                ],
                cwd=ROOT,
                env=self.environment,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group, so a kill takes the pool too
            )
        worker = WorkerProcess(process, log, name)
        self.started.append(worker)
        wait_until(
            lambda: " ready." in log.read_text(errors="replace") or process.poll() is not None,
            what="the Celery worker to start",
        )
        assert process.poll() is None, f"the worker exited:\n{worker.log_tail()}"
        return worker


# The machine's own brokers, for the tests that prove delivery over each of them by name. A
# database number of its own keeps Redis free of other users' messages.
MACHINE_BROKERS = {
    "redis": "redis://127.0.0.1:6379/15",
    "rabbitmq": "amqp://guest:guest@127.0.0.1:5672//",
}


def _listening(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), 2):
            return True
    except OSError:
        return False


def _use_broker(app: Any, url: str, transport_options: dict[str, Any]) -> None:
    """Point this process's Celery app at another broker: drop its pooled connections and
    producers, which are made again from the configuration on next use."""
    from kombu import pools

    pools.reset()  # closes every pooled connection and forgets the pools (kombu's registry)
    # Celery reads CELERY_BROKER_URL from the environment before its configuration.
    os.environ["CELERY_BROKER_URL"] = url
    app.conf.broker_url = url
    app.conf.broker_transport_options = transport_options
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture(params=sorted(MACHINE_BROKERS))
def machine_broker(request) -> Iterator[str]:
    """Celery in this process and in the workers on the machine's Redis, then its RabbitMQ
    (each test that asks for this runs once per broker). CI starts both (.ci/run), and there a
    broker that does not answer fails the test; elsewhere it is skipped, naming what to start."""
    from traceability.celery import app

    name, url = request.param, MACHINE_BROKERS[request.param]
    if not _listening(url):
        message = f"{name} is not listening at {urlsplit(url).netloc.split('@')[-1]}"
        if os.environ.get("CI"):
            pytest.fail(f"{message} (CI starts it in .ci/run)", pytrace=False)
        pytest.skip(f"{message}: start it to prove delivery over {name}")
    saved = (app.conf.broker_url, dict(app.conf.broker_transport_options or {}))
    saved_environment = os.environ.get("CELERY_BROKER_URL")
    _use_broker(app, url, {})
    try:
        yield url
    finally:
        _use_broker(app, *saved)
        if saved_environment is None:
            os.environ.pop("CELERY_BROKER_URL", None)
        else:
            os.environ["CELERY_BROKER_URL"] = saved_environment


@pytest.fixture
def celery_worker(request, transactional_db, smtp, tmp_path) -> Iterator[WorkerFactory]:
    """Starts real Celery worker processes (prefork, two children) against the test database
    and the test SMTP server, on the broker a newcomer has (CELERY_BROKER_URL, else kombu's
    directory broker under var/), or on the machine's Redis or RabbitMQ when the test asks for
    `machine_broker`. Every worker is stopped at teardown, before the database is flushed."""
    from traceability.celery import app

    environment = dict(os.environ)
    if "machine_broker" in request.fixturenames:
        environment["CELERY_BROKER_URL"] = request.getfixturevalue("machine_broker")
    environment.update(
        DATABASE_URL=worker_database_url(),
        DATABASE_CONN_MAX_AGE="0",
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(smtp.port),
        EMAIL_TIMEOUT="10",
        DEFAULT_FROM_EMAIL="recalls@traceability.example",
        RECALL_DELIVERY_BACKOFF_SECONDS="1",
        RECALL_DELIVERY_BACKOFF_MAX_SECONDS="2",
        PYTHONUNBUFFERED="1",
    )
    # Messages a previous run left in the queue would be delivered to this worker.
    app.control.purge()
    factory = WorkerFactory(tmp_path, environment)
    try:
        yield factory
    finally:
        for worker in factory.started:
            worker.stop()
        app.control.purge()


# ---------------------------------------------------------------------------------------------
# A recall that reaches clinics


GTIN = "09506000134352"


@dataclass
class AffectedClinic:
    ready: Any  # tests.factories.ClinicReady
    contacts: list[Any]
    patient_name: str
    patient_phone: str

    @property
    def clinic(self) -> Any:
        return self.ready.clinic


def recalled_lot(**fields: Any) -> Any:
    from tests.factories import ProductFactory, released_lot

    product = fields.pop("product", None) or ProductFactory(gtin=GTIN, name="Exosome serum A")
    return released_lot(product=product, **fields)


def affected_clinic(lot: Any, *, contacts: int = 1, units_held: int = 4) -> AffectedClinic:
    """A clinic that received the lot, holds `units_held` of it and treated one patient with it;
    the patient's contact details are on record."""
    from tests.factories import ClinicContactFactory, clinic_ready, receive, treat
    from treatments.models import PatientContact

    ready = clinic_ready()
    people = [
        ClinicContactFactory(clinic=ready.clinic, name=f"Recall contact {number}")
        for number in range(contacts)
    ]
    receive(ready, lot, units_held + 1)
    treat(ready, lot, 1)
    name = f"Pat Example {ready.clinic.pk}"
    phone = f"+1 512 555 {ready.clinic.pk:04d}"
    PatientContact.objects.create(
        patient=ready.patient, full_name=name, phone=phone, email=f"pat{ready.clinic.pk}@mail.test"
    )
    return AffectedClinic(ready, people, name, phone)


def open_recall(
    quality_manager: Any,
    lots: Any,
    *,
    recall_class: str = "I",
    depth: str = "patient",
    drill: bool = False,
    instructions: str = "Keep the vials frozen until they are collected.",
) -> Any:
    from recalls.services import RecallScopeRequest, recall_open
    from tests.factories import PASSWORD

    lots = lots if isinstance(lots, list) else [lots]
    return recall_open(
        actor=quality_manager,
        password=PASSWORD,
        recall_class=recall_class,
        depth=depth,
        reason="Endotoxin above the specification in retained samples",
        hazard="Fever and septic shock after injection",
        scope=RecallScopeRequest(lot_ids=[lot.pk for lot in lots]),
        instructions=instructions,
        is_drill=drill,
    )


def webhook_endpoint(receiver: WebhookReceiver, name: str, *, clinic: Any = None) -> Any:
    from recalls.models import WebhookEndpoint

    url, secret = receiver.endpoint(name)
    return WebhookEndpoint.objects.create(name=name, url=url, secret=secret, clinic=clinic)
