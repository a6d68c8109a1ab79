"""The home page: what each role has to act on today."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path

from pages.base import page


@page()
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "pages/home.html", {"nav": "home"})


urlpatterns = [
    path("", home, name="home"),
]
