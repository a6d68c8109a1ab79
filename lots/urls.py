from django.urls import path

from lots.api import certificates, donors, lots, products, qc, release

urlpatterns = [
    path("products/", products.ProductsApi.as_view(), name="products"),
    path("products/<int:product_id>/", products.ProductDetailApi.as_view(), name="product-detail"),
    path(
        "products/<int:product_id>/authorisations/<str:jurisdiction>/",
        products.ProductAuthorisationSetApi.as_view(),
        name="product-authorisation-set",
    ),
    path("markers/", donors.MarkersApi.as_view(), name="markers"),
    path("qc-tests/", qc.QcTestsApi.as_view(), name="qc-tests"),
    path("donors/", donors.DonorsApi.as_view(), name="donors"),
    path("donors/<int:donor_id>/", donors.DonorDetailApi.as_view(), name="donor-detail"),
    path(
        "donors/<int:donor_id>/marker-results/",
        donors.DonorMarkerResultRecordApi.as_view(),
        name="donor-marker-result-record",
    ),
    path(
        "donors/<int:donor_id>/eligibility/",
        donors.DonorEligibilityDecideApi.as_view(),
        name="donor-eligibility-decide",
    ),
    path("lots/", lots.LotsApi.as_view(), name="lots"),
    path("lots/<int:lot_id>/", lots.LotDetailApi.as_view(), name="lot-detail"),
    path("lots/<int:lot_id>/donors/", lots.LotDonorAddApi.as_view(), name="lot-donor-add"),
    path("lots/<int:lot_id>/sec/", lots.LotSecSetApi.as_view(), name="lot-sec-set"),
    path(
        "lots/<int:lot_id>/qc-results/",
        qc.LotQcResultRecordApi.as_view(),
        name="lot-qc-result-record",
    ),
    path(
        "lots/<int:lot_id>/release-check/",
        release.LotReleaseCheckApi.as_view(),
        name="lot-release-check",
    ),
    path("lots/<int:lot_id>/release/", release.LotReleaseApi.as_view(), name="lot-release"),
    path("lots/<int:lot_id>/reject/", release.LotRejectApi.as_view(), name="lot-reject"),
    path("lots/<int:lot_id>/hold/", release.LotHoldApi.as_view(), name="lot-hold"),
    path("certificates/", certificates.CertificatesApi.as_view(), name="certificates"),
    path(
        "certificates/<int:certificate_id>/",
        certificates.CertificateDetailApi.as_view(),
        name="certificate-detail",
    ),
    path(
        "certificates/<int:certificate_id>/file/",
        certificates.CertificateFileApi.as_view(),
        name="certificate-file",
    ),
]
