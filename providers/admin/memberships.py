"""Who holds which role at which clinic (or network-wide)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from common.admin import ServiceForm
from providers import accounts, services
from providers.admin.fields import reason_field
from providers.admin_base import ServiceAdmin
from providers.models import (
    Membership,
)


class MembershipAddForm(ServiceForm):
    class Meta:
        model = Membership
        fields = ["user", "role", "clinic"]

    def call_service(self, data: dict[str, Any]) -> Membership:
        return services.membership_grant(actor=self.actor, **data)


class MembershipUpdateForm(ServiceForm):
    """Revoke a role (untick active) or grant it again (tick it), with the reason."""

    reason = reason_field()

    class Meta:
        model = Membership
        fields = ["active"]

    def call_service(self, data: dict[str, Any]) -> Membership:
        membership: Membership = self.instance
        if "active" not in self.changed_data:
            return membership
        if data["active"]:
            return accounts.membership_grant(
                actor=self.actor,
                user=membership.user,
                role=membership.role,
                clinic=membership.clinic,
            )
        return accounts.membership_revoke(
            actor=self.actor, membership=membership, reason=data["reason"]
        )


@admin.register(Membership)
class MembershipAdmin(ServiceAdmin):
    clinic_path = "clinic"
    list_display = ["user", "role", "clinic", "active", "created_at"]
    list_select_related = ["user", "clinic"]
    search_fields = ["user__username", "user__first_name", "user__last_name", "clinic__name"]
    list_filter = ["role", "active", "clinic"]
    fields = ["user", "role", "clinic", "active", "created_at", "audit_trail_link"]
    readonly_fields = ["created_at", "audit_trail_link"]
    add_form = MembershipAddForm
    add_fieldsets = [(None, {"fields": ["user", "role", "clinic"]})]
    update_form = MembershipUpdateForm
    update_fieldsets = [
        (None, {"fields": ["user", "role", "clinic", "active", "reason"]}),
        ("Record", {"fields": ["created_at", "audit_trail_link"]}),
    ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is not None and self.has_change_permission(request, obj):
            return ["user", "role", "clinic", "created_at", "audit_trail_link"]
        return super().get_readonly_fields(request, obj)
