"""Clinic pages: treatments (being built)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path

from pages.base import page


@page()
def treatments_index(request: HttpRequest) -> HttpResponse:
    return render(request, "pages/home.html", {"nav": "treatments"})


urlpatterns = [
    path("treatments/", treatments_index, name="treatments"),
]
