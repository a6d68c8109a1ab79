"""Reads of the contact-data read record, scoped by role and clinic (DESIGN rule 8).

Network quality managers and auditors see every read. At a clinic, its administrators (and a
quality manager or auditor held at that clinic only) see the reads of that clinic's patients.
Clinicians see none: the record says who looked at whom, which is for those who oversee them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import QuerySet

from audit.models import ContactDataRead
from providers.models import NETWORK_ROLES, Membership, Role

# Roles that read a clinic's record when held at that clinic.
CLINIC_READER_ROLES = (Role.CLINIC_ADMINISTRATOR, *NETWORK_ROLES)


def reader_clinic_ids(memberships: Iterable[tuple[str, int | None]]) -> list[int] | None:
    """From active (role, clinic id or None) pairs: None means every clinic (network quality
    manager or auditor); otherwise the clinics whose reads they show, empty for none."""
    held = list(memberships)
    if any(role in NETWORK_ROLES and clinic_id is None for role, clinic_id in held):
        return None
    return sorted(
        {
            clinic_id
            for role, clinic_id in held
            if role in CLINIC_READER_ROLES and clinic_id is not None
        }
    )


def contact_data_read_clinic_ids(user: Any) -> list[int] | None:
    """`reader_clinic_ids` of the user's active memberships."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return []
    return reader_clinic_ids(
        Membership.objects.filter(user=user, active=True).values_list("role", "clinic_id")
    )


def contact_data_reads(*, user: Any) -> QuerySet[ContactDataRead]:
    """The reads the user may see, newest first, with their clinic."""
    reads = ContactDataRead.objects.select_related("clinic").order_by("-at", "-pk")
    clinic_ids = contact_data_read_clinic_ids(user)
    if clinic_ids is None:
        return reads
    return reads.filter(clinic_id__in=clinic_ids)
