"""One record per electronic signature (21 CFR 11.50, 11.70), whatever was signed.

Append-only in the database itself: triggers refuse UPDATE and DELETE. The row carries the
serialisation of what was signed (`content`), its SHA-256 (`content_sha256`), and a second
SHA-256 (`signature_sha256`) over the signature's own parts (kind, record, signer, printed name,
time, meaning, reason, content hash), so neither the content nor the signature's parts can be
changed, nor the row pointed at another record, without `signatures.services.signature_verify`
saying so.
"""

from __future__ import annotations

import pgtrigger
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Q

from common.signatures import Meaning

_SHA256_HEX = r"^[0-9a-f]{64}$"


class Signature(models.Model):
    kind = models.CharField(max_length=40, help_text="What was signed: lot_release, ...")
    record_type = models.ForeignKey(ContentType, on_delete=models.PROTECT, related_name="+")
    record_id = models.PositiveBigIntegerField()
    subject = models.CharField(
        max_length=100, help_text="The thing whose state was signed, as <app>.<model>:<id>."
    )
    signer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    printed_name = models.CharField(max_length=300)
    signed_at = models.DateTimeField()
    meaning = models.CharField(max_length=20, choices=Meaning.choices)
    reason = models.TextField()
    content = models.JSONField(help_text="The signed content, as it was serialised and hashed.")
    content_sha256 = models.CharField(max_length=64)
    signature_sha256 = models.CharField(max_length=64)
    backfilled = models.BooleanField(
        default=False,
        help_text="Written by the migration that introduced this record, for an act signed "
        "earlier whose legacy digest proved the content unchanged since.",
    )

    class Meta:
        ordering = ["-signed_at", "-id"]
        indexes = [
            models.Index(fields=["record_type", "record_id"], name="signature_record"),
            models.Index(fields=["subject", "signed_at"], name="signature_subject"),
            models.Index(fields=["kind", "signed_at"], name="signature_kind"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(reason=""),
                name="signature_has_reason",
                violation_error_code="reason_required",
            ),
            models.CheckConstraint(
                condition=~Q(printed_name=""),
                name="signature_has_printed_name",
                violation_error_code="printed_name_required",
            ),
            models.CheckConstraint(
                condition=Q(content_sha256__regex=_SHA256_HEX)
                & Q(signature_sha256__regex=_SHA256_HEX),
                name="signature_hashes_hex",
                violation_error_code="signature_hash_invalid",
            ),
        ]
        triggers = [
            pgtrigger.Protect(
                name="signature_append_only", operation=pgtrigger.Update | pgtrigger.Delete
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} of {self.record_label} by {self.printed_name} ({self.meaning})"

    @property
    def record_label(self) -> str:
        return f"{self.record_type.app_label}.{self.record_type.model}:{self.record_id}"
