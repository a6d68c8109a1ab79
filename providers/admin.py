"""Admin for manufacturers, clinics, practitioners and memberships. Every write is a service call
(common.admin)."""

from __future__ import annotations

from typing import Any, ClassVar, cast

from django import forms
from django.contrib import admin
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from common.admin import ServiceForm, changed_fields
from providers import (
    accounts,
    accounts_admin,  # noqa: F401 - registers the account admin
    services,
)
from providers.access import access_for
from providers.admin_base import ReadOnlyInline, ServiceAdmin, can_view
from providers.models import (
    Clinic,
    ClinicContact,
    ClinicPractitioner,
    Licence,
    Manufacturer,
    Membership,
    Practitioner,
    known_time_zones,
)

REASON_HELP = "Why the record changes; kept in the audit trail with your name."


def reason_field() -> forms.CharField:
    return forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), help_text=REASON_HELP)


# ---------------------------------------------------------------------------------------------
# Manufacturers


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


# ---------------------------------------------------------------------------------------------
# Clinics and their notification contacts


def _time_zone_choices() -> list[tuple[str, str]]:
    return [("UTC", "UTC"), *((name, name) for name in sorted(known_time_zones() - {"UTC"}))]


def time_zone_field() -> forms.ChoiceField:
    # A list rather than free text: a misspelt zone cannot be typed. The service checks it again.
    return forms.ChoiceField(
        choices=_time_zone_choices,
        initial="UTC",
        help_text=Clinic._meta.get_field("time_zone").help_text,
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
        fields = ["name", "address", "jurisdiction", "time_zone", "language", "consent_required"]

    def call_service(self, data: dict[str, Any]) -> Clinic:
        fields = changed_fields(self, ("name", "address", "jurisdiction", "time_zone", "language"))
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
    list_filter = ["jurisdiction", "consent_required"]
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


# ---------------------------------------------------------------------------------------------
# Practitioners and licences


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


# ---------------------------------------------------------------------------------------------
# Memberships


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
