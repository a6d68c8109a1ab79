from django.urls import path

from lots import api

urlpatterns = [
    path("products/", api.ProductsApi.as_view(), name="products"),
    path("products/<int:product_id>/", api.ProductDetailApi.as_view(), name="product-detail"),
    path(
        "products/<int:product_id>/authorisations/<str:jurisdiction>/",
        api.ProductAuthorisationSetApi.as_view(),
        name="product-authorisation-set",
    ),
    path("markers/", api.MarkersApi.as_view(), name="markers"),
    path("qc-tests/", api.QcTestsApi.as_view(), name="qc-tests"),
    path("donors/", api.DonorsApi.as_view(), name="donors"),
    path("donors/<int:donor_id>/", api.DonorDetailApi.as_view(), name="donor-detail"),
    path(
        "donors/<int:donor_id>/marker-results/",
        api.DonorMarkerResultRecordApi.as_view(),
        name="donor-marker-result-record",
    ),
    path(
        "donors/<int:donor_id>/eligibility/",
        api.DonorEligibilityDecideApi.as_view(),
        name="donor-eligibility-decide",
    ),
    path("lots/", api.LotsApi.as_view(), name="lots"),
    path("lots/<int:lot_id>/", api.LotDetailApi.as_view(), name="lot-detail"),
    path("lots/<int:lot_id>/donors/", api.LotDonorAddApi.as_view(), name="lot-donor-add"),
    path(
        "lots/<int:lot_id>/qc-results/",
        api.LotQcResultRecordApi.as_view(),
        name="lot-qc-result-record",
    ),
    path(
        "lots/<int:lot_id>/release-check/",
        api.LotReleaseCheckApi.as_view(),
        name="lot-release-check",
    ),
    path("lots/<int:lot_id>/release/", api.LotReleaseApi.as_view(), name="lot-release"),
    path("lots/<int:lot_id>/reject/", api.LotRejectApi.as_view(), name="lot-reject"),
    path("lots/<int:lot_id>/hold/", api.LotHoldApi.as_view(), name="lot-hold"),
    path("certificates/", api.CertificatesApi.as_view(), name="certificates"),
    path(
        "certificates/<int:certificate_id>/",
        api.CertificateDetailApi.as_view(),
        name="certificate-detail",
    ),
    path(
        "certificates/<int:certificate_id>/file/",
        api.CertificateFileApi.as_view(),
        name="certificate-file",
    ),
]
