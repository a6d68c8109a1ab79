"""Admin for user accounts, through the account services (providers.accounts).

Django's own user admin writes users directly (and deletes them); it is replaced by one whose every
change is a service call with a reason in the history: open an account, correct it, deactivate or
reactivate it, set a new password, lift a lock-out. Roles are granted on the membership pages and
revoked there. Account keepers (network quality managers and system administrators) write;
network auditors read.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import OuterRef, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext as _

from common.admin import ServiceForm
from common.lockout import is_locked_out, locked_out
from providers import accounts
from providers.access import access_for
from providers.admin_base import ReadOnlyInline, ServiceAdmin
from providers.models import Account, Membership

REASON_HELP = "Why the account changes; kept in the audit trail with your name."


class AccountAddForm(ServiceForm):
    password = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Initial password (checked by the password validators). Leave empty: the "
        "account cannot sign in until a password is set.",
    )

    class Meta:
        model = Account
        fields = ["username", "first_name", "last_name", "email", "is_staff"]

    def call_service(self, data: dict[str, Any]) -> Account:
        user: Account = accounts.user_create(
            actor=self.actor,
            username=data["username"],
            password=data.get("password") or None,
            first_name=data.get("first_name", ""),
            last_name=data.get("last_name", ""),
            email=data.get("email", ""),
            is_staff=data.get("is_staff", False),
        )
        return user


class AccountUpdateForm(ServiceForm):
    new_password = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Set a new password (revokes the account's API tokens). Leave empty to keep.",
    )
    lift_lockout = forms.BooleanField(
        required=False,
        label="Lift lock-out",
        help_text="Forget the wrong passwords that locked this account out.",
    )
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), help_text=REASON_HELP)

    class Meta:
        model = Account
        fields = ["first_name", "last_name", "email", "is_staff", "is_active"]

    def call_service(self, data: dict[str, Any]) -> Account:
        user: Account = self.instance
        actor, reason = self.actor, data["reason"]
        changed = {
            name: data[name]
            for name in ("first_name", "last_name", "email", "is_staff")
            if name in self.changed_data
        }
        # One decision, several services: all of it happens or none.
        with transaction.atomic():
            if changed:
                user = accounts.user_update(actor=actor, user=user, reason=reason, **changed)
            if "is_active" in self.changed_data:
                change = accounts.user_reactivate if data["is_active"] else accounts.user_deactivate
                user = change(actor=actor, user=user, reason=reason)
            if data.get("new_password"):
                user = accounts.user_password_set(
                    actor=actor, user=user, password=data["new_password"], reason=reason
                )
            if data.get("lift_lockout"):
                accounts.user_lockout_reset(actor=actor, user=user, reason=reason)
        return user

    def clean(self) -> dict[str, Any] | None:
        if not set(self.changed_data) - {"reason"}:
            raise forms.ValidationError(_("Change a field, or leave the page."), code="no_change")
        return super().clean()

    def problem_field(self, field: str | None) -> str | None:
        return "new_password" if field == "password" else field


class AccountMembershipInline(ReadOnlyInline):
    model = Membership
    fk_name = "user"
    select_related = ("clinic", "user")
    fields = ["role", "clinic", "active", "created_at"]
    verbose_name_plural = "roles (granted and revoked on the membership pages)"

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _may_read_accounts(request)


def _may_read_accounts(request: HttpRequest) -> bool:
    access = access_for(request)
    return access.is_staff and access.reads_accounts


def _may_keep_accounts(request: HttpRequest) -> bool:
    access = access_for(request)
    return access.is_staff and access.keeps_accounts


@admin.register(Account)
class AccountAdmin(ServiceAdmin):
    list_display = [
        "username",
        "first_name",
        "last_name",
        "email",
        "is_active",
        "is_staff",
        "is_superuser",
        "locked_out",
        "last_login",
    ]
    list_filter = ["is_active", "is_staff", "is_superuser", "memberships__role"]
    search_fields = ["username", "first_name", "last_name", "email"]
    ordering = ["username"]
    fields = [
        "username",
        "first_name",
        "last_name",
        "email",
        "is_active",
        "is_staff",
        "is_superuser",
        "date_joined",
        "last_login",
        "locked_out",
        "audit_trail_link",
    ]
    readonly_fields = [
        "username",
        "is_superuser",
        "date_joined",
        "last_login",
        "locked_out",
        "audit_trail_link",
    ]
    add_form = AccountAddForm
    add_fieldsets = [
        (None, {"fields": ["username", "first_name", "last_name", "email", "is_staff"]}),
        ("Password", {"fields": ["password"]}),
    ]
    update_form = AccountUpdateForm
    update_fieldsets = [
        (None, {"fields": ["username", "first_name", "last_name", "email", "is_staff"]}),
        ("Access", {"fields": ["is_active", "new_password", "locked_out", "lift_lockout"]}),
        ("Why", {"fields": ["reason"]}),
        ("Record", {"fields": ["is_superuser", "date_joined", "last_login", "audit_trail_link"]}),
    ]
    inlines = [AccountMembershipInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Account]:
        queryset: QuerySet[Account] = super().get_queryset(request)
        return queryset.annotate(locked_out_now=locked_out(OuterRef(Account.USERNAME_FIELD)))

    @admin.display(boolean=True, description="Locked out")
    def locked_out(self, obj: Account) -> bool:
        locked = getattr(obj, "locked_out_now", None)
        if locked is None:  # an account not read through get_queryset
            return is_locked_out(username=obj.get_username())
        return bool(locked)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return _may_read_accounts(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _may_read_accounts(request)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return _may_keep_accounts(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _may_keep_accounts(request)


# Every account is written through the services above; Django's user admin would write (and
# delete) users directly.
if admin.site.is_registered(User):
    admin.site.unregister(User)
