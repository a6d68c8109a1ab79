"""REST API for recalls: open, widen, follow (effectiveness), acknowledge, account for stock and
patients, close, and the evidence (CSV, PDF). One view per use case, one module per
group of use cases: `opening` (list, open, widen, detail), `effectiveness`, `accounting`
(acknowledgements, dispositions, patients and contact attempts), `closing`, `reports` (CSV, PDF).

Network quality managers open, widen and close; clinic staff acknowledge, record dispositions and
patient contact attempts for their own clinic (a quality manager may too); auditors read
everything and never write. Clinic staff see only the recalls that reached their clinics, and in
them only their own clinics' exposures, patients, stock and notices. Patient contact details
appear in one response only, the patient list, and only for the patient's own clinic staff.
"""

from recalls.api.accounting import (
    RecallAcknowledgeApi,
    RecallContactAttemptRecordApi,
    RecallDispositionRecordApi,
    RecallPatientsApi,
)
from recalls.api.closing import RecallCloseApi
from recalls.api.effectiveness import RecallEffectivenessApi
from recalls.api.opening import RecallDetailApi, RecallsApi, RecallWidenApi
from recalls.api.reports import RecallExposuresCsvApi, RecallNoticesCsvApi, RecallReportPdfApi

__all__ = [
    "RecallAcknowledgeApi",
    "RecallCloseApi",
    "RecallContactAttemptRecordApi",
    "RecallDetailApi",
    "RecallDispositionRecordApi",
    "RecallEffectivenessApi",
    "RecallExposuresCsvApi",
    "RecallNoticesCsvApi",
    "RecallPatientsApi",
    "RecallReportPdfApi",
    "RecallWidenApi",
    "RecallsApi",
]
