"""Writes about webhook endpoints: the integrations that receive recall notices.

Quality managers keep them. Through the API an endpoint's secret is generated here and shown once,
on registration and on each rotation; after a rotation the previous secret still signs beside the
new one for RECALL_WEBHOOK_ROTATION_OVERLAP_HOURS. An endpoint that answers 410 Gone is
deactivated by delivery (`webhook_endpoint_deactivate_gone`).

The secret's format is the field's validator (`recalls.models.validate_webhook_secret`), so
`validate_instance` refuses a malformed one however the endpoint is written; it is never shown
back, so a change that leaves it blank keeps it.
"""

from __future__ import annotations

import base64
import datetime
import secrets
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from common.errors import DomainError, Problem
from common.services import history, validate_instance
from providers.models import Clinic, Role
from providers.selectors import require_role
from recalls.models import WEBHOOK_KEY_PREFIX, WEBHOOK_SECRET_RULE, WebhookEndpoint

EDITABLE_FIELDS = frozenset({"name", "url", "secret", "clinic", "active"})
SECRET_BYTES = 32


def webhook_secret_generate() -> str:
    """A new Standard Webhooks secret: whsec_ and the base64 of 32 random bytes."""
    return WEBHOOK_KEY_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _reason_problems(reason: str) -> list[Problem]:
    if (reason or "").strip():
        return []
    return [Problem("reason_required", _("State the reason for this change."), "reason")]


def _locked(endpoint: WebhookEndpoint) -> WebhookEndpoint:
    return WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)


@transaction.atomic
def webhook_endpoint_create(
    *,
    actor: Any,
    name: str,
    url: str,
    secret: str,
    clinic: Clinic | None = None,
    active: bool = True,
    reason: str = "",
) -> WebhookEndpoint:
    """Add an endpoint; its secret is required. Without `clinic` it receives every recall."""
    require_role(actor, Role.QUALITY_MANAGER)
    endpoint = WebhookEndpoint(
        name=name.strip(),
        url=url.strip(),
        secret=(secret or "").strip(),
        clinic=clinic,
        active=active,
    )
    problems = []
    if not endpoint.secret:
        problems.append(Problem("webhook_secret_required", WEBHOOK_SECRET_RULE, "secret"))
    reason = (reason or "").strip() or "webhook endpoint added"
    return _save(endpoint, actor=actor, reason=reason, problems=problems)


@transaction.atomic
def webhook_endpoint_update(
    *, actor: Any, endpoint: WebhookEndpoint, reason: str, **fields: Any
) -> WebhookEndpoint:
    """Change an endpoint's `name`, `url`, `secret`, `clinic` or `active`; a reason is required.
    A blank `secret` keeps the stored one (nobody is shown it, so nobody can type it again)."""
    require_role(actor, Role.QUALITY_MANAGER)
    unknown = sorted(set(fields) - EDITABLE_FIELDS)
    if unknown:
        raise DomainError.single(
            "field_not_editable",
            _("%(field)s cannot be changed here.") % {"field": unknown[0]},
            field=unknown[0],
            status=400,
        )
    problems = _reason_problems(reason)
    endpoint = _locked(endpoint)
    was_active = endpoint.active
    for name, value in fields.items():
        if name in ("name", "url", "secret"):
            value = (value or "").strip()
        if name == "secret" and not value:
            continue
        setattr(endpoint, name, value)
    if was_active != endpoint.active:
        _mark_active(endpoint, active=endpoint.active, reason=reason.strip())
    return _save(endpoint, actor=actor, reason=reason.strip(), problems=problems)


@transaction.atomic
def webhook_endpoint_register(
    *, actor: Any, name: str, url: str, clinic: Clinic | None = None, reason: str = ""
) -> WebhookEndpoint:
    """Add an endpoint with a secret generated here. The returned endpoint's `secret` is the
    only time anyone sees it: the caller shows it once."""
    return webhook_endpoint_create(
        actor=actor,
        name=name,
        url=url,
        secret=webhook_secret_generate(),
        clinic=clinic,
        reason=(reason or "").strip() or "webhook endpoint registered",
    )


