"""Recalls: opening one over many exposures, committed, and delivering its notices through a real
worker, each beside its floor measured in the same run.

1. `recall_open` over a lot used in N treatment lines at CLINICS clinics, committed: the lots
   marked, the stock blocked, the exposures frozen, the outbox rows written, the signature, the
   commit and the delivery task queued on commit. A committed recall cannot be opened twice, so
   each repetition recalls a lot of its own, used once in each of the same N treatments. The
   password check is not in the figure (a fast hasher; the password check has its own row
   elsewhere). Floor: the INSERT ... SELECT of the same exposure rows into a plain temporary
   table, committed, interleaved repetition by repetition.
2. Notice delivery: M notices (half e-mail to an SMTP server, half Standard Webhooks to an HTTP
   receiver, both started here) through a real Celery worker started as `celery -A traceability
   worker` on the configured broker, timed from the queuing of the round's delivery to the last
   notice recorded sent. Floor: M bare no-op tasks (`demo.bench_noop`) on the same broker and
   worker, timed from the first publish to the last success. Afterwards every notice must have
   reached its receiver exactly once and be recorded sent, or the section raises.
"""

from __future__ import annotations

import base64
import datetime
import email.policy
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pgtrigger
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone

from demo.bench.processes import database_url, stop
from demo.bench.report import Row, median
from demo.tasks import bench_noop
from lots.models import Lot, LotStatus, Product, RegulatoryBasis, SourceKind
from providers.models import Clinic, ClinicContact, Manufacturer, Membership, Practitioner, Role
from recalls.models import Notification, NotificationStatus, Recall, WebhookEndpoint
from recalls.notices import message_id_header
from recalls.services import RecallScopeRequest, recall_open
from recalls.tasks import recall_notices_send
from stock.models import StockBalance, StockMovement

CLINICS = 20
REPETITIONS = 3
DELIVERY_REPETITIONS = 2
WORKER_CONCURRENCY = 2
WAIT_SECONDS = 300
PASSWORD = "benchmark-password"  # noqa: S105 - a throwaway user of the benchmark data set
FAST_HASHER = "django.contrib.auth.hashers.MD5PasswordHasher"
FLOOR_TABLE = "bench_recall_exposure_floor"
# recalls.services.opening._freeze_exposures' own SELECT.
EXPOSURES_SELECT = """
    SELECT %s, 1, l.id, l.treatment_id, l.lot_id, l.clinic_id, l.patient_id, l.practitioner_id,
           l.performed_at, l.units
    FROM treatments_treatmentline l
    WHERE l.lot_id = ANY(%s)
"""


@dataclass(frozen=True)
class Stage:
    """A data set of its own for one run: a quality manager, a product, a practitioner, clinics
    with a contact each and treatments spread over them."""

    run: str
    user: Any
    product: Product
    practitioner: Practitioner
    clinic_ids: list[int]
    treatment_ids: list[int]


def measure(*, exposures: int, notices: int) -> list[Row]:
    with override_settings(PASSWORD_HASHERS=[FAST_HASHER, *settings.PASSWORD_HASHERS]):
        stage = _stage(clinics=CLINICS, treatments=exposures)
        rows = [_opening_row(stage, exposures)]
        rows.append(_delivery_row(stage, notices))
    return rows


# ---------------------------------------------------------------------------------------------
# Data


def _stage(*, clinics: int, treatments: int) -> Stage:
    run = f"{timezone.now():%Y%m%d%H%M%S}-{uuid.uuid4().hex[:6]}"
    user = get_user_model().objects.create(username=f"bench-recall-{run}")
    user.set_password(PASSWORD)
    user.save(update_fields=["password"])
    Membership.objects.create(user=user, role=Role.QUALITY_MANAGER, clinic=None)
    manufacturer = Manufacturer.objects.create(legal_name=f"Recall benchmark {run}", country="US")
    product = Product.objects.create(
        manufacturer=manufacturer,
        name="Recall benchmark exosome",
        source_kind=SourceKind.SYNTHETIC,
        permitted_routes=["topical"],
        storage_min_celsius=-80,
        storage_max_celsius=-60,
    )
    practitioner = Practitioner.objects.create(name="Recall benchmark practitioner")
    clinic_ids = _clinics(run, clinics)
    ClinicContact.objects.bulk_create(
        ClinicContact(clinic_id=pk, name="QA", email=f"qa-{pk}@bench.example") for pk in clinic_ids
    )
    return Stage(
        run=run,
        user=user,
        product=product,
        practitioner=practitioner,
        clinic_ids=clinic_ids,
        treatment_ids=_treatments(run, clinic_ids, treatments, practitioner, user),
    )


