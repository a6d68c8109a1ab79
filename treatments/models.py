"""Patients (pseudonymous, with contact details kept apart), treatments and the lots they used,
informed consent, and adverse events."""

from __future__ import annotations

import pgtrigger
from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from common.history import track_history
from common.triggers import no_delete
from lots.models import Lot, Route
from providers.models import Clinic, Practitioner
from stock.models import StockMovement


@track_history()
class Patient(models.Model):
    """A patient as the traceability record knows them: a reference unique within the clinic that
    never holds a name or record number. Contact details live in PatientContact."""

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="patients")
    reference = models.CharField(max_length=40)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["clinic_id", "reference"]
        constraints = [
            models.UniqueConstraint(
                fields=["clinic", "reference"], name="patient_reference_unique_per_clinic"
            ),
            # Target of the treatment's composite foreign key: a treatment's patient is the
            # clinic's own.
            models.UniqueConstraint(fields=["id", "clinic"], name="patient_id_clinic"),
        ]
        triggers = [no_delete("patient_no_delete")]

    def __str__(self) -> str:
        return self.reference


@track_history()
class PatientContact(models.Model):
    """Identifying details, shown only to the patient's own clinic staff, kept apart from the
    treatment record so traces and exports never carry them."""

    patient = models.OneToOneField(Patient, on_delete=models.PROTECT, related_name="contact")
    full_name = models.CharField(max_length=200)
    date_of_birth = models.DateField(null=True, blank=True)
    phone = models.CharField(max_length=40, blank=True)
    email = models.EmailField(blank=True)
    postal_address = models.TextField(blank=True)

    class Meta:
        triggers = [no_delete("patient_contact_no_delete")]

    def __str__(self) -> str:
        return f"contact details of patient {self.patient}"


@track_history()
class ConsentText(models.Model):
    """A versioned informed-consent text. What the patient was told about the product's
    regulatory basis is stored on each treatment."""

    code = models.SlugField(max_length=40)
    version = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    body = models.TextField()
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["code", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["code", "version"], name="consent_text_version_unique")
        ]

    def __str__(self) -> str:
        return f"{self.title} v{self.version}"


class Indication(models.TextChoices):
    SKIN_REJUVENATION = "skin_rejuvenation", _("Skin rejuvenation")
    HAIR = "hair", _("Hair")
    WOUND = "wound", _("Wound")
    ORTHOPAEDIC = "orthopaedic", _("Orthopaedic")
    OTHER = "other", _("Other")


# Indications that are cosmetic: where human-origin material is banned in cosmetics (EU/UK
# Reg. 1223/2009 Annex II), these are the uses the ban covers.
COSMETIC_INDICATIONS = (Indication.SKIN_REJUVENATION, Indication.HAIR)


@track_history()
class Treatment(models.Model):
    # Each of these three leads an index with the time below, which serves its lookups too: a
    # single-column index of its own would only cost every write (and there are millions).
    clinic = models.ForeignKey(
        Clinic, on_delete=models.PROTECT, related_name="treatments", db_index=False
    )
    patient = models.ForeignKey(
        Patient, on_delete=models.PROTECT, related_name="treatments", db_index=False
    )
    practitioner = models.ForeignKey(
        Practitioner, on_delete=models.PROTECT, related_name="treatments", db_index=False
    )
    performed_at = models.DateTimeField()
    indication = models.CharField(max_length=30, choices=Indication.choices)
    route = models.CharField(max_length=20, choices=Route.choices)
    anatomical_site = models.CharField(max_length=200)
    notes = models.TextField(blank=True)
    consent_text = models.ForeignKey(
        ConsentText, on_delete=models.PROTECT, null=True, blank=True, related_name="treatments"
    )
    consent_taken_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    consent_taken_at = models.DateTimeField(null=True, blank=True)
    consent_regulatory_statement = models.TextField(
        blank=True, help_text="What the patient was told of each product's regulatory basis."
    )
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField()

    class Meta:
        ordering = ["-performed_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(consent_text__isnull=True)
                    & Q(consent_taken_by__isnull=True)
                    & Q(consent_taken_at__isnull=True)
                )
                | (
                    Q(consent_text__isnull=False)
                    & Q(consent_taken_by__isnull=False)
                    & Q(consent_taken_at__isnull=False)
                ),
                name="treatment_consent_complete",
                violation_error_code="consent_incomplete",
            ),
            models.CheckConstraint(
                condition=Q(consent_taken_at__isnull=True)
                | Q(consent_taken_at__lte=models.F("performed_at")),
                name="treatment_consent_before_treatment",
                violation_error_code="consent_after_treatment",
            ),
        ]
        indexes = [
            # The network's list, newest first (a network reader sees every clinic's): without
            # it, its first page sorted every treatment (1.9 s at 10^6).
            models.Index(fields=["-performed_at", "-id"], name="treatment_time"),
            models.Index(fields=["clinic", "-performed_at"], name="treatment_clinic_time"),
            models.Index(fields=["patient", "-performed_at"], name="treatment_patient_time"),
            models.Index(fields=["practitioner", "-performed_at"], name="treatment_practitioner"),
        ]
        triggers = [
            no_delete("treatment_no_delete"),
            # Each line carries a copy of these (LINE_COPIES, below): they are fixed.
            pgtrigger.Protect(
                name="treatment_copied_fixed",
                operation=pgtrigger.Update,
                condition=pgtrigger.AnyChange("performed_at", "clinic", "patient", "practitioner"),
            ),
        ]

    def __str__(self) -> str:
        return (
            f"treatment of patient {self.patient} on {self.performed_at:%Y-%m-%d} "
            f"at {self.clinic.name}"
        )


