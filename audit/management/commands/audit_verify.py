"""Recompute the audit trail's hash chain and check every link against the row it stands for
(`audit.chain.chain_verify`). Exits 0 with a summary when intact; otherwise prints the first
broken link (and the others found) and exits 1."""

from __future__ import annotations

import re
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.chain import chain_verify

ANCHOR = re.compile(r"^(\d+):([0-9a-f]{64})$")


class Command(BaseCommand):
    help = "Verify the audit trail's hash chain and name the first broken link."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--chunk", type=int, default=5000, help="Links read per query (default 5000)."
        )
        parser.add_argument(
            "--max-problems", type=int, default=20, help="Problems listed (default 20)."
        )
        parser.add_argument(
            "--anchor",
            help="POSITION:LINKHEX from an earlier run's summary (kept outside the database): "
            "proves the chain up to there was not rewritten as a whole.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        anchor = None
        if options["anchor"]:
            match = ANCHOR.match(options["anchor"])
            if match is None:
                raise CommandError("--anchor must be POSITION:LINKHEX (64 hex digits).")
            anchor = (int(match[1]), match[2])
        if options["chunk"] < 1 or options["max_problems"] < 1:
            raise CommandError("--chunk and --max-problems must be positive.")
        result = chain_verify(chunk=options["chunk"], keep=options["max_problems"], anchor=anchor)
        summary = f"{result.links} links checked in {result.seconds:.2f} s"
        for change in result.column_changes:
            # An auditor sees each: older events are checked without the columns added since.
            self.stdout.write(f"Columns changed since events were chained: {change}")
        if result.intact:
            self.stdout.write(f"Audit chain intact: {summary}.")
            if result.head_position is not None:
                self.stdout.write(
                    f"Head (note it as an anchor): {result.head_position}:{result.head_link}"
                )
            return
        first, *others = result.breaks
        self.stdout.write(f"Audit chain BROKEN: {summary}.")
        self.stdout.write(f"First broken link: {first.describe()}")
        for problem in others:
            self.stdout.write(f"  also: {problem.describe()}")
        if result.more_breaks:
            self.stdout.write(f"  and {result.more_breaks} more.")
        raise CommandError(f"audit chain broken: {first.describe()}", returncode=1)
