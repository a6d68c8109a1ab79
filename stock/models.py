"""Stock at clinics: an append-only movement ledger, and balances maintained from it in the same
transaction. The ledger is the truth; `stock_balances_verify` proves the two agree."""

from __future__ import annotations

import pgtrigger
from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from common.history import track_history
from lots.models import Lot
from providers.models import Clinic


class StockState(models.TextChoices):
    ACCEPTED = "accepted", _("Accepted (usable)")
    QUARANTINED = "quarantined", _("Quarantined at receipt")
    REJECTED = "rejected", _("Rejected at receipt")
    BLOCKED = "blocked", _("Blocked (recall)")


class ReceiptDecision(models.TextChoices):
    ACCEPT = "accept", _("Accept")
    QUARANTINE = "quarantine", _("Quarantine")
    REJECT = "reject", _("Reject")


DECISION_STATE = {
    ReceiptDecision.ACCEPT: StockState.ACCEPTED,
    ReceiptDecision.QUARANTINE: StockState.QUARANTINED,
    ReceiptDecision.REJECT: StockState.REJECTED,
}


@track_history()
class Receipt(models.Model):
    """Units of a lot arriving at a clinic, with the checks made at the door (21 CFR 1271.265)."""

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="receipts")
    lot = models.ForeignKey(Lot, on_delete=models.PROTECT, related_name="receipts")
    quantity = models.PositiveIntegerField()
    decision = models.CharField(max_length=20, choices=ReceiptDecision.choices)
    package_intact = models.BooleanField()
    label_readable = models.BooleanField()
    transport_min_celsius = models.DecimalField(max_digits=5, decimal_places=1)
    transport_max_celsius = models.DecimalField(max_digits=5, decimal_places=1)
    storage_location = models.CharField(max_length=200)
    received_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    received_at = models.DateTimeField()
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity__gt=0),
                name="receipt_quantity_positive",
                violation_error_code="quantity_not_positive",
            ),
            models.CheckConstraint(
                condition=Q(transport_max_celsius__gte=F("transport_min_celsius")),
                name="receipt_transport_range_ordered",
                violation_error_code="transport_range_reversed",
            ),
        ]
        triggers = [
            pgtrigger.Protect(name="receipt_no_delete", operation=pgtrigger.Delete),
            pgtrigger.Protect(name="receipt_immutable", operation=pgtrigger.Update),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.lot} at {self.clinic} ({self.decision})"


class MovementKind(models.TextChoices):
    RECEIPT = "receipt", _("Receipt")
    QUARANTINE_ACCEPT = "quarantine_accept", _("Accepted after quarantine")
    QUARANTINE_REJECT = "quarantine_reject", _("Rejected after quarantine")
    TRANSFER_OUT = "transfer_out", _("Transfer out")
    TRANSFER_IN = "transfer_in", _("Transfer in")
    WASTAGE = "wastage", _("Wastage")
    RETURN = "return", _("Return to manufacturer")
    DESTRUCTION = "destruction", _("Destruction")
    TREATMENT = "treatment", _("Used in a treatment")
    BLOCK = "block", _("Blocked by recall")


class StockMovement(models.Model):
    """One line of the ledger: `delta` units entered (+) or left (-) the `state` bucket of a lot at
    a clinic. Rows are never changed or deleted."""

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="stock_movements")
    lot = models.ForeignKey(Lot, on_delete=models.PROTECT, related_name="stock_movements")
    state = models.CharField(max_length=20, choices=StockState.choices)
    delta = models.IntegerField()
    kind = models.CharField(max_length=20, choices=MovementKind.choices)
    reason = models.TextField(blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    occurred_at = models.DateTimeField()
    receipt = models.ForeignKey(
        Receipt, on_delete=models.PROTECT, null=True, blank=True, related_name="movements"
    )
    counterpart_clinic = models.ForeignKey(
        Clinic,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The other clinic of a transfer.",
    )

    class Meta:
        ordering = ["-occurred_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(delta=0),
                name="movement_delta_nonzero",
                violation_error_code="quantity_not_positive",
            ),
        ]
        indexes = [
            # The network's ledger, newest first: without it, its first page sorted every
            # movement (1.0 s at 10^6).
            models.Index(fields=["-occurred_at", "-id"], name="movement_time"),
            models.Index(fields=["lot", "clinic"], name="movement_lot_clinic"),
            models.Index(fields=["clinic", "occurred_at"], name="movement_clinic_time"),
        ]
        triggers = [
            pgtrigger.Protect(name="movement_append_only_update", operation=pgtrigger.Update),
            pgtrigger.Protect(name="movement_append_only_delete", operation=pgtrigger.Delete),
        ]

    def __str__(self) -> str:
        return (
            f"{self.kind} {self.delta:+d} {self.state} of lot {self.lot.lot_number} "
            f"at {self.clinic.name}"
        )


class StockBalance(models.Model):
    """Units of a lot in one state at one clinic: the sum of the ledger, kept in step with it in
    the same transaction, never negative."""

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="stock_balances")
    lot = models.ForeignKey(Lot, on_delete=models.PROTECT, related_name="stock_balances")
    state = models.CharField(max_length=20, choices=StockState.choices)
    quantity = models.IntegerField(default=0)

    class Meta:
        ordering = ["clinic_id", "lot_id", "state"]
        constraints = [
            models.UniqueConstraint(fields=["clinic", "lot", "state"], name="balance_unique"),
            models.CheckConstraint(
                condition=Q(quantity__gte=0),
                name="balance_never_negative",
                violation_error_code="stock_insufficient",
            ),
        ]
        indexes = [models.Index(fields=["lot", "state"], name="balance_lot_state")]

    def __str__(self) -> str:
        return f"{self.quantity} {self.state} of lot {self.lot.lot_number} at {self.clinic.name}"
