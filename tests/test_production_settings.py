"""The production profile (TRACEABILITY_PROFILE=production) passes Django's deployment checks with
no warning, and refuses to start without a long SECRET_KEY or with DEBUG on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SECRET = "k2Vq8Zp1xR7mN4tB9wC3yL6hF0jD5gS8aE2uI7oP1qW4eR6tY9uI3oP5aS7dF0gH2"


def manage(*args: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "TRACEABILITY_VAR_DIR": str(tmp_path / "var"),
        # Only parsed: `check` opens no connection, so nothing needs to listen there.
        "DATABASE_URL": "postgresql://check@127.0.0.1:1/check",
        "CELERY_BROKER_URL": "redis://127.0.0.1:1/0",
        **env,
    }
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        capture_output=True,
        text=True,
        env=environment,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def test_the_production_profile_passes_check_deploy_with_no_warning(tmp_path):
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        tmp_path=tmp_path,
        TRACEABILITY_PROFILE="production",
        SECRET_KEY=SECRET,
        ALLOWED_HOSTS="trace.example.org",
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_the_development_profile_is_told_what_production_needs(tmp_path):
    result = manage("check", "--deploy", tmp_path=tmp_path, SECRET_KEY=SECRET)

    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "SECRET_KEY"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY"),
        ({"SECRET_KEY": "a" * 80}, "SECRET_KEY"),
        ({"SECRET_KEY": SECRET, "DEBUG": "true"}, "DEBUG"),
    ],
    ids=["no-key", "short-key", "one-character-key", "debug-on"],
)
def test_the_production_profile_refuses_to_start_unsafe(tmp_path, env, message):
    result = manage("check", tmp_path=tmp_path, TRACEABILITY_PROFILE="production", **env)

    assert result.returncode != 0
    assert message in result.stderr


def test_an_unknown_profile_is_refused(tmp_path):
    result = manage("check", tmp_path=tmp_path, TRACEABILITY_PROFILE="prod")

    assert result.returncode != 0
    assert "TRACEABILITY_PROFILE" in result.stderr
