"""Verify electronic signatures against their records as they now stand.

    manage.py signatures_verify                       # every signature
    manage.py signatures_verify --record lots.lot:12  # the signatures about lot 12
    manage.py signatures_verify --signature 7 --kind lot_release

Prints one line per signature that is not valid (naming each difference), and, unless one
signature or record is asked for, one line per signed act that has no signature at all (a deleted
row); then a summary. Exits 1 when any is invalid or missing. Acts signed before the Signature
record existed and not backfilled are counted, not failed. Superseded signatures (their record
changed and a later signature on it holds) are listed but do not fail. Reads in chunks: memory
stays flat whatever the count.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q

from signatures.filters import REFERENCE
from signatures.registry import KINDS
from signatures.selectors import signature_list
from signatures.services import Status, signature_verify, signatures_missing


class Command(BaseCommand):
    help = "Verify electronic signatures against their records; exit 1 if any is invalid."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--record",
            help="<app>.<model>:<id>: signatures on that record or about that subject "
            "(lots.lot:12, lots.donor:3, recalls.recall:2, lots.lotstatuschange:7).",
        )
        parser.add_argument("--signature", type=int, help="One signature by its id.")
        parser.add_argument("--kind", help="Only this kind (lot_release, recall_open, ...).")
        parser.add_argument("--verbose-valid", action="store_true", help="Print valid ones too.")

    def handle(self, *args: Any, **options: Any) -> None:
        signatures = signature_list().order_by("pk")
        if options["kind"] and options["kind"] not in KINDS:
            raise CommandError(f"--kind is one of: {', '.join(sorted(KINDS))}.")
        if options["signature"] is not None:
            signatures = signatures.filter(pk=options["signature"])
        if options["kind"]:
            signatures = signatures.filter(kind=options["kind"])
        if options["signature"] is not None and not signatures.exists():
            # Asked for one signature by its id: one that is not there is not a pass.
            kind = f" of kind {options['kind']}" if options["kind"] else ""
            raise CommandError(f"No signature{kind} has id {options['signature']}.")
        if options["record"]:
            match = REFERENCE.fullmatch(options["record"])
            if match is None:
                raise CommandError("--record is <app>.<model>:<id>, for example lots.lot:12.")
            app_label, model, record_id = match.group(1), match.group(2), int(match.group(3))
            signatures = signatures.filter(
                Q(record_type__app_label=app_label, record_type__model=model, record_id=record_id)
                | Q(subject=options["record"])
            )
        counts = {Status.VALID: 0, Status.INVALID: 0, Status.SUPERSEDED: 0}
        for signature in signatures.iterator(chunk_size=500):
            verification = signature_verify(signature)
            counts[verification.status] += 1
            if verification.status == Status.INVALID:
                self.stdout.write(self.style.ERROR(verification.describe()))
            elif verification.status == Status.SUPERSEDED or options["verbose_valid"]:
                self.stdout.write(verification.describe())
        total = sum(counts.values())
        self.stdout.write(
            f"{total} signature(s): {counts[Status.VALID]} valid, "
            f"{counts[Status.SUPERSEDED]} superseded, {counts[Status.INVALID]} invalid."
        )
        missing = legacy = 0
        if options["signature"] is None and not options["record"]:
            for act in signatures_missing(kind=options["kind"] or None):
                if act.legacy:
                    legacy += 1
                    continue
                missing += 1
                self.stdout.write(self.style.ERROR(act.describe()))
            self.stdout.write(
                f"{missing} signed act(s) without their signature; {legacy} signed before "
                "signatures were recorded (legacy digest only)."
            )
        failed = counts[Status.INVALID] + missing
        if failed:
            raise CommandError(
                f"{counts[Status.INVALID]} signature(s) failed verification, {missing} missing."
            )
