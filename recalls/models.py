"""Recalls: the scope, the frozen exposures and stock, one outbox row per notice, the clinics'
acknowledgements and what they did with their stock."""

from __future__ import annotations

import base64
import binascii
import re
import uuid

import pgtrigger
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.utils.functional import lazy
from django.utils.translation import gettext_lazy as _

from common.history import track_history
from common.triggers import no_delete
from lots.models import Certificate, Donor, Lot, Product
from providers.models import Clinic, ClinicContact, Manufacturer, Practitioner
from treatments.models import Patient, Treatment, TreatmentLine


class RecallClass(models.TextChoices):
    """21 CFR 7.3(m)."""

    CLASS_I = "I", _("Class I: reasonable probability of serious harm or death")
    CLASS_II = "II", _("Class II: temporary or reversible harm; serious harm remote")
    CLASS_III = "III", _("Class III: harm not likely")


class RecallDepth(models.TextChoices):
    CLINIC = "clinic", _("Clinic level: stop use, account for stock")
    PATIENT = "patient", _("Patient level: also contact every treated patient")


class RecallStatus(models.TextChoices):
    OPEN = "open", _("Open")
    CLOSED = "closed", _("Closed")


@track_history()
class Recall(models.Model):
    reference = models.CharField(max_length=20, unique=True)
    recall_class = models.CharField(max_length=3, choices=RecallClass.choices)
    depth = models.CharField(max_length=10, choices=RecallDepth.choices)
    reason = models.TextField(help_text="Why the product is recalled.")
    hazard = models.TextField(help_text="The hazard to patients, in plain words.")
    instructions = models.TextField(
        blank=True, help_text="What clinics must do, beyond stopping use and accounting for stock."
    )
    is_drill = models.BooleanField(
        default=False, help_text="A mock recall: no lot status changes, no stock is blocked."
    )
    status = models.CharField(
        max_length=10, choices=RecallStatus.choices, default=RecallStatus.OPEN
    )
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    opened_at = models.DateTimeField(help_text="When the recall was opened and signed here.")
    # Nullable only for the history events written before the field existed; the recall itself
    # always has one (the check constraint below).
    withdrawn_at = models.DateTimeField(
        null=True,
        help_text=(
            "When the lots were really withdrawn: the opening itself, or, for a recall entered "
            "after the fact, the earlier moment its opener states. Timings count from here."
        ),
    )
    opened_signature_digest = models.CharField(max_length=64)
    first_notice_sent_at = models.DateTimeField(null=True, blank=True)
    fully_acknowledged_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    close_reason = models.TextField(blank=True)
    close_override = models.BooleanField(default=False)

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status=RecallStatus.OPEN, closed_at__isnull=True)
                | Q(status=RecallStatus.CLOSED, closed_at__isnull=False, closed_by__isnull=False),
                name="recall_closed_is_signed",
                violation_error_code="recall_close_unsigned",
            ),
            models.CheckConstraint(
                condition=Q(withdrawn_at__isnull=False, withdrawn_at__lte=F("opened_at")),
                name="recall_withdrawn_by_its_opening",
                violation_error_code="recall_withdrawn_after_opening",
            ),
        ]
        triggers = [no_delete("recall_no_delete")]

    def __str__(self) -> str:
        drill = " (DRILL)" if self.is_drill else ""
        return f"{self.reference}{drill}"

    @property
    def is_retrospective(self) -> bool:
        """Entered after the fact: the lots were withdrawn before the recall was opened here."""
        return self.withdrawn_at is not None and self.withdrawn_at < self.opened_at

    @property
    def is_urgent(self) -> bool:
        return self.recall_class in (RecallClass.CLASS_I, RecallClass.CLASS_II)


@track_history()
class RecallScope(models.Model):
    """What a quality manager asked to recall: round 1 at opening, one more per widening."""

    recall = models.ForeignKey(Recall, on_delete=models.PROTECT, related_name="scopes")
    round = models.PositiveIntegerField()
    lots = models.ManyToManyField(Lot, blank=True, related_name="+")
    donor = models.ForeignKey(Donor, on_delete=models.PROTECT, null=True, blank=True)
    product = models.ForeignKey(Product, on_delete=models.PROTECT, null=True, blank=True)
    manufacturer = models.ForeignKey(Manufacturer, on_delete=models.PROTECT, null=True, blank=True)
    manufactured_from = models.DateField(null=True, blank=True)
    manufactured_to = models.DateField(null=True, blank=True)
    reason = models.TextField()
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    added_at = models.DateTimeField()
    # SHA-256 over what this round's signer committed to (the recall, this round's lots, signer,
    # time, meaning); the lots' status changes of this round carry the same digest.
    signature_digest = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["recall_id", "round"]
        constraints = [
            models.UniqueConstraint(fields=["recall", "round"], name="recall_scope_round_unique")
        ]
        triggers = [no_delete("recall_scope_no_delete")]

    def __str__(self) -> str:
        return f"{self.recall} round {self.round}"


