"""A clinic acknowledges a recall: once per recall and clinic, by the signed link in its e-mail (no
login), through the API, or in the admin. The last clinic to acknowledge sets the recall's
`fully_acknowledged_at`.

The link is a `TimestampSigner` signature over the notice's `message_id`: it needs no table, names
the clinic the notice went to, and expires after `RECALL_ACK_LINK_MAX_AGE_DAYS`. It is single use
because an acknowledgement is: a second use finds the clinic's acknowledgement and says so.
"""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from django.conf import settings
from django.core.signing import BadSignature, SignatureExpired, TimestampSigner
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from common.errors import DomainError
from common.services import history
from providers.models import Clinic, Role
from providers.selectors import require_any_role
from recalls.models import (
    Acknowledgement,
    AcknowledgementVia,
    Channel,
    Notification,
    Recall,
    RecallStatus,
)
from recalls.selectors import recall_clinic_ids

ACKNOWLEDGING_ROLES = (Role.CLINIC_ADMINISTRATOR, Role.QUALITY_MANAGER)
LINK_SALT = "recalls.acknowledgement-link"
TOKEN_MAX_LENGTH = 200
NAME_MAX_LENGTH = Acknowledgement._meta.get_field("acknowledged_by_name").max_length or 200


# ---------------------------------------------------------------------------------------------
# Locking the recall


def recall_lock(recall_id: int) -> Recall:
    """Lock the recall's row for the rest of the transaction. Every follow-up write
    (acknowledgement, disposition, contact attempt, close) takes it first, so writes to one recall
    run one after another and each "is everything done" check sees the others' rows.

    FOR NO KEY UPDATE: rows that merely point at the recall (a worker marking a notice sent) are
    not held up. The caller holds the transaction."""
    return Recall.objects.select_for_update(no_key=True).get(pk=recall_id)


def require_open(recall: Recall) -> None:
    if recall.status != RecallStatus.OPEN:
        raise DomainError.single(
            "recall_not_open",
            _("%(recall)s was closed on %(closed_on)s; it takes no more changes.")
            % {"recall": recall.reference, "closed_on": format(recall.closed_at, "%Y-%m-%d")},
            field="recall",
        )


# ---------------------------------------------------------------------------------------------
# The acknowledgement


def _person_name(name: str, actor: Any) -> str:
    cleaned = " ".join((name or "").split())
    if not cleaned and actor is not None:
        cleaned = actor.get_full_name() or actor.get_username()
    if not cleaned:
        raise DomainError.single(
            "name_required",
            _("Give the name of the person acknowledging the recall."),
            field="name",
            status=400,
        )
    if len(cleaned) > NAME_MAX_LENGTH or "\x00" in cleaned:
        raise DomainError.single(
            "name_invalid",
            _("Give a name of at most %(limit)s characters.") % {"limit": NAME_MAX_LENGTH},
            field="name",
            status=400,
        )
    return cleaned


@transaction.atomic
def recall_acknowledge(
    *, recall: Recall, clinic: Clinic, via: str, actor: Any | None, name: str = ""
) -> Acknowledgement:
    """Record that `clinic` has received the recall and acts on it; once per recall and clinic.

    Through the API or the admin, `actor` must be a clinic administrator of that clinic or a
    quality manager; `name` defaults to the actor's. `via=link` takes no actor: it is for
    `recall_acknowledge_by_link`, which has verified the signed link that stands in for a login.
    """
    if via not in AcknowledgementVia.values:
        raise DomainError.single(
            "invalid_choice", _("Acknowledge by link, API or admin."), field="via", status=400
        )
    if via != AcknowledgementVia.LINK or actor is not None:
        require_any_role(actor, ACKNOWLEDGING_ROLES, clinic=clinic)
    name = _person_name(name, actor)
    recall = recall_lock(recall.pk)
    existing = (
        Acknowledgement.objects.filter(recall=recall, clinic=clinic)
        .select_related("clinic")
        .first()
    )
    if existing is not None:
        raise already_acknowledged(existing, recall)
    require_open(recall)
    if not recall_clinic_ids(recall).filter(pk=clinic.pk).exists():
        raise DomainError.single(
            "clinic_not_in_recall",
            _(
                "%(recall)s did not reach %(clinic)s: it holds no stock of the recalled lots and "
                "treated no patient with them."
            )
            % {"recall": recall.reference, "clinic": clinic.name},
            field="clinic",
        )
    now = timezone.now()
    acknowledgement = Acknowledgement(
        recall=recall,
        clinic=clinic,
        via=via,
        acknowledged_by=actor,
        acknowledged_by_name=name,
        acknowledged_at=now,
    )
    with history(actor, f"{recall.reference} acknowledged by {name} ({via})"):
        acknowledgement.save()
        _mark_fully_acknowledged(recall, now)
    return acknowledgement


