"""Writes about user accounts: create, rename, roles, passwords, deactivation (21 CFR 11.10(d)).

Accounts are kept by a network quality manager or a system administrator (a Django superuser);
everyone else is refused with `role_required`. An account is never deleted: it is deactivated,
which ends its sign-ins, its API tokens and its signatures, and can be reactivated. Every change is
recorded in the account's history (`providers.AccountEvent`) or the membership's, with who made it
and why. Only a superuser acts on a superuser's account, and nobody deactivates their own.

Passwords: an administrator may give an initial password when creating an account, or set a new
one later (both checked by Django's password validators and never shown again); the user changes
their own with the current one. A wrong current password counts towards the lock-out like any
other wrong password.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from knox.models import get_token_model
from knox.settings import knox_settings

from common.errors import DomainError, Problem
from common.lockout import lockout_problem, lockout_reset, signing_allowed, signing_failed
from common.services import history, require_reason, validate_instance
from providers.access import access_for, access_forget
from providers.models import NETWORK_ROLES, Account, Clinic, Membership, Role

logger = logging.getLogger(__name__)

ACCOUNT_FIELDS = ("first_name", "last_name", "email", "is_staff")


def may_keep_accounts(actor: Any) -> bool:
    """A network quality manager or a system administrator, signed in and active."""
    return access_for(actor).keeps_accounts


def require_account_keeper(actor: Any, *, user: Any | None = None) -> None:
    if not may_keep_accounts(actor):
        raise DomainError(
            Problem(
                "role_required",
                _("Accounts are kept by a quality manager or a system administrator."),
                None,
            ),
            status=403,
        )
    if user is not None and user.is_superuser and not actor.is_superuser:
        raise DomainError.single(
            "superuser_account_protected",
            _("Only a system administrator changes a system administrator's account."),
            status=403,
        )


def _save_account(user: Any, *, actor: Any, reason: str) -> Any:
    validate_instance(user, exclude=["password"])
    with history(actor, reason):
        # Saved through the proxy so that the history triggers see the write (they are on the
        # same table; the proxy only names them).
        user.save()
    return user


def _validated_password(password: str, *, user: Any, field: str = "password") -> str:
    try:
        password_validation.validate_password(password, user=user)
    except ValidationError as error:
        problems = [
            Problem(item.code or "password_invalid", " ".join(item.messages), field)
            for item in error.error_list
        ]
        raise DomainError(problems, status=400) from error
    return password


def _email(value: str, *, exclude_pk: int | None = None) -> str:
    email = (value or "").strip().lower()
    if email:
        taken = get_user_model().objects.filter(email__iexact=email)
        if exclude_pk is not None:
            taken = taken.exclude(pk=exclude_pk)
        if taken.exists():
            raise DomainError.single(
                "email_taken",
                _("Another account has this e-mail address."),
                field="email",
                status=400,
            )
    return email


@transaction.atomic
def user_create(
    *,
    actor: Any,
    username: str,
    password: str | None = None,
    first_name: str = "",
    last_name: str = "",
    email: str = "",
    is_staff: bool = False,
) -> Any:
    """Open an account. With `password` (checked by the password validators) the user can sign in
    at once; without, the account has no usable password until one is set (user_password_set).
    `actor=None` only bootstraps a new installation from a management command."""
    if actor is not None:
        require_account_keeper(actor)
    username = (username or "").strip()
    if get_user_model().objects.filter(username__iexact=username).exists():
        raise DomainError.single(
            "username_taken",
            _("An account with this username exists."),
            field="username",
            status=400,
        )
    user = Account(
        username=username,
        first_name=first_name.strip(),
        last_name=last_name.strip(),
        email=_email(email),
        is_staff=is_staff,
    )
    if password:
        user.set_password(_validated_password(password, user=user))
    else:
        user.set_unusable_password()
    return _save_account(user, actor=actor, reason="account created")


@transaction.atomic
def user_update(*, actor: Any, user: Any, reason: str, **fields: Any) -> Any:
    """Correct an account's name, e-mail address or admin access (is_staff), with the reason."""
    require_account_keeper(actor, user=user)
    reason = require_reason(reason)
    unknown = set(fields) - set(ACCOUNT_FIELDS)
    if unknown:
        name = sorted(unknown)[0]
        raise DomainError.single(
            "field_not_editable",
            _("%(field)s cannot be changed here.") % {"field": name},
            field=name,
            status=400,
        )
    user = _locked(user)
    if "email" in fields:
        fields["email"] = _email(fields["email"], exclude_pk=user.pk)
    for name, value in fields.items():
        setattr(user, name, value.strip() if isinstance(value, str) else value)
    return _save_account(user, actor=actor, reason=reason)