class RecallLot(models.Model):
    recall = models.ForeignKey(Recall, on_delete=models.PROTECT, related_name="recall_lots")
    lot = models.ForeignKey(Lot, on_delete=models.PROTECT, related_name="recall_lots")
    round = models.PositiveIntegerField()
    status_before = models.CharField(max_length=20)
    # True while the recall is open and real (not a drill): a lot is in one such recall at most.
    active = models.BooleanField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["recall", "lot"], name="recall_lot_unique"),
            models.UniqueConstraint(
                fields=["lot"], condition=Q(active=True), name="lot_in_one_open_recall"
            ),
        ]
        triggers = [no_delete("recall_lot_no_delete")]

    def __str__(self) -> str:
        return f"{self.lot} in {self.recall}"


# Refuses, once per INSERT statement, every frozen exposure that names a recall that does not exist
# or does not agree with its treatment line: a set-based check of what seven foreign keys checked
# row by row, and more (they never checked that the copies agree). The line's own copies of its
# treatment's time, clinic, patient and practitioner are the database's and fixed
# (treatments.models.LINE_COPIES), so agreeing with the line is agreeing with the treatment.
# The lines are read by the lot's covering index (lot, time, treatment; INCLUDE id and the copies):
# one range per lot the statement froze, never the lines' rows scattered over years of the table,
# then matched to the frozen rows by hash. Asked as a join with the whole line table instead, the
# planner either probed the index once per frozen row or, once the table outgrew its guess, read
# every line of the network (0.7 s of a 10^5-line recall at 10^6 treatments against 0.14 s).
# Counted, never EXISTS: under EXISTS's stop-at-the-first-row costing the planner trusts the
# product of the equalities and can probe by a column a large recall shares, and the check turns
# quadratic.
EXPOSURE_MATCHES_LINE = """
IF (
    SELECT count(*) FROM (SELECT DISTINCT recall_id FROM frozen) e
    LEFT JOIN recalls_recall r ON r.id = e.recall_id
    WHERE r.id IS NULL
) > 0 OR (
    SELECT count(*) FROM frozen e
    LEFT JOIN (
        SELECT id, lot_id, performed_at, treatment_id, units, clinic_id, patient_id,
               practitioner_id
        FROM treatments_treatmentline
        WHERE lot_id IN (SELECT DISTINCT lot_id FROM frozen)
    ) l
        ON l.lot_id = e.lot_id AND l.performed_at = e.performed_at
        AND l.treatment_id = e.treatment_id AND l.id = e.treatment_line_id
    WHERE l.id IS NULL
        OR (l.units, l.clinic_id, l.patient_id, l.practitioner_id)
        IS DISTINCT FROM (e.units, e.clinic_id, e.patient_id, e.practitioner_id)
) > 0 THEN
    RAISE EXCEPTION USING
        ERRCODE = 'foreign_key_violation',
        CONSTRAINT = 'recall_exposure_matches_line',
        MESSAGE = 'a recall exposure must copy an existing treatment line of an existing recall';
END IF;
RETURN NULL;
"""


