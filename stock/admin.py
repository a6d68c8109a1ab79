"""Admin for receipts, the movement ledger and stock on hand. The ledger and the balances are
read-only; every change is a service call: a receipt through its add form, and a transfer, a
write-off or a quarantine decision through a small form on a balance row."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join

from common.admin import add_problems
from common.errors import DomainError
from lots.models import Lot
from providers.admin_base import (
    ClinicWorkAdmin,
    LotFilter,
    clinics_where,
    holds_any,
    untracked_urls,
)
from stock import forms as stock_forms
from stock.models import Receipt, StockBalance, StockMovement, StockState
from stock.selectors import receipt_list, stock_balance_list, stock_movement_list
from stock.services import STOCK_ROLES


@admin.register(Receipt)
class ReceiptAdmin(ClinicWorkAdmin):
    list_selector = staticmethod(receipt_list)
    write_roles = STOCK_ROLES
    list_display = [
        "received_at",
        "clinic",
        "lot",
        "quantity",
        "decision",
        "checks",
        "transport",
        "storage_location",
        "received_by",
    ]
    list_select_related = ["clinic", "lot__product", "received_by"]
    search_fields = ["lot__lot_number", "lot__product__name", "clinic__name", "storage_location"]
    list_filter = [
        "decision",
        ("clinic", admin.RelatedOnlyFieldListFilter),
        "package_intact",
        "label_readable",
    ]
    date_hierarchy = "received_at"
    fieldsets = [
        (None, {"fields": ["clinic", "lot", "quantity", "decision"]}),
        (
            "Checks at the door",
            {
                "fields": [
                    "package_intact",
                    "label_readable",
                    ("transport_min_celsius", "transport_max_celsius"),
                    "storage_location",
                ]
            },
        ),
        ("Record", {"fields": ["received_by", "received_at", "notes", "audit_trail_link"]}),
    ]
    readonly_fields = ["audit_trail_link"]
    add_form = stock_forms.ReceiptForm
    add_fieldsets = [
        (None, {"fields": ["clinic", "lot", "quantity", "decision"]}),
        (
            "Checks at the door",
            {
                "fields": [
                    "package_intact",
                    "label_readable",
                    ("transport_min_celsius", "transport_max_celsius"),
                    "storage_location",
                ]
            },
        ),
        ("Record", {"fields": ["received_at", "notes"]}),
    ]

    @admin.display(description="Package / label", boolean=True)
    def checks(self, obj: Receipt) -> bool:
        return obj.package_intact and obj.label_readable

    @admin.display(description="Transport °C")
    def transport(self, obj: Receipt) -> str:
        return f"{obj.transport_min_celsius} to {obj.transport_max_celsius}"

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "lot":
            kwargs["queryset"] = Lot.objects.select_related("product").order_by("lot_number")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(StockMovement)
class StockMovementAdmin(ClinicWorkAdmin):
    """The append-only ledger: each row is its own history (the database refuses changes)."""

    list_selector = staticmethod(stock_movement_list)
    list_display = [
        "occurred_at",
        "clinic",
        "lot",
        "kind",
        "state",
        "delta",
        "counterpart_clinic",
        "actor",
        "reason",
    ]
    list_select_related = ["clinic", "lot__product", "actor", "counterpart_clinic"]
    search_fields = ["lot__lot_number", "reason", "clinic__name"]
    list_filter = [
        "kind",
        "state",
        ("clinic", admin.RelatedOnlyFieldListFilter),
        LotFilter,
    ]
    date_hierarchy = "occurred_at"
    fields = [
        "occurred_at",
        "clinic",
        "lot",
        "kind",
        "state",
        "delta",
        "counterpart_clinic",
        "receipt",
        "actor",
        "reason",
    ]
    change_form_template = "admin/change_form.html"

    def get_urls(self) -> list[URLPattern]:
        return untracked_urls(self)


# What can be recorded from a balance row: the form and the states it applies to.
BALANCE_ACTIONS: dict[str, tuple[type[stock_forms.BalanceForm], tuple[str, ...]]] = {
    "transfer": (stock_forms.TransferForm, (StockState.ACCEPTED,)),
    "write-off": (stock_forms.WriteOffForm, tuple(StockState.values)),
    "quarantine": (stock_forms.QuarantineDecisionForm, (StockState.QUARANTINED,)),
}


@admin.register(StockBalance)
class StockBalanceAdmin(ClinicWorkAdmin):
    """Stock on hand: units of a lot in one state at one clinic, kept in step with the ledger."""

    list_selector = staticmethod(stock_balance_list)
    list_display = ["clinic", "lot", "product", "state", "quantity", "expires_on"]
    list_select_related = ["clinic", "lot__product"]
    search_fields = ["lot__lot_number", "lot__product__name", "clinic__name"]
    list_filter = [
        "state",
        ("clinic", admin.RelatedOnlyFieldListFilter),
        "lot__status",
        "lot__product__source_kind",
    ]
    fields = ["clinic", "lot", "product", "state", "quantity", "expires_on", "movements_link"]
    readonly_fields = ["product", "expires_on", "movements_link"]
    change_form_template = "admin/stock/stockbalance/change_form.html"

    @admin.display(description="Product")
    def product(self, obj: StockBalance) -> str:
        return obj.lot.product.name

    @admin.display(description="Expires", ordering="lot__expires_on")
    def expires_on(self, obj: StockBalance) -> Any:
        return obj.lot.expires_on

    @admin.display(description="Ledger")
    def movements_link(self, obj: StockBalance) -> str:
        url = reverse("admin:stock_stockmovement_changelist")
        return format_html(
            '<a href="{}?clinic__id__exact={}&lot__id__exact={}&state__exact={}">'
            "Movements of this lot at this clinic</a>",
            url,
            obj.clinic_id,
            obj.lot_id,
            obj.state,
        )

    @admin.display(description="Record")
    def record_links(self, obj: StockBalance) -> str:
        return format_html_join(
            " | ",
            '<a href="{}">{}</a>',
            (
                (reverse("admin:stock_stockbalance_record", args=[obj.pk, action]), label)
                for action, label in self.actions_for(obj)
            ),
        )

    def get_list_display(self, request: HttpRequest) -> Any:
        if holds_any(request, STOCK_ROLES):
            return [*self.list_display, "record_links"]
        return self.list_display

    @staticmethod
    def actions_for(balance: StockBalance) -> list[tuple[str, str]]:
        return [
            (action, form_class.title.removeprefix("Record a ").capitalize())
            for action, (form_class, states) in BALANCE_ACTIONS.items()
            if balance.state in states
        ]

    def may_record(self, request: HttpRequest, balance: StockBalance) -> bool:
        return clinics_where(request, STOCK_ROLES).filter(pk=balance.clinic_id).exists()

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<path:object_id>/record/<str:action>/",
                self.admin_site.admin_view(self.record_view),
                name="stock_stockbalance_record",
            ),
            *untracked_urls(self),
        ]

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        extra_context = dict(extra_context or {})
        balance = self.get_object(request, unquote(object_id))
        if balance is not None and self.may_record(request, balance):
            extra_context["record_links"] = [
                (label, reverse("admin:stock_stockbalance_record", args=[balance.pk, action]))
                for action, label in self.actions_for(balance)
            ]
        return super().change_view(request, object_id, form_url, extra_context)

    def record_view(self, request: HttpRequest, object_id: str, action: str) -> HttpResponse:
        """A transfer, a write-off or a quarantine decision on one balance row."""
        balance = self.get_object(request, unquote(object_id))
        if balance is None or action not in BALANCE_ACTIONS:
            raise Http404
        form_class, states = BALANCE_ACTIONS[action]
        if balance.state not in states:
            raise Http404
        if not self.may_record(request, balance):
            raise PermissionDenied
        data = request.POST if request.method == "POST" else None
        form = form_class(data, balance=balance, actor=request.user)
        if form.is_bound and form.is_valid():
            try:
                message = form.record()
            except DomainError as error:
                add_problems(form, error)
            else:
                self.message_user(request, message)
                return HttpResponseRedirect(reverse("admin:stock_stockbalance_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": balance,
            "title": f"{form.title}: {balance.lot.lot_number} at {balance.clinic.name}",
            "form": form,
            "media": self.media + form.media,
        }
        return TemplateResponse(request, "admin/stock/stockbalance/record.html", context)
