"""Importing lots made before the network kept them: each row one lot, recorded by the lots app's
own service (`lot_create`: every rule of a new lot; it starts quarantined) with its donors.

A lot is released afterwards, retrospectively, on the release page or through the API, once its
evidence (QC results, certificate of analysis) is on record: the release gate needs evidence of
the lot itself, which cannot exist before the lot does, so a release column in this file would be
refused on every row.

Unlike treatments and receipts, each row goes through the service one by one: a network has
hundreds of lots, not hundreds of thousands. The products and donors the file names are read
once.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _

from common.errors import DomainError, Problem
from history.reading import Cells, Columns, Row, RowProblem, RowsRefused
from lots.models import Donor, LotUnit, Product, RegulatoryBasis
from lots.services import lot_create

COLUMNS = Columns(
    required=(
        "product",
        "lot_number",
        "manufactured_on",
        "expires_on",
        "quantity",
        "unit",
        "regulatory_basis",
    ),
    optional=("regulatory_number", "donors"),
)
# The lots services name these fields; an import names its columns.
FIELD_COLUMNS: dict[str, str | None] = {"sec": None}

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Planned:
    line: int
    product: Product
    lot_number: str
    manufactured_on: datetime.date
    expires_on: datetime.date
    quantity: int
    unit: str
    regulatory_basis: str
    regulatory_number: str
    donors: list[Donor]


def check(
    *, clinic: Any, actor: Any, rows: list[Row], problems: list[RowProblem], progress: Progress
) -> list[Planned]:
    """Each row's cells, product and donors (two statements for the file); the lots' own rules
    are judged by the services as they write."""
    parsed = [(row, cells) for row in rows if (cells := _parse(row, problems)) is not None]
    products = Product.objects.in_bulk({cells["product"] for _row, cells in parsed})
    codes = {code for _row, cells in parsed for code in cells["donors"]}
    donors = {donor.code: donor for donor in Donor.objects.filter(code__in=codes)}
    planned = []
    for row, cells in parsed:
        product = products.get(cells["product"])
        if product is None:
            problems.append(
                RowProblem(
                    row.line,
                    "product",
                    "product_unknown",
                    _("No product has the id %(id)s.") % {"id": cells["product"]},
                )
            )
        unknown = [code for code in cells["donors"] if code not in donors]
        if unknown:
            problems.append(
                RowProblem(
                    row.line,
                    "donors",
                    "donor_unknown",
                    _("No donor has the code %(codes)s.") % {"codes": ", ".join(unknown)},
                )
            )
        if product is None or unknown:
            continue
        planned.append(
            Planned(
                line=row.line,
                product=product,
                lot_number=cells["lot_number"],
                manufactured_on=cells["manufactured_on"],
                expires_on=cells["expires_on"],
                quantity=cells["quantity"],
                unit=cells["unit"],
                regulatory_basis=cells["regulatory_basis"],
                regulatory_number=cells["regulatory_number"],
                donors=[donors[code] for code in cells["donors"]],
            )
        )
    progress(len(rows))
    return planned


def _parse(row: Row, problems: list[RowProblem]) -> dict[str, Any] | None:
    cells = Cells(row, problems)
    before = len(problems)
    values: dict[str, Any] = {
        "product": cells.integer("product"),
        "lot_number": cells.text("lot_number", max_length=20),
        "manufactured_on": cells.date("manufactured_on"),
        "expires_on": cells.date("expires_on"),
        "quantity": cells.integer("quantity"),
        "unit": cells.choice("unit", LotUnit.values),
        "regulatory_basis": cells.choice("regulatory_basis", RegulatoryBasis.values),
        "regulatory_number": cells.text("regulatory_number", required=False, max_length=40),
        "donors": [
            code.strip() for code in cells.text("donors", required=False).split(";") if code.strip()
        ],
    }
    return None if len(problems) > before else values


def write(
    *,
    clinic: Any,
    actor: Any,
    planned: list[Planned],
    progress: Progress,
) -> int:
    """Record each lot through the lots service; every row refused is reported (the caller's
    transaction then rolls all of them back)."""
    problems: list[RowProblem] = []
    for done, item in enumerate(planned, start=1):
        try:
            lot_create(
                actor=actor,
                product=item.product,
                lot_number=item.lot_number,
                manufactured_on=item.manufactured_on,
                expires_on=item.expires_on,
                quantity=item.quantity,
                unit=item.unit,
                regulatory_basis=item.regulatory_basis,
                regulatory_number=item.regulatory_number,
                donors=item.donors,
            )
        except DomainError as error:
            problems.extend(_at(item.line, problem) for problem in error.problems)
        progress(done)
    if problems:
        raise RowsRefused(problems)
    return len(planned)


def _at(line: int, problem: Problem) -> RowProblem:
    field = (problem.field or "").split(".")[0]
    return RowProblem.at(line, FIELD_COLUMNS.get(field, field or None), problem)
