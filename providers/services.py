"""Writes about manufacturers, clinics, practitioners and memberships.

Until role enforcement covers clinic administration (a later issue), the quality manager keeps these
records for the whole network.
"""

from __future__ import annotations

import datetime
from typing import Any, TypeVar

from django.db import models, transaction
from django.utils.translation import gettext as _

from common.errors import DomainError
from common.services import history, require_reason, validate_instance
from common.validators import sec_required_in
from providers.accounts import membership_grant as membership_grant  # callers import them here too
from providers.accounts import user_create as user_create
from providers.models import (
    Clinic,
    ClinicContact,
    ClinicPractitioner,
    Licence,
    Manufacturer,
    Practitioner,
    Role,
)
from providers.selectors import require_any_role, require_role

_Model = TypeVar("_Model", bound=models.Model)


def _save(instance: _Model, *, actor: Any, reason: str) -> _Model:
    validate_instance(instance)
    with history(actor, reason):
        instance.save()
    return instance


@transaction.atomic
def manufacturer_create(
    *, actor: Any, legal_name: str, country: str, registration_number: str = ""
) -> Manufacturer:
    require_role(actor, Role.QUALITY_MANAGER)
    manufacturer = Manufacturer(
        legal_name=legal_name.strip(), country=country, registration_number=registration_number
    )
    return _save(manufacturer, actor=actor, reason="manufacturer created")


@transaction.atomic
def manufacturer_update(
    *, actor: Any, manufacturer: Manufacturer, reason: str, **fields: Any
) -> Manufacturer:
    require_role(actor, Role.QUALITY_MANAGER)
    reason = require_reason(reason)
    allowed = {"legal_name", "country", "registration_number"}
    _assign(manufacturer, fields, allowed)
    return _save(manufacturer, actor=actor, reason=reason)


def _assign(instance: Any, fields: dict[str, Any], allowed: set[str]) -> None:
    unknown = set(fields) - allowed
    if unknown:
        name = sorted(unknown)[0]
        raise DomainError.single(
            "field_not_editable",
            _("%(field)s cannot be changed here.") % {"field": name},
            field=name,
            status=400,
        )
    for name, value in fields.items():
        setattr(instance, name, value)


@transaction.atomic
def clinic_create(
    *,
    actor: Any,
    name: str,
    address: str,
    jurisdiction: str,
    contacts: list[dict[str, str]],
    time_zone: str = "UTC",
    language: str = "en",
    requires_sec: bool | None = None,
) -> Clinic:
    """Record a clinic. `time_zone` (IANA, e.g. Europe/Berlin) is where its calendar days are
    judged; it is never guessed from the jurisdiction, which may span several zones (US-TX).
    `language` is the one its recall notices are written in. `requires_sec` (the Single
    European Code on every human-derived lot used there) follows the law of the jurisdiction
    (EU and EEA states) unless stated."""
    require_role(actor, Role.QUALITY_MANAGER)
    reason = "clinic created"
    clinic = _save(
        Clinic(
            name=name.strip(),
            address=address,
            jurisdiction=jurisdiction,
            time_zone=time_zone,
            language=language,
            requires_sec=sec_required_in(jurisdiction) if requires_sec is None else requires_sec,
        ),
        actor=actor,
        reason=reason,
    )
    # The contacts are saved under the clinic's own reason, not through clinic_contact_add: inside
    # a request, HistoryMiddleware holds one pghistory context and each nested history() merges
    # into it, so a second reason would overwrite the first on the clinic's event too.
    for contact in contacts:
        _save(_contact(clinic, contact["name"], contact["email"]), actor=actor, reason=reason)
    return clinic


@transaction.atomic
def clinic_update(*, actor: Any, clinic: Clinic, reason: str, **fields: Any) -> Clinic:
    require_role(actor, Role.QUALITY_MANAGER)
    reason = require_reason(reason)
    _assign(
        clinic,
        fields,
        {"name", "address", "jurisdiction", "time_zone", "language", "requires_sec"},
    )
    return _save(clinic, actor=actor, reason=reason)


