"""Lock-out after repeated wrong passwords (django-axes), for sign-in and for signing.

Sign-in (the admin's login page, any page's, the API's token sign-in) goes through Django's
`authenticate()`, where axes' backend refuses a locked account and its signal handler counts each
failure. The password re-entered to sign (`common.services.verify_password`) is checked by
the services themselves, which may run in a request, an admin page, a management command or a
task, and always inside the service's transaction. So this module counts those failures too, under
the same account, with two twists:

- a failure is written on a connection of its own (a short-lived thread: Django keeps one
  connection per thread) and committed at once. Written on the service's connection, it would
  be rolled back with the refused service, and no number of wrong passwords would ever lock the
  account (as before this module);
- without a request (a command, a task), a stand-in request carries the account and the
  signing's name, so axes' database handler, its admin and its reset commands work unchanged.

Every lock-out is an axes `AccessAttempt` row: administrators see it in the admin (Axes > Access
attempts) and lift it there, with `manage.py axes_reset_username USERNAME`, or through the API
(POST /api/v1/users/{id}/unlock/).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_cool_off, get_lockout_message
from axes.models import AccessAttempt
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, QuerySet, Sum
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.translation import gettext as _

from common.errors import Problem

logger = logging.getLogger(__name__)

T = TypeVar("T")

# The user agent recorded for a signing attempt: tells signing failures from sign-in failures in
# the admin, and keeps their rows apart from the sign-in rows a request's transaction may hold.
SIGNING_AGENT = "electronic signature (password re-entered)"
# How long the thread that records a failure waits for a row lock before giving up (logged).
_LOCK_TIMEOUT = "5s"
# How many signing failures this process has recorded (the tests forget them after each test).
recorded_failures = 0


def lockout_problem(field: str | None = None) -> Problem:
    minutes = _cool_off_minutes()
    return Problem(
        "account_locked",
        _(
            "Too many wrong passwords in a row: this account is locked for %(minutes)s minutes "
            "(ask an administrator to lift the lock-out sooner)."
        )
        % {"minutes": minutes},
        field,
    )


def _cool_off_minutes() -> int:
    cool_off = get_cool_off()
    return int(cool_off.total_seconds() // 60) if cool_off else 0


def _signing_request(username: str, request: HttpRequest | None) -> HttpRequest:
    """A request for axes to read the account, address and path from."""
    stand_in = HttpRequest()
    stand_in.method = "POST"
    stand_in.path = stand_in.path_info = request.path if request is not None else "/signature/"
    # Without a request the signer sits at the server (a management command); with no address at
    # all axes would write a new row for every failure instead of counting on one.
    remote = request.META.get("REMOTE_ADDR", "") if request is not None else "127.0.0.1"
    stand_in.META = {
        "REMOTE_ADDR": remote,
        "HTTP_USER_AGENT": SIGNING_AGENT,
        "PATH_INFO": stand_in.path,
    }
    return stand_in


def _credentials(username: str) -> dict[str, str]:
    return {settings.AXES_USERNAME_FORM_FIELD: username}  # type: ignore[misc]


def signing_allowed(*, username: str, request: HttpRequest | None = None) -> bool:
    """False while the account is locked out (by wrong sign-ins or wrong signing passwords)."""
    allowed: bool = AxesProxyHandler.is_allowed(
        _signing_request(username, request), _credentials(username)
    )
    return allowed


def signing_failed(*, username: str, request: HttpRequest | None = None) -> bool:
    """Count a wrong signing password, committed whatever the caller's transaction does. Returns
    whether the account is now locked out."""
    global recorded_failures
    recorded_failures += 1
    stand_in = _signing_request(username, request)

    def record() -> bool:
        AxesProxyHandler.user_login_failed(
            sender=signing_failed, credentials=_credentials(username), request=stand_in
        )
        return bool(getattr(stand_in, "axes_locked_out", False))

    locked = in_own_transaction(record, default=False)
    return locked or not signing_allowed(username=username, request=request)


def signing_succeeded(*, username: str, request: HttpRequest | None = None) -> None:
    """The right password ends a run of wrong ones (as a successful sign-in does). Only when
    there are failures to forget is a connection opened."""
    stand_in = _signing_request(username, request)
    if not AxesProxyHandler.get_failures(stand_in, _credentials(username)):
        return
    in_own_transaction(lambda: lockout_reset(username=username), default=0)


def lockout_reset(*, username: str) -> int:
    """Forget the account's failed attempts (sign-in and signing alike): lifts a lock-out."""
    count: int = AxesProxyHandler.reset_attempts(username=username)
    return count


def is_locked_out(*, username: str) -> bool:
    return not signing_allowed(username=username)


# What `is_locked_out` asks axes, read for many accounts at once: locking by username alone
# (AXES_LOCKOUT_PARAMETERS), the failures of every attempt row of that username (sign-in and
# signing, from any address) made within the cool-off add up to AXES_FAILURE_LIMIT or more.


def _counted_attempts() -> QuerySet[AccessAttempt]:
    """The attempt rows that count towards a lock-out now."""
    attempts: QuerySet[AccessAttempt] = AccessAttempt.objects.all()
    cool_off = get_cool_off()
    if cool_off:
        attempts = attempts.filter(attempt_time__gte=timezone.now() - cool_off)
    return attempts


def locked_usernames(usernames: list[str]) -> set[str]:
    """Which of these accounts are locked out now (one query)."""
    totals = (
        _counted_attempts()
        .filter(username__in=usernames)
        .values("username")
        .annotate(failures=Sum("failures_since_start"))
        .filter(failures__gte=settings.AXES_FAILURE_LIMIT)
    )
    return set(totals.values_list("username", flat=True))


def locked_out(username: Any) -> Exists:
    """Whether the account whose username is `username` (an expression, such as an OuterRef) is
    locked out now: one subquery for a whole list of accounts."""
    return Exists(
        _counted_attempts()
        .filter(username=username)
        .values("username")
        .annotate(failures=Sum("failures_since_start"))
        .filter(failures__gte=settings.AXES_FAILURE_LIMIT)
    )


def in_own_transaction(work: Callable[[], T], *, default: T) -> T:
    """Run `work` on a connection of its own and commit it, whatever the caller's transaction
    does later. The caller waits; should the work fail (a lock held too long), it is logged and
    `default` returned: refusing the signature does not depend on recording it."""
    outcome: list[T] = []

    def run() -> None:
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute(f"SET LOCAL lock_timeout = '{_LOCK_TIMEOUT}'")
                outcome.append(work())
        except Exception:
            logger.exception("could not record a signing attempt")
        finally:
            connection.close()

    thread = threading.Thread(target=run, name="signing-lockout")
    thread.start()
    thread.join()
    return outcome[0] if outcome else default


def lockout_response(
    request: HttpRequest, original_response: Any = None, credentials: Any = None
) -> HttpResponse:
    """axes' answer to a locked-out sign-in (AXES_LOCKOUT_CALLABLE): under /api/ the API's error
    shape, elsewhere a short page; 403 either way (a throttle's 429 says "wait a moment", a
    lock-out does not)."""
    status = settings.AXES_HTTP_RESPONSE_CODE
    if request.path.startswith("/api/"):
        return JsonResponse({"errors": [lockout_problem().as_dict()]}, status=status)
    message = f"{get_lockout_message()} ({lockout_problem().message})"
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
