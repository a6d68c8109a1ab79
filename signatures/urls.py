from django.urls import path

from signatures import api

urlpatterns = [
    path("signatures/", api.SignaturesApi.as_view(), name="signatures"),
    path(
        "signatures/<int:signature_id>/verify/",
        api.SignatureVerifyApi.as_view(),
        name="signature-verify",
    ),
]
