"""Recording products and whether each may be used in a jurisdiction."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from common.errors import DomainError
from common.services import history, require_reason, validate_instance
from common.validators import normalise_gtin, validate_jurisdiction
from lots.models import AuthorisationStatus, Product, ProductAuthorisation
from providers.models import Manufacturer, Role
from providers.selectors import require_role


@transaction.atomic
def product_create(
    *,
    actor: Any,
    manufacturer: Manufacturer,
    name: str,
    source_kind: str,
    permitted_routes: list[str],
    storage_min_celsius: Decimal,
    storage_max_celsius: Decimal,
    tissue: str = "",
    gtin: str | None = None,
) -> Product:
    require_role(actor, Role.QUALITY_MANAGER)
    product = Product(
        manufacturer=manufacturer,
        name=name.strip(),
        source_kind=source_kind,
        tissue=tissue,
        permitted_routes=sorted(set(permitted_routes)),
        storage_min_celsius=storage_min_celsius,
        storage_max_celsius=storage_max_celsius,
        gtin=_gtin_or_none(gtin),
    )
    validate_instance(product)
    with history(actor, "product created"):
        product.save()
    return product


def _gtin_or_none(gtin: str | None) -> str | None:
    if not gtin:
        return None
    try:
        return normalise_gtin(gtin)
    except ValidationError as error:
        raise DomainError.single(
            error.code or "gtin_invalid", error.messages[0], field="gtin", status=400
        ) from error


@transaction.atomic
def product_authorisation_set(
    *, actor: Any, product: Product, jurisdiction: str, status: str, note: str = "", reason: str
) -> ProductAuthorisation:
    """Record whether a product may be used in a jurisdiction; replaces the earlier decision."""
    require_role(actor, Role.QUALITY_MANAGER)
    reason = require_reason(reason)
    if status not in AuthorisationStatus.values:
        raise DomainError.single(
            "invalid_choice",
            _("%(status)s is not an authorisation status.") % {"status": status},
            field="status",
            status=400,
        )
    # Check the code before it reaches a query: a malformed one (a NUL, say) is a 400 here, not a
    # database error.
    try:
        validate_jurisdiction(jurisdiction)
    except ValidationError as error:
        raise DomainError.single(
            error.code or "jurisdiction_invalid",
            error.messages[0],
            field="jurisdiction",
            status=400,
        ) from error
    authorisation = (
        ProductAuthorisation.objects.select_for_update()
        .filter(product=product, jurisdiction=jurisdiction)
        .first()
    ) or ProductAuthorisation(product=product, jurisdiction=jurisdiction)
    authorisation.status = status
    authorisation.note = note
    validate_instance(authorisation)
    with history(actor, reason):
        authorisation.save()
    return authorisation
