"""Clinic pages, lots: the page of manufacturer certificates that need attention."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils import timezone

from pages.base import page
from pages.lots.attention import certificates_needing_attention
from pages.lots.common import ATTENTION_DAYS, KIND_LABELS


@page()
def certificates_attention(request: HttpRequest) -> HttpResponse:
    today = timezone.localdate()
    return render(
        request,
        "pages/lots/certificates.html",
        {
            "nav": "lots",
            "today": today,
            "within_days": ATTENTION_DAYS,
            "items": certificates_needing_attention(today=today),
            "kinds": KIND_LABELS,
        },
    )


urlpatterns = [
    path("lots/certificates/", certificates_attention, name="lot-certificates"),
]
