"""Manufacturers, clinics, practitioners and who holds which role where."""

from __future__ import annotations

import datetime
import functools
import zoneinfo

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from common.history import track_history
from common.validators import validate_jurisdiction


class Role(models.TextChoices):
    QUALITY_MANAGER = "quality_manager", _("Quality manager")
    CLINIC_ADMINISTRATOR = "clinic_administrator", _("Clinic administrator")
    CLINICIAN = "clinician", _("Clinician")
    AUDITOR = "auditor", _("Auditor")


NETWORK_ROLES = (Role.QUALITY_MANAGER, Role.AUDITOR)


@track_history()
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


# Names the host's zone database lists that are no place's zone: `localtime` is whatever the
# server is set to, `Factory` a placeholder, `posixrules` a template.
_NOT_A_PLACE = frozenset({"localtime", "Factory", "posixrules"})


@functools.cache
def known_time_zones() -> frozenset[str]:
    """The IANA names the zone database offers (read from disk once: it takes ~50 ms)."""
    return frozenset(zoneinfo.available_timezones() - _NOT_A_PLACE)


def validate_time_zone(value: str) -> None:
    """An IANA time zone name such as Europe/Berlin or America/Chicago, spelt exactly."""
    if value == "UTC" or value in known_time_zones():
        return
    spelt = next(
        (name for name in known_time_zones() if name.lower() == (value or "").lower()), None
    )
    if spelt:
        message = _(
            "%(value)s is not an IANA time zone name such as Europe/Berlin or America/Chicago. "
            "Did you mean %(spelt)s?"
        ) % {"value": value, "spelt": spelt}
    else:
        message = _(
            "%(value)s is not an IANA time zone name such as Europe/Berlin or America/Chicago."
        ) % {"value": value}
    raise ValidationError(message, code="time_zone_unknown")


@track_history()
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
    time_zone = models.CharField(
        max_length=64,
        default="UTC",
        validators=[validate_time_zone],
        help_text="IANA time zone, e.g. Europe/Berlin or America/Chicago: the clinic's calendar "
        "day (lot expiry, treatment and receipt dates) is judged in it.",
    )
    language = models.CharField(
        max_length=8,
        choices=settings.LANGUAGES,
        default="en",
        help_text="Language of the recall notices and acknowledgement page the clinic receives.",
    )
    requires_sec = models.BooleanField(
        default=False,
        db_default=False,
        help_text="The clinic's jurisdiction asks for the Single European Code (EU tissues and "
        "cells): a human-derived lot without one is refused for treatment here.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.jurisdiction})"

    @property
    def zone(self) -> datetime.tzinfo:
        # "UTC" needs no zone database: the default works on a host without one.
        return datetime.UTC if self.time_zone == "UTC" else zoneinfo.ZoneInfo(self.time_zone)

    def local_date(self, at: datetime.datetime | None = None) -> datetime.date:
        """The calendar day at the clinic at the instant `at` (now if not given)."""
        return timezone.localtime(at or timezone.now(), self.zone).date()


@track_history()
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
    PHYSICIAN = "physician", _("Physician")
    NURSE_PRACTITIONER = "nurse_practitioner", _("Nurse practitioner")
    REGISTERED_NURSE = "registered_nurse", _("Registered nurse")
    PHYSICIAN_ASSISTANT = "physician_assistant", _("Physician assistant")
    DENTIST = "dentist", _("Dentist")
    OTHER = "other", _("Other")


@track_history()
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


@track_history()
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


@track_history()
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


@track_history()
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


class Account(User):
    """Django's user, seen as an account of this system. A proxy, so that the history triggers
    (installed on Django's table) are migrations of this app rather than of django.contrib.auth."""

    class Meta:
        proxy = True
        verbose_name = "user account"


# Who created, renamed, deactivated or reactivated an account, when and why; never the password
# hash or the sign-in times.
track_history(exclude=["password", "last_login"], model_name="AccountEvent")(Account)
