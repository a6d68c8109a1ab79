"""History imports in the admin: read only (an import is made with the command or the API),
scoped as the API scopes them."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from history.models import HistoryImport
from history.selectors import history_import_list
from providers.access import access_for
from providers.admin_base import can_view

FIELDS = (
    "kind",
    "clinic",
    "uploaded_by",
    "file_name",
    "file_sha256",
    "dry_run",
    "status",
    "rows_total",
    "rows_done",
    "rows_written",
    "report",
    "created_at",
    "finished_at",
)


@admin.register(HistoryImport)
class HistoryImportAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["created_at", "kind", "clinic", "uploaded_by", "status", "rows_total"]
    list_filter = ["kind", "status"]
    fields = FIELDS
    readonly_fields = FIELDS

    def _allowed(self, request: HttpRequest) -> bool:
        return can_view(request) and access_for(request).history_import_clinic_ids != frozenset()

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._allowed(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._allowed(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[HistoryImport]:
        return history_import_list(user=request.user)
