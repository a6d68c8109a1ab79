"""Admin for manufacturers, clinics, practitioners and memberships, one module per record kind;
importing the package registers every page. Every write is a service call (common.admin)."""

from providers import accounts_admin  # noqa: F401 - registers the account admin
from providers.admin import clinics, memberships, practitioners  # noqa: F401 - registers them
from providers.admin.manufacturers import ManufacturerAdmin

__all__ = ["ManufacturerAdmin"]
