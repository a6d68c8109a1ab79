"""Parts that a fault test can break and mend: a PostgreSQL server of its own (initdb, as
tests/test_replica.py starts one) that it stops and starts, a Redis of its own, and the
application served by gunicorn. The machine's own servers are never touched: others use them."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from tests.recalls.conftest import ROOT, WorkerFactory, free_port, wait_until
from tests.test_replica import _as_server_owner, _postgres_bin, _run

# ---------------------------------------------------------------------------------------------
# PostgreSQL


@dataclass
class PrivatePostgres:
    """A throwaway PostgreSQL server holding one migrated database, `url`."""

    bin_dir: Path
    data: Path
    port: int
    name: str = "traceability"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{self.name}"

    def _pg_ctl(self, *arguments: str) -> None:
        _run(self.bin_dir / "pg_ctl", *arguments, "-D", str(self.data))

    def start(self) -> None:
        self._pg_ctl("start", "-w", "-t", "60", "-l", f"{self.data}.log", "-o", f"-p {self.port}")

    def stop(self) -> None:
        """Fast shutdown, as `pg_ctl restart -m fast` does first: open transactions are rolled
        back and every session is cut."""
        self._pg_ctl("stop", "-w", "-m", "fast")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def connect(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.url, autocommit=True)


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PrivatePostgres]:
    """Started and migrated once per module (migrating takes about 20 s)."""
    bin_dir = _postgres_bin()
    # Short: the unix socket lives here, and socket paths are limited to ~100 bytes.
    base = Path(tempfile.mkdtemp(prefix="pf-", dir="/tmp"))
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
    server = PrivatePostgres(bin_dir, base / "data", free_port())
    try:
        _run(
            bin_dir / "initdb",
            *f"-D {server.data} -U postgres".split(),
            *"--auth=trust --encoding=UTF8 --locale=C --no-sync".split(),
        )
        with (server.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"listen_addresses = '127.0.0.1'\nunix_socket_directories = '{base}'\n"
                "fsync = off\nfull_page_writes = off\nmax_connections = 50\n"
            )
        server.start()
        with psycopg.connect(
            f"postgresql://postgres@127.0.0.1:{server.port}/postgres", autocommit=True
        ) as connection:
            connection.execute(f"CREATE DATABASE {server.name}")
        manage(server.url, "migrate", "--noinput")
        yield server
    finally:
        if server.running():
            subprocess.run(
                _as_server_owner(bin_dir / "pg_ctl", "stop", "-m", "immediate", "-D", server.data),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(base, ignore_errors=True)


def manage(database_url: str, *arguments: str, environment: dict[str, str] | None = None) -> str:
    """`manage.py` against `database_url`; its standard output."""
    completed = subprocess.run(
        [sys.executable, "manage.py", *arguments],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url, **(environment or {})},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout


# ---------------------------------------------------------------------------------------------
# Redis


@dataclass
class PrivateRedis:
    """A Redis server on a port of its own, that keeps nothing on disk: stopped, it forgets
    every message, as a broker that lost its memory would."""

    directory: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server") or "/usr/bin/redis-server",
                *f"--port {self.port} --bind 127.0.0.1 --appendonly no --save".split(),
                "",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_until(self._answers, what="the private Redis to answer", timeout=30)

    def _answers(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=1).ping())
        except redis.ConnectionError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)
        self.process = None


@pytest.fixture
def private_redis(tmp_path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def celery_on_private_redis(private_redis) -> Iterator[PrivateRedis]:
    """This process's Celery publishes to the private Redis for the test."""
    from tests.recalls.conftest import _use_broker
    from traceability.celery import app

    saved = (app.conf.broker_url, dict(app.conf.broker_transport_options or {}))
    saved_environment = os.environ.get("CELERY_BROKER_URL")
    _use_broker(app, private_redis.url, {})
    try:
        yield private_redis
    finally:
        _use_broker(app, *saved)
        if saved_environment is None:
            os.environ.pop("CELERY_BROKER_URL", None)
        else:
            os.environ["CELERY_BROKER_URL"] = saved_environment


def worker_environment(*, database_url: str, broker_url: str, smtp_port: int) -> dict[str, str]:
    """What a worker (or the web server) of a fault test runs with: the given database, broker
    and SMTP server, backoffs shrunk to seconds, and JSON log lines."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker_url,
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp_port),
        "EMAIL_TIMEOUT": "10",
        "DEFAULT_FROM_EMAIL": "recalls@traceability.example",
        "RECALL_DELIVERY_BACKOFF_SECONDS": "1",
        "RECALL_DELIVERY_BACKOFF_MAX_SECONDS": "2",
        # The shortest lease the settings accept: longer than a delivery's time limit (60 s).
        "RECALL_DELIVERY_LEASE_SECONDS": "61",
        "LOG_FORMAT": "json",
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture
def workers(tmp_path) -> Iterator[WorkerFactory]:
    """Real Celery worker processes; the test gives them their environment. Stopped at the
    end, before the database is flushed."""
    factory = WorkerFactory(tmp_path, {})
    try:
        yield factory
    finally:
        for worker in factory.started:
            worker.stop()
