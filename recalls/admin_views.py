"""The pages of one recall beyond Django's change form: the panels of its page, the follow-up pages
(widen, acknowledge, disposition, close), a clinic's patients with the contact attempt form, and the
evidence downloads. Each page is a function of the model admin (as providers.admin_base's
signature_page), wired into RecallAdmin's URLs; each reads through the scoped selectors and
writes through one service, its refusals shown on the form.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django import forms
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _

from audit.models import ReadVia
from audit.services import contact_data_read_record
from common.admin import add_problems
from common.csv import csv_stream
from common.errors import DomainError
from providers.access import access_for
from providers.admin_base import ServiceAdmin, can_view, can_write, holds_any
from providers.models import Clinic, Role
from recalls.admin_forms import (
    RecallAcknowledgeForm,
    RecallActionForm,
    RecallCloseForm,
    RecallContactAttemptForm,
    RecallDispositionForm,
    RecallNoticeResendForm,
    RecallWidenForm,
)
from recalls.models import (
    Notification,
    NotificationStatus,
    Recall,
    RecallDepth,
    RecallExposure,
    RecallLot,
    RecallStatus,
)
from recalls.reports import exposures_csv, notices_csv, recall_report_pdf
from recalls.selectors import (
    notification_list,
    recall_clinic_ids,
    recall_effectiveness,
    recall_patient_list,
    stock_to_account_for,
)
from recalls.services.accounting import CONTACTING_ROLES, DISPOSING_ROLES
from recalls.services.acknowledgements import ACKNOWLEDGING_ROLES
from recalls.services.closing import recall_close_problems

ACTION_TEMPLATE = "admin/recalls/recall/action.html"
PATIENTS_TEMPLATE = "admin/recalls/recall/patients.html"
# The read-only lists of what a recall left behind, linked from its page filtered to it.
RECORD_LISTS = (
    ("notification", "Notices"),
    ("acknowledgement", "Acknowledgements"),
    ("stockdisposition", "Stock dispositions"),
    ("patientcontactattempt", "Patient contact attempts"),
)


# ---------------------------------------------------------------------------------------------
# Who may act where


def acting_clinic_ids(request: HttpRequest, roles: tuple[Role, ...]) -> set[int] | None:
    """The clinics at which the user holds one of `roles`: None for every clinic (a network-wide
    holder), otherwise their ids (empty when the user holds none of the roles)."""
    clinic_ids = access_for(request).clinic_ids(roles)
    return None if clinic_ids is None else set(clinic_ids)


def may_act_at(request: HttpRequest, roles: tuple[Role, ...], clinic_id: int) -> bool:
    clinic_ids = acting_clinic_ids(request, roles)
    return clinic_ids is None or clinic_id in clinic_ids


def clinics_of_recall_where(
    request: HttpRequest, recall: Recall, roles: tuple[Role, ...]
) -> QuerySet[Clinic]:
    """The clinics the recall reached at which the user holds one of `roles`."""
    clinics = recall_clinic_ids(recall)
    clinic_ids = acting_clinic_ids(request, roles)
    if clinic_ids is not None:
        clinics = clinics.filter(pk__in=sorted(clinic_ids))
    return clinics.order_by("name")


def request_clinic_ids(request: HttpRequest) -> list[int] | None:
    """None for network roles, else the user's clinics (providers.access)."""
    return access_for(request).visible_clinic_ids


# ---------------------------------------------------------------------------------------------
# The recall's page


