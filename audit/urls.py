from django.urls import path

from audit import api

urlpatterns = [
    path("audit/contact-reads/", api.ContactDataReadsApi.as_view(), name="audit-contact-reads"),
]
