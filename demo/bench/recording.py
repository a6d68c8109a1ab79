"""Treatment recording over HTTP: POST /api/v1/treatments/ served by gunicorn as deployed (sync
workers, the Dockerfile's worker class), driven from separate load processes, beside a bare Django
view served by the same gunicorn settings (demo/bench/bare_wsgi.py).

The client signs in with a knox token, as an API client does: a token costs one hash, whereas the
password check (Argon2, slow by design) is paid once per sign-in and reported as its own row.
After the load the figures are checked against the ledger: the clinic's accepted balance equals
what it received less the units its treatments drew, and it holds as many treatments as there
were 201 answers (no lost update, nothing recorded twice).
"""

from __future__ import annotations

import datetime
import http.client
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pghistory
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import Argon2PasswordHasher
from django.db import connection, connections, transaction
from django.db.models import Sum
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from knox.models import AuthToken

from demo.bench.processes import database_url, stop
from demo.bench.report import Row
from lots.models import Lot, LotStatus, Product, RegulatoryBasis, Route, SourceKind, Tissue
from providers.models import (
    Clinic,
    ClinicPractitioner,
    Licence,
    Manufacturer,
    Membership,
    Practitioner,
    Profession,
    Role,
)
from stock.models import Receipt, ReceiptDecision, StockBalance, StockState
from stock.services import stock_receive
from treatments.models import ConsentText, Indication, Patient, Treatment, TreatmentLine

PATH = "/api/v1/treatments/"
PATIENTS = 50
# Load processes per gunicorn worker: enough that a worker never waits for its next request.
CLIENTS_PER_WORKER = 2
ROUNDS = 2
PASSWORD_CHECKS = 5


@dataclass(frozen=True)
class Scene:
    """A clinic of its own for one run: a clinician with a token, a licensed member practitioner,
    patients, a consent text and accepted stock of one released lot."""

    token: str
    clinic_id: int
    lot_id: int
    bodies: list[bytes]


@dataclass(frozen=True)
class Load:
    """What one load phase asked of a server and how it answered."""

    statuses: list[int]
    latencies: list[float]
    seconds: float

    @property
    def rate(self) -> float:
        return len(self.statuses) / self.seconds

    @property
    def p95_ms(self) -> float:
        return statistics.quantiles(self.latencies, n=20)[-1] * 1000


