"""Practitioners, their licences and their links to clinics."""

from __future__ import annotations

from typing import Any, cast

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from common.admin import ServiceForm
from providers import services
from providers.access import access_for
from providers.admin.fields import reason_field
from providers.admin_base import ReadOnlyInline, ServiceAdmin, can_view
from providers.models import (
    Clinic,
    ClinicPractitioner,
    Licence,
    Practitioner,
)


class PractitionerAddForm(ServiceForm):
    class Meta:
        model = Practitioner
        fields = ["name", "profession", "user"]

    def call_service(self, data: dict[str, Any]) -> Practitioner:
        return services.practitioner_create(actor=self.actor, **data)


class LicenceInline(ReadOnlyInline):
    model = Licence
    fields = ["number", "jurisdiction", "valid_from", "valid_until"]


class PractitionerClinicInline(ReadOnlyInline):
    model = ClinicPractitioner
    verbose_name_plural = "clinics where the practitioner practises"
    select_related = ("clinic", "practitioner")
    fields = ["clinic", "active", "since"]


@admin.register(Practitioner)
class PractitionerAdmin(ServiceAdmin):
    list_display = ["name", "profession", "user", "created_at"]
    list_select_related = ["user"]
    search_fields = ["name", "user__username", "licences__number"]
    list_filter = ["profession"]
    fields = ["name", "profession", "user", "created_at", "audit_trail_link"]
    readonly_fields = ["created_at", "audit_trail_link"]
    add_form = PractitionerAddForm
    add_fieldsets = [(None, {"fields": ["name", "profession", "user"]})]
    inlines = [LicenceInline, PractitionerClinicInline]


class ClinicPractitionerUpdateForm(ServiceForm):
    """End a practitioner's link to the clinic (untick active) or renew it, with the reason."""

    reason = reason_field()

    class Meta:
        model = ClinicPractitioner
        fields = ["active"]

    def call_service(self, data: dict[str, Any]) -> ClinicPractitioner:
        link: ClinicPractitioner = self.instance
        if "active" not in self.changed_data:
            return link
        if data["active"]:
            return services.clinic_practitioner_link(
                actor=self.actor, clinic=link.clinic, practitioner=link.practitioner
            )
        return services.clinic_practitioner_unlink(
            actor=self.actor,
            clinic=link.clinic,
            practitioner=link.practitioner,
            reason=data["reason"],
        )


class ClinicPractitionerLinkForm(ServiceForm):
    class Meta:
        model = ClinicPractitioner
        fields = ["clinic", "practitioner", "since"]

    def call_service(self, data: dict[str, Any]) -> ClinicPractitioner:
        return services.clinic_practitioner_link(actor=self.actor, **data)


def _keeper_clinic_ids(request: HttpRequest) -> list[int | None]:
    """Where the user may link practitioners: None stands for every clinic (a network quality
    manager), an id for a clinic the user administers."""
    keepers = {role.value for role in services.CLINIC_KEEPERS}
    memberships = access_for(request).memberships
    return [clinic_id for role, clinic_id in memberships if role in keepers]


def _keeper_clinics(request: HttpRequest) -> QuerySet[Clinic]:
    held = _keeper_clinic_ids(request)
    if None in held:
        return Clinic.objects.all()
    return Clinic.objects.filter(pk__in=sorted(cast(list[int], held)))


@admin.register(ClinicPractitioner)
class ClinicPractitionerAdmin(ServiceAdmin):
    """Linked through `clinic_practitioner_link`, by a quality manager or the clinic's
    administrator; only linked practitioners may be named on the clinic's treatments."""

    clinic_path = "clinic"

    list_display = ["practitioner", "clinic", "active", "since"]
    list_select_related = ["practitioner", "clinic"]
    search_fields = ["practitioner__name", "clinic__name"]
    list_filter = ["active", ("clinic", admin.RelatedOnlyFieldListFilter)]
    fields = ["clinic", "practitioner", "active", "since", "audit_trail_link"]
    readonly_fields = ["audit_trail_link"]
    add_form = ClinicPractitionerLinkForm
    add_fieldsets = [(None, {"fields": ["clinic", "practitioner", "since"]})]
    update_form = ClinicPractitionerUpdateForm
    update_fieldsets = [
        (None, {"fields": ["clinic", "practitioner", "since", "active", "reason"]}),
        ("Record", {"fields": ["audit_trail_link"]}),
    ]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return can_view(request) and bool(_keeper_clinic_ids(request))

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if not (can_view(request) and bool(_keeper_clinic_ids(request))):
            return False
        held = _keeper_clinic_ids(request)
        return obj is None or None in held or obj.clinic_id in held

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is not None and self.has_change_permission(request, obj):
            return ["clinic", "practitioner", "since", "audit_trail_link"]
        return super().get_readonly_fields(request, obj)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "clinic":
            kwargs["queryset"] = _keeper_clinics(request)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class LicenceAddForm(ServiceForm):
    class Meta:
        model = Licence
        fields = ["practitioner", "number", "jurisdiction", "valid_from", "valid_until"]

    def call_service(self, data: dict[str, Any]) -> Licence:
        return services.licence_add(actor=self.actor, **data)


@admin.register(Licence)
class LicenceAdmin(ServiceAdmin):
    list_display = ["number", "jurisdiction", "practitioner", "valid_from", "valid_until"]
    list_select_related = ["practitioner"]
    search_fields = ["number", "practitioner__name"]
    list_filter = ["jurisdiction"]
    date_hierarchy = "valid_until"
    fields = [
        "practitioner",
        "number",
        "jurisdiction",
        "valid_from",
        "valid_until",
        "audit_trail_link",
    ]
    readonly_fields = ["audit_trail_link"]
    add_form = LicenceAddForm
    add_fieldsets = [
        (None, {"fields": ["practitioner", "number", "jurisdiction", "valid_from", "valid_until"]})
    ]
