"""Who read which patients' contact details, when and where (DESIGN rule 7).

One row per read, however many patients it showed: a list page is one row with every patient id
on it. The table is append-only in the database itself: triggers refuse UPDATE and DELETE, so
not even a faulty caller or a hand-typed query rewrites who read what.
"""

from __future__ import annotations

import pgtrigger
from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models import F, Func, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from pghistory.models import Events

from common.triggers import no_delete
from providers.models import Clinic


class ReadVia(models.TextChoices):
    API = "api", _("API")
    ADMIN = "admin", _("Admin")
    PAGE = "page", _("Clinic pages")


class ContactDataRead(models.Model):
    """A user was shown the contact details of `patient_ids`, all patients of `clinic`."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="contact_data_reads"
    )
    user_name = models.CharField(
        max_length=301, help_text="The reader's full name (or username) at the time of the read."
    )
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="contact_data_reads")
    patient_ids = ArrayField(models.BigIntegerField(), help_text="Ids of the patients shown.")
    patient_count = models.PositiveIntegerField()
    what = models.CharField(max_length=200, help_text="What was shown, in a few words.")
    via = models.CharField(max_length=10, choices=ReadVia.choices)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [
            models.Index(fields=["clinic", "at"], name="contact_read_clinic_at"),
            models.Index(fields=["user", "at"], name="contact_read_user_at"),
            GinIndex(fields=["patient_ids"], name="contact_read_patient_ids"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(patient_count__gte=1)
                & Q(
                    patient_count=Func(
                        F("patient_ids"), function="CARDINALITY", output_field=models.IntegerField()
                    )
                ),
                name="contact_read_patient_count",
            ),
            models.CheckConstraint(
                condition=Q(via__in=ReadVia.values), name="contact_read_via_valid"
            ),
        ]
        triggers = [
            no_delete("contact_data_read_no_delete"),
            pgtrigger.Protect(name="contact_data_read_no_update", operation=pgtrigger.Update),
        ]

    def __str__(self) -> str:
        return f"{self.user_name} read {self.what} ({self.at:%Y-%m-%d %H:%M} UTC)"


class ChainLink(models.Model):
    """One link of the audit trail's hash chain (see `audit.chain`): written only by the database
    trigger on each audited table, in commit order; the database refuses UPDATE and DELETE."""

    id = models.BigAutoField(primary_key=True)
    table_name = models.CharField(max_length=63, help_text="The audited table of the row.")
    row_id = models.CharField(max_length=64, help_text="The row's primary key, as text.")
    content_digest = models.BinaryField(help_text="sha256 of the row's canonical content.")
    link = models.BinaryField(help_text="sha256(previous link || content digest).")
    recorded_at = models.DateTimeField(help_text="When the link was appended (commit time).")

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["table_name", "row_id"], name="chain_link_row")]

    def __str__(self) -> str:
        return f"link #{self.pk}: {self.table_name} #{self.row_id}"


class ChainSchema(models.Model):
    """The columns an audited table had, recorded each time they change (`audit.chain`): a link
    is the digest of its row's columns as they were when it was written, so a column added later
    (a new field, whose old events hold NULL or its default) is left out when an older link is
    checked, and only then. Append-only, and a link of the chain itself."""

    id = models.BigAutoField(primary_key=True)
    table_name = models.CharField(max_length=63)
    columns = ArrayField(models.CharField(max_length=63), help_text="In name order.")
    from_link = models.BigIntegerField(
        help_text="The chain's last link when this set was recorded: links after it were "
        "written with these columns; links up to it with an earlier set or, if the migration "
        "that changed the table wrote them, with this one."
    )
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.table_name}: {len(self.columns)} columns from link #{self.from_link}"


class AuditEvent(Events):
    """Every history event of every tracked record, for the audit search page of the admin
    (pghistory's aggregate of the event tables; nothing is stored under this name)."""

    class Meta:
        proxy = True
        verbose_name = "audit event"
        verbose_name_plural = "audit events (search and export)"
