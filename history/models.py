"""An import of records from an earlier system, as a job: what was sent, by whom, how far it got
and what it found."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from providers.models import Clinic


class ImportKind(models.TextChoices):
    TREATMENTS = "treatments", _("Treatments")
    RECEIPTS = "receipts", _("Receipts of stock")
    LOTS = "lots", _("Lots")


class ImportStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    CHECKING = "checking", _("Checking")
    WRITING = "writing", _("Writing")
    DONE = "done", _("Done")
    REFUSED = "refused", _("Refused: problems found")
    FAILED = "failed", _("Failed")


class HistoryImport(models.Model):
    kind = models.CharField(max_length=20, choices=ImportKind.choices)
    # None for lots, which are the network's, not a clinic's.
    clinic = models.ForeignKey(
        Clinic,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="history_imports",
    )
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    file_name = models.CharField(max_length=200, blank=True)
    file_sha256 = models.CharField(max_length=64)
    # The file as sent, so a worker on another machine reads it from the database.
    content = models.BinaryField()
    dry_run = models.BooleanField(default=False)
    status = models.CharField(
        max_length=20, choices=ImportStatus.choices, default=ImportStatus.QUEUED
    )
    rows_total = models.PositiveIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0)
    rows_written = models.PositiveIntegerField(default=0)
    report = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["clinic", "-created_at"], name="history_import_clinic")]

    def __str__(self) -> str:
        return f"{self.kind} import {self.pk}" + (f" at {self.clinic}" if self.clinic else "")
