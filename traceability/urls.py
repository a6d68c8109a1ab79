from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from common import health
from common.api import api_not_found
from recalls.views import recall_acknowledgement_page

handler400 = "common.api.bad_request"
# A lost database answers 503 with Retry-After, not a 500, wherever the request was.
handler500 = "common.api.server_error"

urlpatterns = [
    # For load balancers: open to all, no session, no throttle (common.health).
    path("health/live", health.live, name="health-live"),
    path("health/ready", health.ready, name="health-ready"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The docs page is for people: sign in first, rather than meet a bare 403.
    path(
        "api/docs/",
        login_required(SpectacularSwaggerView.as_view(url_name="api-schema")),
        name="api-docs",
    ),
    # Django tries the patterns in order and every app's share the prefix: the treatments' come
    # first because recording and the traces are the requests sent most (no two apps' patterns
    # match the same path, so the order changes nothing else).
    path("api/v1/", include("treatments.urls")),
    path("api/v1/", include("providers.urls")),
    path("api/v1/", include("lots.urls")),
    path("api/v1/", include("stock.urls")),
    path("api/v1/", include("recalls.urls")),
    path("api/v1/", include("audit.urls")),
    path("api/v1/", include("signatures.urls")),
    path("api/v1/", include("history.urls")),
    path("api/v1/fhir/", include("interop.fhir.urls")),
    path("api/v1/epcis/", include("interop.epcis.urls")),
    re_path(r"^api/", api_not_found),
    path(
        "recalls/acknowledge/<str:token>/",
        recall_acknowledgement_page,
        name="recall-acknowledge",
    ),
    path("", include("pages.urls")),
]