# What a line copies of its treatment, kept out of its history like any derived value.
LINE_COPIES = ("performed_at", "clinic", "patient", "practitioner")
LINE_COPIES_FROM_TREATMENT = """
SELECT performed_at, clinic_id, patient_id, practitioner_id
INTO NEW.performed_at, NEW.clinic_id, NEW.patient_id, NEW.practitioner_id
FROM treatments_treatment WHERE id = NEW.treatment_id;
RETURN NEW;
"""


@track_history(exclude=list(LINE_COPIES))
class TreatmentLine(models.Model):
    """Units of one lot used in a treatment; the forward trace's join from lot to patient."""

    # Indexed by the unique (treatment, lot) and by (lot, performed_at, treatment) below.
    treatment = models.ForeignKey(
        Treatment, on_delete=models.PROTECT, related_name="lines", db_index=False
    )
    lot = models.ForeignKey(
        Lot, on_delete=models.PROTECT, related_name="treatment_lines", db_index=False
    )
    units = models.PositiveIntegerField()
    # The treatment's time, clinic, patient and practitioner, copied by the database as the line
    # is written (whatever a writer sends) and fixed with the treatment, so that a lot's lines are
    # indexed in the order a trace reads them and carry what a trace and a recall ask of them: the
    # heaviest lot's first page and first CSV row come without sorting its every line, and its
    # counts, and a recall's exposures, are read from the index alone, without visiting 10^5
    # treatments scattered over years of rows. No foreign key constraints of their own: the
    # treatment's hold them, and the copies are the database's.
    performed_at = models.DateTimeField(editable=False)
    clinic = models.ForeignKey(
        Clinic,
        on_delete=models.PROTECT,
        related_name="+",
        db_constraint=False,
        db_index=False,
        editable=False,
    )
    patient = models.ForeignKey(
        Patient,
        on_delete=models.PROTECT,
        related_name="+",
        db_constraint=False,
        db_index=False,
        editable=False,
    )
    practitioner = models.ForeignKey(
        Practitioner,
        on_delete=models.PROTECT,
        related_name="+",
        db_constraint=False,
        db_index=False,
        editable=False,
    )
    # The ledger line that took the units from the clinic's stock. The arrow points down: stock
    # knows nothing of treatments. Empty only for a line charted without stock of this system.
    stock_movement = models.OneToOneField(
        StockMovement,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="treatment_line",
    )

    class Meta:
        ordering = ["treatment_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["treatment", "lot"], name="treatment_line_unique_lot"),
            models.CheckConstraint(
                condition=Q(units__gt=0),
                name="treatment_line_units_positive",
                violation_error_code="units_not_positive",
            ),
        ]
        # The forward trace walks a lot's lines in the order of the treatments' time: lead with
        # the lot, then that order, and include what its counts and a recall's exposures read.
        indexes = [
            models.Index(
                fields=["lot", "performed_at", "treatment"],
                include=["id", "units", "clinic", "patient", "practitioner"],
                name="treatment_line_lot_covering",
            )
        ]
        triggers = [
            no_delete("treatment_line_no_delete"),
            pgtrigger.Protect(name="treatment_line_immutable", operation=pgtrigger.Update),
            pgtrigger.Trigger(
                name="treatment_line_copies",
                when=pgtrigger.Before,
                operation=pgtrigger.Insert,
                func=LINE_COPIES_FROM_TREATMENT,
            ),
        ]

    def __str__(self) -> str:
        return f"{self.units} of lot {self.lot.lot_number}"


@track_history()
class AdverseEvent(models.Model):
    treatment = models.ForeignKey(
        Treatment, on_delete=models.PROTECT, related_name="adverse_events"
    )
    # Indexed once, by adverse_event_lot below.
    lot = models.ForeignKey(
        Lot,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="adverse_events",
        help_text="The suspected lot, one of the treatment's.",
        db_index=False,
    )
    onset_on = models.DateField()
    description = models.TextField()
    results_in_death = models.BooleanField(default=False)
    life_threatening = models.BooleanField(default=False)
    hospitalisation = models.BooleanField(default=False)
    disability = models.BooleanField(default=False)
    intervention_required = models.BooleanField(
        default=False, help_text="Medical or surgical intervention to prevent permanent harm."
    )
    reported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    reported_at = models.DateTimeField()

    class Meta:
        ordering = ["-reported_at"]
        indexes = [models.Index(fields=["lot"], name="adverse_event_lot")]
        triggers = [no_delete("adverse_event_no_delete")]

    def __str__(self) -> str:
        return f"adverse event of {self.onset_on:%Y-%m-%d} after the {self.treatment}"

    @property
    def is_serious(self) -> bool:
        return any(
            (
                self.results_in_death,
                self.life_threatening,
                self.hospitalisation,
                self.disability,
                self.intervention_required,
            )
        )