class RecallExposure(models.Model):
    """A treatment line that used a recalled lot, frozen at the moment the recall (or its
    widening) was opened.

    A snapshot, written by one INSERT ... SELECT that can copy 10^5 lines, so its integrity is
    checked per statement, not per row: the trigger `recall_exposure_matches_line` refuses the
    whole statement when a row names a recall that does not exist, or a treatment line that does
    not exist or whose lot, units, treatment, clinic, patient, practitioner and time differ from
    the copy (the line's own copies of its treatment's are the database's, and fixed). The
    columns therefore carry no foreign key constraints of their own (`db_constraint=False`): seven
    of them cost a row lock and a lookup per referenced row, twice the time of the insert itself
    at 10^5 exposures, and checked less (never that the copies agree). Nothing checked can go
    away later: the recall, the line, its treatment, patient and lot refuse deletes
    (`no_delete`), the line refuses updates, the treatment's own foreign keys hold its clinic and
    practitioner, and this row refuses updates and deletes."""

    recall = models.ForeignKey(
        Recall,
        on_delete=models.PROTECT,
        related_name="exposures",
        db_constraint=False,
        db_index=False,
    )
    round = models.PositiveIntegerField()
    treatment_line = models.ForeignKey(
        TreatmentLine,
        on_delete=models.PROTECT,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    treatment = models.ForeignKey(
        Treatment, on_delete=models.PROTECT, related_name="+", db_constraint=False, db_index=False
    )
    lot = models.ForeignKey(
        Lot, on_delete=models.PROTECT, related_name="+", db_constraint=False, db_index=False
    )
    clinic = models.ForeignKey(
        Clinic, on_delete=models.PROTECT, related_name="+", db_constraint=False, db_index=False
    )
    # Indexed with the recall (exposure_recall_patient below).
    patient = models.ForeignKey(
        Patient, on_delete=models.PROTECT, related_name="+", db_constraint=False, db_index=False
    )
    practitioner = models.ForeignKey(
        Practitioner,
        on_delete=models.PROTECT,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    performed_at = models.DateTimeField()
    units = models.PositiveIntegerField()

    class Meta:
        ordering = ["recall_id", "clinic_id", "performed_at"]
        constraints = [
            # Also the index of every read by recall alone.
            models.UniqueConstraint(
                fields=["recall", "treatment_line"], name="recall_exposure_unique"
            )
        ]
        # Each under its recall, so that a recall's exposures are written to the indexes' newest
        # pages rather than all over them: a patient's recalls are asked recall by recall (the
        # patient page, a recall's patients), and a network has far fewer recalls than patients.
        indexes = [
            models.Index(fields=["recall", "clinic"], name="exposure_recall_clinic"),
            models.Index(fields=["recall", "patient"], name="exposure_recall_patient"),
        ]
        triggers = [
            no_delete("recall_exposure_no_delete"),
            pgtrigger.Protect(name="recall_exposure_immutable", operation=pgtrigger.Update),
            pgtrigger.Trigger(
                name="recall_exposure_matches_line",
                level=pgtrigger.Statement,
                when=pgtrigger.After,
                operation=pgtrigger.Insert,
                referencing=pgtrigger.Referencing(new="frozen"),  # type: ignore[no-untyped-call]
                func=EXPOSURE_MATCHES_LINE,
            ),
        ]

    def __str__(self) -> str:
        return f"patient {self.patient} treated {self.performed_at:%Y-%m-%d} ({self.recall})"


class RecallStock(models.Model):
    """Units of a recalled lot a clinic held when the recall reached it: what its disposition
    must account for."""

    recall = models.ForeignKey(Recall, on_delete=models.PROTECT, related_name="stock")
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="+")
    lot = models.ForeignKey(Lot, on_delete=models.PROTECT, related_name="+")
    quantity_held = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["recall", "clinic", "lot"], name="recall_stock_unique")
        ]
        triggers = [no_delete("recall_stock_no_delete")]

    def __str__(self) -> str:
        return f"{self.quantity_held} of lot {self.lot.lot_number} held at {self.clinic.name}"


WEBHOOK_KEY_PREFIX = "whsec_"
WEBHOOK_KEY_BYTES = (24, 64)  # the Standard Webhooks recommendation for the key's length


def _webhook_secret_rule() -> str:
    return _(
        "A Standard Webhooks secret is %(prefix)s followed by the base64 of %(low)s to %(high)s "
        "random bytes (such as 32 bytes from os.urandom)."
    ) % {"prefix": WEBHOOK_KEY_PREFIX, "low": WEBHOOK_KEY_BYTES[0], "high": WEBHOOK_KEY_BYTES[1]}


# Read in the language of the moment it is shown.
WEBHOOK_SECRET_RULE: str = lazy(_webhook_secret_rule, str)()
# Used with fullmatch(): with match(), `$` also matches before a trailing newline.
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")


def _webhook_secret_problem(value: str) -> str | None:
    if not value.startswith(WEBHOOK_KEY_PREFIX):
        return _("The secret does not start with %(prefix)s.") % {"prefix": WEBHOOK_KEY_PREFIX}
    body = value.removeprefix(WEBHOOK_KEY_PREFIX)
    not_base64 = _("The part after %(prefix)s is not base64.") % {"prefix": WEBHOOK_KEY_PREFIX}
    if not _BASE64.fullmatch(body):
        return not_base64
    try:
        key = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError):
        return not_base64
    low, high = WEBHOOK_KEY_BYTES
    if not low <= len(key) <= high:
        return _("The key is %(count)s bytes long.") % {"count": len(key)}
    return None


