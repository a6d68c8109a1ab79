"""The clinic pages, one module per area of work; the root URLconf mounts them at /."""

from django.urls import include, path

from pages import accounts, home, lots, patients, recalls, stock, treatments

app_name = "pages"

urlpatterns = [
    path("", include(accounts)),
    path("", include(home)),
    path("", include(patients)),
    path("", include(treatments)),
    path("", include(lots)),
    path("", include(stock)),
    path("", include(recalls)),
]
