"""Finding an import row's lot by its lot number (and the product's GTIN where two manufacturers
use the same number), and the clinic's usable units of a lot at a past instant."""

from __future__ import annotations

import bisect
import datetime
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.utils.translation import gettext as _

from common.errors import Problem
from lots.models import Lot
from stock.models import StockMovement, StockState


class LotIndex:
    """The lots an import names, read in one statement with their products."""

    def __init__(self, numbers: Iterable[str]) -> None:
        self.by_number: dict[str, list[Lot]] = defaultdict(list)
        for lot in Lot.objects.select_related("product").filter(lot_number__in=set(numbers)):
            self.by_number[lot.lot_number].append(lot)

    def find(self, number: str, gtin: str) -> Lot | Problem:
        """The one lot with that number (and product GTIN, when given), or why there is none."""
        candidates = [
            lot for lot in self.by_number.get(number, []) if not gtin or lot.product.gtin == gtin
        ]
        if len(candidates) == 1:
            return candidates[0]
        if candidates:
            return Problem(
                "lot_ambiguous",
                _(
                    "Several manufacturers have a lot %(lot)s: give the product's GTIN in the "
                    "gtin column."
                )
                % {"lot": number},
                "lot_number",
            )
        if gtin:
            return Problem(
                "lot_unknown",
                _("No lot %(lot)s of the product with GTIN %(gtin)s is on record.")
                % {"lot": number, "gtin": gtin},
                "lot_number",
            )
        return Problem(
            "lot_unknown",
            _("No lot %(lot)s is on record: register the lot first.") % {"lot": number},
            "lot_number",
        )


@dataclass
class _Levels:
    times: list[datetime.datetime] = field(default_factory=list)
    # The lowest level of the balance from each movement on: a draw at an instant must leave
    # every later level of the ledger at zero or above, not only the level at that instant.
    lowest_from: list[int] = field(default_factory=list)


class AcceptedStock:
    """The clinic's accepted units of each lot over time, from its ledger (one statement), less
    what the import draws. `usable(lot, at)` is what a treatment at `at` may still draw: the
    lowest level the ledger reaches from `at` on, less the units earlier rows of the import drew
    (rows are judged in time order, so every earlier row lies before `at`)."""

    def __init__(self, clinic_id: int, lot_ids: Iterable[int]) -> None:
        self.levels: dict[int, _Levels] = defaultdict(_Levels)
        self.drawn: dict[int, int] = defaultdict(int)
        movements = (
            StockMovement.objects.filter(
                clinic_id=clinic_id, lot_id__in=set(lot_ids), state=StockState.ACCEPTED
            )
            .order_by("lot_id", "occurred_at", "id")
            .values_list("lot_id", "occurred_at", "delta")
        )
        running: dict[int, list[int]] = defaultdict(list)
        for lot_id, occurred_at, delta in movements:
            levels = running[lot_id]
            levels.append((levels[-1] if levels else 0) + delta)
            self.levels[lot_id].times.append(occurred_at)
        for lot_id, levels in running.items():
            lowest = levels[:]
            for index in range(len(lowest) - 2, -1, -1):
                lowest[index] = min(lowest[index], lowest[index + 1])
            self.levels[lot_id].lowest_from = lowest

    def usable(self, lot_id: int, at: datetime.datetime) -> int:
        levels = self.levels.get(lot_id)
        if levels is None or not levels.times:
            return -self.drawn[lot_id]
        index = bisect.bisect_right(levels.times, at) - 1
        lowest = levels.lowest_from[index] if index >= 0 else min(0, levels.lowest_from[0])
        return lowest - self.drawn[lot_id]

    def draw(self, lot_id: int, units: int) -> None:
        self.drawn[lot_id] += units
