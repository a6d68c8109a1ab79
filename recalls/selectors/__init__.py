"""Reads about recalls, scoped by role and clinic (DESIGN rule 8), each in a fixed number of
queries whatever the size of the recall.

`clinic_ids` arguments follow `treatments.selectors.visible_clinic_ids`: None means every clinic
(network quality manager or auditor); a list limits the read to those clinics, so clinic staff see
only their own exposures, patients, stock and notices.
"""

from recalls.selectors.effectiveness import (
    DEFAULT_EFFECTIVENESS_LEVELS,
    FAILED_NOTICES_SHOWN,
    ClinicProgress,
    FailedNotice,
    NoticeCounts,
    RecallEffectiveness,
    RecallTiming,
    effectiveness_level,
    recall_effectiveness,
)
from recalls.selectors.notices import notice_list, notification_list, webhook_endpoint_list
from recalls.selectors.recalls import (
    FINAL_OUTCOMES,
    RecallPatientList,
    acknowledgement_list,
    disposition_list,
    exposure_list,
    may_read_contacts,
    recall_clinic_ids,
    recall_detail_list,
    recall_list,
    recall_patient_list,
    stock_to_account_for,
)

__all__ = [
    "DEFAULT_EFFECTIVENESS_LEVELS",
    "FAILED_NOTICES_SHOWN",
    "FINAL_OUTCOMES",
    "ClinicProgress",
    "FailedNotice",
    "NoticeCounts",
    "RecallEffectiveness",
    "RecallPatientList",
    "RecallTiming",
    "acknowledgement_list",
    "disposition_list",
    "effectiveness_level",
    "exposure_list",
    "may_read_contacts",
    "notice_list",
    "notification_list",
    "recall_clinic_ids",
    "recall_detail_list",
    "recall_effectiveness",
    "recall_list",
    "recall_patient_list",
    "stock_to_account_for",
    "webhook_endpoint_list",
]
