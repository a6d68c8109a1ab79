"""FHIR's own URL forms (`Procedure/12`, `metadata`), with or without a trailing slash."""

from django.urls import re_path

from interop.fhir import views

urlpatterns = [
    re_path(r"^metadata/?$", views.MetadataApi.as_view(), name="fhir-metadata"),
    re_path(r"^BiologicallyDerivedProduct/?$", views.ProductSearchApi.as_view()),
    re_path(
        r"^BiologicallyDerivedProduct/(?P<resource_id>[^/]+)/?$", views.ProductReadApi.as_view()
    ),
    re_path(r"^Procedure/?$", views.ProcedureSearchApi.as_view()),
    re_path(r"^Procedure/(?P<resource_id>[^/]+)/?$", views.ProcedureReadApi.as_view()),
    re_path(r"^AdverseEvent/?$", views.AdverseEventSearchApi.as_view()),
    re_path(r"^AdverseEvent/(?P<resource_id>[^/]+)/?$", views.AdverseEventReadApi.as_view()),
    re_path(r"", views.UnknownApi.as_view()),
]
