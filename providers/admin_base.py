"""What every admin page of the traceability apps shares.

Rules live in services (STYLE "Where rules live"), so the admin is a thin client of them:

- who may do what comes from memberships, not Django's model permissions: any staff user with an
  active role may look, only a quality manager may add or change, and nobody deletes (traceability
  records are kept for decades; the database refuses deletes too);
- an add or change form is a `ServiceForm`: validating it calls the service, and every DomainError
  the service raises is shown on the form next to the field it names;
- every tracked record links to its audit trail: the pghistory events with who, when and why;
- a signed decision (21 CFR Part 11) asks for the password, the meaning and the reason on an
  intermediate page and reports each record's outcome.

These bases ask providers.access who may see and do what; every admin of the apps
above builds on them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from pghistory.models import Events

from common.admin import ServiceForm, _event_row, add_problems
from common.errors import DomainError
from providers.access import access_for
from providers.models import Clinic, Role
from providers.selectors import clinic_list

# Apps whose records each belong to one clinic: clinic staff see only their own clinics' rows.
CLINIC_RECORD_APPS = ("stock", "treatments")


def can_view(request: HttpRequest) -> bool:
    """Staff users holding any active role may look at every traceability record."""
    return bool(request.user.is_staff) and access_for(request).has_role


def can_write(request: HttpRequest) -> bool:
    """Only quality managers add or change records (the services check the same role)."""
    return can_view(request) and access_for(request).writes_network


def is_network_user(request: HttpRequest) -> bool:
    """A network-wide quality manager or auditor, as opposed to staff of particular clinics."""
    return access_for(request).is_network


class RoleAccessMixin:
    """Permissions from memberships instead of Django's model permissions. Never deletes."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return can_view(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return can_view(request)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return can_write(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return can_write(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyInline(RoleAccessMixin, admin.TabularInline):  # type: ignore[type-arg]
    """Child records shown on the parent's page; each is added through its own service form."""

    extra = 0
    can_delete = False
    show_change_link = True
    select_related: tuple[str, ...] = ()

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).select_related(*self.select_related)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.fields or ()


