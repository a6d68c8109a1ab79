"""Admin forms for the stock ledger: a receipt is a service form (common.admin.ServiceForm);
a transfer, a write-off and a quarantine decision are small forms on a balance row whose
`record` calls the service."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.admin.widgets import AdminSplitDateTime

from common.admin import ServiceForm
from providers.models import Clinic
from stock import services
from stock.models import MovementKind, Receipt, StockBalance

REASON_HELP = "Why; kept in the ledger and the audit trail with your name."


def _reason() -> forms.CharField:
    return forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), help_text=REASON_HELP)


class ReceiptForm(ServiceForm):
    received_at = forms.SplitDateTimeField(
        required=False,
        widget=AdminSplitDateTime,
        help_text="When the package arrived; empty for now.",
    )

    class Meta:
        model = Receipt
        fields = [
            "clinic",
            "lot",
            "quantity",
            "decision",
            "package_intact",
            "label_readable",
            "transport_min_celsius",
            "transport_max_celsius",
            "storage_location",
            "received_at",
            "notes",
        ]
        help_texts = {
            "decision": "Accept only when the package, the label and the transport temperature "
            "all pass; otherwise quarantine (to decide later) or reject.",
            "transport_min_celsius": "Lowest temperature the logger recorded in transit.",
            "transport_max_celsius": "Highest temperature the logger recorded in transit.",
        }

    def call_service(self, data: dict[str, Any]) -> Receipt:
        return services.stock_receive(actor=self.actor, **data)


class BalanceForm(forms.Form):
    """A movement out of one balance row (a lot in one state at one clinic)."""

    title = ""
    quantity = forms.IntegerField(min_value=1)
    reason = _reason()

    def __init__(self, *args: Any, balance: StockBalance, actor: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.balance, self.actor = balance, actor
        self.fields["quantity"].help_text = f"At most {balance.quantity}."

    def record(self) -> str:
        raise NotImplementedError


class TransferForm(BalanceForm):
    title = "Record a transfer"
    to_clinic = forms.ModelChoiceField(
        Clinic.objects.all(),
        help_text="The units arrive quarantined; the receiving clinic checks them before use.",
    )
    field_order = ["to_clinic", "quantity", "reason"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["to_clinic"].queryset = Clinic.objects.exclude(  # type: ignore[attr-defined]
            pk=self.balance.clinic_id
        )

    def record(self) -> str:
        data = self.cleaned_data
        services.stock_transfer(
            actor=self.actor,
            from_clinic=self.balance.clinic,
            to_clinic=data["to_clinic"],
            lot=self.balance.lot,
            quantity=data["quantity"],
            reason=data["reason"],
        )
        return (
            f"{data['quantity']} unit(s) of {self.balance.lot.lot_number} sent from "
            f"{self.balance.clinic.name} to {data['to_clinic'].name}, quarantined on arrival."
        )


class WriteOffForm(BalanceForm):
    title = "Record a write-off"
    kind = forms.ChoiceField(
        choices=[(kind.value, kind.label) for kind in services.WRITE_OFF_KINDS],
        initial=MovementKind.WASTAGE,
    )
    field_order = ["kind", "quantity", "reason"]

    def record(self) -> str:
        data = self.cleaned_data
        movement = services.stock_write_off(
            actor=self.actor,
            clinic=self.balance.clinic,
            lot=self.balance.lot,
            quantity=data["quantity"],
            kind=data["kind"],
            reason=data["reason"],
            state=self.balance.state,
        )
        return (
            f"{data['quantity']} unit(s) of {self.balance.lot.lot_number} written off at "
            f"{self.balance.clinic.name} ({movement.get_kind_display().lower()})."
        )


class QuarantineDecisionForm(BalanceForm):
    title = "Record a quarantine decision"
    decision = forms.ChoiceField(
        choices=[("accept", "Accept into usable stock"), ("reject", "Reject")],
        widget=forms.RadioSelect,
    )
    field_order = ["decision", "quantity", "reason"]

    def record(self) -> str:
        data = self.cleaned_data
        accept = data["decision"] == "accept"
        services.stock_quarantine_resolve(
            actor=self.actor,
            clinic=self.balance.clinic,
            lot=self.balance.lot,
            quantity=data["quantity"],
            accept=accept,
            reason=data["reason"],
        )
        outcome = "accepted into usable stock" if accept else "rejected"
        return (
            f"{data['quantity']} quarantined unit(s) of {self.balance.lot.lot_number} at "
            f"{self.balance.clinic.name} {outcome}."
        )
