"""API throttles whose rates are read when a request is counted, not when the module is imported.

DRF's own classes copy `DEFAULT_THROTTLE_RATES` into a class attribute at import, so a changed
setting (a test's, or an override) would never reach them. The rates are set from the environment
in settings.py (README, "Throttles"); past a rate the API answers 429 `throttled` with Retry-After.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from rest_framework import throttling
from rest_framework.settings import api_settings


def _rate(scope: str | None) -> str | None:
    rates: dict[str, Any] = api_settings.DEFAULT_THROTTLE_RATES
    if scope not in rates:
        raise ImproperlyConfigured(f"No throttle rate set for scope {scope!r}")
    rate: str | None = rates[scope]
    return rate


class AnonymousRateThrottle(throttling.AnonRateThrottle):
    """Callers that are not signed in, counted by address."""

    scope = "anonymous"

    def get_rate(self) -> str | None:
        return _rate(self.scope)


class UserRateThrottle(throttling.UserRateThrottle):
    """Signed-in callers, counted by account (anonymous ones by address)."""

    scope = "user"

    def get_rate(self) -> str | None:
        return _rate(self.scope)


class TokenObtainRateThrottle(throttling.SimpleRateThrottle):
    """The token sign-in, counted by address whoever calls it: a password guesser is slowed down
    here before django-axes locks the account."""

    scope = "token_obtain"

    def get_rate(self) -> str | None:
        return _rate(self.scope)

    def get_cache_key(self, request: Any, view: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