@transaction.atomic
def clinic_contact_add(*, actor: Any, clinic: Clinic, name: str, email: str) -> ClinicContact:
    require_role(actor, Role.QUALITY_MANAGER)
    return _save(_contact(clinic, name, email), actor=actor, reason="notification contact added")


def _contact(clinic: Clinic, name: str, email: str) -> ClinicContact:
    return ClinicContact(clinic=clinic, name=name, email=email.strip().lower())


@transaction.atomic
def practitioner_create(
    *, actor: Any, name: str, profession: str, user: Any | None = None
) -> Practitioner:
    require_role(actor, Role.QUALITY_MANAGER)
    practitioner = Practitioner(name=name.strip(), profession=profession, user=user)
    return _save(practitioner, actor=actor, reason="practitioner created")


@transaction.atomic
def licence_add(
    *,
    actor: Any,
    practitioner: Practitioner,
    number: str,
    jurisdiction: str,
    valid_from: datetime.date,
    valid_until: datetime.date,
) -> Licence:
    require_role(actor, Role.QUALITY_MANAGER)
    licence = Licence(
        practitioner=practitioner,
        number=number.strip(),
        jurisdiction=jurisdiction,
        valid_from=valid_from,
        valid_until=valid_until,
    )
    return _save(licence, actor=actor, reason="licence recorded")


CLINIC_KEEPERS = (Role.QUALITY_MANAGER, Role.CLINIC_ADMINISTRATOR)


@transaction.atomic
def clinic_practitioner_link(
    *, actor: Any, clinic: Clinic, practitioner: Practitioner, since: datetime.date | None = None
) -> ClinicPractitioner:
    """Let a practitioner be named on the clinic's treatments. Linking again re-activates an
    inactive link; an active link is returned unchanged."""
    require_any_role(actor, CLINIC_KEEPERS, clinic=clinic)
    link = (
        ClinicPractitioner.objects.select_for_update()
        .filter(clinic=clinic, practitioner=practitioner)
        .first()
    )
    if link is not None:
        if not link.active:
            link.active = True
            _save(link, actor=actor, reason="practitioner linked to the clinic again")
        return link
    link = ClinicPractitioner(clinic=clinic, practitioner=practitioner, since=since)
    _save(link, actor=actor, reason="practitioner linked to the clinic")
    return link


@transaction.atomic
def clinic_practitioner_unlink(
    *, actor: Any, clinic: Clinic, practitioner: Practitioner, reason: str
) -> ClinicPractitioner:
    """The practitioner no longer practises at the clinic: they may not be named on its treatments
    from now on; those recorded stay as they are. The link is kept, inactive."""
    require_any_role(actor, CLINIC_KEEPERS, clinic=clinic)
    reason = require_reason(reason)
    link = (
        ClinicPractitioner.objects.select_for_update()
        .filter(clinic=clinic, practitioner=practitioner)
        .first()
    )
    if link is None or not link.active:
        raise DomainError.single(
            "practitioner_not_linked",
            _("%(practitioner)s is not linked to %(clinic)s.")
            % {"practitioner": practitioner.name, "clinic": clinic.name},
            field="practitioner",
            status=409,
        )
    link.active = False
    return _save(link, actor=actor, reason=reason)


@transaction.atomic
def clinic_consent_requirement_set(
    *, actor: Any, clinic: Clinic, required: bool, reason: str
) -> Clinic:
    """Whether the clinic refuses treatments recorded without the patient's informed consent."""
    require_any_role(actor, CLINIC_KEEPERS, clinic=clinic)
    reason = require_reason(reason)
    clinic = Clinic.objects.select_for_update().get(pk=clinic.pk)
    if clinic.consent_required == required:
        return clinic
    clinic.consent_required = required
    _save(clinic, actor=actor, reason=reason)
    return clinic
