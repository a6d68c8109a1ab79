from django.urls import path

from recalls import evidence_api, outbox_api
from recalls.api import accounting, closing, effectiveness, opening, reports

urlpatterns = [
    path("recalls/", opening.RecallsApi.as_view(), name="recalls"),
    path("recalls/<int:recall_id>/", opening.RecallDetailApi.as_view(), name="recall-detail"),
    path("recalls/<int:recall_id>/widen/", opening.RecallWidenApi.as_view(), name="recall-widen"),
    path(
        "recalls/<int:recall_id>/effectiveness/",
        effectiveness.RecallEffectivenessApi.as_view(),
        name="recall-effectiveness",
    ),
    path(
        "recalls/<int:recall_id>/acknowledgements/",
        accounting.RecallAcknowledgeApi.as_view(),
        name="recall-acknowledge-api",
    ),
    path(
        "recalls/<int:recall_id>/dispositions/",
        accounting.RecallDispositionRecordApi.as_view(),
        name="recall-disposition-record",
    ),
    path(
        "recalls/<int:recall_id>/patients/",
        accounting.RecallPatientsApi.as_view(),
        name="recall-patients",
    ),
    path(
        "recalls/<int:recall_id>/contact-attempts/",
        accounting.RecallContactAttemptRecordApi.as_view(),
        name="recall-contact-attempt-record",
    ),
    path("recalls/<int:recall_id>/close/", closing.RecallCloseApi.as_view(), name="recall-close"),
    path(
        "recalls/<int:recall_id>/exposures.csv",
        reports.RecallExposuresCsvApi.as_view(),
        name="recall-exposures-csv",
    ),
    path(
        "recalls/<int:recall_id>/notices.csv",
        reports.RecallNoticesCsvApi.as_view(),
        name="recall-notices-csv",
    ),
    path(
        "recalls/<int:recall_id>/report.pdf",
        reports.RecallReportPdfApi.as_view(),
        name="recall-report-pdf",
    ),
    path(
        "recalls/<int:recall_id>/evidence.zip",
        evidence_api.RecallEvidencePackApi.as_view(),
        name="recall-evidence-zip",
    ),
    path(
        "lots/<int:lot_id>/dossier.pdf",
        evidence_api.LotDossierPdfApi.as_view(),
        name="lot-dossier-pdf",
    ),
    path(
        "lots/<int:lot_id>/treatments.csv",
        evidence_api.LotTreatmentsCsvApi.as_view(),
        name="lot-treatments-csv",
    ),
    path("notices/", outbox_api.NoticesApi.as_view(), name="notices"),
    path(
        "notices/<int:notice_id>/resend/",
        outbox_api.NoticeResendApi.as_view(),
        name="notice-resend",
    ),
    path(
        "webhook-endpoints/",
        outbox_api.WebhookEndpointsApi.as_view(),
        name="webhook-endpoints",
    ),
    path(
        "webhook-endpoints/<int:endpoint_id>/",
        outbox_api.WebhookEndpointDetailApi.as_view(),
        name="webhook-endpoint-detail",
    ),
    path(
        "webhook-endpoints/<int:endpoint_id>/rotate/",
        outbox_api.WebhookEndpointRotateApi.as_view(),
        name="webhook-endpoint-rotate",
    ),
    path(
        "webhook-endpoints/<int:endpoint_id>/deactivate/",
        outbox_api.WebhookEndpointDeactivateApi.as_view(),
        name="webhook-endpoint-deactivate",
    ),
    path(
        "webhook-endpoints/<int:endpoint_id>/activate/",
        outbox_api.WebhookEndpointActivateApi.as_view(),
        name="webhook-endpoint-activate",
    ),
]
