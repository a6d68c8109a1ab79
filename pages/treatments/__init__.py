"""Clinic pages: treatments, one module per use case.

- `listing`: the list (paged, filtered, as CSV);
- `detail`: one treatment with the stock it left;
- `scanning`: scanning the vial at the chair (a keyboard-wedge scanner or the camera): see at
  once whether the lot may be used here;
- `chair`: the treatment at the chair, recorded through `treatments.services.treatment_record`.

A scan is resolved by `lots.scan.scan_resolve` and judged by the same words the service refuses
with (`treatments.selectors.lot_use_warnings`), plus the clinic's accepted stock. A refused
treatment is shown inline in plain words with what to do next; nothing is saved. The treatment's
time is the moment it is saved unless the user gives one, so consent taken after the page was
opened is never "after the treatment".
"""

from pages.treatments import chair, detail, listing, scanning

urlpatterns = [
    *listing.urlpatterns,
    *chair.urlpatterns,
    *scanning.urlpatterns,
    *detail.urlpatterns,
]

__all__ = ["urlpatterns"]
