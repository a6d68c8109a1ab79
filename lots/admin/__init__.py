"""Admin for products, donors, lots, QC results, certificates and signed lot decisions, one module
per use case. Every write is a service call (common.admin); signed decisions go through an
intermediate page that asks for the password, the meaning and the reason.

Importing the package registers every page. Apps above lots add pages about one lot to
`LOT_PAGES` (treatments: "trace_forward").
"""

# The modules register their pages when imported.
from lots.admin import certificates, donors, lots, manufacturers, products  # noqa: F401
from lots.admin.lots import LOT_PAGES

__all__ = ["LOT_PAGES"]
