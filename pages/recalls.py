"""Clinic pages: recalls.

- the list of recalls (open and closed) with their progress, filtered, paged and as CSV;
- opening a recall (network quality managers): the scope and texts, a preview of what the scope
  reaches, then the signature (`recalls.services.recall_open`);
- one recall: its texts, lots, a chart of progress over time, each clinic's acknowledgement and
  stock, notices (quality managers resend failed ones), acknowledging and recording dispositions
  (clinic staff), closing (quality managers, signed);
- a clinic's patient call list in a patient-level recall (that clinic's staff only), where each
  contact attempt is recorded.

Every write calls the recall services; every read goes through `recalls.selectors`, scoped to the
user's clinics. The list computes its progress figures in its one query (annotated subqueries), so
it runs the same number of queries whatever the number of recalls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.paginator import Page, Paginator
from django.db.models import (
    Count,
    F,
    Func,
    IntegerField,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from audit.models import ReadVia
from audit.services import contact_data_read_record
from common.csv import csv_response
from common.errors import DomainError
from lots.models import Donor, Lot, Product
from pages.base import form_problems, network_writer, page, refused
from pages.charts import Series, step_chart
from pages.templatetags.pages import when
from providers.access import Access, access_for
from providers.models import Clinic, Manufacturer, Role
from recalls.models import (
    Acknowledgement,
    AcknowledgementVia,
    ContactOutcome,
    DispositionKind,
    PatientContactAttempt,
    Recall,
    RecallClass,
    RecallDepth,
    RecallExposure,
    RecallLot,
    RecallStatus,
    RecallStock,
    StockDisposition,
)
from recalls.selectors import (
    FINAL_OUTCOMES,
    acknowledgement_list,
    disposition_list,
    notification_list,
    recall_detail_list,
    recall_effectiveness,
    recall_list,
    recall_patient_list,
    stock_to_account_for,
)
from recalls.services import (
    RecallScopeRequest,
    recall_acknowledge,
    recall_close,
    recall_contact_attempt_record,
    recall_disposition_record,
    recall_notice_resend,
    recall_open,
)
from recalls.services.closing import recall_close_problems
from stock.models import StockBalance
from treatments.models import TreatmentLine

PAGE_SIZE = 50
CLINIC_ADMINISTRATOR = Role.CLINIC_ADMINISTRATOR.value


# ---------------------------------------------------------------------------------------------
# Progress of many recalls in one query


def _count(queryset: QuerySet[Any], field: str = "pk", *, distinct: bool = False) -> Coalesce:
    """COUNT over a correlated subquery (one row, no GROUP BY), 0 when nothing matches."""
    template = "COUNT(DISTINCT %(expressions)s)" if distinct else "COUNT(%(expressions)s)"
    counted = queryset.order_by().annotate(
        n=Func(F(field), function="COUNT", template=template, output_field=IntegerField())
    )
    return Coalesce(Subquery(counted.values("n")[:1], output_field=IntegerField()), Value(0))


def _sum(queryset: QuerySet[Any], field: str) -> Coalesce:
    summed = queryset.order_by().annotate(
        n=Func(F(field), function="SUM", output_field=IntegerField())
    )
    return Coalesce(Subquery(summed.values("n")[:1], output_field=IntegerField()), Value(0))


def _within(queryset: QuerySet[Any], clinic_ids: list[int] | None, field: str) -> QuerySet[Any]:
    return queryset if clinic_ids is None else queryset.filter(**{f"{field}__in": clinic_ids})


def with_progress(recalls: QuerySet[Recall], clinic_ids: list[int] | None) -> QuerySet[Recall]:
    """The recalls annotated with the figures `recall_effectiveness` gives for one recall:
    consignee clinics and those that acknowledged, patients exposed and contacted (a final
    outcome on record), units held and accounted for; limited to `clinic_ids` when given."""
    recall = OuterRef("pk")
    consignee = OuterRef(OuterRef("pk"))
    clinics = _within(
        Clinic.objects.filter(
            Q(pk__in=RecallExposure.objects.filter(recall_id=consignee).values("clinic_id"))
            | Q(pk__in=RecallStock.objects.filter(recall_id=consignee).values("clinic_id"))
        ),
        clinic_ids,
        "pk",
    )
    return recalls.annotate(
        clinics_total=_count(clinics),
        clinics_acknowledged=_count(
            _within(Acknowledgement.objects.filter(recall_id=recall), clinic_ids, "clinic_id")
        ),
        patients_exposed=_count(
            _within(RecallExposure.objects.filter(recall_id=recall), clinic_ids, "clinic_id"),
            "patient_id",
            distinct=True,
        ),
        patients_contacted=_count(
            _within(
                PatientContactAttempt.objects.filter(recall_id=recall, outcome__in=FINAL_OUTCOMES),
                clinic_ids,
                "patient__clinic_id",
            ),
            "patient_id",
            distinct=True,
        ),
        units_held=_sum(
            _within(RecallStock.objects.filter(recall_id=recall), clinic_ids, "clinic_id"),
            "quantity_held",
        ),
        units_accounted=_sum(
            _within(StockDisposition.objects.filter(recall_id=recall), clinic_ids, "clinic_id"),
            "quantity",
        ),
    )


def percent(part: int, whole: int) -> int | None:
    return None if not whole else round(100 * min(part, whole) / whole)


def _user_of(access: Access) -> Any:
    """A stand-in for the user the access belongs to, for selectors that take a user (they read
    its access again, from the request's cache when there is one)."""
    return get_user_model()(pk=access.user_id, is_active=True)


def open_recalls_for(access: Access, *, limit: int = 10) -> list[Recall]:
    """The open recalls the user sees (clinic staff: those that reached their clinics), newest
    first, each with its progress figures (`clinics_total`, `clinics_acknowledged`,
    `patients_exposed`, `patients_contacted`, `units_held`, `units_accounted`); two queries."""
    if access.user_id is None or not access.has_role:
        return []
    recalls = recall_list(user=_user_of(access)).filter(status=RecallStatus.OPEN)
    return list(
        with_progress(recalls, access.visible_clinic_ids).order_by("-opened_at", "-pk")[:limit]
    )


# ---------------------------------------------------------------------------------------------
# The list


class RecallFilterForm(forms.Form):
    status = forms.ChoiceField(
        label=gettext_lazy("Status"),
        required=False,
        choices=[("", gettext_lazy("Open and closed")), *RecallStatus.choices],
    )
    recall_class = forms.ChoiceField(
        label=gettext_lazy("Class"),
        required=False,
        choices=[("", gettext_lazy("Every class")), *[(v, v) for v in RecallClass.values]],
    )
    reference = forms.CharField(label=gettext_lazy("Reference"), required=False, max_length=40)


def _filtered(request: HttpRequest, form: RecallFilterForm) -> QuerySet[Recall]:
    access = access_for(request)
    recalls = with_progress(recall_list(user=request.user), access.visible_clinic_ids)
    if form.is_valid():
        if form.cleaned_data["status"]:
            recalls = recalls.filter(status=form.cleaned_data["status"])
        if form.cleaned_data["recall_class"]:
            recalls = recalls.filter(recall_class=form.cleaned_data["recall_class"])
        if form.cleaned_data["reference"]:
            recalls = recalls.filter(reference__icontains=form.cleaned_data["reference"].strip())
    return recalls.order_by("-opened_at", "-pk")


def _csv(recalls: Any) -> StreamingHttpResponse:
    header = [
        "reference",
        "status",
        "class",
        "depth",
        "drill",
        "opened_at",
        "closed_at",
        "lots",
        "clinics_acknowledged",
        "clinics_total",
        "patients_contacted",
        "patients_exposed",
        "units_accounted",
        "units_held",
    ]
    rows = (
        [
            recall.reference,
            recall.status,
            recall.recall_class,
            recall.depth,
            recall.is_drill,
            recall.opened_at,
            recall.closed_at,
            " ".join(row.lot.lot_number for row in recall.recall_lots.all()),
            recall.clinics_acknowledged,
            recall.clinics_total,
            recall.patients_contacted,
            recall.patients_exposed,
            recall.units_accounted,
            recall.units_held,
        ]
        for recall in recalls
    )
    return csv_response("recalls.csv", header, rows)


def _page_of(request: HttpRequest, items: Any) -> Page[Any]:
    return Paginator(items, PAGE_SIZE).get_page(request.GET.get("page"))


def _query_without_page(request: HttpRequest) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    query.pop("format", None)
    return query.urlencode()


@page()
def recalls_index(request: HttpRequest) -> HttpResponse:
    form = RecallFilterForm(request.GET or None)
    recalls = _filtered(request, form)
    listing = _page_of(request, recalls)
    if request.GET.get("format") == "csv":
        return cast(HttpResponse, _csv(listing.object_list))
    return render(
        request,
        "pages/recalls/list.html",
        {
            "nav": "recalls",
            "form": form,
            "listing": listing,
            "query": _query_without_page(request),
        },
    )


# ---------------------------------------------------------------------------------------------
# Opening a recall: scope, preview, signature


class LotChoice(forms.ModelMultipleChoiceField):  # type: ignore[type-arg]
    def label_from_instance(self, obj: Any) -> str:
        return _("Lot %(number)s of %(product)s") % {
            "number": obj.lot_number,
            "product": obj.product.name,
        }


class NamedChoice(forms.ModelChoiceField):  # type: ignore[type-arg]
    def label_from_instance(self, obj: Any) -> str:
        if isinstance(obj, Manufacturer):
            return str(obj.legal_name)
        if isinstance(obj, Donor):
            return _("Donor %(code)s") % {"code": obj.code}
        return str(obj.name)


class RecallOpenForm(forms.Form):
    lots = LotChoice(
        label=gettext_lazy("Lots"),
        queryset=Lot.objects.select_related("product").order_by("lot_number", "pk"),
        required=False,
        help_text=gettext_lazy("Pick one or more lots (Ctrl or Shift to pick several)."),
        widget=forms.SelectMultiple(attrs={"size": 6}),
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
    donor = NamedChoice(
        label=gettext_lazy("Every lot made from the donor"),
        queryset=Donor.objects.order_by("code", "pk"),
        required=False,
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


class SignForm(forms.Form):
    password = forms.CharField(
        label=gettext_lazy("Your password"),
        strip=False,
        max_length=512,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text=gettext_lazy("Re-enter your own password to sign."),
    )


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


@page(
    allowed=network_writer,
    refusal=cast(str, gettext_lazy("Only a quality manager opens a recall.")),
)
def recall_new(request: HttpRequest) -> HttpResponse:
    context: dict[str, Any] = {"nav": "recalls", "step": "form"}
    if request.method != "POST":
        context["form"] = RecallOpenForm()
        return render(request, "pages/recalls/open.html", context)
    form = RecallOpenForm(request.POST)
    context["form"] = form
    action = request.POST.get("action", "preview")
    if action == "edit":
        return render(request, "pages/recalls/open.html", context)
    if not form.is_valid():
        return render(request, "pages/recalls/open.html", context, status=400)
    try:
        reach = scope_reach(form.scope())
    except DomainError as error:
        form_problems(form, error)
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


# ---------------------------------------------------------------------------------------------
# One recall


def _recall_or_404(request: HttpRequest, recall_id: int) -> Recall:
    recall = recall_detail_list(user=request.user).filter(pk=recall_id).first()
    if recall is None:
        raise Http404(_("No such recall."))
    return recall


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


# ---------------------------------------------------------------------------------------------
# Closing


class CloseForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("Why the recall is closed"),
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    override = forms.BooleanField(
        label=gettext_lazy("Close although items are still open (the reason says why)"),
        required=False,
    )
    password = SignForm.base_fields["password"]


@page(
    allowed=network_writer,
    refusal=cast(str, gettext_lazy("Only a quality manager closes a recall.")),
)
def recall_close_page(request: HttpRequest, recall_id: int) -> HttpResponse:
    recall = _recall_or_404(request, recall_id)
    if recall.status != RecallStatus.OPEN:
        messages.info(request, _("This recall is closed."))
        return redirect("pages:recall", recall_id=recall.pk)
    form = CloseForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            recall_close(
                recall=recall,
                actor=request.user,
                password=form.cleaned_data["password"],
                reason=form.cleaned_data["reason"],
                override=form.cleaned_data["override"],
            )
        except DomainError as error:
            form_problems(form, error)
            status = error.status
        else:
            messages.success(
                request, _("Recall %(reference)s is closed.") % {"reference": recall.reference}
            )
            return redirect("pages:recall", recall_id=recall.pk)
    elif request.method == "POST":
        status = 400
    return render(
        request,
        "pages/recalls/close.html",
        {
            "nav": "recalls",
            "recall": recall,
            "form": form,
            "open_items": recall_close_problems(recall),
        },
        status=status,
    )


# ---------------------------------------------------------------------------------------------
# A clinic's patient call list


class ContactAttemptForm(forms.Form):
    patient = forms.ChoiceField(label=gettext_lazy("Patient"))
    outcome = forms.ChoiceField(label=gettext_lazy("Outcome"), choices=ContactOutcome.choices)
    note = forms.CharField(
        label=gettext_lazy("Note"),
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args: Any, patients: list[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.patients = {str(patient.pk): patient for patient in patients}
        patient: Any = self.fields["patient"]
        patient.choices = [(key, _patient_label(patient)) for key, patient in self.patients.items()]


def _patient_label(patient: Any) -> str:
    """The name the list shows, with the reference that tells two namesakes apart."""
    if _has_contact(patient):
        return f"{patient.contact.full_name} ({patient.reference})"
    return str(patient.reference)


def _has_contact(patient: Any) -> bool:
    try:
        return patient.contact is not None
    except Exception:
        return False


def _caller(access: Access, clinic_id: int) -> bool:
    return access.may_read_contact(clinic_id)


@page(allowed=lambda access: bool(access.contact_clinic_ids))
def recall_patients(request: HttpRequest, recall_id: int, clinic_id: int) -> HttpResponse:
    access = access_for(request)
    if not _caller(access, clinic_id):
        return refused(request, _("Only the clinic's own staff see its patient call list."))
    recall = _recall_or_404(request, recall_id)
    clinic = Clinic.objects.filter(pk=clinic_id).first()
    if clinic is None:
        raise Http404(_("No such clinic."))
    if recall.depth != RecallDepth.PATIENT:
        return refused(request, _("This recall is at clinic level: no patient is to be called."))
    try:
        listing = recall_patient_list(recall=recall, clinic=clinic, user=request.user)
    except DomainError as error:
        return refused(request, error.problems[0].message)
    shown = _page_of(request, listing.patients)
    patients = list(shown.object_list)
    form = ContactAttemptForm(request.POST or None, patients=patients)
    status = 200
    if request.method == "POST":
        if recall.status != RecallStatus.OPEN:
            form.add_error(None, _("This recall is closed; it takes no more contact attempts."))
            status = 409
        elif form.is_valid():
            patient = form.patients[form.cleaned_data["patient"]]
            try:
                recall_contact_attempt_record(
                    recall=recall,
                    patient=patient,
                    outcome=form.cleaned_data["outcome"],
                    note=form.cleaned_data["note"],
                    actor=request.user,
                )
            except DomainError as error:
                form_problems(form, error)
                status = error.status
            else:
                messages.success(request, _("The contact attempt is recorded."))
                return redirect(request.get_full_path())
        else:
            status = 400
    if listing.with_contacts and patients:
        contact_data_read_record(
            user=request.user,
            patients=patients,
            what=f"recall {recall.reference} patient call list",
            via=ReadVia.PAGE,
        )
    response = render(
        request,
        "pages/recalls/patients.html",
        {
            "nav": "recalls",
            "recall": recall,
            "clinic": clinic,
            "listing": shown,
            "with_contacts": listing.with_contacts,
            "form": form if recall.status == RecallStatus.OPEN else None,
            "query": _query_without_page(request),
        },
        status=status,
    )
    response["Cache-Control"] = "no-store"
    return response


urlpatterns = [
    path("recalls/", recalls_index, name="recalls"),
    path("recalls/new/", recall_new, name="recall-new"),
    path("recalls/<int:recall_id>/", recall_detail, name="recall"),
    path("recalls/<int:recall_id>/close/", recall_close_page, name="recall-close"),
    path(
        "recalls/<int:recall_id>/clinics/<int:clinic_id>/patients/",
        recall_patients,
        name="recall-patients",
    ),
]
