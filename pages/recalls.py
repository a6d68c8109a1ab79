"""Clinic pages: recalls (being built)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path

from pages.base import page


@page()
def recalls_index(request: HttpRequest) -> HttpResponse:
    return render(request, "pages/home.html", {"nav": "recalls"})


urlpatterns = [
    path("recalls/", recalls_index, name="recalls"),
]
