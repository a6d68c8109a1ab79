"""Moved to providers.permissions, beside the access module; kept while the imports move."""

from providers.permissions import (
    CLINIC_STAFF_PERMISSIONS,
    NETWORK_PERMISSIONS,
    ROLE_PERMISSIONS,
    ClinicStaffWrites,
    HasActiveRole,
    NetworkRolesOnly,
    QualityManagerWrites,
    request_memberships,
)

__all__ = [
    "CLINIC_STAFF_PERMISSIONS",
    "NETWORK_PERMISSIONS",
    "ROLE_PERMISSIONS",
    "ClinicStaffWrites",
    "HasActiveRole",
    "NetworkRolesOnly",
    "QualityManagerWrites",
    "request_memberships",
]
