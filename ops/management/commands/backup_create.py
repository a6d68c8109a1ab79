"""Back up the configured database and its certificate files (docs/backup.md).

    manage.py backup_create --out /backups/2026-12-06T0200

Writes DIR/database.dump (pg_dump, custom format), DIR/media.tar (every certificate file the
rows name) and DIR/manifest.json (time, migrations, rows per table, SHA-256 of each file and of
the dump), all from one snapshot. Exits 1 when a certificate file is missing from storage or does
not match its recorded hash: the backup is still written, and the lines name each such file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ops.backup import BackupError, backup_create
from ops.postgres import ClientProgramMissing


class Command(BaseCommand):
    help = "Back up the database (pg_dump) and the certificate files, with a manifest."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--out", required=True, type=Path, help="A new directory to write the backup into."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            backup = backup_create(out=Path(options["out"]))
        except (BackupError, ClientProgramMissing) as error:
            raise CommandError(str(error)) from error
        manifest = backup.manifest
        self.stdout.write(
            f"Backup written to {backup.directory} in {backup.seconds:.1f} s: "
            f"{len(manifest['row_counts'])} tables, {sum(manifest['row_counts'].values())} rows, "
            f"{len(manifest['certificate_files'])} certificate files, "
            f"dump {manifest['dump']['bytes']} bytes (SHA-256 {manifest['dump']['sha256']})."
        )
        for problem in backup.damaged:
            self.stdout.write(self.style.ERROR(problem))
        if backup.damaged:
            raise CommandError(
                f"{len(backup.damaged)} certificate file(s) missing or altered in storage."
            )
