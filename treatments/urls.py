from django.urls import path

from treatments import trace_api, trace_export
from treatments.api import adverse_events, consent_texts, patients, scans, treatments

urlpatterns = [
    path("patients/", patients.PatientsApi.as_view(), name="patients"),
    path("patients/<int:patient_id>/", patients.PatientDetailApi.as_view(), name="patient-detail"),
    path(
        "patients/<int:patient_id>/contact/",
        patients.PatientContactApi.as_view(),
        name="patient-contact",
    ),
    path(
        "patients/<int:patient_id>/trace.pdf",
        trace_export.PatientTracePdfApi.as_view(),
        name="patient-trace-pdf",
    ),
    path("consent-texts/", consent_texts.ConsentTextsApi.as_view(), name="consent-texts"),
    path("treatments/", treatments.TreatmentsApi.as_view(), name="treatments"),
    path(
        "treatments/<int:treatment_id>/",
        treatments.TreatmentDetailApi.as_view(),
        name="treatment-detail",
    ),
    path(
        "treatments/<int:treatment_id>/adverse-events/",
        adverse_events.TreatmentAdverseEventRecordApi.as_view(),
        name="treatment-adverse-event-record",
    ),
    path("adverse-events/", adverse_events.AdverseEventsApi.as_view(), name="adverse-events"),
    path("scans/resolve/", scans.ScanResolveApi.as_view(), name="scan-resolve"),
    path("traces/forward/", trace_api.ForwardTraceApi.as_view(), name="trace-forward"),
    path("traces/backward/", trace_api.BackwardTraceApi.as_view(), name="trace-backward"),
]
