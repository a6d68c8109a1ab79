"""Signing in and out, and the user's language: the door of the clinic pages.

Sign-in goes through Django's authentication backends, so django-axes counts every wrong password
and locks the account out exactly as on the admin's login."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from pages.models import AccountPreference


class SignInView(auth_views.LoginView):
    template_name = "pages/sign_in.html"
    redirect_authenticated_user = True


class SignOutView(auth_views.LogoutView):
    next_page = "pages:sign-in"


def _safe_next(request: HttpRequest) -> str:
    wanted = request.POST.get("next") or ""
    if url_has_allowed_host_and_scheme(
        wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return wanted
    return reverse("pages:home")


@require_POST
def language_choose(request: HttpRequest) -> HttpResponse:
    """Keep the chosen language for this browser (cookie) and, when signed in, for the user."""
    language = request.POST.get("language", "")
    response = HttpResponseRedirect(_safe_next(request))
    if not translation.check_for_language(language) or language not in dict(settings.LANGUAGES):
        return response
    if request.user.is_authenticated:
        AccountPreference.objects.update_or_create(
            user_id=request.user.pk, defaults={"language": language}
        )
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        language,
        max_age=settings.LANGUAGE_COOKIE_AGE,
        samesite="Lax",
        secure=settings.SESSION_COOKIE_SECURE,
    )
    return response


urlpatterns = [
    path("sign-in/", SignInView.as_view(), name="sign-in"),
    path("sign-out/", SignOutView.as_view(), name="sign-out"),
    path("language/", language_choose, name="language"),
]