def measure(*, requests: int, workers: int = 4) -> list[Row]:
    """Rows for recording a treatment: requests per second at saturation and the 95th percentile
    at half that rate, each beside the bare view under the same load; statements per treatment;
    one password check; and the ledger checked after the load."""
    scene = prepare(units=2 * requests + 10 * workers + 10)
    statements = _statements_per_treatment(scene)
    connections.close_all()  # the load processes are forked: they must not share a connection
    clients = workers * CLIENTS_PER_WORKER
    recorded: list[Load] = []
    floors: list[Load] = []
    with (
        _served("traceability.wsgi", workers) as app,
        _served("demo.bench.bare_wsgi", workers) as bare,
    ):
        warm_up = _drive(app, scene, requests=4 * workers, clients=clients)
        _drive(bare, scene, requests=4 * workers, clients=clients)
        # Rounds alternate between the two servers so whatever else the machine does weighs on
        # both alike.
        for _ in range(ROUNDS):
            recorded.append(_drive(app, scene, requests=requests // ROUNDS, clients=clients))
            floors.append(_drive(bare, scene, requests=requests // ROUNDS, clients=clients))
        saturated, floor = _combined(recorded), _combined(floors)
        half = saturated.rate / 2
        paced = _drive(app, scene, requests=requests // 2, clients=clients, rate=half)
        paced_floor = _drive(bare, scene, requests=requests // 2, clients=clients, rate=half)
    answers = [status for load in (warm_up, *recorded, paced) for status in load.statuses]
    refused = sum(status != 201 for status in answers)
    served = f"{workers} sync gunicorn workers, {clients} clients"
    return [
        Row(
            f"POST {PATH}, saturated ({served})",
            saturated.rate,
            "req/s",
            floor=floor.rate,
            floor_label="bare Django view, same gunicorn",
            higher_is_better=True,
            statements=statements,
            note=f"{len(saturated.statuses)} requests; answers other than 201: {refused}",
        ),
        Row(
            f"POST {PATH}, p95 at half saturation ({half:.0f} req/s paced)",
            paced.p95_ms,
            "ms",
            floor=paced_floor.p95_ms,
            floor_label="bare view, same rate",
            statements=statements,
            note=f"{len(paced.statuses)} requests at {paced.rate:.0f} req/s",
        ),
        password_check_row(),
        *ledger_rows(scene, created=1 + len(answers) - refused),
    ]


def password_check_row() -> Row:
    """One Argon2 password check, as a sign-in (POST /api/v1/auth/token/) pays it: slow by
    design, and the reason API clients send a token instead. The hasher is Argon2 whatever the
    settings list (a test's may list a fast one), the one check_password runs in production."""
    hasher = Argon2PasswordHasher()
    secret = uuid.uuid4().hex
    encoded = hasher.encode(secret, hasher.salt())
    times = []
    for _ in range(PASSWORD_CHECKS):
        started = time.perf_counter()
        if not hasher.verify(secret, encoded):
            raise RuntimeError("the password check refused its own password")
        times.append(time.perf_counter() - started)
    return Row(
        "one password check (Argon2, as check_password runs it)",
        statistics.median(times) * 1000,
        "ms",
        note="paid once per token sign-in; a request with a token pays one SHA-512",
    )


def ledger_rows(scene: Scene, *, created: int) -> list[Row]:
    """The clinic's accepted balance less (receipts less the units its treatments drew), and its
    treatments less the 201 answers: both 0 when no update was lost and nothing was doubled."""
    received = Receipt.objects.filter(
        clinic_id=scene.clinic_id, lot_id=scene.lot_id, decision=ReceiptDecision.ACCEPT
    ).aggregate(total=Sum("quantity"))["total"]
    drawn = TreatmentLine.objects.filter(
        treatment__clinic_id=scene.clinic_id, lot_id=scene.lot_id
    ).aggregate(total=Sum("units"))["total"]
    balance = StockBalance.objects.get(
        clinic_id=scene.clinic_id, lot_id=scene.lot_id, state=StockState.ACCEPTED
    ).quantity
    treatments = Treatment.objects.filter(clinic_id=scene.clinic_id).count()
    return [
        Row(
            "after the load: accepted balance less (received less drawn)",
            float(balance - ((received or 0) - (drawn or 0))),
            "units",
            note=f"0 means no lost update ({balance} left of {received})",
        ),
        Row(
            "after the load: treatments recorded less 201 answers",
            float(treatments - created),
            "treatments",
            note=f"0 means none lost or doubled ({treatments} recorded)",
        ),
    ]


# ---------------------------------------------------------------------------------------------
# The scene


def prepare(*, units: int) -> Scene:
    """A fresh clinic, named for the run, with `units` accepted units of a released lot. Lots
    are released by people through the release gate; a benchmark creates its lot released, as
    the trace benchmark does, and receives its stock through the service."""
    run = f"{timezone.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
    with transaction.atomic(), pghistory.context(reason=f"recording benchmark {run}"):
        return _prepare(run, units)


def _prepare(run: str, units: int) -> Scene:
    now = timezone.now()
    today = timezone.localdate()
    users = get_user_model()
    quality = users.objects.create(username=f"bench-rec-qm-{run}")
    clinician = users.objects.create(username=f"bench-rec-clinician-{run}")
    administrator = users.objects.create(username=f"bench-rec-admin-{run}")
    clinic = Clinic.objects.create(
        name=f"Recording benchmark clinic {run}",
        address="1 Benchmark Way",
        jurisdiction="US-TX",
        consent_required=True,
    )
    Membership.objects.bulk_create(
        [
            Membership(user=quality, role=Role.QUALITY_MANAGER, clinic=None),
            Membership(user=clinician, role=Role.CLINICIAN, clinic=clinic),
            Membership(user=administrator, role=Role.CLINIC_ADMINISTRATOR, clinic=clinic),
        ]
    )
    manufacturer = Manufacturer.objects.create(
        legal_name=f"Recording benchmark manufacturer {run}", country="US"
    )
    product = Product.objects.create(
        manufacturer=manufacturer,
        name=f"Recording benchmark serum {run}",
        source_kind=SourceKind.HUMAN,
        tissue=Tissue.ADIPOSE,
        permitted_routes=[Route.TOPICAL],
        storage_min_celsius=Decimal("-80"),
        storage_max_celsius=Decimal("-60"),
    )
    lot = Lot.objects.create(
        product=product,
        manufacturer=manufacturer,
        lot_number="RB-0001",
        manufactured_on=today - datetime.timedelta(days=100),
        expires_on=today + datetime.timedelta(days=365),
        quantity=units,
        regulatory_basis=RegulatoryBasis.IND,
        regulatory_number="IND 099999",
        status=LotStatus.RELEASED,
        status_changed_at=now,
        created_by=quality,
    )
    practitioner = Practitioner.objects.create(
        name=f"Recording benchmark practitioner {run}", profession=Profession.PHYSICIAN
    )
    Licence.objects.create(
        practitioner=practitioner,
        number=f"RBL-{run}",
        jurisdiction="US-TX",
        valid_from=today - datetime.timedelta(days=800),
        valid_until=today + datetime.timedelta(days=800),
    )
    ClinicPractitioner.objects.create(clinic=clinic, practitioner=practitioner)
    text = ConsentText.objects.create(
        code=f"bench-{run}"[:40], version=1, title="Exosome treatment", body="Consent."
    )
    patients = Patient.objects.bulk_create(
        [Patient(clinic=clinic, reference=f"RB-{index:04d}") for index in range(PATIENTS)]
    )
    stock_receive(
        actor=administrator,
        clinic=clinic,
        lot=lot,
        quantity=units,
        decision=ReceiptDecision.ACCEPT,
        package_intact=True,
        label_readable=True,
        transport_min_celsius=Decimal("-75"),
        transport_max_celsius=Decimal("-65"),
        storage_location="Benchmark freezer",
        received_at=now - datetime.timedelta(days=1),
    )
    _, token = AuthToken.objects.create(clinician)
    performed_at = now - datetime.timedelta(minutes=5)
    return Scene(
        token=token,
        clinic_id=clinic.pk,
        lot_id=lot.pk,
        bodies=[
            json.dumps(
                {
                    "clinic": clinic.pk,
                    "patient": patient.pk,
                    "practitioner": practitioner.pk,
                    "performed_at": performed_at.isoformat(),
                    "indication": Indication.SKIN_REJUVENATION,
                    "route": Route.TOPICAL,
                    "anatomical_site": "face",
                    "lines": [{"lot": lot.pk, "units": 1}],
                    "consent": {
                        "consent_text": text.pk,
                        "taken_at": (performed_at - datetime.timedelta(minutes=5)).isoformat(),
                    },
                }
            ).encode()
            for patient in patients
        ],
    )


def _statements_per_treatment(scene: Scene) -> int:
    """The statements Django sends for one POST, signed in with the token (the transaction's
    BEGIN and COMMIT are not among them)."""
    client = Client(HTTP_AUTHORIZATION=f"Token {scene.token}")
    with CaptureQueriesContext(connection) as captured:
        response = client.post(PATH, scene.bodies[0], content_type="application/json")
    if response.status_code != 201:
        raise RuntimeError(
            f"the counted POST answered {response.status_code}: {response.content!r}"
        )
    return len(captured)


# ---------------------------------------------------------------------------------------------
# Serving and driving


@contextmanager
def _served(application: str, workers: int) -> Iterator[int]:
    """gunicorn serving `application` on a free local port against this process's database, with
    the per-account throttle lifted (one account sends every request)."""
    port = _free_port()
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "traceability.settings",
        "DATABASE_URL": database_url(),
        "DEBUG": "false",
        "API_THROTTLE_USER": "1000000/second",
    }
    server = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        [
            sys.executable,
            "-m",
            "gunicorn",
            application,
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--worker-class",
            "sync",
            "--log-level",
            "warning",
        ],
        cwd=Path(settings.BASE_DIR),
        env=environment,
        start_new_session=True,
    )
    try:
        _wait_for(port, server)
        yield port
    finally:
        stop(server)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_for(port: int, server: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {server.returncode} before serving")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"gunicorn did not listen on port {port} within {timeout} s")


def _drive(
    port: int, scene: Scene, *, requests: int, clients: int, rate: float | None = None
) -> Load:
    """`requests` POSTs from `clients` processes, each with its own connection; as fast as the
    server answers, or paced to `rate` requests per second in all, each request's latency then
    counted from when it was due (a late answer delays the next one and is not forgiven)."""
    shares = [requests // clients + (index < requests % clients) for index in range(clients)]
    start = time.monotonic() + 0.5
    interval = None if rate is None else clients / rate
    # Paced clients begin at their own fraction of the interval so their requests do not bunch.
    jobs = [
        (
            port,
            scene.token,
            scene.bodies,
            share,
            index,
            start + (interval or 0) * index / clients,
            interval,
        )
        for index, share in enumerate(shares)
        if share
    ]
    with multiprocessing.get_context("fork").Pool(len(jobs)) as pool:
        results = pool.map(_client, jobs)
    first = min(result[0] for result in results)
    last = max(result[1] for result in results)
    return Load(
        statuses=[status for result in results for status in result[2]],
        latencies=[latency for result in results for latency in result[3]],
        seconds=last - first,
    )


def _client(
    job: tuple[int, str, list[bytes], int, int, float, float | None],
) -> tuple[float, float, list[int], list[float]]:
    port, token, bodies, count, offset, start, interval = job
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    statuses: list[int] = []
    latencies: list[float] = []
    time.sleep(max(0.0, start - time.monotonic()))
    began = time.monotonic()
    server = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for index in range(count):
        if interval is not None:
            due_at = start + index * interval
            time.sleep(max(0.0, due_at - time.monotonic()))
            sent = due_at
        else:
            sent = time.monotonic()
        server.request("POST", PATH, bodies[(offset + index) % len(bodies)], headers)
        response = server.getresponse()
        response.read()
        statuses.append(response.status)
        latencies.append(time.monotonic() - sent)
    server.close()
    return began, time.monotonic(), statuses, latencies


def _combined(loads: list[Load]) -> Load:
    return Load(
        statuses=[status for load in loads for status in load.statuses],
        latencies=[latency for load in loads for latency in load.latencies],
        seconds=sum(load.seconds for load in loads),
    )
