"""Clinic pages: lots (being built)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path

from pages.base import page


@page()
def lots_index(request: HttpRequest) -> HttpResponse:
    return render(request, "pages/home.html", {"nav": "lots"})


urlpatterns = [
    path("lots/", lots_index, name="lots"),
]
