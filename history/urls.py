from django.urls import path

from history import api

urlpatterns = [
    path("history-imports/", api.HistoryImportsApi.as_view(), name="history-imports"),
    path(
        "history-imports/<int:import_id>/",
        api.HistoryImportDetailApi.as_view(),
        name="history-import",
    ),
]
