"""A recall's live effectiveness: per consignee clinic its acknowledgement, patients exposed /
contacted / attempted and units held / accounted for; the notices by status; the timing; and the
effectiveness level A-E."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import (
    Count,
    IntegerField,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce

from recalls.models import (
    Acknowledgement,
    Notification,
    NotificationStatus,
    PatientContactAttempt,
    Recall,
    RecallDepth,
    RecallExposure,
    RecallStock,
    StockDisposition,
)
from recalls.selectors.recalls import FINAL_OUTCOMES, recall_clinic_ids

# Failed notices listed with their last error (the counts cover them all).
FAILED_NOTICES_SHOWN = 200


# Default levels: (level, lowest share reached, in percent). See
# `effectiveness_level` for why this is configurable.
DEFAULT_EFFECTIVENESS_LEVELS: tuple[tuple[str, float], ...] = (
    ("A", 100.0),
    ("B", 75.0),
    ("C", 50.0),
    ("D", 25.0),
    ("E", 0.0),
)


def effectiveness_level(share: float | None) -> str | None:
    """The effectiveness level A-E for a share (0..1): of consignees that acknowledged, or in a
    patient-level recall the lower of that and the share of exposed patients contacted
    (`RecallEffectiveness.level_share`).

    21 CFR 7.42(b)(3) names levels A (100 % of consignees) to E (no effectiveness checks) for how
    far the *checks* must reach; REGULATORY.md marks that wording *unverified*. Mapping the share
    onto A (100 %), B (>= 75 %), C (>= 50 %), D (>= 25 %) and E (below) is a configurable default,
    not a legal rule: set `RECALL_EFFECTIVENESS_LEVELS` in the settings to a sequence of (level,
    lowest percent) pairs, highest first, to change it.
    """
    if share is None:
        return None
    levels = getattr(settings, "RECALL_EFFECTIVENESS_LEVELS", DEFAULT_EFFECTIVENESS_LEVELS)
    percent = share * 100
    for level, lowest in levels:
        if percent >= lowest:
            return str(level)
    return str(levels[-1][0])


@dataclass(frozen=True)
class ClinicProgress:
    clinic_id: int
    clinic_name: str
    acknowledged_at: datetime.datetime | None
    acknowledged_by_name: str
    acknowledged_via: str
    patients_exposed: int
    patients_contacted: int
    patients_attempted: int
    units_held: int
    units_accounted: int

    @property
    def acknowledged(self) -> bool:
        return self.acknowledged_at is not None


@dataclass(frozen=True)
class NoticeCounts:
    total: int
    pending: int
    sending: int
    sent: int
    failed: int


@dataclass(frozen=True)
class FailedNotice:
    id: int
    clinic_id: int | None
    channel: str
    recipient: str
    attempts: int
    last_error: str


@dataclass(frozen=True)
class RecallTiming:
    """Withdrawn -> opened here -> first notice sent -> all notices sent -> all acknowledged: the
    figures a drill is audited on, and those of a real recall. Each counts from the withdrawal,
    which is the opening but for a recall entered after the fact."""

    withdrawn_at: datetime.datetime
    opened_at: datetime.datetime
    first_notice_sent_at: datetime.datetime | None
    all_notices_sent_at: datetime.datetime | None
    fully_acknowledged_at: datetime.datetime | None
    closed_at: datetime.datetime | None

    def _since_withdrawal(self, moment: datetime.datetime | None) -> float | None:
        return None if moment is None else (moment - self.withdrawn_at).total_seconds()

    @property
    def seconds_to_open(self) -> float:
        """From the withdrawal to the opening here: zero but for a recall entered after the fact."""
        return (self.opened_at - self.withdrawn_at).total_seconds()

    @property
    def seconds_to_first_notice(self) -> float | None:
        return self._since_withdrawal(self.first_notice_sent_at)

    @property
    def seconds_to_all_notices_sent(self) -> float | None:
        return self._since_withdrawal(self.all_notices_sent_at)

    @property
    def seconds_to_full_acknowledgement(self) -> float | None:
        return self._since_withdrawal(self.fully_acknowledged_at)

    @property
    def seconds_to_close(self) -> float | None:
        return self._since_withdrawal(self.closed_at)


def _share(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)


@dataclass(frozen=True)
class RecallEffectiveness:
    recall: Recall
    clinics: list[ClinicProgress]
    notices: NoticeCounts
    failed_notices: list[FailedNotice]
    timing: RecallTiming

    @property
    def clinics_total(self) -> int:
        return len(self.clinics)

    @property
    def clinics_acknowledged(self) -> int:
        return sum(1 for clinic in self.clinics if clinic.acknowledged)

    @property
    def clinics_acknowledged_share(self) -> float | None:
        return _share(self.clinics_acknowledged, self.clinics_total)

    @property
    def level_share(self) -> float | None:
        """The share the level reads. A clinic-level recall reaches its consignees: the share that
        acknowledged. A patient-level recall must also reach the patients: the lower of that share
        and the share of exposed patients contacted (a final outcome: reached or deceased), so
        every clinic acknowledging while 2 of 32 patients are contacted is not level A. A
        patient-level recall that exposed no patient (stock only) reads the clinics alone."""
        # Unrounded: 99,999 of 100,000 patients contacted is not 100 %.
        shares = [(self.clinics_acknowledged, self.clinics_total)]
        if self.recall.depth == RecallDepth.PATIENT:
            shares.append((self.patients_contacted, self.patients_exposed))
        known = [part / whole for part, whole in shares if whole]
        return min(known) if known else None

    @property
    def level(self) -> str | None:
        return effectiveness_level(self.level_share)

    @property
    def patients_exposed(self) -> int:
        return sum(clinic.patients_exposed for clinic in self.clinics)

    @property
    def patients_contacted(self) -> int:
        return sum(clinic.patients_contacted for clinic in self.clinics)

    @property
    def patients_attempted(self) -> int:
        return sum(clinic.patients_attempted for clinic in self.clinics)

    @property
    def patients_contacted_share(self) -> float | None:
        return _share(self.patients_contacted, self.patients_exposed)

    @property
    def patients_attempted_share(self) -> float | None:
        return _share(self.patients_attempted, self.patients_exposed)

    @property
    def units_held(self) -> int:
        return sum(clinic.units_held for clinic in self.clinics)

    @property
    def units_accounted(self) -> int:
        return sum(clinic.units_accounted for clinic in self.clinics)

    @property
    def units_outstanding(self) -> int:
        return self.units_held - self.units_accounted

    @property
    def units_accounted_share(self) -> float | None:
        return _share(self.units_accounted, self.units_held)


def _count_distinct_patients(queryset: QuerySet[Any]) -> Coalesce:
    # Every row of the subquery shares its recall: grouping by it yields the one total.
    return Coalesce(
        Subquery(
            queryset.order_by()
            .values("recall_id")
            .annotate(n=Count("patient_id", distinct=True))
            .values("n"),
            output_field=IntegerField(),
        ),
        Value(0),
    )


def _sum(queryset: QuerySet[Any], field: str) -> Coalesce:
    return Coalesce(
        Subquery(
            queryset.order_by().values("recall_id").annotate(n=Sum(field)).values("n"),
            output_field=IntegerField(),
        ),
        Value(0),
    )


def recall_effectiveness(
    *, recall: Recall, clinic_ids: list[int] | None = None
) -> RecallEffectiveness:
    """Live effectiveness of a recall in three queries, whatever its size: one row per consignee
    clinic (acknowledgement, patients exposed / contacted / attempted, units held / accounted for),
    the notices by status, and the failed notices with their last error.

    A patient counts as contacted once a final outcome (reached, deceased) is recorded;
    `patients_attempted` also counts those only found unreachable. `clinic_ids` limits every
    figure to those clinics (clinic staff see their own)."""
    clinic = OuterRef("pk")
    acknowledgement = Acknowledgement.objects.filter(recall=recall, clinic_id=clinic)
    attempts = PatientContactAttempt.objects.filter(recall=recall, patient__clinic_id=clinic)
    clinic_rows = (
        recall_clinic_ids(recall)
        .annotate(
            acknowledged_at=Subquery(acknowledgement.values("acknowledged_at")[:1]),
            acknowledged_by_name=Subquery(acknowledgement.values("acknowledged_by_name")[:1]),
            acknowledged_via=Subquery(acknowledgement.values("via")[:1]),
            patients_exposed=_count_distinct_patients(
                RecallExposure.objects.filter(recall=recall, clinic_id=clinic)
            ),
            patients_contacted=_count_distinct_patients(
                attempts.filter(outcome__in=FINAL_OUTCOMES)
            ),
            patients_attempted=_count_distinct_patients(attempts),
            units_held=_sum(
                RecallStock.objects.filter(recall=recall, clinic_id=clinic), "quantity_held"
            ),
            units_accounted=_sum(
                StockDisposition.objects.filter(recall=recall, clinic_id=clinic), "quantity"
            ),
        )
        .order_by("name")
    )
    notifications = Notification.objects.filter(recall=recall)
    if clinic_ids is not None:
        clinic_rows = clinic_rows.filter(pk__in=clinic_ids)
        notifications = notifications.filter(clinic_id__in=clinic_ids)
    clinics = [
        ClinicProgress(
            clinic_id=row.pk,
            clinic_name=row.name,
            acknowledged_at=row.acknowledged_at,
            acknowledged_by_name=row.acknowledged_by_name or "",
            acknowledged_via=row.acknowledged_via or "",
            patients_exposed=row.patients_exposed,
            patients_contacted=row.patients_contacted,
            patients_attempted=row.patients_attempted,
            units_held=row.units_held,
            units_accounted=row.units_accounted,
        )
        for row in clinic_rows
    ]
    by_status = notifications.aggregate(
        total=Count("pk"),
        **{status: Count("pk", filter=Q(status=status)) for status in NotificationStatus.values},
        first_sent=Min("sent_at"),
        last_sent=Max("sent_at"),
    )
    counts = NoticeCounts(
        total=by_status["total"],
        pending=by_status[NotificationStatus.PENDING],
        sending=by_status[NotificationStatus.SENDING],
        sent=by_status[NotificationStatus.SENT],
        failed=by_status[NotificationStatus.FAILED],
    )
    failed = [
        FailedNotice(
            id=row.pk,
            clinic_id=row.clinic_id,
            channel=row.channel,
            recipient=row.recipient,
            attempts=row.attempts,
            last_error=row.last_error,
        )
        for row in notifications.filter(status=NotificationStatus.FAILED).order_by("pk")[
            :FAILED_NOTICES_SHOWN
        ]
    ]
    all_acknowledged = bool(clinics) and all(clinic.acknowledged for clinic in clinics)
    fully_acknowledged_at = None
    first_notice_sent_at = by_status["first_sent"]
    if clinic_ids is None:
        # The recorded moments; a widening that brings in a new clinic clears the first.
        first_notice_sent_at = recall.first_notice_sent_at or first_notice_sent_at
        if all_acknowledged:
            fully_acknowledged_at = recall.fully_acknowledged_at
    elif all_acknowledged:
        fully_acknowledged_at = max(c.acknowledged_at for c in clinics if c.acknowledged_at)
    all_sent = counts.total > 0 and counts.sent == counts.total
    timing = RecallTiming(
        withdrawn_at=recall.withdrawn_at or recall.opened_at,
        opened_at=recall.opened_at,
        first_notice_sent_at=first_notice_sent_at,
        all_notices_sent_at=by_status["last_sent"] if all_sent else None,
        fully_acknowledged_at=fully_acknowledged_at,
        closed_at=recall.closed_at,
    )
    return RecallEffectiveness(
        recall=recall, clinics=clinics, notices=counts, failed_notices=failed, timing=timing
    )
