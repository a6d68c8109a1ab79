"""Who may see and do what: the one place that answers it (DESIGN rule 11).

Every selector, API permission, admin and page asks `access_for(user)` (or `access_for(request)`)
and reads the answer from the `Access` it returns; nothing else reads `Membership` rows to decide
access. The answer is computed from the user's active memberships, read with one query, and kept
for the rest of the request by `AccessMiddleware` (outside a request, such as in a management
command or a task, each call reads afresh, so a role granted a moment ago counts at once).

The rules:
- a role held without a clinic is network-wide and applies at every clinic; a role held at a
  clinic applies there only;
- network quality managers and auditors see every clinic; everyone else sees the clinics they
  hold a role at (DESIGN rule 8);
- patient contact details are read only by a clinic's own administrators and clinicians, never
  by a network role (DESIGN rule 7);
- writes: network quality managers keep the network's records; clinic administrators, clinicians
  and quality managers do a clinic's daily work; auditors never write;
- history imports: a clinic's administrators import its past treatments and receipts, network
  quality managers past lots; administrators, quality managers and auditors read them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.db import connections, router
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from django.utils.translation import pgettext_lazy

from common.errors import DomainError, Problem
from providers.models import Clinic, Membership, Role

NETWORK_READERS = frozenset({Role.QUALITY_MANAGER.value, Role.AUDITOR.value})
CONTACT_READERS = frozenset({Role.CLINIC_ADMINISTRATOR.value, Role.CLINICIAN.value})
CLINIC_WRITERS = frozenset(
    {Role.CLINIC_ADMINISTRATOR.value, Role.CLINICIAN.value, Role.QUALITY_MANAGER.value}
)

HISTORY_IMPORT_READERS = frozenset(
    {Role.CLINIC_ADMINISTRATOR.value, Role.QUALITY_MANAGER.value, Role.AUDITOR.value}
)

Membership_ = tuple[str, int | None]  # (role, clinic id or None for network-wide)


@dataclass(frozen=True)
class Access:
    """What one user may see and do, from their active memberships."""

    user_id: int | None
    memberships: frozenset[Membership_]
    is_staff: bool = False
    is_superuser: bool = False

    # -- roles -----------------------------------------------------------------------------------

    @property
    def has_role(self) -> bool:
        """Signed in, active and holding at least one active role: the least to use the system."""
        return bool(self.memberships)

    def holds(self, role: Role | str, *, clinic_id: int | None = None) -> bool:
        """`role` network-wide, or (with `clinic_id`) at that clinic or network-wide. Without
        `clinic_id` only a network-wide membership answers yes: a clinic's own quality manager
        does not act for the whole network."""
        wanted = str(role)
        return any(
            held == wanted and (at is None or (clinic_id is not None and at == clinic_id))
            for held, at in self.memberships
        )

    def holds_any(self, roles: Iterable[Role | str], *, clinic_id: int | None = None) -> bool:
        return any(self.holds(role, clinic_id=clinic_id) for role in roles)

    def holds_anywhere(self, roles: Iterable[Role | str]) -> bool:
        """Holds one of `roles` at some clinic or network-wide."""
        wanted = {str(role) for role in roles}
        return any(role in wanted for role, _clinic in self.memberships)

    # -- clinics ---------------------------------------------------------------------------------

    def clinic_ids(self, roles: Iterable[Role | str] | None = None) -> frozenset[int] | None:
        """The clinics at which the user holds one of `roles` (any role when None): None means
        every clinic (a network-wide holder); otherwise their ids, empty when none."""
        wanted = None if roles is None else {str(role) for role in roles}
        held = [at for role, at in self.memberships if wanted is None or role in wanted]
        if any(at is None for at in held):
            return None
        return frozenset(at for at in held if at is not None)

    @property
    def is_network(self) -> bool:
        """A network-wide quality manager or auditor: sees every clinic."""
        return any(role in NETWORK_READERS and at is None for role, at in self.memberships)

    @property
    def visible_clinic_ids(self) -> list[int] | None:
        """None for every clinic (network quality manager or auditor); otherwise the sorted ids of
        the clinics the user holds any role at. A clinic never sees another's (DESIGN rule 8)."""
        if self.is_network:
            return None
        return sorted({at for _role, at in self.memberships if at is not None})

    def sees_clinic(self, clinic_id: int | None) -> bool:
        visible = self.visible_clinic_ids
        return visible is None or (clinic_id is not None and clinic_id in visible)

    # -- contact data ----------------------------------------------------------------------------

    @property
    def contact_clinic_ids(self) -> frozenset[int]:
        """Clinics whose patients' contact details the user may read: those where they are an
        administrator or clinician. Never network-wide."""
        return frozenset(
            at for role, at in self.memberships if role in CONTACT_READERS and at is not None
        )

    def may_read_contact(self, clinic_id: int | None) -> bool:
        return clinic_id is not None and clinic_id in self.contact_clinic_ids

    # -- writes ----------------------------------------------------------------------------------

    @property
    def writes_network(self) -> bool:
        """Keeps the network's records (lots, products, recalls): a network quality manager."""
        return (Role.QUALITY_MANAGER.value, None) in self.memberships

    @property
    def writes_clinic_work(self) -> bool:
        """Does a clinic's daily work somewhere (stock, patients, treatments); never an auditor."""
        return any(role in CLINIC_WRITERS for role, _clinic in self.memberships)

    # -- history imports -------------------------------------------------------------------------

    def imports_history(self, kind: str, clinic_id: int | None) -> bool:
        """Imports records of the past from another system: a clinic's treatments and receipts
        by an administrator of that clinic; lots by a network quality manager. Never an auditor."""
        if kind == "lots":
            return self.writes_network
        return clinic_id is not None and self.holds(Role.CLINIC_ADMINISTRATOR, clinic_id=clinic_id)

    @property
    def history_import_clinic_ids(self) -> frozenset[int] | None:
        """Clinics whose imports the user may read (None: every clinic): those they import for,
        quality managers' and auditors'. A clinic never sees another clinic's imports."""
        return self.clinic_ids(HISTORY_IMPORT_READERS)

    # -- accounts --------------------------------------------------------------------------------

    @property
    def keeps_accounts(self) -> bool:
        """Opens, changes and deactivates accounts and grants roles: a system administrator (a
        Django superuser, with or without a role) or a network quality manager."""
        return self.user_id is not None and (self.is_superuser or self.writes_network)

    @property
    def reads_accounts(self) -> bool:
        """Reads accounts and their roles: account keepers and network auditors."""
        return self.keeps_accounts or (Role.AUDITOR.value, None) in self.memberships

    @property
    def reads_network(self) -> bool:
        """Reads what concerns the whole network rather than a clinic (webhook endpoints)."""
        return bool(
            {(Role.QUALITY_MANAGER.value, None), (Role.AUDITOR.value, None)} & self.memberships
        )


