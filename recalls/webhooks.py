"""Writes about webhook endpoints: the integrations that receive recall notices.

Quality managers keep them. The secret's format is the field's validator
(`recalls.models.validate_webhook_secret`), so `validate_instance` refuses a malformed one however
the endpoint is written; it is never shown back, so a change that leaves it blank keeps it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.db import transaction

from providers.models import Clinic, Role
from providers.selectors import require_role
from recalls.models import WEBHOOK_KEY_PREFIX, WEBHOOK_SECRET_RULE, WebhookEndpoint
from traceability.errors import DomainError, Problem
from traceability.services import history, validate_instance

EDITABLE_FIELDS = frozenset({"name", "url", "secret", "clinic", "active"})


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
            f"{unknown[0]} cannot be changed here.",
            field=unknown[0],
            status=400,
        )
    problems = []
    reason = (reason or "").strip()
    if not reason:
        problems.append(Problem("reason_required", "State the reason for this change.", "reason"))
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    for name, value in fields.items():
        if name in ("name", "url", "secret"):
            value = (value or "").strip()
        if name == "secret" and not value:
            continue
        setattr(endpoint, name, value)
    return _save(endpoint, actor=actor, reason=reason, problems=problems)


def _save(
    endpoint: WebhookEndpoint, *, actor: Any, reason: str, problems: list[Problem]
) -> WebhookEndpoint:
    """Refuse with every problem at once (the caller's, the URL's scheme, the model's validators),
    or save with the actor and the reason in the history context."""
    if urlsplit(endpoint.url).scheme not in ("http", "https"):
        problems.append(
            Problem("webhook_url_scheme", "A webhook URL starts with https:// or http://.", "url")
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
