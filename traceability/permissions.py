"""Who may call the API at all, and who may write.

Deny by default: every API view uses `ROLE_PERMISSIONS` or `CLINIC_STAFF_PERMISSIONS`. A caller
must be signed in and hold at least one active role (a `providers.models.Membership`); reads are
open to every role. Writes need the quality-manager role, or, for a clinic's daily work (stock,
patients, treatments), any role but auditor. The write check runs before the request body is
parsed, so a refused writer is told so even when the body is malformed; the services check the
role again (at the clinic the body names), so no other path (admin, commands, tasks) skips it.
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from providers.models import Membership, Role

_MEMBERSHIPS_ATTRIBUTE = "_traceability_memberships"


def request_memberships(request: Request) -> frozenset[tuple[str, int | None]]:
    """The requesting user's active roles as (role, clinic id or None for network-wide), read
    once per request."""
    cached = getattr(request, _MEMBERSHIPS_ATTRIBUTE, None)
    if isinstance(cached, frozenset):
        return cached
    user = request.user
    memberships: frozenset[tuple[str, int | None]] = frozenset()
    if getattr(user, "is_authenticated", False) and user.is_active:
        memberships = frozenset(
            Membership.objects.filter(user_id=user.pk, active=True).values_list("role", "clinic_id")
        )
    setattr(request, _MEMBERSHIPS_ATTRIBUTE, memberships)
    return memberships


class HasActiveRole(BasePermission):
    """Signed in and holding at least one active role. Anonymous callers get `not_authenticated`
    (DRF raises it before this message is used); signed-in callers without a role get `no_role`."""

    message = "Your account holds no active role in this system; ask a quality manager for one."
    code = "no_role"

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request_memberships(request))


class QualityManagerWrites(BasePermission):
    """Reads for every role; writes (POST, PUT, PATCH, DELETE) for network-wide quality managers
    only, as `providers.selectors.require_role` demands. Auditors and clinic staff never write
    through this API."""

    message = "This needs the quality manager role."
    code = "role_required"

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method in SAFE_METHODS:
            return True
        return (Role.QUALITY_MANAGER.value, None) in request_memberships(request)


ROLE_PERMISSIONS = [HasActiveRole, QualityManagerWrites]

CLINIC_WRITING_ROLES = frozenset(
    {Role.CLINIC_ADMINISTRATOR.value, Role.CLINICIAN.value, Role.QUALITY_MANAGER.value}
)


class ClinicStaffWrites(BasePermission):
    """Reads for every role; writes for clinic administrators, clinicians and quality managers
    (at any clinic, or network-wide). An auditor never writes. Which clinic the write concerns is
    in the body, which is not parsed yet: the services check the role at that clinic again."""

    message = (
        "This needs the clinic administrator, clinician or quality manager role; auditors read "
        "only."
    )
    code = "role_required"

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method in SAFE_METHODS:
            return True
        return any(role in CLINIC_WRITING_ROLES for role, _ in request_memberships(request))


CLINIC_STAFF_PERMISSIONS = [HasActiveRole, ClinicStaffWrites]


class NetworkRolesOnly(BasePermission):
    """Network quality managers and auditors only (reads), for what concerns the whole network
    rather than a clinic: webhook endpoints and their secrets' metadata."""

    message = "This needs the quality manager or auditor role."
    code = "role_required"

    def has_permission(self, request: Request, view: Any) -> bool:
        network = {(Role.QUALITY_MANAGER.value, None), (Role.AUDITOR.value, None)}
        return bool(network & request_memberships(request))


NETWORK_PERMISSIONS = [HasActiveRole, NetworkRolesOnly, QualityManagerWrites]
