"""Admin for donors and their marker results; the eligibility determination is signed on an
intermediate page."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse

from common.admin import signature_form_data
from lots import forms as lot_forms
from lots import services
from lots.admin.shared import SIGNATURE_TEMPLATE
from lots.models import Donor, DonorMarkerResult, LotDonor
from providers.admin_base import ReadOnlyInline, ServiceAdmin, can_write, signature_page


class DonorMarkerResultInline(ReadOnlyInline):
    model = DonorMarkerResult
    select_related = ("marker", "donor")
    fields = ["marker", "result", "tested_on", "laboratory", "test_method"]


class DonorLotInline(ReadOnlyInline):
    model = LotDonor
    verbose_name_plural = "lots made from this donation"
    select_related = ("lot__product", "donor")
    fields = ["lot"]


@admin.register(Donor)
class DonorAdmin(ServiceAdmin):
    list_display = ["code", "isbt_din", "tissue", "collection_date", "eligibility"]
    search_fields = ["code", "isbt_din", "testing_laboratory"]
    list_filter = ["eligibility", "tissue", "birth_mother_tested"]
    date_hierarchy = "collection_date"
    fieldsets = [
        (None, {"fields": ["code", "isbt_din", "tissue", "collection_date", "specimen_date"]}),
        ("Testing", {"fields": ["birth_mother_tested", "testing_laboratory"]}),
        (
            "Eligibility",
            {"fields": ["eligibility", "eligibility_decided_by", "eligibility_decided_at"]},
        ),
        ("Record", {"fields": ["created_at", "audit_trail_link"]}),
    ]
    readonly_fields = ["created_at", "audit_trail_link"]
    add_form = lot_forms.DonorAddForm
    add_fieldsets = [
        (None, {"fields": ["code", "isbt_din", "tissue", "collection_date", "specimen_date"]}),
        ("Testing", {"fields": ["birth_mother_tested", "testing_laboratory"]}),
    ]
    inlines = [DonorMarkerResultInline, DonorLotInline]
    actions = ["decide_eligibility"]

    def has_sign_permission(self, request: HttpRequest) -> bool:
        return can_write(request)

    @admin.action(
        description="Decide eligibility of selected donors (signed)", permissions=["sign"]
    )
    def decide_eligibility(self, request: HttpRequest, queryset: Any) -> HttpResponse | None:
        def sign_one(donor: Donor, data: dict[str, Any]) -> str:
            donor = services.donor_eligibility_decide(actor=request.user, donor=donor, **data)
            return f"Donor {donor.code} is now {donor.get_eligibility_display().lower()}."

        return signature_page(
            self,
            request,
            list(queryset),
            form=lot_forms.EligibilityForm(signature_form_data(request)),
            title="Sign a donor eligibility determination",
            sign_one=sign_one,
            template=SIGNATURE_TEMPLATE,
            action_name="decide_eligibility",
        )


@admin.register(DonorMarkerResult)
class DonorMarkerResultAdmin(ServiceAdmin):
    list_display = ["donor", "marker", "result", "tested_on", "laboratory"]
    list_select_related = ["donor", "marker"]
    search_fields = ["donor__code", "marker__code", "marker__name", "laboratory"]
    list_filter = ["result", "marker"]
    fields = [
        "donor",
        "marker",
        "result",
        "tested_on",
        "laboratory",
        "test_method",
        "audit_trail_link",
    ]
    readonly_fields = ["audit_trail_link"]
    add_form = lot_forms.DonorMarkerResultForm
    add_fieldsets = [
        (
            None,
            {
                "fields": [
                    "donor",
                    "marker",
                    "result",
                    "tested_on",
                    "laboratory",
                    "test_method",
                    "reason",
                ]
            },
        )
    ]
