"""Clinic pages: recalls, one module per use case.

- `listing`: the list of recalls (open and closed) with their progress, filtered, paged and as
  CSV, and the open recalls the home page shows;
- `opening` (network quality managers): the scope and texts, a preview of what the scope
  reaches, then the signature (`recalls.services.recall_open`);
- `detail`: one recall: its texts, lots, a chart of progress over time, each clinic's
  acknowledgement and stock, notices (quality managers resend failed ones), acknowledging and
  recording dispositions (clinic staff);
- `closing` (quality managers, signed);
- `patients`: a clinic's patient call list in a patient-level recall (that clinic's staff only),
  where each contact attempt is recorded.

Every write calls the recall services; every read goes through `recalls.selectors`, scoped to the
user's clinics. The list computes its progress figures in its one query (annotated subqueries), so
it runs the same number of queries whatever the number of recalls.
"""

from pages.recalls import closing, detail, listing, opening, patients
from pages.recalls.listing import open_recalls_for, percent, with_progress

urlpatterns = [
    *listing.urlpatterns,
    *opening.urlpatterns,
    *detail.urlpatterns,
    *closing.urlpatterns,
    *patients.urlpatterns,
]

__all__ = ["open_recalls_for", "percent", "urlpatterns", "with_progress"]
