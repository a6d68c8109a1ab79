"""The floor of an API request: one URL whose view reads nothing and answers a small JSON body,
served through the project's own settings and middleware (demo/bench/bare_wsgi.py)."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def bare(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"id": 1, "status": "recorded"}, status=201)


urlpatterns = [path("api/v1/treatments/", bare)]
