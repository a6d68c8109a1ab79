from django.urls import path

from treatments import api, trace_api, trace_export

urlpatterns = [
    path("patients/", api.PatientsApi.as_view(), name="patients"),
    path("patients/<int:patient_id>/", api.PatientDetailApi.as_view(), name="patient-detail"),
    path(
        "patients/<int:patient_id>/contact/",
        api.PatientContactApi.as_view(),
        name="patient-contact",
    ),
    path(
        "patients/<int:patient_id>/trace.pdf",
        trace_export.PatientTracePdfApi.as_view(),
        name="patient-trace-pdf",
    ),
    path("consent-texts/", api.ConsentTextsApi.as_view(), name="consent-texts"),
    path("treatments/", api.TreatmentsApi.as_view(), name="treatments"),
    path(
        "treatments/<int:treatment_id>/",
        api.TreatmentDetailApi.as_view(),
        name="treatment-detail",
    ),
    path(
        "treatments/<int:treatment_id>/adverse-events/",
        api.TreatmentAdverseEventRecordApi.as_view(),
        name="treatment-adverse-event-record",
    ),
    path("adverse-events/", api.AdverseEventsApi.as_view(), name="adverse-events"),
    path("scans/resolve/", api.ScanResolveApi.as_view(), name="scan-resolve"),
    path("traces/forward/", trace_api.ForwardTraceApi.as_view(), name="trace-forward"),
    path("traces/backward/", trace_api.BackwardTraceApi.as_view(), name="trace-backward"),
]
