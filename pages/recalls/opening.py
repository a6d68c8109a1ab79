"""Clinic pages, recalls: opening a recall (network quality managers): the scope and texts, a
preview of what the scope reaches, then the signature (`recalls.services.recall_open`). Lots and
the donor are found by typing (`scope_search`); the form never lists every one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.db.models import Count, OuterRef, Q, Sum
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from common.errors import DomainError
from lots.models import Donor, Lot, Product
from pages.base import form_problems, network_writer, page
from pages.recalls import scope_search
from pages.recalls.common import SignForm, _count, _sum
from pages.recalls.scope_search import scope_options
from providers.models import Clinic, Manufacturer
from recalls.models import RecallClass, RecallDepth, RecallLot
from recalls.services import RecallScopeRequest, recall_open
from stock.models import StockBalance
from treatments.models import TreatmentLine


class NamedChoice(forms.ModelChoiceField):  # type: ignore[type-arg]
    def label_from_instance(self, obj: Any) -> str:
        if isinstance(obj, Manufacturer):
            return str(obj.legal_name)
        return str(obj.name)


class RecallOpenForm(forms.Form):
    # Lots and donor are chosen through scope_search's options, never rendered as a choice of
    # every row; the fields still validate the posted ids against every lot and donor.
    lots = forms.ModelMultipleChoiceField(
        label=gettext_lazy("Lots"),
        queryset=Lot.objects.order_by("lot_number", "pk"),
        required=False,
        widget=forms.MultipleHiddenInput,
    )
    product = NamedChoice(
        label=gettext_lazy("Every lot of the product"),
        queryset=Product.objects.order_by("name", "pk"),
        required=False,
    )
    manufacturer = NamedChoice(
        label=gettext_lazy("Every lot of the manufacturer"),
        queryset=Manufacturer.objects.order_by("legal_name", "pk"),
        required=False,
    )
    donor = forms.ModelChoiceField(
        label=gettext_lazy("Every lot made from the donor"),
        queryset=Donor.objects.order_by("code", "pk"),
        required=False,
        widget=forms.HiddenInput,
    )
    manufactured_from = forms.DateField(
        label=gettext_lazy("Manufactured on or after"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    manufactured_to = forms.DateField(
        label=gettext_lazy("Manufactured on or before"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    recall_class = forms.ChoiceField(label=gettext_lazy("Class"), choices=RecallClass.choices)
    depth = forms.ChoiceField(label=gettext_lazy("Depth"), choices=RecallDepth.choices)
    reason = forms.CharField(
        label=gettext_lazy("Reason"),
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy("Why the product is recalled."),
    )
    hazard = forms.CharField(
        label=gettext_lazy("Hazard"),
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy("The hazard to patients, in plain words."),
    )
    instructions = forms.CharField(
        label=gettext_lazy("Instructions to clinics"),
        max_length=4000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    is_drill = forms.BooleanField(
        label=gettext_lazy("Drill (a mock recall: no lot changes, no stock is blocked)"),
        required=False,
    )
    withdrawn_at = forms.DateField(
        label=gettext_lazy("Withdrawn on (entered after the fact)"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text=gettext_lazy(
            "Only for a recall entered after the fact: the day its lots were really withdrawn. "
            "Its timings count from that day."
        ),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not (
            data.get("lots") or data.get("product") or data.get("manufacturer") or data.get("donor")
        ):
            raise forms.ValidationError(
                _("Name the lots, a product, a manufacturer or a donor to recall.")
            )
        start, end = data.get("manufactured_from"), data.get("manufactured_to")
        if start and end and start > end:
            self.add_error(
                "manufactured_from", _("The first day of manufacture is after the last.")
            )
        return data

    def scope(self) -> RecallScopeRequest:
        data = self.cleaned_data
        return RecallScopeRequest(
            lot_ids=[lot.pk for lot in data["lots"]],
            donor_id=data["donor"].pk if data["donor"] else None,
            product_id=data["product"].pk if data["product"] else None,
            manufacturer_id=data["manufacturer"].pk if data["manufacturer"] else None,
            manufactured_from=data["manufactured_from"],
            manufactured_to=data["manufactured_to"],
        )


def form_as_typed(data: QueryDict) -> RecallOpenForm:
    """The form holding what was typed, unvalidated: finding lots or a donor is not a submission,
    so it shows no field as missing."""
    form = RecallOpenForm()
    form.initial = {
        name: field.widget.value_from_datadict(data, {}, name)
        for name, field in form.fields.items()
    }
    return form


@dataclass(frozen=True)
class ClinicReach:
    name: str
    patients: int
    units_used: int
    units_held: int


@dataclass(frozen=True)
class Reach:
    """What a scope reaches now: the figures `recall_open` would freeze."""

    lots: list[Lot]
    clinics: list[ClinicReach]
    treatments: int
    patients: int
    units_used: int
    units_held: int
    taken: list[tuple[str, str]]  # (lot number, open recall) already in an open recall

    @property
    def clinic_count(self) -> int:
        return len(self.clinics)


def scope_reach(scope: RecallScopeRequest) -> Reach:
    """Exposures are the treatment lines of the scoped lots; stock is what clinics hold of them
    now. Four queries whatever the scope's size."""
    lots = list(scope.forward_scope().lots().select_related("product").order_by("lot_number"))
    lot_ids = [lot.pk for lot in lots]
    lines = TreatmentLine.objects.filter(lot_id__in=lot_ids)
    balances = StockBalance.objects.filter(lot_id__in=lot_ids, quantity__gt=0)
    totals = lines.aggregate(
        treatments=Count("treatment_id", distinct=True),
        patients=Count("treatment__patient_id", distinct=True),
        units=Coalesce(Sum("units"), 0),
    )
    clinic = OuterRef("pk")
    rows = (
        Clinic.objects.filter(
            Q(pk__in=lines.values("treatment__clinic_id")) | Q(pk__in=balances.values("clinic_id"))
        )
        .annotate(
            patient_count=_count(
                lines.filter(treatment__clinic_id=clinic), "treatment__patient_id", distinct=True
            ),
            units_used=_sum(lines.filter(treatment__clinic_id=clinic), "units"),
            units_held=_sum(balances.filter(clinic_id=clinic), "quantity"),
        )
        .order_by("name", "pk")
    )
    clinics = [
        ClinicReach(row.name, row.patient_count, row.units_used, row.units_held) for row in rows
    ]
    taken = [
        (row.lot.lot_number, row.recall.reference)
        for row in RecallLot.objects.filter(lot_id__in=lot_ids, active=True)
        .select_related("lot", "recall")
        .order_by("lot__lot_number")
    ]
    return Reach(
        lots=lots,
        clinics=clinics,
        treatments=totals["treatments"],
        patients=totals["patients"],
        units_used=totals["units"],
        units_held=sum(row.units_held for row in clinics),
        taken=taken,
    )


