"""The deployment files agree with each other and with the README."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
APP_SERVICES = ("web", "worker", "beat")


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    compose: dict[str, dict[str, Any]] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return compose["services"]


def _command(service: dict[str, Any]) -> str:
    command = service["command"]
    return command if isinstance(command, str) else " ".join(command)


def test_compose_defines_the_five_services(services):
    assert set(services) == {"postgres", "redis", "web", "worker", "beat"}


def test_app_services_share_one_database_and_broker(services):
    environments = [services[name]["environment"] for name in APP_SERVICES]

    assert all(env == environments[0] for env in environments)
    assert re.fullmatch(
        r"postgresql://traceability:.+@postgres:5432/traceability", environments[0]["DATABASE_URL"]
    )
    assert environments[0]["CELERY_BROKER_URL"] == "redis://redis:6379/0"
    assert environments[0]["DEBUG"] == "false"
    assert environments[0]["SECRET_KEY"].startswith("${SECRET_KEY:?")


def test_app_services_wait_for_healthy_database_and_broker(services):
    for name in APP_SERVICES:
        assert services[name]["depends_on"] == {
            "postgres": {"condition": "service_healthy"},
            "redis": {"condition": "service_healthy"},
        }
    assert "healthcheck" in services["postgres"]
    assert "healthcheck" in services["redis"]


def test_web_migrates_then_serves_with_gunicorn(services):
    command = _command(services["web"])

    assert command.index("manage.py migrate") < command.index("gunicorn traceability.wsgi")
    assert "0.0.0.0:8000" in command


def test_worker_and_beat_run_celery(services):
    assert "celery -A traceability worker" in _command(services["worker"])
    assert "celery -A traceability beat" in _command(services["beat"])
    schedule = services["beat"]["environment"]["CELERY_BEAT_SCHEDULE_FILENAME"]
    assert any(schedule.startswith(volume.split(":")[1]) for volume in services["beat"]["volumes"])


def test_dockerfile_installs_the_pinned_requirements_and_drops_root():
    dockerfile = (ROOT / "Dockerfile").read_text()

    assert "pip install -r requirements/base.txt" in dockerfile
    assert re.search(r"^USER (?!root)\w+", dockerfile, re.MULTILINE)


def test_readme_commands_exist_in_dev_py():
    readme = (ROOT / "README.md").read_text()
    usage = subprocess.run(
        [sys.executable, str(ROOT / "dev.py"), "--help"], capture_output=True, text=True, check=True
    ).stderr

    for command in ("python3 dev.py run", "python3 dev.py test"):
        assert command in readme
        assert command in usage


def test_ci_runs_the_readme_test_command():
    script = (ROOT / ".ci" / "run").read_text()

    assert re.search(r"^python3 dev\.py test\b", script, re.MULTILINE)


def test_readme_documents_every_environment_variable_the_settings_read():
    source = (ROOT / "traceability" / "settings.py").read_text()
    source += (ROOT / "traceability" / "env.py").read_text()
    readme = (ROOT / "README.md").read_text()

    read = set(re.findall(r"""(?:env_\w+|environ\.get)\(\s*"([A-Z][A-Z0-9_]+)\"""", source))

    assert "DATABASE_URL" in read
    assert sorted(name for name in read if f"`{name}`" not in readme) == []
