"""What every clinic page shares: who may open it, in which language and time zone it speaks,
and how a refusal looks.

A page is a view wrapped in `page(allowed=...)`. The decision is read from the one access module
(`providers.access`); a page never reads memberships itself. The wrapper:
- sends an anonymous visitor to sign in, and answers a signed-in user the page refuses with the
  product's own refusal page (403), naming what is missing;
- renders the page in the user's language (their preference, else the browser's) and time zone
  (their preference, else the zone of the clinic they work at, else the network's).
"""

from __future__ import annotations

import datetime
import zoneinfo
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from common.errors import DomainError
from pages.models import AccountPreference
from providers.access import Access, access_for
from providers.models import Clinic

View = Callable[..., HttpResponse]
Rule = Callable[[Access], bool]


def signed_in(access: Access) -> bool:
    """Any active role: the least a page asks."""
    return access.has_role


def network_writer(access: Access) -> bool:
    return access.writes_network


def page(*, allowed: Rule = signed_in, refusal: str = "") -> Callable[[View], View]:
    """Wrap a page view: sign-in, the access rule, the user's language and time zone."""

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path(), reverse("pages:sign-in"))
            access = access_for(request)
            preference = preference_for(request.user)
            language = preference.language or translation.get_language() or "en"
            with translation.override(language), timezone.override(zone_for(access, preference)):
                request.LANGUAGE_CODE = language
                if not allowed(access):
                    return refused(request, refusal or _("Your role does not include this page."))
                return view(request, *args, **kwargs)

        return wrapper

    return decorate


def preference_for(user: Any) -> AccountPreference:
    cached: AccountPreference | None = getattr(user, "_page_preference", None)
    if cached is None:
        cached = AccountPreference.objects.filter(user_id=user.pk).first() or AccountPreference(
            user_id=user.pk
        )
        user._page_preference = cached
    return cached


def home_clinic(access: Access) -> Clinic | None:
    """The clinic a clinic worker works at (the first, if several); None for network roles."""
    if access.is_network:
        return None
    ids = access.visible_clinic_ids or []
    return Clinic.objects.filter(pk__in=ids).order_by("pk").first() if ids else None


def zone_for(access: Access, preference: AccountPreference) -> datetime.tzinfo:
    name = preference.time_zone
    if not name:
        clinic = home_clinic(access)
        name = clinic.time_zone if clinic is not None else settings.TIME_ZONE
    return datetime.UTC if name == "UTC" else zoneinfo.ZoneInfo(name)


def refused(request: HttpRequest, reason: str, *, status: int = 403) -> HttpResponse:
    """The product's refusal page: what was refused and where to go instead."""
    return render(request, "pages/refused.html", {"reason": reason}, status=status)


def form_problems(form: Any, error: DomainError) -> None:
    """Put a service's refusal on the form: each problem on its field when the form has one,
    otherwise on the form as a whole. The message is the service's own plain words."""
    for problem in error.problems:
        field = (problem.field or "").split(".")[-1]
        form.add_error(field if field in form.fields else None, problem.message)