class ServiceAdmin(RoleAccessMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """Adds through `add_form` and changes through `update_form` (only where an update service
    exists); everything else is read-only once created."""

    add_form: type[ServiceForm] | None = None
    add_fieldsets: Any = None
    update_form: type[ServiceForm] | None = None
    update_fieldsets: Any = None
    change_form_template = "admin/traceability/change_form.html"
    # The path from the model to its clinic, for records that belong to one clinic ("" for the
    # clinic itself): clinic staff see only their own clinics' rows (DESIGN rule 8).
    clinic_path: str | None = None

    def get_queryset(self, request: HttpRequest) -> Any:
        queryset = super().get_queryset(request)
        if self.clinic_path is None:
            return queryset
        if is_network_user(request):
            return queryset
        lookup = f"{self.clinic_path}__in" if self.clinic_path else "pk__in"
        return queryset.filter(**{lookup: clinic_list(user=request.user).values("pk")})

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: Any = None,
    ) -> HttpResponse:
        # Django wraps an admin save in one transaction. Here the service is the transaction
        # (STYLE: the entry point owns it): it commits on its own, its on-commit work runs when it
        # returns, and a certificate's file is written outside any transaction. (admin_view has
        # applied the CSRF check that Django's changeform_view adds.)
        response: HttpResponse = self._changeform_view(  # type: ignore[attr-defined]
            request, object_id, form_url, extra_context
        )
        return response

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return self.add_form is not None and can_write(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.update_form is not None and can_write(request)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        # Actions are the only writes a change list accepts, and only quality managers have any.
        if request.method == "POST" and not can_write(request):
            raise PermissionDenied
        return super().changelist_view(request, extra_context)

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None and self.add_fieldsets:
            return self.add_fieldsets
        if obj is not None and self.update_fieldsets and self.has_change_permission(request, obj):
            return self.update_fieldsets
        return super().get_fieldsets(request, obj)

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is None and self.add_form is not None:
            kwargs["form"] = self.add_form
        elif obj is not None and self.update_form and self.has_change_permission(request, obj):
            kwargs["form"] = self.update_form
        form = super().get_form(request, obj, change=change, **kwargs)
        # modelform_factory made a new class for this request, so the actor is this request's.
        form.actor = request.user  # type: ignore[attr-defined]
        return form

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return () if obj is None else super().get_readonly_fields(request, obj)

    def get_inlines(self, request: HttpRequest, obj: Any) -> Any:
        return () if obj is None else super().get_inlines(request, obj)

    def get_formsets_with_inlines(self, request: HttpRequest, obj: Any = None) -> Any:
        # Inlines are read-only: a POST carries nothing for them to validate.
        if request.method == "POST":
            return
        yield from super().get_formsets_with_inlines(request, obj)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        """The form's service call saved the object."""
        if not isinstance(form, ServiceForm):
            raise PermissionDenied(_("Records are only written through their service."))

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """Inlines are read-only; the service stored the relations."""

    # -- audit trail ----------------------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "<path:object_id>/audit-trail/",
                self.admin_site.admin_view(self.audit_trail_view),
                name="{}_{}_audit_trail".format(*info),
            ),
            *super().get_urls(),
        ]

    def audit_trail_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Every history event of the record (or, with ?related=1, of the records that refer to
        it) with who made it, when, why and what changed."""
        obj = self.get_object(request, unquote(object_id))
        if obj is None or not self.has_view_permission(request, obj):
            raise PermissionDenied
        related = request.GET.get("related") == "1"
        events = self.audit_trail_events(request, obj, related=related)
        rows = list(events.order_by("-pgh_created_at")[:500])
        user_ids: set[int] = set()
        for row in rows:
            if isinstance(user_id := (row.pgh_context or {}).get("user"), int):
                user_ids.add(user_id)
        users = {
            user.pk: user.get_full_name() or user.get_username()
            for user in get_user_model().objects.filter(pk__in=user_ids)
        }
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": obj,
            "title": f"Audit trail: {obj}",
            "related": related,
            "events": [_event_row(row, users) for row in rows],
        }
        return TemplateResponse(request, "admin/traceability/audit_trail.html", context)

    @property
    def rows_scoped_to_clinics(self) -> bool:
        """Whether clinic staff see only their own clinics' rows of this model."""
        return self.clinic_path is not None

    def audit_trail_events(self, request: HttpRequest, obj: Any, *, related: bool) -> Any:
        """The events the audit trail page lists; an admin narrows them where some referring
        records are not for every reader (a patient's contact details)."""
        if not related:
            return Events.objects.tracks(obj)  # type: ignore[no-untyped-call]
        events = Events.objects.references(obj)  # type: ignore[no-untyped-call]
        if not self.rows_scoped_to_clinics and not is_network_user(request):
            # A record every clinic sees (a lot, a practitioner) is referred to by the clinics' own
            # records (receipts, treatments); an event cannot tell here whose clinic it is, so
            # clinic staff are shown none of them (DESIGN rule 8).
            for app_label in CLINIC_RECORD_APPS:
                events = events.exclude(pgh_obj_model__startswith=f"{app_label}.")
        return events

    @admin.display(description="Audit trail")
    def audit_trail_link(self, obj: Any) -> str:
        url = reverse(
            f"admin:{self.opts.app_label}_{self.opts.model_name}_audit_trail", args=[obj.pk]
        )
        return format_html('<a href="{}">Who changed what, when and why</a>', url)


