"""Clinic pages, recalls: closing a recall (quality managers, signed)."""

from __future__ import annotations

from typing import cast

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from common.errors import DomainError
from pages.base import form_problems, network_writer, page
from pages.recalls.common import SignForm, _recall_or_404
from recalls.models import RecallStatus
from recalls.services import recall_close
from recalls.services.closing import recall_close_problems


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


urlpatterns = [
    path("recalls/<int:recall_id>/close/", recall_close_page, name="recall-close"),
]