def recall_page_context(request: HttpRequest, recall: Recall) -> dict[str, Any]:
    """The panels of the recall's page, each read through the scoped selectors."""
    clinic_ids = request_clinic_ids(request)
    effectiveness = recall_effectiveness(recall=recall, clinic_ids=clinic_ids)
    notices: dict[int | None, list[Notification]] = defaultdict(list)
    is_open = recall.status == RecallStatus.OPEN
    may_resend = is_open and can_write(request)
    for notice in notification_list(recall=recall, clinic_ids=clinic_ids):
        notice.resend_url = (  # type: ignore[attr-defined]
            reverse("admin:recalls_recall_resend", args=[recall.pk, notice.pk])
            if may_resend and notice.status == NotificationStatus.FAILED
            else ""
        )
        notices[notice.clinic_id].append(notice)
    clinics = [
        {
            "progress": progress,
            "notices": notices.get(progress.clinic_id, []),
            "patients_url": reverse(
                "admin:recalls_recall_patients", args=[recall.pk, progress.clinic_id]
            ),
            "acknowledge_url": (
                f"{reverse('admin:recalls_recall_acknowledge', args=[recall.pk])}"
                f"?clinic={progress.clinic_id}"
                if is_open
                and not progress.acknowledged
                and may_act_at(request, ACKNOWLEDGING_ROLES, progress.clinic_id)
                else ""
            ),
        }
        for progress in effectiveness.clinics
    ]
    stock = [
        {
            "row": row,
            "disposition_url": (
                f"{reverse('admin:recalls_recall_disposition', args=[recall.pk])}"
                f"?clinic={row.clinic_id}&lot={row.lot_id}"
                if is_open
                and row.quantity_outstanding > 0
                and may_act_at(request, DISPOSING_ROLES, row.clinic_id)
                else ""
            ),
        }
        for row in stock_to_account_for(recall=recall, clinic_ids=clinic_ids)
    ]
    exposures = RecallExposure.objects.filter(recall=recall)
    if clinic_ids is not None:
        exposures = exposures.filter(clinic_id__in=clinic_ids)
    return {
        "panels": True,
        "recall": recall,
        "scoped": clinic_ids is not None,
        "effectiveness": effectiveness,
        "percent": {
            "clinics": _percent(effectiveness.clinics_acknowledged_share),
            "contacted": _percent(effectiveness.patients_contacted_share),
            "attempted": _percent(effectiveness.patients_attempted_share),
            "units": _percent(effectiveness.units_accounted_share),
        },
        "clinics": clinics,
        "integration_notices": notices.get(None, []),
        "stock": stock,
        "scopes": list(
            recall.scopes.select_related("donor", "product", "manufacturer", "added_by")
            .prefetch_related("lots")
            .order_by("round")
        ),
        "recall_lots": list(
            RecallLot.objects.filter(recall=recall)
            .select_related("lot__product", "lot__manufacturer")
            .order_by("round", "lot__lot_number")
        ),
        "exposure_count": exposures.count(),
        "evidence_links": [
            ("exposures-csv", "Exposures (CSV)", _url("exposures_csv", recall)),
            ("notices-csv", "Notices (CSV)", _url("notices_csv", recall)),
            ("report-pdf", "Recall report (PDF)", _url("report_pdf", recall)),
            (
                "evidence-zip",
                "Evidence pack (ZIP)",
                reverse("recall-evidence-zip", args=[recall.pk]),
            ),
        ],
        "record_links": [
            (
                label,
                f"{reverse(f'admin:recalls_{model}_changelist')}?recall__id__exact={recall.pk}",
            )
            for model, label in RECORD_LISTS
            if model != "patientcontactattempt" or recall.depth == RecallDepth.PATIENT
        ],
        "recall_links": action_links(request, recall),
    }


def action_links(request: HttpRequest, recall: Recall) -> list[tuple[str, str]]:
    """The follow-up pages this user may open for this recall."""
    if recall.status != RecallStatus.OPEN:
        return []
    links = []
    if can_write(request):
        links.append(("Widen", _url("widen", recall)))
    if holds_any(request, ACKNOWLEDGING_ROLES):
        links.append(("Acknowledge", _url("acknowledge", recall)))
    if holds_any(request, DISPOSING_ROLES):
        links.append(("Record disposition", _url("disposition", recall)))
    if can_write(request):
        links.append(("Close", _url("close", recall)))
    return links


