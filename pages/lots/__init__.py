"""Clinic pages: lots, one module per use case.

- `listing`: the list (filtered, paged, as CSV);
- `detail`: one lot with everything behind it and everything it reached (drawn as a graph);
- `decisions`: the signed decisions on a lot (release, reject, hold);
- `certificates`: the manufacturer certificates that need attention;
- `attention`: what the home page shows (certificates needing attention, lots awaiting release).

Everyone with a role reads lots, as the API lets them (lots are the network's, not a clinic's);
what a lot reached is scoped to the clinics the user may see (`trace_forward` asks
providers.access). Only a network quality manager (`Access.writes_network`) signs decisions, and
signing goes through the same services as the API's release, reject and hold endpoints.
"""

from pages.lots import certificates, decisions, detail, listing
from pages.lots.attention import (
    AwaitingRelease,
    CertificateAttention,
    certificates_needing_attention,
    lots_awaiting_release,
)
from pages.lots.common import lot_title

urlpatterns = [
    *listing.urlpatterns,
    *certificates.urlpatterns,
    *detail.urlpatterns,
    *decisions.urlpatterns,
]

__all__ = [
    "AwaitingRelease",
    "CertificateAttention",
    "certificates_needing_attention",
    "lot_title",
    "lots_awaiting_release",
    "urlpatterns",
]
