"""Recording a lot (it starts quarantined) and adding source donors to it."""

from __future__ import annotations

import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from common.errors import DomainError
from common.services import history, require_reason, validate_instance
from lots.models import Donor, Lot, LotDonor, LotStatus, Product
from lots.sec import PARTS as SEC_PARTS
from lots.sec import expiry_problems, normalise_part, part_problems
from lots.selectors import RELEASABLE_FROM
from providers.models import Role
from providers.selectors import require_role


@transaction.atomic
def lot_create(
    *,
    actor: Any,
    product: Product,
    lot_number: str,
    manufactured_on: datetime.date,
    expires_on: datetime.date,
    quantity: int,
    unit: str,
    regulatory_basis: str,
    regulatory_number: str = "",
    donors: list[Donor] | None = None,
    sec: dict[str, str] | None = None,
) -> Lot:
    """A new lot always starts quarantined (DESIGN rule 1). A human-derived lot may carry its
    Single European Code (`sec`: the parts of lots.sec.PARTS and `expiry_date`, YYYYMMDD)."""
    require_role(actor, Role.QUALITY_MANAGER)
    # A donor named twice is still one donor; inserting it twice would break lot_donor_unique.
    donors = list({donor.pk: donor for donor in donors or []}.values())
    if donors and not product.is_human_derived:
        raise DomainError.single(
            "lot_donors_not_applicable",
            _("%(source_kind)s products have no human donors.")
            % {"source_kind": product.get_source_kind_display()},
            field="donors",
            status=400,
        )
    lot = Lot(
        product=product,
        manufacturer_id=product.manufacturer_id,
        lot_number=lot_number.strip(),
        manufactured_on=manufactured_on,
        expires_on=expires_on,
        quantity=quantity,
        unit=unit,
        regulatory_basis=regulatory_basis,
        regulatory_number=regulatory_number.strip(),
        status=LotStatus.QUARANTINED,
        status_changed_at=timezone.now(),
        created_by=actor,
    )
    if sec is not None:
        _set_sec(lot, product, sec)
    try:
        validate_instance(lot, exclude=["created_by"])
    except DomainError as error:
        if any(problem.code in ("unique", "unique_together") for problem in error.problems):
            raise DomainError.single(
                "lot_number_taken",
                _("%(manufacturer)s already has a lot %(lot)s.")
                % {"manufacturer": product.manufacturer, "lot": lot.lot_number},
                field="lot_number",
            ) from error
        if any(problem.code == "sec_taken" for problem in error.problems):
            raise DomainError.single(
                "sec_taken",
                _("Another lot already carries this Single European Code."),
                field="sec",
            ) from error
        raise
    with history(actor, "lot recorded"):
        lot.save()
        LotDonor.objects.bulk_create(
            [LotDonor(lot=lot, donor=donor) for donor in sorted(donors, key=lambda d: d.pk)]
        )
    return lot


def _set_sec(lot: Lot, product: Product, sec: dict[str, str]) -> None:
    """Validate every part of the code (all problems at once, each naming its part) and put it
    on the lot. The SEC codes tissues and cells of human origin only."""
    if not product.is_human_derived:
        raise DomainError.single(
            "sec_not_applicable",
            _("The Single European Code is for human tissues and cells; %(product)s is %(kind)s.")
            % {"product": product.name, "kind": product.get_source_kind_display().lower()},
            field="sec",
            status=400,
        )
    parts = {name: normalise_part(sec.get(name)) for name in SEC_PARTS}
    problems = [
        problem
        for name, value in parts.items()
        for problem in part_problems(name, value, f"sec.{name}")
    ]
    problems += expiry_problems(
        normalise_part(sec.get("expiry_date")), lot.expires_on, "sec.expiry_date"
    )
    if problems:
        raise DomainError(problems, status=400)
    for name, value in parts.items():
        setattr(lot, f"sec_{name}", value)


@transaction.atomic
def lot_donor_add(*, actor: Any, lot: Lot, donor: Donor, reason: str) -> Lot:
    require_role(actor, Role.QUALITY_MANAGER)
    reason = require_reason(reason)
    lot = (
        Lot.objects.select_for_update(of=("self",), no_key=True)
        .select_related("product")
        .get(pk=lot.pk)
    )
    if lot.status not in RELEASABLE_FROM:
        raise DomainError.single(
            "lot_not_editable",
            _("Donors can only be added while the lot is quarantined or on hold."),
            field="donors",
        )
    if not lot.product.is_human_derived:
        raise DomainError.single(
            "lot_donors_not_applicable",
            _("This product has no human donors."),
            field="donors",
            status=400,
        )
    with history(actor, reason):
        LotDonor.objects.get_or_create(lot=lot, donor=donor)
    return lot


@transaction.atomic
def lot_sec_set(*, actor: Any, lot: Lot, sec: dict[str, str], reason: str) -> Lot:
    """Give a lot registered without one its Single European Code (a tissue establishment codes
    a lot it imports, or a clinic's jurisdiction comes to require the code). Once given, a code
    is not changed: it is printed on the lot's labels and named in the records of its uses.

    The code is part of the lot's identity that a decision signs, so it is given, like a donor,
    while the lot is quarantined or on hold: a released lot is put on hold, given its code and
    released again, and the new release signature supersedes the old one."""
    require_role(actor, Role.QUALITY_MANAGER)
    reason = require_reason(reason)
    lot = (
        Lot.objects.select_for_update(of=("self",), no_key=True)
        .select_related("product")
        .get(pk=lot.pk)
    )
    if lot.status not in RELEASABLE_FROM:
        raise DomainError.single(
            "lot_not_editable",
            _(
                "The Single European Code is given while the lot is quarantined or on hold: put "
                "a released lot on hold, give the code, then release it again."
            ),
            field="sec",
        )
    if lot.sec is not None:
        raise DomainError.single(
            "sec_already_set",
            _("Lot %(lot)s already carries the Single European Code %(code)s.")
            % {"lot": lot.lot_number, "code": lot.sec.eye_readable},
            field="sec",
        )
    _set_sec(lot, lot.product, sec)
    taken = DomainError.single(
        "sec_taken", _("Another lot already carries this Single European Code."), field="sec"
    )
    if Lot.objects.filter(
        **{f"sec_{name}": getattr(lot, f"sec_{name}") for name in SEC_PARTS}
    ).exists():
        raise taken
    try:
        # The database decides between two lots given the same code at once (lot_sec_unique).
        with transaction.atomic(), history(actor, reason):
            lot.save(update_fields=[f"sec_{name}" for name in SEC_PARTS])
    except IntegrityError as error:
        raise taken from error
    return lot
