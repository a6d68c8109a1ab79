"""Clinic pages, recalls: what the use cases share (subquery counts, paging, the signature field,
finding a recall the user may see)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.paginator import Page, Paginator
from django.db.models import F, Func, IntegerField, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from providers.models import Role
from recalls.models import Recall
from recalls.selectors import recall_detail_list

PAGE_SIZE = 50
CLINIC_ADMINISTRATOR = Role.CLINIC_ADMINISTRATOR.value


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


def _page_of(request: HttpRequest, items: Any) -> Page[Any]:
    return Paginator(items, PAGE_SIZE).get_page(request.GET.get("page"))


def _query_without_page(request: HttpRequest) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    query.pop("format", None)
    return query.urlencode()


class SignForm(forms.Form):
    password = forms.CharField(
        label=gettext_lazy("Your password"),
        strip=False,
        max_length=512,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text=gettext_lazy("Re-enter your own password to sign."),
    )


def _recall_or_404(request: HttpRequest, recall_id: int) -> Recall:
    recall = recall_detail_list(user=request.user).filter(pk=recall_id).first()
    if recall is None:
        raise Http404(_("No such recall."))
    return recall
