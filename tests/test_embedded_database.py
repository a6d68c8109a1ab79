"""The embedded PostgreSQL of the quick start: started on demand, stopped after its last user."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
from django.db import connection
from traceability.env import VAR_DIR
with connection.cursor() as cursor:
    cursor.execute("SELECT version(), count(*) FROM django_migrations")
    version, migrations = cursor.fetchone()
print(version)
print(migrations)
print((VAR_DIR / "pgdata" / "postmaster.pid").read_text().split()[0])
"""


@pytest.fixture
def var_dir() -> Iterator[Path]:
    # Short on purpose: the server's unix socket lives in pgdata, and socket paths are limited to
    # about 100 characters, which pytest's tmp_path can exceed.
    path = Path(tempfile.mkdtemp(prefix="tr-", dir="/tmp"))
    yield path
    postmaster = path / "pgdata" / "postmaster.pid"
    if postmaster.exists():  # the test failed: do not leave a server behind
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(postmaster.read_text().split()[0]), signal.SIGTERM)
    shutil.rmtree(path, ignore_errors=True)


def _manage(var_dir: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env["TRACEABILITY_VAR_DIR"] = str(var_dir)
    return subprocess.run(
        [sys.executable, "manage.py", *arguments],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
    )


def _exits_within(pid: int, seconds: float) -> bool:
    # pg_ctl stop returns once postmaster.pid is gone, a moment before the process has exited.
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def test_embedded_database_migrates_and_stops_when_its_last_user_exits(var_dir):
    migrate = _manage(var_dir, "migrate", "--noinput")
    assert migrate.returncode == 0, migrate.stderr

    probe = _manage(var_dir, "shell", "--no-imports", "--command", PROBE)
    assert probe.returncode == 0, probe.stderr
    version, migrations, postmaster_pid = probe.stdout.strip().splitlines()[-3:]

    assert version.startswith("PostgreSQL ")
    assert int(migrations) > 0
    assert not (var_dir / "pgdata" / "postmaster.pid").exists()
    assert _exits_within(int(postmaster_pid), seconds=10)
