"""Who may call the API at all, and who may write: DRF permissions that ask providers.access.

Deny by default: every API view uses `ROLE_PERMISSIONS` (the default in settings),
`CLINIC_STAFF_PERMISSIONS` or `NETWORK_PERMISSIONS`. A caller must be signed in and hold at least
one active role; reads are open to every role unless said otherwise. Writes need the network
quality-manager role, or, for a clinic's daily work (stock, patients, treatments), any role but
auditor. The write check runs before the request body is parsed, so a refused writer is told so
even when the body is malformed; the services check the role again (at the clinic the body
names), so no other path (admin, commands, tasks) skips it.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from providers.access import access_for


class HasActiveRole(BasePermission):
    """Signed in and holding at least one active role. Anonymous callers get `not_authenticated`
    (DRF raises it before this message is used); signed-in callers without a role get `no_role`."""

    message = gettext_lazy(
        "Your account holds no active role in this system; ask a quality manager for one."
    )
    code = "no_role"

    def has_permission(self, request: Request, view: Any) -> bool:
        return access_for(request).has_role


class QualityManagerWrites(BasePermission):
    """Reads for every role; writes (POST, PUT, PATCH, DELETE) for network-wide quality managers
    only. Auditors and clinic staff never write through these views."""

    message = gettext_lazy("This needs the quality manager role.")
    code = "role_required"

    def has_permission(self, request: Request, view: Any) -> bool:
        return request.method in SAFE_METHODS or access_for(request).writes_network


class ClinicStaffWrites(BasePermission):
    """Reads for every role; writes for clinic administrators, clinicians and quality managers
    (at any clinic, or network-wide). An auditor never writes. Which clinic the write concerns is
    in the body, which is not parsed yet: the services check the role at that clinic again."""

    message = gettext_lazy(
        "This needs the clinic administrator, clinician or quality manager role; auditors read "
        "only."
    )
    code = "role_required"

    def has_permission(self, request: Request, view: Any) -> bool:
        return request.method in SAFE_METHODS or access_for(request).writes_clinic_work


class NetworkRolesOnly(BasePermission):
    """Network quality managers and auditors only, for what concerns the whole network rather
    than a clinic: webhook endpoints and their secrets' metadata."""

    message = gettext_lazy("This needs the quality manager or auditor role.")
    code = "role_required"

    def has_permission(self, request: Request, view: Any) -> bool:
        return access_for(request).reads_network


class SignedIn(BasePermission):
    """Any signed-in, active account, with or without a role: for what concerns the caller's own
    account (their password, their API tokens)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        return access_for(request).user_id is not None


class AccountKeepers(BasePermission):
    """Accounts and their roles: read by account keepers and network auditors, written by account
    keepers (system administrators and network quality managers); clinic staff are refused."""

    message = gettext_lazy("Accounts are kept by a quality manager or a system administrator.")
    code = "role_required"

    def has_permission(self, request: Request, view: Any) -> bool:
        access = access_for(request)
        if request.method in SAFE_METHODS:
            return access.reads_accounts
        return access.keeps_accounts


ROLE_PERMISSIONS = [HasActiveRole, QualityManagerWrites]
CLINIC_STAFF_PERMISSIONS = [HasActiveRole, ClinicStaffWrites]
NETWORK_PERMISSIONS = [HasActiveRole, NetworkRolesOnly, QualityManagerWrites]
ACCOUNT_PERMISSIONS: list[type[BasePermission]] = [AccountKeepers]
SIGNED_IN_PERMISSIONS: list[type[BasePermission]] = [SignedIn]
