"""Clinic pages: patients (being built)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path

from pages.base import page


@page()
def patients_index(request: HttpRequest) -> HttpResponse:
    return render(request, "pages/home.html", {"nav": "patients"})


urlpatterns = [
    path("patients/", patients_index, name="patients"),
]
