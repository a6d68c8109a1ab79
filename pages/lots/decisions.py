"""Clinic pages, lots: the signed decisions on a lot (release, reject, hold). Only a network
quality manager (`Access.writes_network`) signs them, through the same services as the API's
release, reject and hold endpoints."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy

from common.errors import DomainError, Problem
from lots import services
from lots.models import Lot, LotAction, LotStatus, LotStatusChange, SignatureMeaning
from lots.selectors import RELEASABLE_FROM, ReleaseCheck, lot_release_check
from pages.base import form_problems, network_writer, page
from pages.lots.common import STATUS_LABELS, _lot_or_none, _no_such_lot, lot_title


@dataclass(frozen=True)
class Decision:
    action: LotAction
    url_name: str
    allowed_from: tuple[str, ...]
    meanings: tuple[SignatureMeaning, ...]
    service: Callable[..., LotStatusChange]
    heading: Any
    button: Any
    done: Any


DECISIONS = {
    LotAction.RELEASE: Decision(
        LotAction.RELEASE,
        "pages:lot-release",
        RELEASABLE_FROM,
        (SignatureMeaning.APPROVAL, SignatureMeaning.REVIEW, SignatureMeaning.RESPONSIBILITY),
        services.lot_release,
        gettext_lazy("Release %(lot)s"),
        gettext_lazy("Sign and release"),
        gettext_lazy("%(lot)s is released."),
    ),
    LotAction.REJECT: Decision(
        LotAction.REJECT,
        "pages:lot-reject",
        RELEASABLE_FROM,
        (SignatureMeaning.REJECTION, SignatureMeaning.REVIEW, SignatureMeaning.RESPONSIBILITY),
        services.lot_reject,
        gettext_lazy("Reject %(lot)s"),
        gettext_lazy("Sign and reject"),
        gettext_lazy("%(lot)s is rejected: it can never be used."),
    ),
    LotAction.HOLD: Decision(
        LotAction.HOLD,
        "pages:lot-hold",
        (LotStatus.RELEASED,),
        (SignatureMeaning.REVIEW, SignatureMeaning.RESPONSIBILITY),
        services.lot_hold,
        gettext_lazy("Put %(lot)s on hold"),
        gettext_lazy("Sign and put on hold"),
        gettext_lazy("%(lot)s is on hold."),
    ),
}

MEANING_LABELS = {
    SignatureMeaning.APPROVAL: gettext_lazy("Approval: the lot meets its release criteria"),
    SignatureMeaning.REJECTION: gettext_lazy("Rejection: the lot must not be used"),
    SignatureMeaning.REVIEW: gettext_lazy("Review"),
    SignatureMeaning.RESPONSIBILITY: gettext_lazy("Responsibility"),
}


def _actions(lot: Lot) -> list[tuple[str, Any, str]]:
    """The decisions a quality manager can take on the lot in its status: (url, label, style)."""
    labels = {
        LotAction.RELEASE: (gettext_lazy("Release…"), "primary"),
        LotAction.REJECT: (gettext_lazy("Reject…"), "danger"),
        LotAction.HOLD: (gettext_lazy("Put on hold…"), "danger"),
    }
    return [
        (reverse(decision.url_name, args=[lot.pk]), *labels[action])
        for action, decision in DECISIONS.items()
        if lot.status in decision.allowed_from
    ]


class SignatureForm(forms.Form):
    password = forms.CharField(
        label=gettext_lazy("Your password"),
        strip=False,
        max_length=4096,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text=gettext_lazy("Re-enter your own password: it is your signature."),
    )
    meaning = forms.ChoiceField(label=gettext_lazy("Meaning of your signature"))
    reason = forms.CharField(
        label=gettext_lazy("Reason"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy("Kept with the lot's history beside your signature."),
    )

    def __init__(self, *args: Any, decision: Decision, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, described in self.fields.items():
            if described.help_text:
                described.widget.attrs["aria-describedby"] = f"id_{name}-help"
        field = self.fields["meaning"]
        if isinstance(field, forms.ChoiceField):
            field.choices = [
                (meaning.value, MEANING_LABELS[meaning]) for meaning in decision.meanings
            ]


class ReleaseForm(SignatureForm):
    effective_date = forms.DateField(
        label=gettext_lazy("Released on (for a past release)"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=gettext_lazy(
            "Leave empty to release now. For a lot released long ago, give the day it was "
            "released: every rule is judged on that day and the release is marked retrospective."
        ),
    )


def _decide(request: HttpRequest, lot_id: int, decision: Decision) -> HttpResponse:
    lot = _lot_or_none(lot_id)
    if lot is None:
        return _no_such_lot(request)
    title = lot_title(lot)
    signer: Any = request.user
    unmet: list[Problem] = []
    releasing = decision.action == LotAction.RELEASE
    stated = _stated_day(request) if releasing else None
    form_class = ReleaseForm if releasing else SignatureForm
    form = form_class(request.POST or None, decision=decision, initial={"effective_date": stated})
    if request.method == "POST" and form.is_valid():
        try:
            decision.service(actor=request.user, lot_id=lot.pk, **form.cleaned_data)
        except DomainError as error:
            if decision.action == LotAction.RELEASE and error.status == 409:
                unmet = list(error.problems)
            else:
                form_problems(form, error)
        else:
            messages.success(request, str(decision.done) % {"lot": title})
            return redirect("pages:lot", lot_id=lot.pk)
    check: ReleaseCheck | None = None
    if releasing:
        check = (
            lot_release_check(lot=lot, on=stated, retrospective=True)
            if stated is not None
            else lot_release_check(lot=lot)
        )
        if not unmet:
            unmet = check.problems
    return render(
        request,
        "pages/lots/decide.html",
        {
            "nav": "lots",
            "lot": lot,
            "title": title,
            "heading": str(decision.heading) % {"lot": title},
            "signer": signer.get_full_name() or signer.get_username(),
            "button": decision.button,
            "decision": decision,
            "form": form,
            "unmet": unmet,
            "warnings": check.warnings if check is not None else [],
            "allowed": lot.status in decision.allowed_from,
            "stated": stated,
            "status_label": STATUS_LABELS.get(LotStatus(lot.status), lot.status),
        },
    )


def _stated_day(request: HttpRequest) -> datetime.date | None:
    """The past day a retrospective release is judged on, as the page's check-as-of form or the
    signing form states it; None for a release now (or a day that is not one, which the signing
    form then names)."""
    given = request.POST.get("effective_date") or request.GET.get("effective_date") or ""
    try:
        day = datetime.date.fromisoformat(given)
    except ValueError:
        return None
    return day if day < timezone.localdate() else None


# Lazy: translated when the refusal is shown, in the user's language.
NOT_QM = cast(str, gettext_lazy("Only a quality manager of the network signs decisions on lots."))


@page(allowed=network_writer, refusal=NOT_QM)
def lot_release(request: HttpRequest, lot_id: int) -> HttpResponse:
    return _decide(request, lot_id, DECISIONS[LotAction.RELEASE])


@page(allowed=network_writer, refusal=NOT_QM)
def lot_reject(request: HttpRequest, lot_id: int) -> HttpResponse:
    return _decide(request, lot_id, DECISIONS[LotAction.REJECT])


@page(allowed=network_writer, refusal=NOT_QM)
def lot_hold(request: HttpRequest, lot_id: int) -> HttpResponse:
    return _decide(request, lot_id, DECISIONS[LotAction.HOLD])


urlpatterns = [
    path("lots/<int:lot_id>/release/", lot_release, name="lot-release"),
    path("lots/<int:lot_id>/reject/", lot_reject, name="lot-reject"),
    path("lots/<int:lot_id>/hold/", lot_hold, name="lot-hold"),
]
