"""What the clinic pages keep of their own: each user's choices of language and time zone."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from providers.models import validate_time_zone


class AccountPreference(models.Model):
    """How one user wants the clinic pages: a language (blank: the browser's) and a time zone
    (blank: the zone of the clinic they work at, or the network's for network roles)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="page_preference",
    )
    language = models.CharField(max_length=8, choices=settings.LANGUAGES, blank=True)
    time_zone = models.CharField(max_length=64, blank=True, validators=[validate_time_zone])

    def __str__(self) -> str:
        return f"page preferences of {self.user}"