@transaction.atomic
def webhook_endpoint_rotate(
    *, actor: Any, endpoint: WebhookEndpoint, reason: str
) -> WebhookEndpoint:
    """Give an endpoint a new generated secret (returned in `secret`, to be shown once). The
    previous one signs beside it until RECALL_WEBHOOK_ROTATION_OVERLAP_HOURS have passed."""
    require_role(actor, Role.QUALITY_MANAGER)
    problems = _reason_problems(reason)
    endpoint = _locked(endpoint)
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = timezone.now() + datetime.timedelta(
        hours=settings.RECALL_WEBHOOK_ROTATION_OVERLAP_HOURS
    )
    endpoint.secret = webhook_secret_generate()
    return _save(endpoint, actor=actor, reason=reason.strip(), problems=problems)


@transaction.atomic
def webhook_endpoint_deactivate(
    *, actor: Any, endpoint: WebhookEndpoint, reason: str
) -> WebhookEndpoint:
    """Stop sending to an endpoint. Its pending notices fail at their next attempt, visibly."""
    return _set_active(actor=actor, endpoint=endpoint, reason=reason, active=False)


@transaction.atomic
def webhook_endpoint_activate(
    *, actor: Any, endpoint: WebhookEndpoint, reason: str
) -> WebhookEndpoint:
    """Send to an endpoint again (its failed notices are resent one by one, by a person)."""
    return _set_active(actor=actor, endpoint=endpoint, reason=reason, active=True)


def _set_active(
    *, actor: Any, endpoint: WebhookEndpoint, reason: str, active: bool
) -> WebhookEndpoint:
    require_role(actor, Role.QUALITY_MANAGER)
    problems = _reason_problems(reason)
    endpoint = _locked(endpoint)
    if endpoint.active == active:
        state = "active" if active else "deactivated"
        raise DomainError.single(
            f"webhook_endpoint_already_{state}",
            _("The endpoint %(endpoint)s is already active.") % {"endpoint": endpoint.name}
            if active
            else _("The endpoint %(endpoint)s is already deactivated.")
            % {"endpoint": endpoint.name},
            status=409,
        )
    _mark_active(endpoint, active=active, reason=reason.strip())
    return _save(endpoint, actor=actor, reason=reason.strip(), problems=problems)


def _mark_active(endpoint: WebhookEndpoint, *, active: bool, reason: str) -> None:
    endpoint.active = active
    endpoint.deactivated_at = None if active else timezone.now()
    endpoint.deactivation_reason = "" if active else reason[:500]


def webhook_endpoint_deactivate_gone(*, endpoint: WebhookEndpoint, reason: str) -> bool:
    """Deactivate an endpoint that answered 410 Gone (called by delivery, no user). A conditional
    UPDATE: True only for the first caller, so the quality managers are told once."""
    why = f"answered 410 Gone: {reason}"[:500]
    with transaction.atomic(), history(None, why):
        return bool(
            WebhookEndpoint.objects.filter(pk=endpoint.pk, active=True).update(
                active=False, deactivated_at=timezone.now(), deactivation_reason=why
            )
        )


def _save(
    endpoint: WebhookEndpoint, *, actor: Any, reason: str, problems: list[Problem]
) -> WebhookEndpoint:
    """Refuse with every problem at once (the caller's, the URL's scheme, the model's validators),
    or save with the actor and the reason in the history context."""
    if urlsplit(endpoint.url).scheme not in ("http", "https"):
        problems.append(
            Problem(
                "webhook_url_scheme", _("A webhook URL starts with https:// or http://."), "url"
            )
        )
    # A missing secret is already named (webhook_secret_required); the model would add "blank".
    exclude = ["secret"] if not endpoint.secret else None
    try:
        validate_instance(endpoint, exclude=exclude)
    except DomainError as error:
        problems.extend(error.problems)
    if problems:
        raise DomainError(problems, status=400)
    with history(actor, reason):
        endpoint.save()
    return endpoint


def mask_secret(secret: str) -> str:
    """Enough to tell two secrets apart, never the secret."""
    if not secret:
        return "-"
    if len(secret) < len(WEBHOOK_KEY_PREFIX) + 16:
        return f"{WEBHOOK_KEY_PREFIX}… (hidden)"
    return f"{WEBHOOK_KEY_PREFIX}…{secret[-4:]} (hidden)"
