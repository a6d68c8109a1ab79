"""The home page: what each role has to act on today.

- clinic staff: open recalls touching their clinic and what the clinic still owes in each
  (acknowledgement, patients to contact, units to account for); stock expiring within 30/60/90
  days, first expiry first; stock that must not be used; recent treatments and adverse events;
- quality managers: lots awaiting release with every unmet requirement; manufacturer
  certificates expired or expiring; open recalls with their progress;
- auditors: the same as quality managers, read-only, with links to the evidence.

Every section is bounded (a few rows, a fixed number of queries) and links to its full list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _

from pages.base import page
from pages.lots import certificates_needing_attention, lots_awaiting_release
from pages.recalls import open_recalls_for, percent
from pages.stock import expiring_stock, unusable_stock
from providers.access import Access, access_for
from treatments.models import AdverseEvent, Treatment
from treatments.selectors import treatment_list

RECENT = 8
EXPIRY_WINDOWS = (30, 60, 90)


@dataclass(frozen=True)
class Owed:
    """One thing a clinic still owes in an open recall."""

    recall: Any
    what: str
    done: int
    total: int

    @property
    def percent(self) -> int | None:
        return percent(self.done, self.total)


def owed_in(recalls: list[Any]) -> list[Owed]:
    """From the recalls' progress figures (scoped to the user's clinics): what is not done yet."""
    owed = []
    for recall in recalls:
        if recall.clinics_acknowledged < recall.clinics_total:
            owed.append(
                Owed(
                    recall,
                    _("Acknowledge the recall"),
                    recall.clinics_acknowledged,
                    recall.clinics_total,
                )
            )
        if recall.depth == "patient" and recall.patients_contacted < recall.patients_exposed:
            owed.append(
                Owed(
                    recall,
                    _("Contact the patients who received it"),
                    recall.patients_contacted,
                    recall.patients_exposed,
                )
            )
        if recall.units_accounted < recall.units_held:
            owed.append(
                Owed(
                    recall,
                    _("Return or destroy the units held, and record it"),
                    recall.units_accounted,
                    recall.units_held,
                )
            )
    return owed


def expiry_bands(user: Any) -> list[tuple[int, list[Any]]]:
    """Usable stock by the window it expires in: within 30, 31-60 and 61-90 days (FEFO)."""
    today = timezone.localdate()
    rows = expiring_stock(user, days=EXPIRY_WINDOWS[-1], limit=30)
    bands: list[tuple[int, list[Any]]] = []
    lower = -1
    for days in EXPIRY_WINDOWS:
        inside = [row for row in rows if lower < (row.lot.expires_on - today).days <= days]
        bands.append((days, inside))
        lower = days
    return bands


def _recent_treatments(request: HttpRequest) -> list[Treatment]:
    return list(
        treatment_list(user=request.user)
        .select_related("clinic", "patient", "practitioner")
        .order_by("-performed_at", "-pk")[:RECENT]
    )


def _recent_adverse_events(access: Access) -> list[AdverseEvent]:
    events = AdverseEvent.objects.select_related("treatment__clinic", "treatment__patient", "lot")
    visible = access.visible_clinic_ids
    if visible is not None:
        events = events.filter(treatment__clinic_id__in=visible)
    return list(events.order_by("-reported_at", "-pk")[:RECENT])


@page()
def home(request: HttpRequest) -> HttpResponse:
    access = access_for(request)
    context: dict[str, Any] = {"nav": "home", "today": timezone.localdate()}
    recalls = open_recalls_for(request.user)
    context["open_recalls"] = recalls
    if access.is_network:
        context["awaiting"] = lots_awaiting_release()
        context["certificates"] = certificates_needing_attention(today=context["today"])
        context["network"] = True
        context["auditor"] = not access.writes_network
    else:
        context["owed"] = owed_in(recalls)
        context["expiry_bands"] = expiry_bands(request.user)
        context["unusable"] = unusable_stock(request.user, limit=10)
        context["treatments"] = _recent_treatments(request)
        context["adverse_events"] = _recent_adverse_events(access)
    return render(request, "pages/home.html", context)


urlpatterns = [
    path("", home, name="home"),
]