def already_acknowledged(acknowledgement: Acknowledgement, recall: Recall) -> DomainError:
    return DomainError.single(
        "recall_already_acknowledged",
        _("%(clinic)s already acknowledged %(recall)s: %(name)s, %(at)s UTC.")
        % {
            "clinic": acknowledgement.clinic.name,
            "recall": recall.reference,
            "name": acknowledgement.acknowledged_by_name,
            "at": format(acknowledgement.acknowledged_at, "%Y-%m-%d %H:%M"),
        },
        field="clinic",
    )


def _mark_fully_acknowledged(recall: Recall, now: datetime.datetime) -> None:
    """Set `fully_acknowledged_at` when no consignee is left to acknowledge. Conditional: the
    first moment stays (a widening that reaches a new clinic clears it again)."""
    acknowledged = Acknowledgement.objects.filter(recall=recall).values("clinic_id")
    if recall_clinic_ids(recall).exclude(pk__in=acknowledged).exists():
        return
    if Recall.objects.filter(pk=recall.pk, fully_acknowledged_at__isnull=True).update(
        fully_acknowledged_at=now
    ):
        recall.fully_acknowledged_at = now


# ---------------------------------------------------------------------------------------------
# The signed link


def _signer() -> TimestampSigner:
    return TimestampSigner(salt=LINK_SALT)


def acknowledgement_token(notification: Notification) -> str:
    return _signer().sign(str(notification.message_id))


def acknowledgement_url(notification: Notification) -> str:
    """The absolute, signed link an e-mail notice carries: opens a page (no login) where the
    clinic acknowledges the recall. Valid for `RECALL_ACK_LINK_MAX_AGE_DAYS`."""
    path = reverse("recall-acknowledge", kwargs={"token": acknowledgement_token(notification)})
    return f"{settings.SITE_URL.rstrip('/')}{path}"


def _link_invalid() -> DomainError:
    return DomainError.single(
        "acknowledgement_link_invalid",
        _(
            "This acknowledgement link is not valid. Use the link exactly as it is in the recall "
            "e-mail, or acknowledge in the system."
        ),
        field="token",
        status=400,
    )


def acknowledgement_link_resolve(token: str) -> Notification:
    """The e-mail notice a link was signed for, with its recall and clinic. Refuses a link that
    was altered (400 `acknowledgement_link_invalid`) or is older than the configured maximum
    (410 `acknowledgement_link_expired`)."""
    if not isinstance(token, str) or len(token) > TOKEN_MAX_LENGTH:
        raise _link_invalid()
    max_age = datetime.timedelta(days=settings.RECALL_ACK_LINK_MAX_AGE_DAYS)
    try:
        value = _signer().unsign(token, max_age=max_age)
    except SignatureExpired as error:
        raise DomainError.single(
            "acknowledgement_link_expired",
            _(
                "This acknowledgement link has expired. Acknowledge the recall in the system, or "
                "ask the quality manager for a new notice."
            ),
            field="token",
            status=410,
        ) from error
    except BadSignature as error:
        raise _link_invalid() from error
    try:
        message_id = uuid.UUID(value)
    except ValueError as error:
        raise _link_invalid() from error
    notification = (
        Notification.objects.select_related("recall", "clinic")
        .filter(message_id=message_id, channel=Channel.EMAIL, clinic__isnull=False)
        .first()
    )
    if notification is None:
        raise _link_invalid()
    return notification


def recall_acknowledge_by_link(*, token: str, name: str) -> Acknowledgement:
    """Acknowledge for the clinic the linked notice went to, in the name the person typed."""
    notification = acknowledgement_link_resolve(token)
    clinic = notification.clinic
    if clinic is None:  # resolve returns clinic notices only; this keeps the type exact
        raise _link_invalid()
    return recall_acknowledge(
        recall=notification.recall,
        clinic=clinic,
        via=AcknowledgementVia.LINK,
        actor=None,
        name=name,
    )