def signature_page(
    model_admin: ServiceAdmin,
    request: HttpRequest,
    objects: list[Any],
    *,
    form: forms.Form,
    title: str,
    sign_one: Callable[[Any, dict[str, Any]], str],
    template: str,
    action_name: str = "",
) -> HttpResponse | None:
    """Show the signature form; once it is filled in, sign each object through its service and
    report each outcome. Returns None when done (the caller redirects)."""
    if form.is_bound and form.is_valid():
        for obj in objects:
            try:
                model_admin.message_user(request, sign_one(obj, form.cleaned_data))
            except DomainError as error:
                if all(problem.field in form.fields for problem in error.problems):
                    # A signature problem (password, meaning, reason) is the same for every
                    # object and the service refused before changing anything: ask again.
                    add_problems(form, error)
                    break
                refusals = " ".join(f"[{p.code}] {p.message}" for p in error.problems)
                refused = _("%(object)s: refused. %(refusals)s") % {
                    "object": obj,
                    "refusals": refusals,
                }
                model_admin.message_user(request, refused, messages.ERROR)
        else:
            return None
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": title,
        "objects": objects,
        "form": form,
        "action_name": action_name,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "media": model_admin.media + form.media,
    }
    return TemplateResponse(request, template, context)


def clinics_where(request: HttpRequest, roles: tuple[Role, ...]) -> QuerySet[Clinic]:
    """The clinics at which the user holds one of `roles`: every clinic for a network-wide
    holder, otherwise the clinics of the memberships."""
    clinic_ids = access_for(request).clinic_ids(roles)
    if clinic_ids is None:
        return Clinic.objects.all()
    return Clinic.objects.filter(pk__in=sorted(clinic_ids))


def holds_any(request: HttpRequest, roles: tuple[Role, ...]) -> bool:
    return access_for(request).holds_anywhere(roles)


def contact_clinic_ids(request: HttpRequest) -> set[int]:
    """Clinics whose patients' contact details the user may read. Network roles are never among
    them: contact roles are always held at a clinic."""
    return set(access_for(request).contact_clinic_ids)


class ClinicWorkAdmin(ServiceAdmin):
    """Records of a clinic's daily work. Rows are scoped with `list_selector` (or
    `visible_clinic_ids` along `clinic_field`); users holding one of `write_roles` at some clinic
    may add, and the service checks the role at the record's own clinic."""

    write_roles: tuple[Role, ...] = ()
    clinic_field = "clinic_id"
    list_selector: Callable[..., QuerySet[Any]] | None = None
    rows_scoped_to_clinics = True

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        if self.list_selector is not None:
            queryset = self.list_selector(user=request.user)
        else:
            queryset = self.model._default_manager.all()
            clinic_ids = access_for(request).visible_clinic_ids
            if clinic_ids is not None:
                queryset = queryset.filter(**{f"{self.clinic_field}__in": clinic_ids})
        if isinstance(self.list_select_related, list | tuple):
            # The change list adds list_select_related only to a query without joins, and the
            # selectors' queries have theirs: add what the columns need here.
            queryset = queryset.select_related(*self.list_select_related)
        ordering = self.get_ordering(request)
        return queryset.order_by(*ordering) if ordering else queryset

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return (
            self.add_form is not None and can_view(request) and holds_any(request, self.write_roles)
        )

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "clinic":
            kwargs["queryset"] = clinics_where(request, self.write_roles)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        initial = super().get_changeform_initial_data(request)
        clinics = list(clinics_where(request, self.write_roles).values_list("pk", flat=True)[:2])
        if len(clinics) == 1:
            initial.setdefault("clinic", str(clinics[0]))
        return initial


class LotFilter(admin.SimpleListFilter):
    """Filter by lot, offering the lots of the rows the user can see, by number (one query;
    Django's related filter would read each lot's product to label it)."""

    title = "lot"
    parameter_name = "lot__id__exact"

    def lookups(self, request: HttpRequest, model_admin: Any) -> Any:
        return (
            model_admin.get_queryset(request)
            .filter(lot__isnull=False)
            .order_by("lot__lot_number")
            .values_list("lot_id", "lot__lot_number")
            .distinct()
        )

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(lot_id=value) if value else queryset


def untracked_urls(model_admin: ServiceAdmin) -> list[URLPattern]:
    """The admin's URLs without the audit trail page, for models that keep no history table."""
    return admin.ModelAdmin.get_urls(model_admin)