# ---------------------------------------------------------------------------------------------
# Pages of one recall


def recall_or_404(model_admin: ServiceAdmin, request: HttpRequest, object_id: str) -> Recall:
    """The recall if this user may see it: 403 without a role, 404 when it did not reach the
    user's clinics (as if it did not exist)."""
    if not can_view(request):
        raise PermissionDenied
    recall: Recall | None = model_admin.get_object(request, unquote(object_id))
    if recall is None:
        raise Http404(_("No such recall."))
    return recall


def widen_view(model_admin: ServiceAdmin, request: HttpRequest, object_id: str) -> HttpResponse:
    recall = recall_or_404(model_admin, request, object_id)
    if not can_write(request):
        raise PermissionDenied
    form = RecallWidenForm(_posted(request), recall=recall, actor=request.user)
    return action_page(model_admin, request, recall, form)


def acknowledge_view(
    model_admin: ServiceAdmin, request: HttpRequest, object_id: str
) -> HttpResponse:
    recall = recall_or_404(model_admin, request, object_id)
    if not holds_any(request, ACKNOWLEDGING_ROLES):
        raise PermissionDenied
    form = RecallAcknowledgeForm(
        _posted(request),
        recall=recall,
        actor=request.user,
        clinics=clinics_of_recall_where(request, recall, ACKNOWLEDGING_ROLES),
        initial={"clinic": request.GET.get("clinic")},
    )
    return action_page(model_admin, request, recall, form)


def disposition_view(
    model_admin: ServiceAdmin, request: HttpRequest, object_id: str
) -> HttpResponse:
    recall = recall_or_404(model_admin, request, object_id)
    if not holds_any(request, DISPOSING_ROLES):
        raise PermissionDenied
    form = RecallDispositionForm(
        _posted(request),
        recall=recall,
        actor=request.user,
        clinics=clinics_of_recall_where(request, recall, DISPOSING_ROLES),
        initial={"clinic": request.GET.get("clinic"), "lot": request.GET.get("lot")},
    )
    return action_page(model_admin, request, recall, form)


def close_view(model_admin: ServiceAdmin, request: HttpRequest, object_id: str) -> HttpResponse:
    recall = recall_or_404(model_admin, request, object_id)
    if not can_write(request):
        raise PermissionDenied
    form = RecallCloseForm(_posted(request), recall=recall, actor=request.user)
    return action_page(model_admin, request, recall, form, with_open_items=True)


def resend_view(
    model_admin: ServiceAdmin, request: HttpRequest, object_id: str, notice_id: int
) -> HttpResponse:
    """A quality manager gives a failed notice of this recall back to the outbox."""
    recall = recall_or_404(model_admin, request, object_id)
    if not can_write(request):
        raise PermissionDenied
    notice = get_object_or_404(
        notification_list(recall=recall, clinic_ids=request_clinic_ids(request)), pk=notice_id
    )
    form = RecallNoticeResendForm(
        _posted(request), recall=recall, actor=request.user, notification=notice
    )
    return action_page(model_admin, request, recall, form)


def action_page(
    model_admin: ServiceAdmin,
    request: HttpRequest,
    recall: Recall,
    form: RecallActionForm,
    *,
    with_open_items: bool = False,
) -> HttpResponse:
    """Show the form; once it is posted and valid, call the service through `form.submit`
    and go back to the recall, or show each refusal on the form."""
    if form.is_bound and form.is_valid():
        try:
            message = form.submit()
        except DomainError as error:
            add_problems(form, error)
        else:
            model_admin.message_user(request, message)
            return HttpResponseRedirect(reverse("admin:recalls_recall_change", args=[recall.pk]))
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "original": recall,
        "title": f"{form.title}: {recall.reference}",
        "form": form,
        "open_items": recall_close_problems(recall) if with_open_items else None,
        "media": model_admin.media + form.media,
    }
    return TemplateResponse(request, ACTION_TEMPLATE, context)


