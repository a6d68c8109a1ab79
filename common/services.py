"""Helpers every service uses: model validation into DomainError, history context, signatures."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pghistory
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django.db import models
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from common.errors import DomainError, Problem, problems_from_validation_error
from common.lockout import lockout_problem, signing_allowed, signing_failed, signing_succeeded

Actor = AbstractBaseUser | AnonymousUser


def validate_instance(
    instance: models.Model, *, exclude: list[str] | None = None, constraints: bool = True
) -> None:
    """Run the model's validators and constraints (`constraints=False`: its fields' validators
    only, for a caller that has judged what its constraints say); raise DomainError(400) naming
    each field."""
    try:
        instance.full_clean(exclude=exclude, validate_constraints=constraints)
    except ValidationError as error:
        raise DomainError(problems_from_validation_error(error), status=400) from error


def stated_moment(stated: datetime.date | datetime.datetime) -> datetime.datetime:
    """The moment a user states for something that happened before it was entered: a day holds
    from the start of the network's day (UTC), as the rules judge days; an instant without a zone
    is read in UTC."""
    if isinstance(stated, datetime.datetime):
        return stated.replace(tzinfo=datetime.UTC) if timezone.is_naive(stated) else stated
    return datetime.datetime.combine(stated, datetime.time.min, tzinfo=datetime.UTC)


def require_reason(reason: str, *, field: str = "reason") -> str:
    cleaned = (reason or "").strip()
    if not cleaned:
        raise DomainError.single(
            "reason_required", _("State the reason for this change."), field=field, status=400
        )
    return cleaned


@contextmanager
def history(actor: Any, reason: str = "", **extra: Any) -> Iterator[None]:
    """Attach the acting user and the stated reason to every history row written inside."""
    user_id = getattr(actor, "pk", None)
    with pghistory.context(user=user_id, reason=reason, **extra):
        yield


def verify_password(actor: Any, password: str, *, request: HttpRequest | None = None) -> None:
    """The second signature component (21 CFR 11.200): the signer re-enters the password.

    Wrong passwords count towards the account's lock-out (common.lockout, django-axes):
    after AXES_FAILURE_LIMIT in a row the account is locked for the cool-off period, and every
    signature (and sign-in) is refused with `account_locked`, the right password too. `request`,
    when the caller has one, lends its client address to the record of a failure."""
    username = actor.get_username()
    if not signing_allowed(username=username, request=request):
        raise DomainError(lockout_problem("password"), status=403)
    if password and actor.check_password(password):
        signing_succeeded(username=username, request=request)
        return
    problems = [
        Problem(
            "signature_password_invalid",
            _("The password you re-entered to sign is not correct."),
            "password",
        )
    ]
    if signing_failed(username=username, request=request):
        problems.append(lockout_problem("password"))
    raise DomainError(problems, status=403)
