"""The clinic pages, their contacts and the inlines that show who works there."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db import transaction
from django.http import HttpRequest

from common.admin import ServiceForm, changed_fields
from providers import services
from providers.admin.fields import reason_field, time_zone_field
from providers.admin_base import ReadOnlyInline, ServiceAdmin
from providers.models import (
    Clinic,
    ClinicContact,
    ClinicPractitioner,
    Membership,
)


class ClinicAddForm(ServiceForm):
    time_zone = time_zone_field()
    contact_name = forms.CharField(
        required=False, max_length=200, help_text="First notification contact (optional)."
    )
    contact_email = forms.EmailField(required=False)

    class Meta:
        model = Clinic
        fields = ["name", "address", "jurisdiction", "time_zone", "language"]

    def call_service(self, data: dict[str, Any]) -> Clinic:
        contacts = []
        if data.get("contact_email"):
            contacts.append(
                {
                    "name": data.get("contact_name") or "Notifications",
                    "email": data["contact_email"],
                }
            )
        return services.clinic_create(
            actor=self.actor,
            name=data["name"],
            address=data["address"],
            jurisdiction=data["jurisdiction"],
            time_zone=data["time_zone"],
            language=data["language"],
            contacts=contacts,
        )


class ClinicUpdateForm(ServiceForm):
    time_zone = time_zone_field()
    reason = reason_field()

    class Meta:
        model = Clinic
        fields = [
            "name",
            "address",
            "jurisdiction",
            "time_zone",
            "language",
            "requires_sec",
            "consent_required",
        ]

    def call_service(self, data: dict[str, Any]) -> Clinic:
        fields = changed_fields(
            self, ("name", "address", "jurisdiction", "time_zone", "language", "requires_sec")
        )
        consent_changed = "consent_required" in self.changed_data
        # Two services, one decision: both happen or neither.
        with transaction.atomic():
            clinic: Clinic = self.instance
            if fields or not consent_changed:
                clinic = services.clinic_update(
                    actor=self.actor, clinic=clinic, reason=data["reason"], **fields
                )
            if consent_changed:
                clinic = services.clinic_consent_requirement_set(
                    actor=self.actor,
                    clinic=clinic,
                    required=data["consent_required"],
                    reason=data["reason"],
                )
        return clinic


class ClinicContactInline(ReadOnlyInline):
    model = ClinicContact
    fields = ["name", "email", "active"]


class ClinicPractitionerInline(ReadOnlyInline):
    model = ClinicPractitioner
    select_related = ("clinic", "practitioner")
    fields = ["practitioner", "active", "since"]


class ClinicMembershipInline(ReadOnlyInline):
    model = Membership
    select_related = ("user", "clinic")
    fields = ["user", "role", "active", "created_at"]


@admin.register(Clinic)
class ClinicAdmin(ServiceAdmin):
    clinic_path = ""
    list_display = ["name", "jurisdiction", "time_zone", "language", "created_at"]
    search_fields = ["name", "address"]
    list_filter = ["jurisdiction", "consent_required", "requires_sec"]
    readonly_fields = ["consent_required", "created_at", "audit_trail_link"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "name",
                    "address",
                    "jurisdiction",
                    "time_zone",
                    "language",
                    "requires_sec",
                    "consent_required",
                ]
            },
        ),
        ("Record", {"fields": ["created_at", "audit_trail_link"]}),
    ]
    add_form = ClinicAddForm
    add_fieldsets = [
        (None, {"fields": ["name", "address", "jurisdiction", "time_zone", "language"]}),
        ("Notification contact", {"fields": ["contact_name", "contact_email"]}),
    ]
    update_form = ClinicUpdateForm
    update_fieldsets = [
        (
            None,
            {
                "fields": [
                    "name",
                    "address",
                    "jurisdiction",
                    "time_zone",
                    "language",
                    "requires_sec",
                    "consent_required",
                    "reason",
                ]
            },
        ),
        ("Record", {"fields": ["created_at", "audit_trail_link"]}),
    ]
    inlines = [ClinicContactInline, ClinicPractitionerInline, ClinicMembershipInline]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = super().get_readonly_fields(request, obj)
        if obj is not None and self.has_change_permission(request, obj):
            # Edited on the update form, through clinic_consent_requirement_set.
            return [name for name in fields if name != "consent_required"]
        return fields


class ClinicContactAddForm(ServiceForm):
    class Meta:
        model = ClinicContact
        fields = ["clinic", "name", "email"]

    def call_service(self, data: dict[str, Any]) -> ClinicContact:
        return services.clinic_contact_add(actor=self.actor, **data)


@admin.register(ClinicContact)
class ClinicContactAdmin(ServiceAdmin):
    clinic_path = "clinic"
    list_display = ["email", "name", "clinic", "active"]
    list_select_related = ["clinic"]
    search_fields = ["email", "name", "clinic__name"]
    list_filter = ["active", "clinic__jurisdiction"]
    fields = ["clinic", "name", "email", "active", "audit_trail_link"]
    readonly_fields = ["audit_trail_link"]
    add_form = ClinicContactAddForm
    add_fieldsets = [(None, {"fields": ["clinic", "name", "email"]})]