@page(allowed=network_writer, refusal=scope_search.REFUSAL)
def recall_new(request: HttpRequest) -> HttpResponse:
    context: dict[str, Any] = {"nav": "recalls", "step": "form"}
    if request.method != "POST":
        context.update(form=RecallOpenForm(), **scope_options(request.GET))
        return render(request, "pages/recalls/open.html", context)
    form = RecallOpenForm(request.POST)
    context["form"] = form
    action = request.POST.get("action", "preview")
    if action == "find":
        context.update(form=form_as_typed(request.POST), **scope_options(request.POST))
        return render(request, "pages/recalls/open.html", context)
    if action == "edit":
        context.update(scope_options(request.POST))
        return render(request, "pages/recalls/open.html", context)
    if not form.is_valid():
        context.update(scope_options(request.POST))
        return render(request, "pages/recalls/open.html", context, status=400)
    try:
        reach = scope_reach(form.scope())
    except DomainError as error:
        form_problems(form, error)
        context.update(scope_options(request.POST))
        return render(request, "pages/recalls/open.html", context, status=400)
    sign_form = SignForm(request.POST if action == "sign" else None)
    context.update(
        step="preview",
        reach=reach,
        sign_form=sign_form,
        class_label=RecallClass(form.cleaned_data["recall_class"]).label,
        depth_label=RecallDepth(form.cleaned_data["depth"]).label,
    )
    if action != "sign":
        return render(request, "pages/recalls/open.html", context)
    if not sign_form.is_valid():
        return render(request, "pages/recalls/open.html", context, status=400)
    data = form.cleaned_data
    try:
        recall = recall_open(
            actor=request.user,
            password=sign_form.cleaned_data["password"],
            recall_class=data["recall_class"],
            depth=data["depth"],
            reason=data["reason"],
            hazard=data["hazard"],
            instructions=data["instructions"],
            is_drill=data["is_drill"],
            scope=form.scope(),
            withdrawn_at=data["withdrawn_at"],
        )
    except DomainError as error:
        context["problems"] = list(error.problems)
        return render(request, "pages/recalls/open.html", context, status=error.status)
    messages.success(
        request,
        _("Recall %(reference)s is open; the clinics are being notified.")
        % {"reference": recall.reference},
    )
    return redirect("pages:recall", recall_id=recall.pk)


urlpatterns = [
    path("recalls/new/", recall_new, name="recall-new"),
    *scope_search.urlpatterns,
]
