"""Reads about providers and about who holds which role."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from providers.models import Clinic, Manufacturer, Membership, Practitioner, Role
from traceability.errors import DomainError, Problem


def user_has_role(user: Any, role: Role, *, clinic: Clinic | None = None) -> bool:
    """Network roles held without a clinic apply everywhere; a role held at a clinic applies only
    there. Without `clinic` the question is about the whole network, so only a network-wide
    membership answers yes (a clinic's own quality manager cannot release lots for everyone)."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    memberships = Membership.objects.filter(user=user, role=role, active=True)
    if clinic is None:
        memberships = memberships.filter(clinic__isnull=True)
    else:
        memberships = memberships.filter(Q(clinic=clinic) | Q(clinic__isnull=True))
    return memberships.exists()


def require_role(user: Any, role: Role, *, clinic: Clinic | None = None) -> None:
    if not user_has_role(user, role, clinic=clinic):
        raise DomainError(
            Problem("role_required", f"This needs the {role.label.lower()} role.", None),
            status=403,
        )


def require_any_role(user: Any, roles: tuple[Role, ...], *, clinic: Clinic | None = None) -> None:
    """Pass if the user holds any of `roles` (at `clinic`, or network-wide)."""
    if not any(user_has_role(user, role, clinic=clinic) for role in roles):
        names = " or ".join(role.label.lower() for role in roles)
        where = f" at {clinic.name}" if clinic is not None else ""
        raise DomainError(
            Problem("role_required", f"This needs the {names} role{where}.", None), status=403
        )


def user_roles(user: Any) -> set[str]:
    if not getattr(user, "is_authenticated", False):
        return set()
    return set(Membership.objects.filter(user=user, active=True).values_list("role", flat=True))


def manufacturer_list() -> QuerySet[Manufacturer]:
    return Manufacturer.objects.all()


def clinic_list(*, user: Any) -> QuerySet[Clinic]:
    """Network roles see every clinic; clinic staff see the clinics they belong to."""
    clinics = Clinic.objects.prefetch_related("contacts")
    if Membership.objects.filter(
        user=user, active=True, clinic__isnull=True, role__in=[Role.QUALITY_MANAGER, Role.AUDITOR]
    ).exists():
        return clinics
    return clinics.filter(memberships__user=user, memberships__active=True).distinct()


def practitioner_list() -> QuerySet[Practitioner]:
    return Practitioner.objects.prefetch_related("licences")
