"""Clinic pages: stock, one module per use case.

- `listing`: stock on hand per lot and state, and what the home page shows;
- `receiving`: receiving a delivery by scanning it;
- `moving`: moving units out (transfer, wastage, return to the manufacturer, destruction).

Only accepted units of a released, unexpired lot are usable; quarantined, blocked and rejected
units are listed with the reason they are not. Reads go through stock.selectors (scoped by the
user's access), writes through stock.services, refusals are shown on the form in the service's
own words and change nothing. Lot labels (`pages.labels`) are mounted with the stock pages.
"""

from pages import labels
from pages.stock import listing, moving, receiving
from pages.stock.common import keeps_stock, keeps_stock_at, stock_clinic_ids
from pages.stock.listing import expiring_stock, unusable_stock

urlpatterns = [
    *listing.urlpatterns,
    *receiving.urlpatterns,
    *moving.urlpatterns,
    *labels.urlpatterns,
]

__all__ = [
    "expiring_stock",
    "keeps_stock",
    "keeps_stock_at",
    "stock_clinic_ids",
    "unusable_stock",
    "urlpatterns",
]