NO_ACCESS = Access(user_id=None, memberships=frozenset())

# Per request: user id -> Access. Set by AccessMiddleware; None outside a request.
_request_cache: ContextVar[dict[int, Access] | None] = ContextVar(
    "traceability_access", default=None
)


def _user(subject: Any) -> Any:
    """A user, or the user of a request (Django's or DRF's)."""
    return getattr(subject, "user", subject) if hasattr(subject, "method") else subject


def access_for(subject: Any) -> Access:
    """The access of a user, or of a request's user: one query, then cached for the request."""
    user = _user(subject)
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return NO_ACCESS
    cache = _request_cache.get()
    if cache is not None and user.pk in cache:
        return cache[user.pk]
    return access_known(user, _active_memberships(user.pk))


def access_known(user: Any, memberships: Iterable[Membership_]) -> Access:
    """The access of an active, signed-in `user` whose active memberships (role, clinic id) the
    caller has just read, kept for the rest of the request as `access_for` keeps what it reads:
    the API's token sign-in reads them with the token (providers.authentication)."""
    access = Access(
        user_id=user.pk,
        memberships=frozenset(memberships),
        is_staff=bool(user.is_staff),
        is_superuser=bool(user.is_superuser),
    )
    cache = _request_cache.get()
    if cache is not None:
        cache[user.pk] = access
    return access


