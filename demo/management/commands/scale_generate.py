"""`python manage.py scale_generate [--treatments N] [--lots N] [--patients N] [--clinics N]
[--practitioners N] [--seed N]`: a realistic data set of a given size, built by PostgreSQL.

Defaults: 10^7 treatments over 10^5 lots, 2*10^6 patients, 500 clinics, 5,000 practitioners; with
only --treatments given the others scale in the same proportions. Each run adds a new data set
tagged with its run id (names, codes, references), so runs never collide; traceability rows
cannot be deleted, so point it at a database kept for benchmarks. It needs a PostgreSQL
superuser (or a user granted SET on session_replication_role): see `demo.scale`. A progress bar
goes to stderr; the counts, the heaviest and a typical lot and the seconds per phase to stdout.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from demo.scale.base import DEFAULT_TREATMENTS, Progress, Sizes
from demo.scale.generate import NotAllowed, Summary, generate


class Command(BaseCommand):
    help = "Build a realistic data set of the given size through PostgreSQL (a new one per run)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--treatments", type=int, default=DEFAULT_TREATMENTS)
        for name in ("lots", "patients", "clinics", "practitioners"):
            parser.add_argument(f"--{name}", type=int, help="default: scaled with --treatments")
        parser.add_argument("--seed", type=int, default=1, help="the same seed, the same data")

    def handle(self, *args: Any, **options: Any) -> None:
        sizes = Sizes.scaled(
            options["treatments"],
            lots=options["lots"],
            patients=options["patients"],
            clinics=options["clinics"],
            practitioners=options["practitioners"],
        )
        if problems := sizes.problems():
            raise CommandError(" ".join(problems))
        try:
            summary = generate(sizes=sizes, seed=options["seed"], progress=Progress(self.stderr))
        except NotAllowed as error:
            raise CommandError(str(error)) from error
        self.report(summary)

    def report(self, summary: Summary) -> None:
        out = self.stdout.write
        out(f"Run {summary.run}: rows written")
        for table, count in summary.rows.items():
            out(f"  {table:<36} {count:>12,}")
        for label, lot in (("heaviest", summary.heaviest), ("typical", summary.typical)):
            out(f"{label} lot: id {lot.id}, lot number {lot.lot_number}, {lot.lines:,} lines")
        out("Seconds per phase:")
        for phase, seconds in summary.seconds.items():
            out(f"  {phase:<28} {seconds:8.1f}")
