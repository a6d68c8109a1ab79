"""Verify a restored backup: the copy holds what the manifest says the live database held, every
certificate file is in the unpacked media with the hash its row records, and the audit chain and
the electronic signatures check out against the copy itself.

The restored copy is not the database Django is configured with, so it is read over its own
connection, and the audit and signature checks run as `manage.py audit_verify` and
`manage.py signatures_verify` in a child process whose DATABASE_URL names the copy: the very
commands an auditor runs, against nothing but the restored data. The audit check is anchored on
the chain's last link at backup time, so the restored chain must be that chain, not merely a
consistent one."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from django.conf import settings

from ops.backup import file_sha256, manifest_read
from ops.inventory import (
    CertificateFile,
    certificate_files,
    migration_state,
    row_counts,
    sequences_behind,
)

CHECK_TIMEOUT_SECONDS = 3600
OUTPUT_LINES_KEPT = 12


@dataclass(frozen=True)
class Difference:
    """One way the restored copy differs from the backup, with a stable code."""

    code: str
    message: str

    def describe(self) -> str:
        return f"[{self.code}] {self.message}"


def backup_verify(*, directory: Path, database_url: str, media_root: Path) -> list[Difference]:
    """Every difference between the backup in `directory` and its restore into `database_url`
    with the media unpacked into `media_root`; none means the restore is whole."""
    manifest = manifest_read(directory)
    differences = _archive_differences(directory, manifest)
    with psycopg.connect(database_url, autocommit=True) as connection:
        with connection.transaction(), connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            differences += _count_differences(manifest["row_counts"], row_counts(cursor))
            differences += _migration_differences(manifest["migrations"], migration_state(cursor))
            certificates = certificate_files(cursor)
            differences += [
                Difference("sequence_behind", problem) for problem in sequences_behind(cursor)
            ]
    differences += _certificate_differences(certificates, media_root)
    anchor = [f"--anchor={manifest['audit_chain_head']}"] if manifest["audit_chain_head"] else []
    differences += _command_differences(["audit_verify", *anchor], database_url, media_root)
    differences += _command_differences(["signatures_verify"], database_url, media_root)
    return differences


def _archive_differences(directory: Path, manifest: dict[str, Any]) -> list[Difference]:
    """The backup's own files against the hashes the manifest took when it was written."""
    differences = []
    for part in ("dump", "media"):
        path = directory / manifest[part]["file"]
        if not path.is_file():
            differences.append(Difference("backup_file_missing", f"{path} is missing"))
        elif file_sha256(path) != manifest[part]["sha256"]:
            differences.append(
                Difference("backup_file_altered", f"{path} no longer has its recorded SHA-256")
            )
    return differences


def _count_differences(expected: dict[str, int], restored: dict[str, int]) -> list[Difference]:
    differences = []
    for table in sorted(expected.keys() | restored.keys()):
        if table not in restored:
            differences.append(Difference("table_missing", f"table {table} is missing"))
        elif table not in expected:
            differences.append(
                Difference("table_unexpected", f"table {table} is not in the backup")
            )
        elif expected[table] != restored[table]:
            differences.append(
                Difference(
                    "row_count",
                    f"table {table}: {restored[table]} rows, the backup has {expected[table]}",
                )
            )
    return differences


def _migration_differences(expected: dict[str, str], restored: dict[str, str]) -> list[Difference]:
    return [
        Difference(
            "migration_state",
            f"app {app}: latest migration {restored.get(app, 'none')}, "
            f"the backup has {expected.get(app, 'none')}",
        )
        for app in sorted(expected.keys() | restored.keys())
        if expected.get(app) != restored.get(app)
    ]


def _certificate_differences(
    certificates: list[CertificateFile], media_root: Path
) -> list[Difference]:
    """Each certificate row's file, read from the unpacked media, against the SHA-256 the row
    records (the hash taken at upload, which the row's trigger keeps unchangeable)."""
    differences = []
    for certificate in certificates:
        path = media_root / certificate.name
        where = f"certificate #{certificate.certificate_id}: {certificate.name}"
        if not path.is_file():
            differences.append(Difference("certificate_file_missing", f"{where} is missing"))
            continue
        actual = file_sha256(path)
        if actual != certificate.sha256:
            differences.append(
                Difference(
                    "certificate_file_altered",
                    f"{where} has SHA-256 {actual}, its row records {certificate.sha256}",
                )
            )
    return differences


def _command_differences(
    arguments: list[str], database_url: str, media_root: Path
) -> list[Difference]:
    """Run one of the project's verification commands against the restored copy."""
    command = arguments[0]
    completed = subprocess.run(  # noqa: S603 - this project's own manage.py
        [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), *arguments],
        env={**os.environ, "DATABASE_URL": database_url, "MEDIA_ROOT": str(media_root)},
        capture_output=True,
        text=True,
        timeout=CHECK_TIMEOUT_SECONDS,
        check=False,
    )
    if completed.returncode == 0:
        return []
    output = (completed.stdout + completed.stderr).strip().splitlines()
    return [
        Difference(
            f"{command}_failed",
            f"manage.py {command} exited {completed.returncode}: "
            + " | ".join(output[-OUTPUT_LINES_KEPT:]),
        )
    ]
