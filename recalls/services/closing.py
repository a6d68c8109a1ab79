"""Closing a recall: signed by a network quality manager, once every consignee acknowledged and
every unit it held is accounted for, or by an override with the reason on record."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from common.errors import DomainError, Problem
from common.services import history, require_reason
from common.signatures import Meaning
from lots.models import SignatureMeaning
from providers.models import Role
from providers.selectors import require_role
from recalls.models import Acknowledgement, Recall, RecallLot, RecallStatus
from recalls.selectors import recall_clinic_ids, stock_to_account_for
from recalls.services.acknowledgements import recall_lock, require_open
from signatures.services import sign, signer_authenticate


def recall_close_problems(recall: Recall) -> list[Problem]:
    """Every item that keeps the recall open, each with its own code: a consignee that has not
    acknowledged (`clinic_not_acknowledged`), a clinic and lot with units neither returned nor
    destroyed (`stock_not_accounted`). Two queries."""
    acknowledged = Acknowledgement.objects.filter(recall=recall).values("clinic_id")
    problems = [
        Problem(
            "clinic_not_acknowledged",
            _("%(clinic)s has not acknowledged %(recall)s.")
            % {"clinic": clinic.name, "recall": recall.reference},
            f"clinics.{clinic.pk}",
        )
        for clinic in recall_clinic_ids(recall).exclude(pk__in=acknowledged).order_by("name")
    ]
    outstanding = stock_to_account_for(recall=recall).filter(
        quantity_held__gt=F("quantity_accounted")
    )
    problems += [
        Problem(
            "stock_not_accounted",
            _(
                "%(clinic)s: %(left)s of %(held)s unit(s) of lot %(lot)s not yet returned or "
                "destroyed."
            )
            % {
                "clinic": row.clinic.name,
                "left": row.quantity_held - row.quantity_accounted,
                "held": row.quantity_held,
                "lot": row.lot.lot_number,
            },
            f"stock.{row.clinic_id}.{row.lot_id}",
        )
        for row in outstanding
    ]
    return problems


@transaction.atomic
def recall_close(
    *, recall: Recall, actor: Any, password: str, reason: str, override: bool = False
) -> Recall:
    """Close the recall (the quality manager's signature: password re-entered, a reason).

    Refused (409) listing every unmet item unless `override` is given; an override that set
    unmet items aside is recorded as `close_override`. Closing frees the recall's lots
    (`RecallLot.active`), so a lot may later be in another recall; lots stay recalled. The timing
    report (open, all notices sent, all acknowledged, closed) is `recall_effectiveness(...).timing`.
    """
    require_role(actor, Role.QUALITY_MANAGER)
    signer = signer_authenticate(actor=actor, password=password)
    reason = require_reason(reason)
    recall = recall_lock(recall.pk)
    require_open(recall)
    problems = recall_close_problems(recall)
    if problems and not override:
        raise DomainError(problems, status=409)
    now = timezone.now()
    recall.status = RecallStatus.CLOSED
    recall.closed_by = actor
    recall.closed_at = now
    recall.close_reason = reason
    recall.close_override = bool(problems)
    with history(
        actor,
        reason,
        signature_meaning=SignatureMeaning.RESPONSIBILITY,
        overridden=[problem.as_dict() for problem in problems],
    ):
        recall.save(
            update_fields=["status", "closed_by", "closed_at", "close_reason", "close_override"]
        )
        RecallLot.objects.filter(recall=recall, active=True).update(active=False)
        sign(
            signer=signer,
            kind="recall_close",
            record=recall,
            meaning=Meaning.RESPONSIBILITY,
            reason=reason,
            at=now,
        )
    return recall