def _clinics(run: str, count: int) -> list[int]:
    return [
        clinic.pk
        for clinic in Clinic.objects.bulk_create(
            Clinic(name=f"Recall benchmark clinic {run}-{index}", address="-", jurisdiction="US-TX")
            for index in range(count)
        )
    ]


def _treatments(
    run: str, clinic_ids: list[int], count: int, practitioner: Practitioner, user: Any
) -> list[int]:
    """`count` patients treated once each, round robin over the clinics, by PostgreSQL itself.
    The generated rows skip the history triggers; the recall being timed runs with all of its
    own."""
    with (
        pgtrigger.ignore("treatments.Patient:insert_insert", "treatments.Treatment:insert_insert"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            """
            WITH patients AS (
                INSERT INTO treatments_patient (clinic_id, reference, created_at)
                SELECT (%s::bigint[])[1 + g %% %s], 'BR-' || %s || '-' || g, now()
                FROM generate_series(1, %s) g
                RETURNING id, clinic_id
            )
            INSERT INTO treatments_treatment (clinic_id, patient_id, practitioner_id,
                performed_at, indication, route, anatomical_site, notes,
                consent_regulatory_statement, recorded_by_id, recorded_at)
            SELECT clinic_id, id, %s, now() - interval '1 day', 'wound', 'topical', 'arm', '',
                   '', %s, now()
            FROM patients
            RETURNING id
            """,
            [clinic_ids, len(clinic_ids), run, count, practitioner.pk, user.pk],
        )
        return [pk for (pk,) in cursor.fetchall()]


def _treated_lot(stage: Stage, treatment_ids: list[int], clinic_ids: list[int]) -> Lot:
    """A released lot used once in each of the treatments, with accepted stock at each clinic."""
    today = timezone.localdate()
    lot = Lot.objects.create(
        product=stage.product,
        manufacturer_id=stage.product.manufacturer_id,
        lot_number=f"BR-{uuid.uuid4().hex[:12]}",
        manufactured_on=today - datetime.timedelta(days=60),
        expires_on=today + datetime.timedelta(days=300),
        quantity=len(treatment_ids) + 10 * len(clinic_ids),
        regulatory_basis=RegulatoryBasis.NONE,
        status=LotStatus.RELEASED,
        status_changed_at=timezone.now(),
        created_by=stage.user,
    )
    now = timezone.now()
    StockBalance.objects.bulk_create(
        StockBalance(clinic_id=pk, lot=lot, state="accepted", quantity=10) for pk in clinic_ids
    )
    StockMovement.objects.bulk_create(
        StockMovement(
            clinic_id=pk,
            lot=lot,
            state="accepted",
            delta=10,
            kind="receipt",
            actor=stage.user,
            occurred_at=now,
        )
        for pk in clinic_ids
    )
    with (
        pgtrigger.ignore("treatments.TreatmentLine:insert_insert"),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "INSERT INTO treatments_treatmentline (treatment_id, lot_id, units) "
            "SELECT unnest(%s::bigint[]), %s, 1",
            [treatment_ids, lot.pk],
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE treatments_treatmentline")
    return lot


def _open(stage: Stage, lot: Lot) -> Recall:
    return recall_open(
        actor=stage.user,
        password=PASSWORD,
        recall_class="I",
        depth="patient",
        reason="Benchmark",
        hazard="Benchmark",
        scope=RecallScopeRequest(lot_ids=[lot.pk]),
    )


# ---------------------------------------------------------------------------------------------
# Opening


def _opening_row(stage: Stage, exposures: int) -> Row:
    """Median seconds of the committed recall_open beside its floor, alternating; one more
    opening, first, counts the statements (and warms both up)."""
    _floor_table()
    lot = _treated_lot(stage, stage.treatment_ids, stage.clinic_ids)
    with CaptureQueriesContext(connection) as captured:
        recall = _open(stage, lot)
    _floor_insert(lot.pk)
    written = Notification.objects.filter(recall=recall).count()
    work_times: list[float] = []
    floor_times: list[float] = []
    for _ in range(REPETITIONS):
        lot = _treated_lot(stage, stage.treatment_ids, stage.clinic_ids)
        work_times.append(_seconds(lambda lot=lot: _open(stage, lot)))  # type: ignore[misc]
        floor_times.append(_seconds(lambda lot=lot: _floor_insert(lot.pk)))  # type: ignore[misc]
    # Nobody delivers these notices: the delivery part queues its own round.
    recall_notices_send.app.control.purge()
    return Row(
        path=f"recall_open over {exposures:,} exposures, committed, notices queued",
        figure=median(work_times),
        unit="s",
        floor=median(floor_times),
        floor_label="INSERT ... SELECT of the same rows into a plain temp table",
        statements=len(captured),
        note=f"{written} outbox rows; median of {REPETITIONS}, password check not included",
    )


def _floor_table() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            CREATE TEMPORARY TABLE IF NOT EXISTS {FLOOR_TABLE} (
                recall_id bigint NOT NULL, round integer NOT NULL,
                treatment_line_id bigint NOT NULL, treatment_id bigint NOT NULL,
                lot_id bigint NOT NULL, clinic_id bigint NOT NULL, patient_id bigint NOT NULL,
                practitioner_id bigint NOT NULL, performed_at timestamptz NOT NULL,
                units integer NOT NULL
            )
            """
        )


def _floor_insert(lot_id: int) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {FLOOR_TABLE} {EXPOSURES_SELECT}",
            [0, [lot_id]],
        )
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {FLOOR_TABLE}")


def _seconds(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


# ---------------------------------------------------------------------------------------------
# Delivery


def _delivery_row(stage: Stage, notices: int) -> Row:
    """Notices per second through the worker beside no-op tasks per second, alternating, then
    the exactly-once check over every notice delivered."""
    smtp, webhooks = _Inbox(), _Inbox()
    with _smtp_server(smtp) as smtp_port, _webhook_server(webhooks) as webhook_port:
        scene = _delivery_scene(stage, notices, webhook_port)
        with _worker(smtp_port) as log:
            notice_rates: list[float] = []
            noop_rates: list[float] = []
            # One untimed round of each first: the worker's processes load what they use once.
            _noop_rate(log, notices)
            recalls = [_notice_rate(scene)[0]]
            for _ in range(DELIVERY_REPETITIONS):
                noop_rates.append(_noop_rate(log, notices))
                recall, rate = _notice_rate(scene)
                recalls.append(recall)
                notice_rates.append(rate)
        _check_exactly_once(recalls, smtp, webhooks)
    return Row(
        path=f"notice delivery, {notices} notices (e-mail and webhook), real worker",
        figure=median(notice_rates),
        unit="notices/s",
        floor=median(noop_rates),
        floor_label="bare no-op Celery tasks, same broker and worker",
        higher_is_better=True,
        note=(
            f"worker concurrency {WORKER_CONCURRENCY}, median of {DELIVERY_REPETITIONS}; "
            f"{notices * (DELIVERY_REPETITIONS + 1)} notices checked: 0 lost, 0 doubled"
        ),
    )


@dataclass(frozen=True)
class DeliveryScene:
    """Clinics of their own, holding `notices` recipients between them (e-mail contacts and
    webhook endpoints), each clinic with one treatment that every delivery lot is used in."""

    stage: Stage
    clinic_ids: list[int]
    treatment_ids: list[int]


def _delivery_scene(stage: Stage, notices: int, webhook_port: int) -> DeliveryScene:
    clinic_ids = _clinics(f"{stage.run}-delivery", min(notices, CLINICS))
    emails = notices // 2
    ClinicContact.objects.bulk_create(
        ClinicContact(
            clinic_id=clinic_ids[index % len(clinic_ids)],
            name="QA",
            email=f"notice-{index}@bench.example",
        )
        for index in range(emails)
    )
    WebhookEndpoint.objects.bulk_create(
        WebhookEndpoint(
            name=f"Recall benchmark endpoint {index}",
            url=f"http://127.0.0.1:{webhook_port}/hooks/{index}",
            secret=_webhook_secret(),
            clinic_id=clinic_ids[index % len(clinic_ids)],
        )
        for index in range(notices - emails)
    )
    treatment_ids = _treatments(
        f"{stage.run}-delivery", clinic_ids, len(clinic_ids), stage.practitioner, stage.user
    )
    return DeliveryScene(stage=stage, clinic_ids=clinic_ids, treatment_ids=treatment_ids)


def _webhook_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


def _notice_rate(scene: DeliveryScene) -> tuple[Recall, float]:
    """Open a recall over a fresh lot of the scene's clinics and time its round from the moment
    its delivery is queued on commit until every notice is recorded sent."""
    lot = _treated_lot(scene.stage, scene.treatment_ids, scene.clinic_ids)
    queued: list[float] = []
    with transaction.atomic():
        # Registered first, so it runs at commit just before the round is queued.
        transaction.on_commit(lambda: queued.append(time.perf_counter()))
        recall = _open(scene.stage, lot)
    expected = Notification.objects.filter(recall=recall).count()
    _wait(
        lambda: (
            Notification.objects.filter(recall=recall, status=NotificationStatus.SENT).count()
            == expected
        ),
        what=f"the {expected} notices of {recall.reference} to be sent",
    )
    return recall, expected / (time.perf_counter() - queued[0])


def _noop_rate(log: Path, tasks: int) -> float:
    done_before = _succeeded(log, "demo.bench_noop")
    started = time.perf_counter()
    for _ in range(tasks):
        bench_noop.delay()
    _wait(
        lambda: _succeeded(log, "demo.bench_noop") >= done_before + tasks,
        what=f"{tasks} no-op tasks to succeed",
    )
    return tasks / (time.perf_counter() - started)


def _succeeded(log: Path, task: str) -> int:
    marker = f"Task {task}["
    return sum(
        1
        for line in log.read_text(errors="replace").splitlines()
        if marker in line and "succeeded" in line
    )


def _check_exactly_once(recalls: list[Recall], smtp: _Inbox, webhooks: _Inbox) -> None:
    """Every notice of the timed rounds recorded sent and received exactly once, by message id."""
    received = smtp.counts() + webhooks.counts()
    problems = []
    for notification in Notification.objects.filter(recall__in=recalls):
        key = (
            message_id_header(notification.message_id)
            if notification.channel == "email"
            else str(notification.message_id)
        )
        if notification.status != NotificationStatus.SENT:
            problems.append(f"notice {notification.pk} is {notification.status}")
        if received[key] != 1:
            problems.append(f"notice {notification.pk} received {received[key]} times")
    if problems:
        raise RuntimeError("recall notices not delivered exactly once: " + "; ".join(problems))


def _wait(condition: Callable[[], bool], *, what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"gave up after {WAIT_SECONDS} s waiting for {what}")
        time.sleep(0.02)


# ---------------------------------------------------------------------------------------------
# Receivers and worker


@dataclass
class _Inbox:
    """Message ids a receiver accepted, in arrival order."""

    ids: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, message_id: str) -> None:
        with self.lock:
            self.ids.append(message_id)

    def counts(self) -> Counter[str]:
        with self.lock:
            return Counter(self.ids)


class _SmtpHandler:
    def __init__(self, inbox: _Inbox) -> None:
        self.inbox = inbox

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        # The headers only: the Message-ID is all it keeps, and parsing each body too would
        # spend the 2 cores the worker measured shares on this receiver rather than on delivery.
        headers = BytesHeaderParser(policy=email.policy.default).parsebytes(envelope.content)
        self.inbox.add(str(headers["Message-ID"]))
        return "250 Message accepted for delivery"


@contextmanager
def _smtp_server(inbox: _Inbox) -> Iterator[int]:
    from aiosmtpd.controller import Controller

    port = _free_port()
    controller = Controller(_SmtpHandler(inbox), hostname="127.0.0.1", port=port)
    chatter = logging.getLogger("mail.log")  # aiosmtpd logs every SMTP command at INFO
    level = chatter.level
    chatter.setLevel(logging.WARNING)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()
        chatter.setLevel(level)


@contextmanager
def _webhook_server(inbox: _Inbox) -> Iterator[int]:
    """An HTTP receiver that accepts every POST and records its webhook-id. It speaks HTTP/1.1
    and keeps connections open, as receivers behind any ordinary web server do, so a sender that
    reuses its connection is measured doing so."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            inbox.add(self.headers.get("webhook-id", ""))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def _worker(smtp_port: int) -> Iterator[Path]:
    """`celery -A traceability worker` on this database and broker, sending mail to the SMTP
    server; yields its log. The broker comes from the environment the worker inherits, as this
    process's did: with none set, both use the same directory broker under var/."""
    log = Path(settings.BASE_DIR) / "var" / f"bench-recall-worker-{uuid.uuid4().hex[:8]}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    environment = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp_port),
        "EMAIL_USE_TLS": "false",
    }
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "traceability",
                "worker",
                "--pool=prefork",
                f"--concurrency={WORKER_CONCURRENCY}",
                "-n",
                f"bench-recall-{uuid.uuid4().hex[:8]}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel=INFO",
            ],
            cwd=settings.BASE_DIR,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        _wait(
            lambda: " ready." in log.read_text(errors="replace") or process.poll() is not None,
            what="the Celery worker to start",
        )
        if process.poll() is not None:
            raise RuntimeError(f"the worker exited: {log.read_text(errors='replace')[-2000:]}")
        yield log
    finally:
        stop(process)
        log.unlink(missing_ok=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