@transaction.atomic
def user_deactivate(*, actor: Any, user: Any, reason: str) -> Any:
    """End an account's use: no sign-in, no API token, no signature. Its records and roles stay
    (history); user_reactivate opens it again."""
    require_account_keeper(actor, user=user)
    reason = require_reason(reason)
    if user.pk == actor.pk:
        raise DomainError.single(
            "own_account", _("You cannot deactivate your own account."), status=409
        )
    user = _locked(user)
    if not user.is_active:
        raise DomainError.single(
            "account_inactive", _("This account is deactivated already."), status=409
        )
    user.is_active = False
    _save_account(user, actor=actor, reason=reason)
    get_token_model().objects.filter(user=user).delete()
    access_forget(user)
    return user


@transaction.atomic
def user_reactivate(*, actor: Any, user: Any, reason: str) -> Any:
    require_account_keeper(actor, user=user)
    reason = require_reason(reason)
    user = _locked(user)
    if user.is_active:
        raise DomainError.single("account_active", _("This account is active already."), status=409)
    user.is_active = True
    return _save_account(user, actor=actor, reason=reason)


@transaction.atomic
def user_password_set(*, actor: Any, user: Any, password: str, reason: str) -> Any:
    """An administrator gives an account a new password (a first one, or after a loss). Every
    API token of the account is revoked: whoever held the old password may hold a token too."""
    require_account_keeper(actor, user=user)
    reason = require_reason(reason)
    user = _locked(user)
    user.set_password(_validated_password(password, user=user))
    _save_account(user, actor=actor, reason=reason)
    get_token_model().objects.filter(user=user).delete()
    return user


@transaction.atomic
def own_password_change(*, user: Any, current_password: str, new_password: str) -> Any:
    """A user changes their own password, proving the current one. The account's other API
    tokens stay; a lock-out refuses the change like any sign-in."""
    user = _locked(user)
    username = user.get_username()
    if not signing_allowed(username=username):
        raise DomainError(lockout_problem("current_password"), status=403)
    if not current_password or not user.check_password(current_password):
        problems = [
            Problem(
                "password_incorrect", _("Your current password is not correct."), "current_password"
            )
        ]
        if signing_failed(username=username):
            problems.append(lockout_problem("current_password"))
        raise DomainError(problems, status=403)
    user.set_password(_validated_password(new_password, user=user, field="new_password"))
    return _save_account(user, actor=user, reason="own password changed")


@transaction.atomic
def user_lockout_reset(*, actor: Any, user: Any, reason: str) -> int:
    """Lift a lock-out before its cool-off ends (the user proved who they are some other way)."""
    require_account_keeper(actor, user=user)
    reason = require_reason(reason)
    count = lockout_reset(username=user.get_username())
    logger.warning(
        "lock-out of %s lifted by %s: %s", user.get_username(), actor.get_username(), reason
    )
    return count


