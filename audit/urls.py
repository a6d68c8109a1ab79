from django.urls import path

from audit import api

urlpatterns = [
    path("audit/contact-reads/", api.ContactDataReadsApi.as_view(), name="audit-contact-reads"),
    path("audit/events/", api.AuditEventsApi.as_view(), name="audit-events"),
    path("audit/events/export/", api.AuditEventsExportApi.as_view(), name="audit-events-export"),
]
