"""Clinic pages, treatments: what the use cases share: who records treatments, the patient at
the chair, a service's problem in plain words a clinician acts on, and naming lots and
practitioners."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from common.errors import Problem
from lots.models import Lot
from pages.base import refused
from pages.patients import patient_for
from pages.templatetags.pages import day
from recalls.selectors import recall_list
from treatments.models import Patient

RECORDS = cast(
    str,
    gettext_lazy(
        "Only a clinic's administrators and clinicians record treatments, for their own "
        "clinic's patients."
    ),
)


def lot_name(lot: Lot) -> str:
    return _("Lot %(number)s of %(product)s") % {
        "number": lot.lot_number,
        "product": lot.product.name,
    }


def recall_words(user: Any, lot: Lot) -> str:
    """Why a recalled lot may not be used, naming the recall to read."""
    recall = (
        recall_list(user=user)
        .filter(recall_lots__lot_id=lot.pk, recall_lots__active=True)
        .order_by("-opened_at")
        .first()
    )
    if recall is None:
        return _(
            "Lot %(number)s is recalled: set the vial aside and tell your quality manager."
        ) % {"number": lot.lot_number}
    return _("Lot %(number)s was recalled on %(day)s: set the vial aside, see recall %(ref)s.") % {
        "number": lot.lot_number,
        "day": day(recall.opened_at),
        "ref": recall.reference,
    }


NEXT_STEPS = {
    "lot_on_hold": gettext_lazy("Set the vial aside until quality lifts the hold."),
    "lot_not_released": gettext_lazy("Set the vial aside and use a released lot."),
    "lot_expired": gettext_lazy("Set the vial aside and use another lot."),
    "treatment_before_lot_made": gettext_lazy("Check the treatment time."),
    "stock_insufficient": gettext_lazy("Lower the units, or receive the stock first."),
    "practitioner_not_member": gettext_lazy("Choose another practitioner."),
    "practitioner_not_licensed": gettext_lazy("Choose another practitioner."),
    "route_not_permitted": gettext_lazy("Choose a route the product permits."),
    "product_not_authorised": gettext_lazy("Set the vial aside and use another product."),
    "product_investigational_only": gettext_lazy("Set the vial aside and use another product."),
    "consent_required": gettext_lazy("Tick consent once the patient has agreed."),
    "consent_after_treatment": gettext_lazy(
        "Leave the consent time empty, or give one before the treatment time."
    ),
    "consent_text_retired": gettext_lazy("Choose the consent text in use."),
    "treatment_in_future": gettext_lazy("Leave the time empty to use the moment you save."),
    "treatment_no_lot": gettext_lazy("Scan the vial used."),
}


def plain(user: Any, problem: Problem, lot: Lot | None) -> str:
    """A service's problem in words a clinician acts on: what is wrong, then what to do."""
    if problem.code == "lot_recalled" and lot is not None:
        return recall_words(user, lot)
    step = NEXT_STEPS.get(problem.code)
    return f"{problem.message} {step}" if step else problem.message


def chair_patient(request: HttpRequest) -> Patient | None:
    """The patient being treated: one of the user's own clinic's, from `patient`."""
    return patient_for(request, request.POST.get("patient") or request.GET.get("patient"))


def no_patient(request: HttpRequest) -> HttpResponse:
    return refused(
        request,
        _("No such patient at your clinic. Find the patient first, then start the treatment."),
        status=404,
    )


class PractitionerChoice(forms.ModelChoiceField):  # type: ignore[type-arg]
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.name} ({obj.get_profession_display().lower()})"
