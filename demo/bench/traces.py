"""The traces over HTTP, each beside its own SQL: what any API request costs (OPTIONS of the
forward trace, which signs in and reads nothing more), the forward trace of a typical lot (as a
network reader and as clinic staff), the backward trace of the patients with the most and the fewest
treatments, the first JSON page of the heaviest lot, and the heaviest lot's full CSV stream beside
COPY of the same rows.

Whatever data is in the database is used: the heaviest lot, the lot of median use and the patients
with the most and the fewest treatments are looked up first. Requests go through the whole Django
stack (middleware, authentication, permissions) with a signed-in user, as real ones do. The floor
of a JSON path is the statements it sent, replayed bare through a raw cursor; the note gives what
PostgreSQL itself reports spending on them. Statement counts are also taken at two sizes (a
typical and the heaviest lot, a patient with one and with many treatments): they must be equal.
"""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.db import connection, transaction
from django.db.models import Count
from django.test.utils import override_settings
from knox.models import AuthToken

from common.csv import STREAM_IN_INDEX_ORDER
from demo.bench.report import (
    Row,
    captured_statements,
    executed_in_database_ms,
    interleaved,
    median,
    peak_python_memory_mib,
    replay_bare,
)
from providers.access import NETWORK_READERS
from providers.models import Membership
from treatments.models import Treatment, TreatmentLine

FORWARD = "/api/v1/traces/forward/"
BACKWARD = "/api/v1/traces/backward/"


@dataclass(frozen=True)
class Subjects:
    """What the traces are measured on, found in the data at hand."""

    heaviest_lot: tuple[int, int]  # (lot id, lines)
    typical_lot: tuple[int, int]
    busiest_patient: tuple[int, int]  # (patient id, treatments)
    quietest_patient: tuple[int, int]
    network_user: Any
    clinic_user: Any | None


def measure(*, repetitions: int) -> list[Row]:
    subjects = find_subjects()
    network = _client(subjects.network_user)
    with _served():
        rows = [
            # What any API request costs beyond its SQL: the same URL, middleware, token
            # sign-in, permissions, throttles and an answer, with nothing read for it (DRF's
            # OPTIONS answer, a few names). It took as long as a GET to a view made to do nothing.
            _json_row(
                "OPTIONS of the forward trace (an API request doing nothing beyond signing in), "
                "network reader",
                network,
                FORWARD,
                {},
                repetitions,
                method="OPTIONS",
            ),
            _json_row(
                f"forward trace, typical lot ({subjects.typical_lot[1]:,} lines), JSON page, "
                "network reader",
                network,
                FORWARD,
                {"lot": subjects.typical_lot[0]},
                repetitions,
            ),
        ]
        if subjects.clinic_user is not None:
            rows.append(
                _json_row(
                    f"forward trace, typical lot ({subjects.typical_lot[1]:,} lines), JSON "
                    "page, clinic staff",
                    _client(subjects.clinic_user),
                    FORWARD,
                    {"lot": subjects.typical_lot[0]},
                    repetitions,
                )
            )
        rows += [
            _json_row(
                f"backward trace, one patient ({subjects.busiest_patient[1]:,} treatments)",
                network,
                BACKWARD,
                {"patient": subjects.busiest_patient[0]},
                repetitions,
            ),
            _json_row(
                f"backward trace, one patient ({subjects.quietest_patient[1]:,} treatments)",
                network,
                BACKWARD,
                {"patient": subjects.quietest_patient[0]},
                repetitions,
            ),
            _json_row(
                f"forward trace, heaviest lot ({subjects.heaviest_lot[1]:,} lines), JSON page",
                network,
                FORWARD,
                {"lot": subjects.heaviest_lot[0]},
                repetitions,
            ),
            *_csv_rows(network, subjects, repetitions),
            _statements_row(
                "forward trace JSON, statements: typical lot vs heaviest",
                network,
                FORWARD,
                ({"lot": subjects.typical_lot[0]}, {"lot": subjects.heaviest_lot[0]}),
                (subjects.typical_lot[1], subjects.heaviest_lot[1]),
                "lines",
            ),
            _statements_row(
                "forward trace CSV, statements: typical lot vs heaviest",
                network,
                FORWARD,
                (
                    {"lot": subjects.typical_lot[0], "format": "csv"},
                    {"lot": subjects.heaviest_lot[0], "format": "csv"},
                ),
                (subjects.typical_lot[1], subjects.heaviest_lot[1]),
                "lines",
            ),
            _statements_row(
                "backward trace, statements: patient with few treatments vs many",
                network,
                BACKWARD,
                (
                    {"patient": subjects.quietest_patient[0]},
                    {"patient": subjects.busiest_patient[0]},
                ),
                (subjects.quietest_patient[1], subjects.busiest_patient[1]),
                "treatments",
            ),
        ]
    return rows


