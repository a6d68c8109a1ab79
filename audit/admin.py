"""Admin for the record of reads of patient contact data: read-only for everyone (the database
refuses changes too). Network quality managers and auditors see every read, clinic administrators
their own clinics' reads; clinicians do not see the page."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import URLPattern

from audit.models import ContactDataRead
from audit.selectors import contact_data_reads, reader_clinic_ids
from traceability.admin import ServiceAdmin, can_view
from treatments.admin import memberships, untracked_urls

FIELDS = ("at", "user", "user_name", "clinic", "what", "via", "patient_count", "patient_ids")


def reader_clinics(request: HttpRequest) -> list[int] | None:
    """The clinics whose reads the user sees (None: every clinic), from the request's cached
    memberships."""
    return reader_clinic_ids(memberships(request))


@admin.register(ContactDataRead)
class ContactDataReadAdmin(ServiceAdmin):
    list_display = ["at", "user_name", "clinic", "what", "patient_count", "via"]
    list_filter = ["via", ("clinic", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["user_name", "what"]
    date_hierarchy = "at"
    fields = FIELDS
    readonly_fields = FIELDS
    change_form_template = "admin/change_form.html"

    def _allowed(self, request: HttpRequest) -> bool:
        return can_view(request) and reader_clinics(request) != []

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._allowed(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if not self._allowed(request):
            return False
        clinic_ids = reader_clinics(request)
        return obj is None or clinic_ids is None or obj.clinic_id in clinic_ids

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[ContactDataRead]:
        return contact_data_reads(user=request.user).select_related("user")

    def get_urls(self) -> list[URLPattern]:
        return untracked_urls(self)
