"""`python manage.py benchmark_scale`: each path that grows with the data beside its floor.

    python manage.py scale_generate                 # once: 10^7 treatments (see its help)
    python manage.py benchmark_scale [--repetitions 15] [--requests 3000] [--exposures 100000]
                                     [--notices 2000] [--generate 100000]
                                     [--section traces --section ...] [--out FILE]

Each section measures its paths on the data already in the database (the traces pick the heaviest
lot, a typical lot and the busiest patient) or on a data set of its own (recording, recalls, and
generation, which runs `scale_generate` at --generate treatments and keeps its rows), beside a
floor measured in the same run: the path's own SQL replayed bare, COPY, INSERT ... SELECT, a bare
Django view, bare no-op Celery tasks, the generated rows copied by INSERT ... SELECT. The ratio is
how many times slower than its floor.

Nothing is asserted: the figures are printed (STYLE: speed is measured by commands, not tests) and,
with --out, written as the Markdown table docs/performance.md shows.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from demo.bench import generation, recalls, recording, traces
from demo.bench.report import Row, table

SECTIONS = ("traces", "recording", "recalls", "generation")
# The sizes a run takes, each a count of at least one.
SIZES = ("repetitions", "requests", "workers", "exposures", "notices", "generate")


class Command(BaseCommand):
    help = "Measure every scale path beside its floor, same run; prints a table (asserts nothing)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--section", action="append", choices=SECTIONS)
        parser.add_argument("--repetitions", type=int, default=15)
        parser.add_argument("--requests", type=int, default=3000)
        parser.add_argument("--workers", type=int, default=4)
        parser.add_argument("--exposures", type=int, default=100_000)
        parser.add_argument("--notices", type=int, default=2000)
        parser.add_argument(
            "--generate", type=int, default=100_000, help="Treatments the generation run builds."
        )
        parser.add_argument("--out", help="Also write the table (Markdown) to this file.")

    def handle(self, *args: Any, **options: Any) -> None:
        if problems := [f"--{name} must be at least 1." for name in SIZES if options[name] < 1]:
            raise CommandError(" ".join(problems))
        measures: dict[str, Callable[[], list[Row]]] = {
            "traces": lambda: traces.measure(repetitions=options["repetitions"]),
            "recording": lambda: recording.measure(
                requests=options["requests"], workers=options["workers"]
            ),
            "recalls": lambda: recalls.measure(
                exposures=options["exposures"], notices=options["notices"]
            ),
            "generation": lambda: generation.measure(treatments=options["generate"]),
        }
        rows: list[Row] = []
        for name in options["section"] or SECTIONS:
            started = time.perf_counter()
            section_rows = measures[name]()
            self.stderr.write(f"{name}: {time.perf_counter() - started:.1f} s")
            rows.extend(section_rows)
        report = f"{self.setting()}\n\n{table(rows)}\n"
        self.stdout.write(report)
        if options["out"]:
            with open(options["out"], "w", encoding="utf-8") as out:
                out.write(report)

    def setting(self) -> str:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT version(), (SELECT count(*) FROM treatments_treatment),"
                " (SELECT count(*) FROM lots_lot)"
            )
            version, treatments, lots = cursor.fetchone()
        return (
            f"Data: {treatments:,} treatments over {lots:,} lots. "
            f"Machine: {platform.machine()}, {platform.python_implementation()} "
            f"{platform.python_version()}, {version.split(',')[0]}."
        )
