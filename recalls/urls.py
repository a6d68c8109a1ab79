from django.urls import path

from recalls import api

urlpatterns = [
    path("recalls/", api.RecallsApi.as_view(), name="recalls"),
    path("recalls/<int:recall_id>/", api.RecallDetailApi.as_view(), name="recall-detail"),
    path("recalls/<int:recall_id>/widen/", api.RecallWidenApi.as_view(), name="recall-widen"),
    path(
        "recalls/<int:recall_id>/effectiveness/",
        api.RecallEffectivenessApi.as_view(),
        name="recall-effectiveness",
    ),
    path(
        "recalls/<int:recall_id>/acknowledgements/",
        api.RecallAcknowledgeApi.as_view(),
        name="recall-acknowledge-api",
    ),
    path(
        "recalls/<int:recall_id>/dispositions/",
        api.RecallDispositionRecordApi.as_view(),
        name="recall-disposition-record",
    ),
    path(
        "recalls/<int:recall_id>/patients/",
        api.RecallPatientsApi.as_view(),
        name="recall-patients",
    ),
    path(
        "recalls/<int:recall_id>/contact-attempts/",
        api.RecallContactAttemptRecordApi.as_view(),
        name="recall-contact-attempt-record",
    ),
    path("recalls/<int:recall_id>/close/", api.RecallCloseApi.as_view(), name="recall-close"),
    path(
        "recalls/<int:recall_id>/exposures.csv",
        api.RecallExposuresCsvApi.as_view(),
        name="recall-exposures-csv",
    ),
    path(
        "recalls/<int:recall_id>/notices.csv",
        api.RecallNoticesCsvApi.as_view(),
        name="recall-notices-csv",
    ),
    path(
        "recalls/<int:recall_id>/report.pdf",
        api.RecallReportPdfApi.as_view(),
        name="recall-report-pdf",
    ),
]
