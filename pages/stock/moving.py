"""Clinic pages, stock: moving units out (transfer, a decision on quarantined units, wastage,
return to the manufacturer, destruction) through stock.services; a refusal is shown on the form
in the service's own words and changes nothing."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from common.errors import DomainError
from pages.base import form_problems, page, refused
from pages.stock.common import (
    STOCK_REFUSAL,
    badge_code,
    keeps_stock,
    keeps_stock_at,
    why_not_usable,
)
from providers.access import access_for
from providers.models import Clinic
from stock import services
from stock.models import MovementKind, StockBalance, StockState
from stock.selectors import stock_balance_list

ACTIONS: dict[str, tuple[str, Any]] = {
    "transfer": ("", gettext_lazy("Transfer to another clinic")),
    "decide": ("", gettext_lazy("Decide on quarantined units")),
    "waste": (MovementKind.WASTAGE.value, gettext_lazy("Write off as waste")),
    "return": (MovementKind.RETURN.value, gettext_lazy("Return to the manufacturer")),
    "destroy": (MovementKind.DESTRUCTION.value, gettext_lazy("Record destruction")),
}
# Which stock each action takes units from (None: any state).
ACTION_STATES: dict[str, str | None] = {
    "transfer": StockState.ACCEPTED,
    "decide": StockState.QUARANTINED,
    "waste": None,
    "return": None,
    "destroy": None,
}


class MoveForm(forms.Form):
    to_clinic = forms.ModelChoiceField(
        Clinic.objects.none(),
        label=gettext_lazy("To clinic"),
        help_text=gettext_lazy(
            "The units arrive quarantined; the receiving clinic checks them before use."
        ),
    )
    decision = forms.ChoiceField(
        choices=[
            ("accept", gettext_lazy("Accept into usable stock")),
            ("reject", gettext_lazy("Reject: do not use")),
        ],
        widget=forms.RadioSelect,
        label=gettext_lazy("Decision"),
    )
    quantity = forms.IntegerField(min_value=1, max_value=1_000_000, label=gettext_lazy("Units"))
    reason = forms.CharField(
        max_length=2000,
        label=gettext_lazy("Reason"),
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=gettext_lazy("Kept in the ledger and the audit trail with your name."),
    )

    def __init__(self, *args: Any, balance: StockBalance, action: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["quantity"].help_text = _("At most %(quantity)s.") % {
            "quantity": balance.quantity
        }
        if action == "transfer":
            self.fields["to_clinic"].queryset = Clinic.objects.exclude(  # type: ignore[attr-defined]
                pk=balance.clinic_id
            ).order_by("name")
        else:
            del self.fields["to_clinic"]
        if action != "decide":
            del self.fields["decision"]


def _record_move(request: HttpRequest, balance: StockBalance, action: str, data: Any) -> str:
    """Call the service for `action`; return what was done, in words. Raises DomainError."""
    lot, units = balance.lot, data["quantity"]
    if action == "transfer":
        services.stock_transfer(
            actor=request.user,
            from_clinic=balance.clinic,
            to_clinic=data["to_clinic"],
            lot=lot,
            quantity=units,
            reason=data["reason"],
        )
        return _("%(quantity)s unit(s) of lot %(lot)s sent to %(clinic)s.") % {
            "quantity": units,
            "lot": lot.lot_number,
            "clinic": data["to_clinic"].name,
        }
    if action == "decide":
        accept = data["decision"] == "accept"
        services.stock_quarantine_resolve(
            actor=request.user,
            clinic=balance.clinic,
            lot=lot,
            quantity=units,
            accept=accept,
            reason=data["reason"],
        )
        done = _("accepted into usable stock") if accept else _("rejected")
        return _("%(quantity)s quarantined unit(s) of lot %(lot)s %(done)s.") % {
            "quantity": units,
            "lot": lot.lot_number,
            "done": done,
        }
    kind = ACTIONS[action][0]
    services.stock_write_off(
        actor=request.user,
        clinic=balance.clinic,
        lot=lot,
        quantity=units,
        kind=kind,
        reason=data["reason"],
        state=balance.state,
    )
    return _("%(quantity)s unit(s) of lot %(lot)s written off: %(kind)s.") % {
        "quantity": units,
        "lot": lot.lot_number,
        "kind": MovementKind(kind).label.lower(),
    }


@page(allowed=keeps_stock, refusal=STOCK_REFUSAL)
def stock_move(request: HttpRequest, balance_id: int, action: str) -> HttpResponse:
    access = access_for(request)
    balance = stock_balance_list(user=request.user).filter(pk=balance_id).first()
    if balance is None or action not in ACTIONS:
        return refused(
            request, _("No stock of yours has this number. Open the stock page."), status=404
        )
    if not keeps_stock_at(access, balance.clinic_id):
        return refused(request, str(STOCK_REFUSAL))
    title = ACTIONS[action][1]
    wanted = ACTION_STATES[action]
    if wanted is not None and balance.state != wanted:
        return refused(
            request,
            _("%(action)s takes %(wanted)s stock; this stock is %(state)s.")
            % {
                "action": title,
                "wanted": StockState(wanted).label.lower(),
                "state": balance.get_state_display().lower(),
            },
            status=409,
        )
    form = MoveForm(request.POST or None, balance=balance, action=action)
    if request.method == "POST" and form.is_valid():
        try:
            done = _record_move(request, balance, action, form.cleaned_data)
        except DomainError as error:
            form_problems(form, error)
        else:
            messages.success(request, done)
            query = urlencode({"lot": balance.lot_id, "clinic": balance.clinic_id})
            return redirect(f"{reverse('pages:stock')}?{query}")
    today = timezone.localdate()
    return render(
        request,
        "pages/stock/move.html",
        {
            "nav": "stock",
            "form": form,
            "balance": balance,
            "title": title,
            "action": action,
            "why_not": why_not_usable(balance, today),
            "badge": badge_code(balance, today),
        },
    )


urlpatterns = [
    path("stock/<int:balance_id>/<slug:action>/", stock_move, name="stock-move"),
]