def find_subjects() -> Subjects:
    """The heaviest lot, the lot of median use, the patients with the most and the fewest
    treatments, a network reader and a member of the clinic that used the typical lot most."""
    uses = sorted(
        TreatmentLine.objects.values("lot_id")
        .annotate(lines=Count("pk"))
        .order_by()
        .values_list("lines", "lot_id")
    )
    if not uses:
        raise ValueError("no treatments to trace: build data first (manage.py scale_generate)")
    lines, lot_id = uses[-1]
    typical_lines, typical_id = uses[len(uses) // 2]
    per_patient = Treatment.objects.values("patient_id").annotate(treatments=Count("pk")).order_by()
    busiest = per_patient.order_by("-treatments", "patient_id").values_list(
        "patient_id", "treatments"
    )[0]
    quietest = per_patient.order_by("treatments", "patient_id").values_list(
        "patient_id", "treatments"
    )[0]
    return Subjects(
        heaviest_lot=(lot_id, lines),
        typical_lot=(typical_id, typical_lines),
        busiest_patient=busiest,
        quietest_patient=quietest,
        network_user=_network_user(),
        clinic_user=_clinic_user(typical_id),
    )


def _network_user() -> Any:
    membership = (
        Membership.objects.filter(
            active=True, clinic__isnull=True, role__in=NETWORK_READERS, user__is_active=True
        )
        .select_related("user")
        .order_by("pk")
        .first()
    )
    if membership is None:
        raise ValueError("no active network quality manager or auditor to trace as")
    return membership.user


def _clinic_user(lot_id: int) -> Any | None:
    clinic_id = (
        TreatmentLine.objects.filter(lot_id=lot_id)
        .values("treatment__clinic_id")
        .annotate(lines=Count("pk"))
        .order_by("-lines")
        .values_list("treatment__clinic_id", flat=True)
        .first()
    )
    if clinic_id is None:
        return None
    membership = (
        Membership.objects.filter(
            active=True, clinic_id=clinic_id, user__is_active=True, user__is_superuser=False
        )
        .select_related("user")
        .order_by("pk")
        .first()
    )
    return None if membership is None else membership.user


@contextmanager
def _served() -> Iterator[None]:
    """The host the requests name accepted, as a deployment lists its own, and the per-account
    throttle lifted (one account sends every request; each is still counted)."""
    rest: dict[str, Any] = dict(settings.REST_FRAMEWORK)
    rest["DEFAULT_THROTTLE_RATES"] = {**rest["DEFAULT_THROTTLE_RATES"], "user": "1000000/second"}
    with override_settings(ALLOWED_HOSTS=[*settings.ALLOWED_HOSTS, HOST], REST_FRAMEWORK=rest):
        yield


HOST = "bench.invalid"


class _Client:
    """GET requests handed to the WSGI application as gunicorn hands them, signed in with a knox
    token as an API client is: the whole stack (middleware, authentication, permissions,
    throttles, the database connection's per-request health check) and nothing of a test
    client's own work. A streamed answer is read chunk by chunk, as a server sends it."""

    def __init__(self, user: Any) -> None:
        _token, self.token = AuthToken.objects.create(user)
        self.application = WSGIHandler()

    def chunks(self, path: str, params: dict[str, Any], method: str = "GET") -> Iterator[bytes]:
        answered: list[str] = []
        environ = {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "QUERY_STRING": urlencode(params),
            "SERVER_NAME": HOST,
            "SERVER_PORT": "443",
            "HTTP_HOST": HOST,
            "HTTP_AUTHORIZATION": f"Token {self.token}",
            "HTTP_ACCEPT": "*/*",
            "REMOTE_ADDR": "127.0.0.1",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "https",
            "wsgi.input": io.BytesIO(),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }

        def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
            answered.append(status)
            return answered.append  # the write() callable WSGI asks for; never called here

        body = self.application(environ, start_response)
        try:
            if not answered[0].startswith("200"):
                raise RuntimeError(f"{path} {params} answered {answered[0]}")
            yield from body
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()  # request_finished, as a server calls it


def _client(user: Any) -> _Client:
    return _Client(user)


def _get(
    client: _Client, path: str, params: dict[str, Any], method: str = "GET"
) -> Callable[[], bytes]:
    def request() -> bytes:
        return b"".join(client.chunks(path, params, method))

    return request


def _json_row(
    path: str,
    client: _Client,
    url: str,
    params: dict[str, Any],
    repetitions: int,
    method: str = "GET",
) -> Row:
    request = _get(client, url, params, method)
    statements = captured_statements(request)
    work, floor = interleaved(request, replay_bare(statements), repetitions)
    return Row(
        path=path,
        figure=median(work) * 1000,
        unit="ms",
        floor=median(floor) * 1000,
        floor_label="its SQL replayed bare",
        statements=len(statements),
        note=f"executed in the database: {executed_in_database_ms(statements):.1f} ms",
    )


def _csv_rows(client: _Client, subjects: Subjects, repetitions: int) -> list[Row]:
    lot_id, lines = subjects.heaviest_lot
    params = {"lot": lot_id, "format": "csv"}
    statements = captured_statements(_get(client, FORWARD, params))
    copy = next(sql for sql in statements if sql.startswith("COPY "))
    stream = _first_and_total(lambda: _streamed(client, params))
    bare = _first_and_total(lambda: _copied(copy))
    stream_first, stream_total, bare_first, bare_total = [], [], [], []
    stream()
    bare()
    for _ in range(repetitions):
        first, total = stream()
        stream_first.append(first)
        stream_total.append(total)
        first, total = bare()
        bare_first.append(first)
        bare_total.append(total)
    heavy_memory = peak_python_memory_mib(lambda: _drained(_streamed(client, params)))
    typical = {"lot": subjects.typical_lot[0], "format": "csv"}
    typical_memory = peak_python_memory_mib(lambda: _drained(_streamed(client, typical)))
    return [
        Row(
            path=f"heaviest lot ({lines:,} lines), full CSV stream",
            figure=lines / median(stream_total),
            unit="rows/s",
            floor=lines / median(bare_total),
            floor_label="COPY of the same query",
            higher_is_better=True,
            statements=len(statements),
        ),
        Row(
            path="heaviest lot CSV, first data row",
            figure=median(stream_first) * 1000,
            unit="ms",
            floor=median(bare_first) * 1000,
            floor_label="COPY's first row",
        ),
        Row(
            path="heaviest lot CSV, peak Python memory",
            figure=heavy_memory,
            unit="MiB",
            floor=typical_memory,
            floor_label=f"the typical lot's ({subjects.typical_lot[1]:,} lines)",
            note="flat: about the same whatever the number of rows",
        ),
    ]


def _first_and_total(chunks: Callable[[], Iterator[bytes]]) -> Callable[[], tuple[float, float]]:
    """Seconds to the first chunk holding a data row, and to the last chunk."""

    def timed() -> tuple[float, float]:
        started = time.perf_counter()
        first = None
        seen = 0
        for chunk in chunks():
            seen += chunk.count(b"\n")
            if first is None and seen > 1:
                first = time.perf_counter() - started
        total = time.perf_counter() - started
        return (total if first is None else first), total

    return timed


def _drained(chunks: Iterator[bytes]) -> None:
    """Read every chunk and keep none, as a client writing to disk does."""
    for _chunk in chunks:
        pass


def _streamed(client: _Client, params: dict[str, Any]) -> Iterator[bytes]:
    return client.chunks(FORWARD, params)


def _copied(statement: str) -> Iterator[bytes]:
    """The header line, then COPY's rows as they come: the floor of the CSV stream."""
    yield b"header\n"
    with transaction.atomic(), connection.cursor() as cursor:
        # Planned as the export plans it (common.csv.csv_copy_lines), so the floor is its COPY.
        cursor.execute(STREAM_IN_INDEX_ORDER)
        with cursor.cursor.copy(statement) as copy:
            for row in copy:
                yield bytes(row)


def _statements_row(
    path: str,
    client: _Client,
    url: str,
    params: tuple[dict[str, Any], dict[str, Any]],
    sizes: tuple[int, int],
    what: str,
) -> Row:
    small, large = (len(captured_statements(_get(client, url, each))) for each in params)
    return Row(
        path=path,
        figure=small,
        unit="statements",
        floor=large,
        floor_label=f"at {sizes[1]:,} {what} (vs {sizes[0]:,})",
        statements=small,
        note="equal" if small == large else "NOT EQUAL: a query per row",
    )
