"""The manufacturer pages. Every write is a service call (common.admin)."""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib import admin

from common.admin import ServiceForm, changed_fields
from providers import services
from providers.admin.fields import reason_field
from providers.admin_base import ServiceAdmin
from providers.models import (
    Manufacturer,
)


class ManufacturerAddForm(ServiceForm):
    class Meta:
        model = Manufacturer
        fields = ["legal_name", "country", "registration_number"]

    def call_service(self, data: dict[str, Any]) -> Manufacturer:
        return services.manufacturer_create(actor=self.actor, **data)


class ManufacturerUpdateForm(ServiceForm):
    reason = reason_field()

    class Meta:
        model = Manufacturer
        fields = ["legal_name", "country", "registration_number"]

    def call_service(self, data: dict[str, Any]) -> Manufacturer:
        return services.manufacturer_update(
            actor=self.actor,
            manufacturer=self.instance,
            reason=data["reason"],
            **changed_fields(self, ("legal_name", "country", "registration_number")),
        )


@admin.register(Manufacturer)
class ManufacturerAdmin(ServiceAdmin):
    list_display = ["legal_name", "country", "registration_number", "created_at"]
    search_fields = ["legal_name", "registration_number"]
    list_filter = ["country"]
    readonly_fields = ["created_at", "audit_trail_link"]
    fieldsets = [
        (None, {"fields": ["legal_name", "country", "registration_number"]}),
        ("Record", {"fields": ["created_at", "audit_trail_link"]}),
    ]
    add_form = ManufacturerAddForm
    add_fieldsets = [(None, {"fields": ["legal_name", "country", "registration_number"]})]
    update_form = ManufacturerUpdateForm
    update_fieldsets = [
        (None, {"fields": ["legal_name", "country", "registration_number", "reason"]}),
        ("Record", {"fields": ["created_at", "audit_trail_link"]}),
    ]
    # lots.admin adds the manufacturer's products and certificates (lots lies above providers).
    inlines: ClassVar[list[Any]] = []
