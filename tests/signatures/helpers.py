from __future__ import annotations

from typing import Any

from django.db import connection


def tamper(sql: str, params: list[Any]) -> None:
    """Change rows as a database superuser would, past every trigger (append-only guards and the
    history triggers alike): what verification must catch."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params)
        cursor.execute("SET LOCAL session_replication_role = DEFAULT")