def patients_view(
    model_admin: ServiceAdmin, request: HttpRequest, object_id: str, clinic_id: int
) -> HttpResponse:
    """A clinic's patients exposed to the recall, with their contact details for the clinic's
    own staff (a patient-level recall), and the contact attempt form for those who record."""
    recall = recall_or_404(model_admin, request, object_id)
    clinic_ids = request_clinic_ids(request)
    if clinic_ids is not None and clinic_id not in clinic_ids:
        # Before looking the clinic up: whether another clinic was reached is not theirs.
        raise PermissionDenied(_("You see only the patients of your own clinic."))
    clinic = get_object_or_404(recall_clinic_ids(recall), pk=clinic_id)
    try:
        listing = recall_patient_list(recall=recall, clinic=clinic, user=request.user)
    except DomainError as error:
        raise PermissionDenied(error.problems[0].message) from error
    may_record = (
        recall.depth == RecallDepth.PATIENT
        and recall.status == RecallStatus.OPEN
        and may_act_at(request, CONTACTING_ROLES, clinic.pk)
    )
    form = None
    if request.method == "POST":
        if not may_record:
            raise PermissionDenied
        form = RecallContactAttemptForm(
            request.POST, recall=recall, actor=request.user, clinic=clinic
        )
        if form.is_valid():
            try:
                message = form.submit()
            except DomainError as error:
                add_problems(form, error)
            else:
                model_admin.message_user(request, message)
                return HttpResponseRedirect(request.path)
    elif may_record:
        form = RecallContactAttemptForm(
            recall=recall,
            actor=request.user,
            clinic=clinic,
            initial={"patient": request.GET.get("patient")},
        )
    patients = list(listing.patients)
    if listing.with_contacts:
        contact_data_read_record(
            user=request.user,
            patients=patients,
            what=f"recall {recall.reference} patient list",
            via=ReadVia.ADMIN,
        )
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "original": recall,
        "clinic": clinic,
        "title": f"{recall.reference}: patients of {clinic.name}",
        "patients": patients,
        "with_contacts": listing.with_contacts,
        "patient_level": recall.depth == RecallDepth.PATIENT,
        "form": form,
        "media": model_admin.media + (form.media if form is not None else forms.Media()),
    }
    # admin_view marks every admin page never_cache (no-store), this one included.
    return TemplateResponse(request, PATIENTS_TEMPLATE, context)


# ---------------------------------------------------------------------------------------------
# Evidence: the same report functions as the API, scoped the same way


def exposures_csv_view(
    model_admin: ServiceAdmin, request: HttpRequest, object_id: str
) -> StreamingHttpResponse:
    recall = recall_or_404(model_admin, request, object_id)
    rows = exposures_csv(recall=recall, clinic_ids=request_clinic_ids(request))
    return csv_stream(rows, f"{recall.reference}-exposures.csv")


def notices_csv_view(
    model_admin: ServiceAdmin, request: HttpRequest, object_id: str
) -> StreamingHttpResponse:
    recall = recall_or_404(model_admin, request, object_id)
    rows = notices_csv(recall=recall, clinic_ids=request_clinic_ids(request))
    return csv_stream(rows, f"{recall.reference}-notices.csv")


def report_pdf_view(
    model_admin: ServiceAdmin, request: HttpRequest, object_id: str
) -> HttpResponse:
    recall = recall_or_404(model_admin, request, object_id)
    pdf = recall_report_pdf(recall=recall, clinic_ids=request_clinic_ids(request))
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{recall.reference}.pdf"'
    response["Cache-Control"] = "no-store"
    return response


def _posted(request: HttpRequest) -> Any:
    return request.POST if request.method == "POST" else None


def _url(name: str, recall: Recall) -> str:
    return reverse(f"admin:recalls_recall_{name}", args=[recall.pk])


def _percent(share: float | None) -> str:
    return "n/a" if share is None else f"{share * 100:.0f} %"
