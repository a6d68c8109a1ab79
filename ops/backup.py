"""A backup: a pg_dump of the configured database, the certificate files its rows name, and a
manifest of what both hold, taken from one snapshot so the three agree to the row.

    DIR/database.dump   pg_dump --format=custom
    DIR/media.tar       each certificate file under its storage name (unpack into MEDIA_ROOT)
    DIR/manifest.json   time, migrations, rows per table, SHA-256 of every file and of the dump

The manifest is written last: a directory without one is an interrupted backup."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.utils import timezone

from ops.inventory import (
    CertificateFile,
    audit_chain_head,
    certificate_files,
    migration_state,
    row_counts,
)
from ops.postgres import client_program, client_target

MANIFEST_NAME = "manifest.json"
DUMP_NAME = "database.dump"
MEDIA_NAME = "media.tar"
FORMAT_VERSION = 1
CHUNK = 1024 * 1024


class BackupError(Exception):
    """The backup could not be written."""


@dataclass
class Backup:
    directory: Path
    manifest: dict[str, Any]
    seconds: float = 0.0
    # Certificate files missing from storage or not matching their recorded hash: the backup is
    # written all the same (it is the best copy there is), and the command fails naming them.
    damaged: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Snapshot:
    """What the database held at the instant the dump was taken."""

    row_counts: dict[str, int]
    migrations: dict[str, str]
    certificates: list[CertificateFile]
    audit_chain_head: str


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def backup_create(*, out: Path) -> Backup:
    """Write a backup of the configured database and its certificate files into `out` (created;
    refused when it already holds a backup, so an earlier one is never overwritten)."""
    started = time.monotonic()
    if (out / MANIFEST_NAME).exists() or (out / DUMP_NAME).exists():
        raise BackupError(f"{out} already holds a backup; choose a new directory.")
    out.mkdir(parents=True, exist_ok=True)
    target = client_target()
    pg_dump = client_program("pg_dump", server_major=target.server_major)
    taken_at = timezone.now()
    snapshot = _dump_from_one_snapshot(
        pg_dump=pg_dump,
        target_env=target.environment(dict(os.environ)),
        conninfo=target.conninfo,
        dump=out / DUMP_NAME,
    )
    files, damaged = _archive_certificates(snapshot.certificates, out / MEDIA_NAME)
    manifest = {
        "format": FORMAT_VERSION,
        "created_at": taken_at.isoformat(),
        "database": {
            "name": connection.settings_dict["NAME"],
            "server_version": ".".join(map(str, connection.get_database_version())),
            "pg_dump": str(pg_dump),
        },
        "migrations": snapshot.migrations,
        "row_counts": snapshot.row_counts,
        "audit_chain_head": snapshot.audit_chain_head,
        "dump": {
            "file": DUMP_NAME,
            "sha256": file_sha256(out / DUMP_NAME),
            "bytes": (out / DUMP_NAME).stat().st_size,
        },
        "media": {
            "file": MEDIA_NAME,
            "sha256": file_sha256(out / MEDIA_NAME),
            "bytes": (out / MEDIA_NAME).stat().st_size,
        },
        "certificate_files": files,
    }
    partial = out / (MANIFEST_NAME + ".partial")
    partial.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    partial.replace(out / MANIFEST_NAME)
    return Backup(out, manifest, time.monotonic() - started, damaged)


def _dump_from_one_snapshot(
    *, pg_dump: Path, target_env: dict[str, str], conninfo: str, dump: Path
) -> Snapshot:
    """Count the rows, read the migrations and the certificate rows, and run pg_dump, all on one
    exported snapshot: writers go on meanwhile, and the manifest still describes the dump exactly.
    The read-only transaction stays open while pg_dump runs (a snapshot lives only as long as the
    transaction that exported it). Writers never wait for it; a migration would wait for pg_dump's
    share locks, so none should run meanwhile."""
    with transaction.atomic(durable=True), connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cursor.execute("SELECT pg_export_snapshot()")
        (snapshot_id,) = cursor.fetchone()
        snapshot = Snapshot(
            row_counts=row_counts(cursor),
            migrations=migration_state(cursor),
            certificates=certificate_files(cursor),
            audit_chain_head=audit_chain_head(cursor),
        )
        completed = subprocess.run(  # noqa: S603 - PostgreSQL's pg_dump, arguments built here
            [
                str(pg_dump),
                "--format=custom",
                "--no-password",
                f"--snapshot={snapshot_id}",
                f"--file={dump}",
                f"--dbname={conninfo}",
            ],
            env=target_env,
            capture_output=True,
            text=True,
            check=False,
        )
    if completed.returncode != 0:
        raise BackupError(f"pg_dump failed ({completed.returncode}): {completed.stderr.strip()}")
    return snapshot


def _archive_certificates(
    certificates: list[CertificateFile], archive: Path
) -> tuple[dict[str, str], list[str]]:
    """Copy each certificate file, read through the storage the rows use, into `archive` under
    its storage name, hashing it on the way. Returns file name -> SHA-256 and what is damaged."""
    files: dict[str, str] = {}
    damaged: list[str] = []
    recorded: dict[str, CertificateFile] = {}
    for certificate in certificates:
        recorded.setdefault(certificate.name, certificate)
    now = time.time()
    with tarfile.open(archive, "w") as tar:
        for name, certificate in sorted(recorded.items()):
            if not default_storage.exists(name):
                damaged.append(f"certificate #{certificate.certificate_id}: {name} is missing")
                continue
            with default_storage.open(name, "rb") as handle:
                content = handle.read()
            files[name] = hashlib.sha256(content).hexdigest()
            if files[name] != certificate.sha256:
                damaged.append(
                    f"certificate #{certificate.certificate_id}: {name} has SHA-256 "
                    f"{files[name]}, recorded {certificate.sha256}"
                )
            member = tarfile.TarInfo(name)
            member.size, member.mtime, member.mode = len(content), now, 0o644
            tar.addfile(member, io.BytesIO(content))
    return files, damaged


def manifest_read(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST_NAME
    if not path.is_file():
        raise BackupError(
            f"{directory} holds no {MANIFEST_NAME}: not a backup, or an interrupted one."
        )
    manifest: dict[str, Any] = json.loads(path.read_text())
    if manifest.get("format") != FORMAT_VERSION:
        raise BackupError(
            f"{path} is format {manifest.get('format')!r}, expected {FORMAT_VERSION}."
        )
    return manifest