def validate_webhook_secret(value: str) -> None:
    """A Standard Webhooks secret. The message never repeats the value: it is a signing key."""
    problem = _webhook_secret_problem(value)
    if problem is not None:
        raise ValidationError(
            _("%(problem)s %(rule)s") % {"problem": problem, "rule": WEBHOOK_SECRET_RULE},
            code="webhook_secret_invalid",
        )


@track_history()
class WebhookEndpoint(models.Model):
    """An integration that receives recall notices, signed per the Standard Webhooks spec."""

    name = models.CharField(max_length=200)
    url = models.URLField(max_length=500)
    secret = models.CharField(
        max_length=100,
        validators=[validate_webhook_secret],
        help_text="Standard Webhooks secret (whsec_ followed by base64).",
    )
    clinic = models.ForeignKey(
        Clinic,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="webhook_endpoints",
        help_text="Empty: receives every recall; set: only recalls that reach this clinic.",
    )
    # The secret before the last rotation, which still signs beside the new one until
    # `previous_secret_expires_at`, so the receiver can switch without dropping a notice.
    previous_secret = models.CharField(max_length=100, blank=True, default="")
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    active = models.BooleanField(default=True)
    deactivated_at = models.DateTimeField(null=True, blank=True)
    deactivation_reason = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Channel(models.TextChoices):
    EMAIL = "email", _("E-mail")
    WEBHOOK = "webhook", _("Webhook")


class NotificationStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed permanently")


class Notification(models.Model):
    """The outbox: one row per recall round, channel, clinic and recipient, written in the
    recall's transaction; delivered by a task after commit, exactly once (DESIGN rule 5).

    The clinic is part of the key: two clinics that share one contact address each get their own
    notice, because each notice carries that clinic's own stock and patient list."""

    recall = models.ForeignKey(Recall, on_delete=models.PROTECT, related_name="notifications")
    round = models.PositiveIntegerField()
    clinic = models.ForeignKey(
        Clinic, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    channel = models.CharField(max_length=10, choices=Channel.choices)
    recipient = models.CharField(max_length=254, help_text="E-mail address or endpoint id.")
    contact = models.ForeignKey(
        ClinicContact, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # Stable across retries: the webhook-id header and the e-mail Message-ID, so a receiver can
    # drop a duplicate even in the window where a worker died after sending.
    message_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    status = models.CharField(
        max_length=10, choices=NotificationStatus.choices, default=NotificationStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    # When the broker refused the task that was to deliver the notice (it was down when the notice
    # was committed or resent): the sweep clears it and queues the notice's round again as soon
    # as the broker is back, without waiting for the lease.
    queue_failed_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # The first failed attempt since the notice was written or last resent: its delivery window
    # (settings.RECALL_DELIVERY_WINDOW_HOURS*) counts from here.
    failing_since = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    reminders_sent = models.PositiveIntegerField(default=0)
    last_reminded_at = models.DateTimeField(null=True, blank=True)
    # Set on the notice whose unanswered reminders made the quality managers be told: a clinic is
    # escalated once per recall, whatever widenings add later.
    escalated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["recall_id", "round", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["recall", "round", "channel", "clinic", "recipient"],
                name="notification_once_per_recipient",
                nulls_distinct=False,
            ),
            models.CheckConstraint(
                condition=(Q(channel=Channel.EMAIL) & Q(endpoint__isnull=True))
                | (Q(channel=Channel.WEBHOOK) & Q(endpoint__isnull=False)),
                name="notification_channel_target",
                violation_error_code="notification_target_mismatch",
            ),
        ]
        indexes = [models.Index(fields=["status", "claimed_at"], name="notification_status")]
        triggers = [no_delete("notification_no_delete")]

    def __str__(self) -> str:
        return f"{self.recall} -> {self.recipient} ({self.channel})"


class NotificationResend(models.Model):
    """A failed notice given back to the outbox by a quality manager: who, when and why. The
    notice keeps its message id, so a receiver that did get it can drop the duplicate."""

    notification = models.ForeignKey(Notification, on_delete=models.PROTECT, related_name="resends")
    resent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    resent_at = models.DateTimeField()
    reason = models.CharField(max_length=500)
    error_before = models.TextField(blank=True, help_text="The notice's last error when resent.")

    class Meta:
        ordering = ["notification_id", "resent_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(reason=""),
                name="notification_resend_reason",
                violation_error_code="reason_required",
            )
        ]
        triggers = [
            no_delete("notification_resend_no_delete"),
            pgtrigger.Protect(name="notification_resend_no_update", operation=pgtrigger.Update),
        ]

    def __str__(self) -> str:
        return f"{self.notification} resent at {self.resent_at:%Y-%m-%d %H:%M} UTC"


class AcknowledgementVia(models.TextChoices):
    LINK = "link", _("Signed link in the e-mail")
    API = "api", _("API")
    ADMIN = "admin", _("Admin")


@track_history()
class Acknowledgement(models.Model):
    recall = models.ForeignKey(Recall, on_delete=models.PROTECT, related_name="acknowledgements")
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="+")
    via = models.CharField(max_length=10, choices=AcknowledgementVia.choices)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    acknowledged_by_name = models.CharField(max_length=200)
    acknowledged_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["recall", "clinic"], name="acknowledgement_once")
        ]
        triggers = [no_delete("acknowledgement_no_delete")]

    def __str__(self) -> str:
        return f"{self.clinic.name} acknowledged {self.recall}"


