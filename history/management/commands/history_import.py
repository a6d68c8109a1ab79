"""Import a CSV file of past records, all or nothing: a clinic's treatments or receipts, or the
network's lots.

    manage.py history_import treatments chart.csv --clinic "Praxis Mitte" --user admin [--dry-run]
    manage.py history_import lots lots.csv --user qm

Progress goes to stderr as a bar; problems are printed (and written with --report) and the
command exits with status 1, having written nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper

from common.csv import csv_lines
from common.errors import DomainError
from common.validators import whole_number
from history.services import KINDS, history_import
from providers.access import access_cache
from providers.models import Clinic

BAR_WIDTH = 30
REPORT_COLUMNS = ("line", "column", "code", "message")


class ProgressBar:
    """`checking [#######.......]  41000/100000` on one line of stderr, redrawn in place."""

    def __init__(self, stream: OutputWrapper) -> None:
        self.stream = stream
        self.shown = ("", -1)

    def __call__(self, phase: str, done: int, total: int) -> None:
        filled = BAR_WIDTH * done // total if total else BAR_WIDTH
        if (phase, filled) == self.shown and done != total:
            return
        self.shown = (phase, filled)
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        ending = "\n" if done == total else ""
        self.stream.write(f"\r{phase:<8} [{bar}] {done:>7}/{total}", ending=ending)
        self.stream.flush()


class Command(BaseCommand):
    help = (
        "Import past treatments or receipts of a clinic, or lots, from a CSV file, all or nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("kind", choices=sorted(KINDS))
        parser.add_argument("path", type=Path)
        parser.add_argument(
            "--clinic", help="The clinic's id or name (treatments and receipts; not lots)."
        )
        parser.add_argument("--user", required=True, help="The importing user's username.")
        parser.add_argument("--dry-run", action="store_true", help="Check only; write nothing.")
        parser.add_argument("--report", type=Path, help="Write the problems to this CSV file.")

    def handle(self, *args: Any, **options: Any) -> None:
        clinic = None if options["clinic"] is None else _clinic(options["clinic"])
        user = get_user_model().objects.filter(username=options["user"]).first()
        if user is None:
            raise CommandError(f"No user {options['user']!r}.")
        try:
            data = options["path"].read_bytes()
        except OSError as error:
            raise CommandError(f"Cannot read {options['path']}: {error}") from error
        try:
            with access_cache():
                outcome = history_import(
                    actor=user,
                    clinic=clinic,
                    kind=options["kind"],
                    data=data,
                    dry_run=options["dry_run"],
                    progress=ProgressBar(self.stderr),
                )
        except DomainError as error:
            raise CommandError("; ".join(p.message for p in error.problems)) from error
        if options["report"]:
            # Cells quote what a spreadsheet would run as a formula (a lot number "=1+1").
            options["report"].write_text(
                "".join(
                    csv_lines(
                        REPORT_COLUMNS, ([p[c] for c in REPORT_COLUMNS] for p in outcome.report)
                    )
                ),
                encoding="utf-8",
            )
        if outcome.problems:
            for problem in outcome.problems:
                where = f"line {problem.line}" if problem.line else "file"
                column = f", column {problem.column}" if problem.column else ""
                self.stderr.write(f"{where}{column}: {problem.code}: {problem.message}")
            raise CommandError(
                f"{len(outcome.problems)} problem(s) in {outcome.rows} row(s); nothing was written."
            )
        verb = "would import" if options["dry_run"] else "imported"
        into = f" into {clinic.name}" if clinic else ""
        self.stdout.write(f"{verb} {outcome.written} {options['kind']}{into}")


def _clinic(value: str) -> Clinic:
    clinic = Clinic.objects.filter(name=value).first()
    pk = whole_number(value)
    if clinic is None and pk is not None:
        clinic = Clinic.objects.filter(pk=pk).first()
    if clinic is None:
        raise CommandError(f"No clinic with the id or name {value!r}.")
    return clinic
