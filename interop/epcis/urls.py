from django.urls import path

from interop.epcis import views

urlpatterns = [
    path("events/", views.EpcisEventsApi.as_view(), name="epcis-events"),
]