class DispositionKind(models.TextChoices):
    RETURNED = "returned", _("Returned to manufacturer")
    DESTROYED = "destroyed", _("Destroyed")


@track_history()
class StockDisposition(models.Model):
    recall = models.ForeignKey(Recall, on_delete=models.PROTECT, related_name="dispositions")
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="+")
    lot = models.ForeignKey(Lot, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=10, choices=DispositionKind.choices)
    quantity = models.PositiveIntegerField()
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    recorded_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity__gt=0),
                name="disposition_quantity_positive",
                violation_error_code="quantity_not_positive",
            )
        ]
        triggers = [no_delete("disposition_no_delete")]

    def __str__(self) -> str:
        return f"{self.quantity} {self.kind} of lot {self.lot.lot_number} at {self.clinic.name}"


class ContactOutcome(models.TextChoices):
    REACHED = "reached", _("Reached")
    UNREACHABLE = "unreachable", _("Unreachable")
    DECEASED = "deceased", _("Deceased")


@track_history()
class PatientContactAttempt(models.Model):
    recall = models.ForeignKey(Recall, on_delete=models.PROTECT, related_name="contact_attempts")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    outcome = models.CharField(max_length=12, choices=ContactOutcome.choices)
    note = models.TextField(blank=True)
    attempted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    attempted_at = models.DateTimeField()

    class Meta:
        ordering = ["recall_id", "patient_id", "attempted_at"]
        triggers = [no_delete("contact_attempt_no_delete")]

    def __str__(self) -> str:
        return f"patient {self.patient}: {self.outcome}"


class ExpiryWarningKind(models.TextChoices):
    STOCK = "stock", _("Clinic stock expiring")
    CERTIFICATE = "certificate", _("Manufacturer certificate expiring")


class ExpiryWarning(models.Model):
    """An expiry warning, sent once per threshold. The row is both the claim (inserted before the
    e-mail goes out; the unique constraint lets one run win) and the record (`sent_at` once it
    went out). A claim left unsent by a crash or a mail failure is taken again by a later run."""

    kind = models.CharField(max_length=12, choices=ExpiryWarningKind.choices)
    clinic = models.ForeignKey(
        Clinic, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    lot = models.ForeignKey(Lot, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    certificate = models.ForeignKey(
        Certificate, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    threshold_days = models.PositiveSmallIntegerField()
    claimed_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-claimed_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "clinic", "lot", "certificate", "threshold_days"],
                name="expiry_warning_once_per_threshold",
                nulls_distinct=False,
            ),
            models.CheckConstraint(
                condition=(
                    Q(kind=ExpiryWarningKind.STOCK)
                    & Q(clinic__isnull=False, lot__isnull=False, certificate__isnull=True)
                )
                | (
                    Q(kind=ExpiryWarningKind.CERTIFICATE)
                    & Q(clinic__isnull=True, lot__isnull=True, certificate__isnull=False)
                ),
                name="expiry_warning_target_matches_kind",
                violation_error_code="expiry_warning_target_mismatch",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} warning at {self.threshold_days} days"
