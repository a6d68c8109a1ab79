"""What every page template may read: the user's access and the navigation their roles open."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils import timezone

from providers.access import access_for


def page_context(request: HttpRequest) -> dict[str, Any]:
    if request.path.startswith(("/admin/", "/api/")):
        return {}
    access = access_for(request)
    return {
        "access": access,
        "zone_name": timezone.get_current_timezone_name(),
    }
