"""Form fields the provider pages share: the reason for a change and the clinic's time zone."""

from __future__ import annotations

from django import forms

from providers.models import Clinic, known_time_zones

REASON_HELP = "Why the record changes; kept in the audit trail with your name."


def reason_field() -> forms.CharField:
    return forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), help_text=REASON_HELP)


def _time_zone_choices() -> list[tuple[str, str]]:
    return [("UTC", "UTC"), *((name, name) for name in sorted(known_time_zones() - {"UTC"}))]


def time_zone_field() -> forms.ChoiceField:
    # A list rather than free text: a misspelt zone cannot be typed. The service checks it again.
    return forms.ChoiceField(
        choices=_time_zone_choices,
        initial="UTC",
        help_text=Clinic._meta.get_field("time_zone").help_text,
    )
