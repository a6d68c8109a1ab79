"""REST API for products, donors, QC tests, lots, certificates and the release gate: one module per
use case, one view per use case. Views validate with an input serializer, call one service or
selector, and serialise.

Other apps nest some of these serializers in their own output; they import them from here.
"""

from lots.api.donors import DonorMarkerResultOutputSerializer
from lots.api.lots import LotCertificateOutputSerializer
from lots.api.serializers import (
    LotQcResultOutputSerializer,
    ManufacturerRefSerializer,
    ProductRefSerializer,
)

__all__ = [
    "DonorMarkerResultOutputSerializer",
    "LotCertificateOutputSerializer",
    "LotQcResultOutputSerializer",
    "ManufacturerRefSerializer",
    "ProductRefSerializer",
]
