"""Clinic pages, recalls: finding the lots and the donor a new recall names (network quality
managers).

The opening form never offers every lot or donor: at 10^5 of each that was megabytes of HTML on
the page opened in an emergency. It shows the lots already chosen (ticked) and the donor already
chosen, plus at most `MATCH_LIMIT` matches of what was typed: part of a lot number or a product
name, or a scanned GS1 code (read by `lots.scan.scan_parse`), and part of a donor code. With
JavaScript, htmx asks the search views below for the options as one types, sending the lots
ticked so far so they stay; without it, the form's "Find" button posts the whole form and the page
comes back with the same options. Each answer runs two queries (the chosen, the matches).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.urls import path
from django.utils.translation import gettext_lazy

from common.errors import DomainError
from common.validators import whole_number
from lots.models import Donor, Lot
from lots.scan import scan_parse
from pages.base import network_writer, page

MATCH_LIMIT = 25
TERM_LENGTH = 200  # longer than any lot number, donor code or GS1 element string
GS1_STARTS = ("(01)", "]d2", "]D2")

Row = TypeVar("Row", Lot, Donor)


@dataclass(frozen=True)
class Options(Generic[Row]):
    """What a search field offers: the rows chosen so far, then the first matches of `term`
    that are not chosen; `more` when further rows match."""

    term: str = ""
    chosen: list[Row] = field(default_factory=list)
    matches: list[Row] = field(default_factory=list)
    more: bool = False
    problem: str = ""

    @property
    def chosen_ids(self) -> set[int]:
        return {row.pk for row in self.chosen}


def posted_ids(values: Iterable[str]) -> list[int]:
    """The ids in a list of posted values, in order, once each; anything else is left for the
    form's own validation to name."""
    ids = [whole_number(value) for value in values]
    return list(dict.fromkeys(pk for pk in ids if pk is not None))


def _term(value: str | None) -> str:
    return (value or "").strip()[:TERM_LENGTH]


def _looks_scanned(term: str) -> bool:
    """A GS1 element string as a scanner or a label's human-readable line gives it; 16 or more
    digits starting with AI 01 count too, and fall back to a lot number when they do not parse."""
    return (
        term.startswith(GS1_STARTS)
        or "\x1d" in term
        or "<GS>" in term
        or (term.isascii() and term.isdigit() and len(term) >= 16 and term.startswith("01"))
    )


def _first_matches(rows: QuerySet[Any]) -> tuple[list[Any], bool]:
    found = list(rows[: MATCH_LIMIT + 1])
    return found[:MATCH_LIMIT], len(found) > MATCH_LIMIT


def lot_options(*, chosen: list[int], term: str) -> Options[Lot]:
    """The chosen lots and the first lots whose number or product name holds `term`, or which a
    scanned GS1 code names (its GTIN's lots, narrowed to its lot number when it carries one)."""
    lots = Lot.objects.select_related("product").order_by("lot_number", "pk")
    chosen_lots = list(lots.filter(pk__in=chosen)) if chosen else []
    term = _term(term)
    if not term:
        return Options(chosen=chosen_lots)
    found = lots.filter(Q(lot_number__icontains=term) | Q(product__name__icontains=term))
    if _looks_scanned(term):
        try:
            scan = scan_parse(term)
        except DomainError as error:
            if not term.isdigit():
                return Options(term=term, chosen=chosen_lots, problem=error.problems[0].message)
        else:
            found = lots.filter(product__gtin=scan.gtin)
            if scan.lot_number:
                found = found.filter(lot_number=scan.lot_number)
    matches, more = _first_matches(found.exclude(pk__in=[lot.pk for lot in chosen_lots]))
    return Options(term=term, chosen=chosen_lots, matches=matches, more=more)


def donor_options(*, chosen: list[int], term: str) -> Options[Donor]:
    """The chosen donor and the first donors whose code holds `term`."""
    donors = Donor.objects.order_by("code", "pk")
    chosen_donors = list(donors.filter(pk__in=chosen[:1])) if chosen else []
    term = _term(term)
    if not term:
        return Options(chosen=chosen_donors)
    matches, more = _first_matches(
        donors.filter(code__icontains=term).exclude(pk__in=[d.pk for d in chosen_donors])
    )
    return Options(term=term, chosen=chosen_donors, matches=matches, more=more)


def scope_options(data: QueryDict) -> dict[str, Options[Any]]:
    """The options of both search fields for a form posted (or asked for) with `data`."""
    return {
        "lot_options": lot_options(
            chosen=posted_ids(data.getlist("lots")), term=data.get("lot_search", "")
        ),
        "donor_options": donor_options(
            chosen=posted_ids(data.getlist("donor")), term=data.get("donor_search", "")
        ),
    }


REFUSAL = cast(str, gettext_lazy("Only a quality manager opens a recall."))


@page(allowed=network_writer, refusal=REFUSAL)
def recall_lot_search(request: HttpRequest) -> HttpResponse:
    """The lot options alone, for htmx: the lots ticked so far and the matches of `lot_search`."""
    options = lot_options(
        chosen=posted_ids(request.GET.getlist("lots")), term=request.GET.get("lot_search", "")
    )
    return render(request, "pages/recalls/_lot_options.html", {"lot_options": options})


@page(allowed=network_writer, refusal=REFUSAL)
def recall_donor_search(request: HttpRequest) -> HttpResponse:
    """The donor options alone, for htmx: the donor chosen so far and the matches."""
    options = donor_options(
        chosen=posted_ids(request.GET.getlist("donor")), term=request.GET.get("donor_search", "")
    )
    return render(request, "pages/recalls/_donor_options.html", {"donor_options": options})


urlpatterns = [
    path("recalls/new/lots/", recall_lot_search, name="recall-new-lots"),
    path("recalls/new/donors/", recall_donor_search, name="recall-new-donors"),
]