@transaction.atomic
def token_create(*, user: Any) -> tuple[Any, str]:
    """A new API token for an active account: the stored record (a digest, the first characters,
    the expiry) and the token itself, which is never stored and shown once. Refused once the
    account holds API_TOKEN_LIMIT_PER_USER unexpired tokens. The account's expired tokens are
    deleted here, as knox would on each of its requests (providers.authentication)."""
    if not user.is_active:
        raise DomainError.single("account_inactive", _("This account is deactivated."), status=403)
    limit = knox_settings.TOKEN_LIMIT_PER_USER
    if limit is not None:
        # Serialises this account's sign-ins, so two at once cannot both pass the count.
        Account.objects.select_for_update().filter(pk=user.pk).first()
        held = (
            get_token_model()
            .objects.filter(user_id=user.pk)
            .exclude(expiry__lt=timezone.now())
            .count()
        )
        if held >= limit:
            raise DomainError.single(
                "token_limit_reached",
                _(
                    "This account holds %(held)s unexpired API tokens, the most allowed; revoke "
                    "one (DELETE /api/v1/auth/tokens/{token_key}/) or wait for one to expire."
                )
                % {"held": held},
                status=403,
            )
    get_token_model().objects.filter(user_id=user.pk, expiry__lt=timezone.now()).delete()
    created: tuple[Any, str] = get_token_model().objects.create(user=user)
    return created


@transaction.atomic
def token_revoke(*, actor: Any, user: Any, token_key: str | None = None) -> int:
    """Revoke one API token of `user` (by its first characters) or all of them. A user revokes
    their own; account keepers anyone's. Returns how many were revoked."""
    if getattr(actor, "pk", None) != user.pk:
        require_account_keeper(actor, user=user)
    tokens = get_token_model().objects.filter(user_id=user.pk)
    if token_key is not None:
        tokens = tokens.filter(token_key=token_key)
    count: int = tokens.delete()[0]
    if token_key is not None and not count:
        raise DomainError.single(
            "token_not_found", _("No such token of this user."), field="token_key", status=404
        )
    logger.info(
        "%d API token(s) of %s revoked by %s", count, user.get_username(), actor.get_username()
    )
    return count


def _locked(user: Any) -> Any:
    return Account.objects.select_for_update().get(pk=user.pk)


# ---------------------------------------------------------------------------------------------
# Roles


@transaction.atomic
def membership_grant(
    *, actor: Any, user: Any, role: str, clinic: Clinic | None = None
) -> Membership:
    """Give a user a role at a clinic, or network-wide (quality manager, auditor: no clinic).
    A role revoked before is granted again on the same membership, so its history stays one.
    `actor=None` only bootstraps the first quality manager from a management command."""
    if actor is not None:
        require_account_keeper(actor, user=user)
    if clinic is None and role not in NETWORK_ROLES and role in Role.values:
        raise DomainError.single(
            "membership_clinic_required",
            _("A clinic administrator or clinician role is held at a clinic: name the clinic."),
            field="clinic",
            status=400,
        )
    existing = (
        Membership.objects.select_for_update().filter(user=user, role=role, clinic=clinic).first()
    )
    if existing is not None and not existing.active:
        existing.active = True
        return _save_membership(existing, actor=actor, reason="role granted again")
    membership = Membership(user=user, role=role, clinic=clinic)
    return _save_membership(membership, actor=actor, reason="role granted")


@transaction.atomic
def membership_revoke(*, actor: Any, membership: Membership, reason: str) -> Membership:
    """Take a role away. The membership is kept, inactive, with the reason in its history."""
    require_account_keeper(actor, user=membership.user)
    reason = require_reason(reason)
    membership = Membership.objects.select_for_update().get(pk=membership.pk)
    if not membership.active:
        raise DomainError.single(
            "membership_inactive", _("This role is revoked already."), status=409
        )
    membership.active = False
    return _save_membership(membership, actor=actor, reason=reason)


def _save_membership(membership: Membership, *, actor: Any, reason: str) -> Membership:
    validate_instance(membership)
    with history(actor, reason):
        membership.save()
    access_forget(membership.user)
    return membership