def _active_memberships(user_id: int) -> frozenset[Membership_]:
    """(role, clinic id) of the user's active memberships. Written in SQL: every request asks it,
    and composing the query with the ORM took six times as long as PostgreSQL took to answer."""
    table = Membership._meta.db_table
    with connections[router.db_for_read(Membership)].cursor() as cursor:
        cursor.execute(
            f"SELECT role, clinic_id FROM {table} WHERE user_id = %s AND active",  # noqa: S608
            [user_id],
        )
        return frozenset(cursor.fetchall())


def access_forget(user: Any) -> None:
    """Drop a user's cached access (a service that changed their memberships calls this)."""
    cache = _request_cache.get()
    if cache is not None:
        cache.pop(getattr(user, "pk", None) or 0, None)


@contextmanager
def access_cache() -> Iterator[None]:
    """Keep every user's access for the duration of the block (one request, one task)."""
    token = _request_cache.set({})
    try:
        yield
    finally:
        _request_cache.reset(token)


# ---------------------------------------------------------------------------------------------
# What services ask


def user_has_role(user: Any, role: Role, *, clinic: Clinic | None = None) -> bool:
    """Network roles held without a clinic apply everywhere; a role held at a clinic applies only
    there. Without `clinic` the question is about the whole network, so only a network-wide
    membership answers yes (a clinic's own quality manager cannot release lots for everyone)."""
    return access_for(user).holds(role, clinic_id=None if clinic is None else clinic.pk)


# A role named inside a sentence: lower case in English ("the quality manager role"), while German
# keeps its nouns capitalised; so each language says it its own way, apart from the labels.
ROLE_IN_A_SENTENCE = {
    Role.QUALITY_MANAGER: pgettext_lazy("role named in a sentence", "quality manager"),
    Role.CLINIC_ADMINISTRATOR: pgettext_lazy("role named in a sentence", "clinic administrator"),
    Role.CLINICIAN: pgettext_lazy("role named in a sentence", "clinician"),
    Role.AUDITOR: pgettext_lazy("role named in a sentence", "auditor"),
}


def _role_needed(roles: tuple[Role, ...], clinic: Clinic | None) -> Problem:
    """`role_required`: "This needs the clinician or clinic administrator role at Praxis Mitte."
    One sentence for the translator; the roles are named one after another by a translatable
    "%(roles)s or %(role)s", so a language may say "or" its own way."""
    names = str(ROLE_IN_A_SENTENCE[roles[0]])
    for role in roles[1:]:
        names = _("%(roles)s or %(role)s") % {"roles": names, "role": ROLE_IN_A_SENTENCE[role]}
    if clinic is None:
        message = _("This needs the %(roles)s role.") % {"roles": names}
    else:
        message = _("This needs the %(roles)s role at %(clinic)s.") % {
            "roles": names,
            "clinic": clinic.name,
        }
    return Problem("role_required", message, None)


def require_role(user: Any, role: Role, *, clinic: Clinic | None = None) -> None:
    if not user_has_role(user, role, clinic=clinic):
        raise DomainError(_role_needed((role,), None), status=403)


def require_any_role(user: Any, roles: tuple[Role, ...], *, clinic: Clinic | None = None) -> None:
    """Pass if the user holds any of `roles` (at `clinic`, or network-wide)."""
    if not access_for(user).holds_any(roles, clinic_id=None if clinic is None else clinic.pk):
        raise DomainError(_role_needed(roles, clinic), status=403)


def user_roles(user: Any) -> set[str]:
    return {role for role, _clinic in access_for(user).memberships}


class AccessMiddleware:
    """Reads each user's memberships at most once per request."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with access_cache():
            response: HttpResponse = self.get_response(request)
        return response
