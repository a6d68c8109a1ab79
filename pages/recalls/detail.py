"""Clinic pages, recalls: one recall: its texts, lots, a chart of progress over time, each
clinic's acknowledgement and stock, notices (quality managers resend failed ones), acknowledging
and recording dispositions (clinic staff)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Min
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from common.errors import DomainError
from pages.base import page, refused
from pages.charts import Series, step_chart
from pages.recalls.common import CLINIC_ADMINISTRATOR, PAGE_SIZE, _recall_or_404
from pages.templatetags.pages import when
from providers.access import access_for
from providers.models import Clinic, Role
from recalls.models import (
    AcknowledgementVia,
    DispositionKind,
    PatientContactAttempt,
    Recall,
    RecallDepth,
    RecallStatus,
)
from recalls.selectors import (
    FINAL_OUTCOMES,
    acknowledgement_list,
    disposition_list,
    notification_list,
    recall_effectiveness,
    stock_to_account_for,
)
from recalls.services import recall_acknowledge, recall_disposition_record, recall_notice_resend


def progress_chart(
    recall: Recall, clinic_ids: list[int] | None, *, totals: tuple[int, int, int]
) -> Any:
    """Acknowledgements, patients contacted (first final outcome per patient) and units
    accounted for, over time from the opening. Three queries."""
    acknowledged = [
        (row.acknowledged_at, 1)
        for row in acknowledgement_list(recall=recall, clinic_ids=clinic_ids)
    ]
    attempts = PatientContactAttempt.objects.filter(recall=recall, outcome__in=FINAL_OUTCOMES)
    if clinic_ids is not None:
        attempts = attempts.filter(patient__clinic_id__in=clinic_ids)
    contacted = [
        (at, 1)
        for at in attempts.order_by()
        .values("patient_id")
        .annotate(first=Min("attempted_at"))
        .values_list("first", flat=True)
    ]
    disposed = [
        (row.recorded_at, row.quantity)
        for row in disposition_list(recall=recall, clinic_ids=clinic_ids)
    ]
    clinics_total, patients_total, units_total = totals
    series = [
        Series("acknowledged", _("Clinics acknowledged"), clinics_total, acknowledged),
        Series("contacted", _("Patients contacted"), patients_total, contacted),
        Series("accounted", _("Units accounted for"), units_total, disposed),
    ]
    end = recall.closed_at or timezone.now()
    description = _(
        "From %(start)s to %(end)s: %(clinics)s of %(clinics_total)s clinics acknowledged, "
        "%(patients)s of %(patients_total)s patients contacted, %(units)s of %(units_total)s "
        "units returned or destroyed."
    ) % {
        "start": when(recall.opened_at),
        "end": when(end),
        "clinics": len(acknowledged),
        "clinics_total": clinics_total,
        "patients": len(contacted),
        "patients_total": patients_total,
        "units": sum(quantity for _at, quantity in disposed),
        "units_total": units_total,
    }
    return step_chart(
        title=_("Progress of recall %(reference)s over time") % {"reference": recall.reference},
        description=description,
        series=series,
        start=recall.opened_at,
        end=end,
        moment_label=when,
    )


class ResendForm(forms.Form):
    notice = forms.IntegerField(widget=forms.HiddenInput)
    reason = forms.CharField(label=gettext_lazy("Why resend"), max_length=500)


class DispositionForm(forms.Form):
    stock = forms.ChoiceField(label=gettext_lazy("Clinic and lot"))
    kind = forms.ChoiceField(label=gettext_lazy("What was done"), choices=DispositionKind.choices)
    quantity = forms.IntegerField(label=gettext_lazy("Units"), min_value=1, max_value=2**31 - 1)

    def __init__(self, *args: Any, rows: list[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rows = {f"{row.clinic_id}-{row.lot_id}": row for row in rows}
        stock: Any = self.fields["stock"]
        stock.choices = [
            (
                key,
                _("%(clinic)s: lot %(lot)s (%(left)s of %(held)s units left)")
                % {
                    "clinic": row.clinic.name,
                    "lot": row.lot.lot_number,
                    "left": row.quantity_outstanding,
                    "held": row.quantity_held,
                },
            )
            for key, row in self.rows.items()
        ]


def _detail_context(request: HttpRequest, recall: Recall) -> dict[str, Any]:
    access = access_for(request)
    clinic_ids = access.visible_clinic_ids
    effectiveness = recall_effectiveness(recall=recall, clinic_ids=clinic_ids)
    stock = list(stock_to_account_for(recall=recall, clinic_ids=clinic_ids))
    is_open = recall.status == RecallStatus.OPEN
    may_write = access.writes_clinic_work or access.writes_network
    ackable = [
        clinic
        for clinic in effectiveness.clinics
        if not clinic.acknowledged
        and access.holds(CLINIC_ADMINISTRATOR, clinic_id=clinic.clinic_id)
    ]
    disposable = [
        row
        for row in stock
        if row.quantity_outstanding > 0
        and access.holds_any((Role.CLINIC_ADMINISTRATOR, Role.CLINICIAN), clinic_id=row.clinic_id)
    ]
    call_lists = [
        clinic
        for clinic in effectiveness.clinics
        if recall.depth == RecallDepth.PATIENT
        and clinic.patients_exposed
        and access.may_read_contact(clinic.clinic_id)
    ]
    notices = (
        Paginator(notification_list(recall=recall, clinic_ids=clinic_ids), PAGE_SIZE).get_page(
            request.GET.get("notices")
        )
        if access.reads_network
        else None
    )
    dispositions = Paginator(
        disposition_list(recall=recall, clinic_ids=clinic_ids), PAGE_SIZE
    ).get_page(request.GET.get("dispositions"))
    return {
        "nav": "recalls",
        "recall": recall,
        "effectiveness": effectiveness,
        "stock": stock,
        "dispositions": dispositions,
        "notices": notices,
        "chart": progress_chart(
            recall,
            clinic_ids,
            totals=(
                effectiveness.clinics_total,
                effectiveness.patients_exposed,
                effectiveness.units_held,
            ),
        ),
        "bars": [
            (
                _("Clinics acknowledged"),
                effectiveness.clinics_acknowledged,
                effectiveness.clinics_total,
            ),
            (
                _("Patients contacted"),
                effectiveness.patients_contacted,
                effectiveness.patients_exposed,
            ),
            (_("Units accounted for"), effectiveness.units_accounted, effectiveness.units_held),
        ],
        "ackable": ackable if is_open and may_write else [],
        "disposition_form": (
            DispositionForm(rows=disposable) if is_open and disposable and may_write else None
        ),
        "call_lists": call_lists,
        "may_resend": is_open and access.writes_network,
        "may_close": is_open and access.writes_network,
        "resend_form": None,
        "problems": [],
    }


@page()
def recall_detail(request: HttpRequest, recall_id: int) -> HttpResponse:
    recall = _recall_or_404(request, recall_id)
    if request.method == "POST":
        return _act(request, recall)
    return render(request, "pages/recalls/detail.html", _detail_context(request, recall))


def _act(request: HttpRequest, recall: Recall) -> HttpResponse:
    """The small writes on the recall's page: acknowledge, record a disposition, resend."""
    access = access_for(request)
    if not (access.writes_clinic_work or access.writes_network):
        return refused(request, _("Your role reads recalls; it does not change them."))
    action = request.POST.get("action")
    context = _detail_context(request, recall)
    try:
        if action == "acknowledge":
            clinic = next(
                (
                    c
                    for c in context["effectiveness"].clinics
                    if str(c.clinic_id) == request.POST.get("clinic")
                ),
                None,
            )
            if clinic is None:
                raise Http404(_("No such clinic in this recall."))
            recall_acknowledge(
                recall=recall,
                clinic=Clinic.objects.get(pk=clinic.clinic_id),
                via=AcknowledgementVia.ADMIN,
                actor=request.user,
                name=request.POST.get("name", ""),
            )
            done = _("%(clinic)s acknowledged %(reference)s.") % {
                "clinic": clinic.clinic_name,
                "reference": recall.reference,
            }
        elif action == "disposition":
            form = context["disposition_form"] or DispositionForm(rows=[])
            form = DispositionForm(request.POST, rows=list(form.rows.values()))
            context["disposition_form"] = form
            if not form.is_valid():
                return render(request, "pages/recalls/detail.html", context, status=400)
            row = form.rows[form.cleaned_data["stock"]]
            recall_disposition_record(
                recall=recall,
                clinic=row.clinic,
                lot=row.lot,
                kind=form.cleaned_data["kind"],
                quantity=form.cleaned_data["quantity"],
                actor=request.user,
            )
            done = _("Recorded %(quantity)s unit(s) of lot %(lot)s.") % {
                "quantity": form.cleaned_data["quantity"],
                "lot": row.lot.lot_number,
            }
        elif action == "resend":
            if not access.writes_network:
                return refused(request, _("Only a quality manager resends a notice."))
            resend = ResendForm(request.POST)
            notice = None
            if resend.is_valid():
                notice = (
                    notification_list(recall=recall, clinic_ids=access.visible_clinic_ids)
                    .filter(pk=resend.cleaned_data["notice"])
                    .first()
                )
            if notice is None:
                context["resend_form"] = resend
                context["problems"] = [_("Give a reason to resend the notice.")]
                return render(request, "pages/recalls/detail.html", context, status=400)
            recall_notice_resend(
                actor=request.user, notification=notice, reason=resend.cleaned_data["reason"]
            )
            done = _("The notice to %(recipient)s is queued again.") % {
                "recipient": notice.recipient
            }
        else:
            raise Http404(_("Nothing to do."))
    except DomainError as error:
        context = _detail_context(request, recall)
        context["problems"] = [problem.message for problem in error.problems]
        return render(request, "pages/recalls/detail.html", context, status=error.status)
    messages.success(request, done)
    return redirect("pages:recall", recall_id=recall.pk)


urlpatterns = [
    path("recalls/<int:recall_id>/", recall_detail, name="recall"),
]
