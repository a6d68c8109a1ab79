"""Manufacturers, clinics, practitioners and who holds which role where."""

from __future__ import annotations

import datetime

import pghistory
from django.conf import settings
from django.db import models
from django.db.models import Q

from traceability.validators import validate_jurisdiction


class Role(models.TextChoices):
    QUALITY_MANAGER = "quality_manager", "Quality manager"
    CLINIC_ADMINISTRATOR = "clinic_administrator", "Clinic administrator"
    CLINICIAN = "clinician", "Clinician"
    AUDITOR = "auditor", "Auditor"


NETWORK_ROLES = (Role.QUALITY_MANAGER, Role.AUDITOR)


@pghistory.track()
class Manufacturer(models.Model):
    legal_name = models.CharField(max_length=200, unique=True)
    country = models.CharField(max_length=2, validators=[validate_jurisdiction])
    registration_number = models.CharField(
        max_length=50,
        blank=True,
        help_text="FDA establishment (FEI) or national registration number.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["legal_name"]

    def __str__(self) -> str:
        return self.legal_name


@pghistory.track()
class Clinic(models.Model):
    name = models.CharField(max_length=200, unique=True)
    address = models.TextField()
    jurisdiction = models.CharField(
        max_length=6, validators=[validate_jurisdiction], help_text="ISO 3166 code: DE, US-TX."
    )
    consent_required = models.BooleanField(
        default=True,
        help_text="Refuse a treatment recorded without the patient's informed consent.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.jurisdiction})"


@pghistory.track()
class ClinicContact(models.Model):
    """Who at a clinic receives notifications (recall notices, expiry warnings)."""

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="contacts")
    name = models.CharField(max_length=200)
    email = models.EmailField()
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["clinic_id", "email"]
        constraints = [
            models.UniqueConstraint(fields=["clinic", "email"], name="clinic_contact_unique_email"),
        ]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"


class Profession(models.TextChoices):
    PHYSICIAN = "physician", "Physician"
    NURSE_PRACTITIONER = "nurse_practitioner", "Nurse practitioner"
    REGISTERED_NURSE = "registered_nurse", "Registered nurse"
    PHYSICIAN_ASSISTANT = "physician_assistant", "Physician assistant"
    DENTIST = "dentist", "Dentist"
    OTHER = "other", "Other"


@pghistory.track()
class Practitioner(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="practitioner",
    )
    name = models.CharField(max_length=200)
    profession = models.CharField(max_length=30, choices=Profession.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_profession_display()})"


@pghistory.track()
class ClinicPractitioner(models.Model):
    """A practitioner who practises at a clinic: only they may be named on its treatments."""

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="practitioners")
    practitioner = models.ForeignKey(
        Practitioner, on_delete=models.PROTECT, related_name="clinic_links"
    )
    active = models.BooleanField(default=True)
    since = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["clinic_id", "practitioner_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["clinic", "practitioner"], name="clinic_practitioner_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.practitioner} at {self.clinic}"


@pghistory.track()
class Licence(models.Model):
    practitioner = models.ForeignKey(
        Practitioner, on_delete=models.PROTECT, related_name="licences"
    )
    number = models.CharField(max_length=50)
    jurisdiction = models.CharField(max_length=6, validators=[validate_jurisdiction])
    valid_from = models.DateField()
    valid_until = models.DateField()

    class Meta:
        ordering = ["practitioner_id", "-valid_until"]
        constraints = [
            models.CheckConstraint(
                condition=Q(valid_until__gte=models.F("valid_from")),
                name="licence_valid_until_after_valid_from",
                violation_error_code="licence_dates_reversed",
            ),
            models.UniqueConstraint(
                fields=["jurisdiction", "number"], name="licence_unique_number_per_jurisdiction"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.number} ({self.jurisdiction})"

    def is_valid_on(self, day: datetime.date) -> bool:
        return self.valid_from <= day <= self.valid_until


@pghistory.track()
class Membership(models.Model):
    """A user's role. Clinic roles belong to one clinic; network roles may span every clinic."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="memberships"
    )
    clinic = models.ForeignKey(
        Clinic,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="memberships",
        help_text="Empty for a network-wide quality manager or auditor.",
    )
    role = models.CharField(max_length=30, choices=Role.choices)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["user_id", "role"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "clinic", "role"],
                name="membership_unique_role_per_clinic",
                nulls_distinct=False,
            ),
            models.CheckConstraint(
                condition=Q(clinic__isnull=False)
                | Q(role__in=[Role.QUALITY_MANAGER, Role.AUDITOR]),
                name="membership_clinic_roles_need_clinic",
                violation_error_code="membership_clinic_required",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} - {self.get_role_display()} @ {self.clinic or 'network'}"
