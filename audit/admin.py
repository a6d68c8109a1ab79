"""Admin for the record of reads of patient contact data: read-only for everyone (the database
refuses changes too). Network quality managers and auditors see every read, clinic administrators
their own clinics' reads; clinicians do not see the page."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from pghistory.models import Events

from audit.event_filters import AuditEventFilter
from audit.models import AuditEvent, ContactDataRead
from audit.selectors import (
    audit_event_list,
    audit_event_views,
    contact_data_reads,
    reader_clinic_ids,
    without_jit,
)
from providers.access import access_for
from providers.admin_base import (
    ServiceAdmin,
    can_view,
    is_network_user,
    untracked_urls,
)

FIELDS = ("at", "user", "user_name", "clinic", "what", "via", "patient_count", "patient_ids")


def reader_clinics(request: HttpRequest) -> list[int] | None:
    """The clinics whose reads the user sees (None: every clinic), from the request's cached
    memberships."""
    return reader_clinic_ids(access_for(request).memberships)


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


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """The audit search page: every history event of every tracked record, filtered by record
    (type and id), user and date range, with a link to the same events as CSV. For network
    quality managers and auditors (the trail of a shared record is written by every clinic);
    patient contact details are masked. Nothing here writes."""

    per_page = 100

    def _allowed(self, request: HttpRequest) -> bool:
        return can_view(request) and is_network_user(request)

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

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "",
                self.admin_site.admin_view(self.search_view),
                name="audit_auditevent_changelist",
            )
        ]

    def search_view(self, request: HttpRequest) -> HttpResponse:
        if not self._allowed(request):
            raise PermissionDenied
        query = request.GET.copy()
        page_number = query.pop("page", ["1"])[-1]
        bound = any(value for value in query.values())
        filterset = AuditEventFilter(
            query if bound else None, queryset=Events.objects.none(), request=request
        )
        page = None
        rows: list[dict[str, Any]] = []
        if not bound or filterset.is_valid():
            events = filterset.qs if bound else audit_event_list()
            with without_jit():
                page = Paginator(events, self.per_page).get_page(page_number)
                rows = audit_event_views(page.object_list)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Audit search",
            "form": filterset.form,
            "page": page,
            "events": rows,
            "query": query.urlencode(),
            "export_url": f"{reverse('audit-events-export')}?{query.urlencode()}",
            "range_given": bool(query.get("at_after") and query.get("at_before")),
        }
        return TemplateResponse(request, "admin/audit/auditevent/search.html", context)
