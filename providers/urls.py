from django.urls import path

from providers import api

urlpatterns = [
    path("manufacturers/", api.ManufacturersApi.as_view(), name="manufacturers"),
    path(
        "manufacturers/<int:manufacturer_id>/",
        api.ManufacturerDetailApi.as_view(),
        name="manufacturer-detail",
    ),
    path("clinics/", api.ClinicsApi.as_view(), name="clinics"),
    path("clinics/<int:clinic_id>/", api.ClinicDetailApi.as_view(), name="clinic-detail"),
    path(
        "clinics/<int:clinic_id>/contacts/",
        api.ClinicContactAddApi.as_view(),
        name="clinic-contact-add",
    ),
    path("practitioners/", api.PractitionersApi.as_view(), name="practitioners"),
    path(
        "practitioners/<int:practitioner_id>/",
        api.PractitionerDetailApi.as_view(),
        name="practitioner-detail",
    ),
    path(
        "practitioners/<int:practitioner_id>/licences/",
        api.LicenceAddApi.as_view(),
        name="practitioner-licence-add",
    ),
    path("me/", api.MeApi.as_view(), name="me"),
]
