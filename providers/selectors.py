"""Reads about providers and about who holds which role."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from providers.access import access_for, require_any_role, require_role, user_has_role, user_roles
from providers.models import Clinic, Manufacturer, Practitioner

# Services import the role checks from here as well as from providers.access, where they live.
__all__ = ["require_any_role", "require_role", "user_has_role", "user_roles"]


def manufacturer_list() -> QuerySet[Manufacturer]:
    return Manufacturer.objects.all()


def clinic_list(*, user: Any) -> QuerySet[Clinic]:
    """Network roles see every clinic; clinic staff see the clinics they belong to."""
    clinics = Clinic.objects.prefetch_related("contacts")
    visible = access_for(user).visible_clinic_ids
    return clinics if visible is None else clinics.filter(pk__in=visible)


def practitioner_list() -> QuerySet[Practitioner]:
    return Practitioner.objects.prefetch_related("licences")
