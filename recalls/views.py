"""The page behind the signed link in a recall e-mail: no login; it shows the recall and takes the
name of the person acknowledging it for the clinic the notice went to.

Opening the page (GET) changes nothing, so a mail scanner that follows links cannot acknowledge;
only the form (POST, CSRF-protected) does. The page never shows patient data: whoever holds the
link sees what the e-mail already said.

Once the link names its clinic, the page (and any refusal on it) is in the clinic's `language`,
as the e-mail was; a link that names no clinic is answered in the browser's language.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import translation
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from common.errors import DomainError
from recalls.models import Acknowledgement, Notification, RecallLot, RecallStock
from recalls.notices import date_formats, in_clinic_language
from recalls.services import recall_acknowledge_by_link
from recalls.services.acknowledgements import acknowledgement_link_resolve

TEMPLATE = "recalls/acknowledge.html"
FORM_ERRORS = {"name_required", "name_invalid"}


def _page(request: HttpRequest, context: dict[str, Any], *, status: int = 200) -> HttpResponse:
    response = render(request, TEMPLATE, {**context, **date_formats()}, status=status)
    response["Content-Language"] = translation.get_language() or ""
    # The token is in the address: keep it out of Referer headers sent to other sites, and out of
    # search engines. Not "no-referrer": browsers then send `Origin: null` with the form's POST,
    # which Django's CSRF check rightly refuses (found by the browser test).
    response["Referrer-Policy"] = "same-origin"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _recall_context(notification: Notification) -> dict[str, Any]:
    recall, clinic = notification.recall, notification.clinic
    return {
        "recall": recall,
        "clinic": clinic,
        "lots": list(
            RecallLot.objects.filter(recall=recall)
            .select_related("lot__product__manufacturer")
            .order_by("round", "lot__lot_number")
        ),
        "stock": list(
            RecallStock.objects.filter(recall=recall, clinic=clinic)
            .select_related("lot")
            .order_by("lot__lot_number")
        ),
        "acknowledgement": Acknowledgement.objects.filter(recall=recall, clinic=clinic).first(),
    }


@never_cache
@require_http_methods(["GET", "POST"])
def recall_acknowledgement_page(request: HttpRequest, token: str) -> HttpResponse:
    try:
        notification = acknowledgement_link_resolve(token)
    except DomainError as error:
        return _page(request, {"state": "error", "error": error}, status=error.status)
    with in_clinic_language(notification.clinic):
        return _acknowledgement_page(request, token, notification)


def _acknowledgement_page(
    request: HttpRequest, token: str, notification: Notification
) -> HttpResponse:
    context = _recall_context(notification)
    if request.method == "GET":
        state = "already" if context["acknowledgement"] else "form"
        return _page(request, {**context, "state": state})

    name = request.POST.get("name", "")
    try:
        acknowledgement = recall_acknowledge_by_link(token=token, name=name)
    except DomainError as error:
        if set(error.codes) & FORM_ERRORS:
            return _page(
                request, {**context, "state": "form", "error": error, "name": name}, status=400
            )
        if "recall_already_acknowledged" in error.codes:
            context = _recall_context(notification)
            return _page(request, {**context, "state": "already"}, status=409)
        return _page(request, {**context, "state": "error", "error": error}, status=error.status)
    return _page(request, {**context, "state": "done", "acknowledgement": acknowledgement})
