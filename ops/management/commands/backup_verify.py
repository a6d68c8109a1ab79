"""Verify a restore of a backup (docs/backup.md) before switching the application to it.

    manage.py backup_verify /backups/2026-12-06T0200 \\
        --database-url postgresql://postgres@db:5432/traceability_restored \\
        --media-root /srv/media-restored

Compares the restored database's rows per table and migrations with the manifest, checks each
certificate row's file in the unpacked media against the SHA-256 the row records, checks that no
sequence would hand out a key already taken, and runs audit_verify and signatures_verify against
the restored database. Prints one line per difference and exits 1 if there is any."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ops.backup import BackupError
from ops.verify import backup_verify


class Command(BaseCommand):
    help = "Verify a restored backup: rows, certificate files, audit chain and signatures."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("directory", type=Path, help="The backup's directory.")
        parser.add_argument(
            "--database-url", required=True, help="The database the dump was restored into."
        )
        parser.add_argument(
            "--media-root", required=True, type=Path, help="Where media.tar was unpacked."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            differences = backup_verify(
                directory=Path(options["directory"]),
                database_url=options["database_url"],
                media_root=Path(options["media_root"]),
            )
        except BackupError as error:
            raise CommandError(str(error)) from error
        except psycopg.OperationalError as error:
            raise CommandError(f"Cannot read the restored database: {error}") from error
        for difference in differences:
            self.stdout.write(self.style.ERROR(difference.describe()))
        if differences:
            raise CommandError(f"The restore differs from the backup in {len(differences)} ways.")
        self.stdout.write(
            "Restore verified: every table's rows, every certificate file with its hash, the "
            "audit chain and the signatures."
        )
