"""Reads about recalls, scoped by role and clinic (DESIGN rule 8), each in a fixed number of
queries whatever the size of the recall.

`clinic_ids` arguments follow `treatments.selectors.visible_clinic_ids`: None means every clinic
(network quality manager or auditor); a list limits the read to those clinics, so clinic staff see
only their own exposures, patients, stock and notices.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.postgres.aggregates import ArrayAgg
from django.db.models import (
    Count,
    Exists,
    F,
    IntegerField,
    Max,
    Min,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce

from common.errors import DomainError
from providers.access import access_for
from providers.models import Clinic
from recalls.models import (
    Acknowledgement,
    ContactOutcome,
    Notification,
    NotificationResend,
    NotificationStatus,
    PatientContactAttempt,
    Recall,
    RecallDepth,
    RecallExposure,
    RecallLot,
    RecallScope,
    RecallStock,
    StockDisposition,
    WebhookEndpoint,
)
from treatments.models import Patient
from treatments.selectors import visible_clinic_ids

# A patient is "contacted" once a final outcome is on record; "unreachable" is an attempt only.
FINAL_OUTCOMES = (ContactOutcome.REACHED, ContactOutcome.DECEASED)
# Who sees a patient's contact details: the staff of the patient's own clinic (never network
# roles: HIPAA's minimum necessary, and DESIGN's "auditors see references only").
FAILED_NOTICES_SHOWN = 200


# ---------------------------------------------------------------------------------------------
# Recalls


def _recalls_touching(clinic_ids: list[int]) -> Q:
    """Recalls that reached one of the clinics: an exposure, stock held, or a notice."""
    return (
        Q(pk__in=RecallExposure.objects.filter(clinic_id__in=clinic_ids).values("recall_id"))
        | Q(pk__in=RecallStock.objects.filter(clinic_id__in=clinic_ids).values("recall_id"))
        | Q(pk__in=Notification.objects.filter(clinic_id__in=clinic_ids).values("recall_id"))
    )


def recall_list(*, user: Any) -> QuerySet[Recall]:
    """Every recall for network roles; for clinic staff, the recalls that reached their clinics."""
    recalls = Recall.objects.select_related("opened_by", "closed_by").prefetch_related(
        Prefetch(
            "recall_lots",
            queryset=RecallLot.objects.select_related("lot__product").order_by("round", "lot_id"),
        )
    )
    clinic_ids = visible_clinic_ids(user)
    if clinic_ids is None:
        return recalls
    return recalls.filter(_recalls_touching(clinic_ids))


def notice_list(*, user: Any) -> QuerySet[Notification]:
    """Recall notices with their delivery state: every notice for network roles; for clinic
    staff, their own clinics' notices (not the network endpoints')."""
    resends = (
        NotificationResend.objects.filter(notification_id=OuterRef("pk"))
        .order_by()
        .values("notification_id")
        .annotate(count=Count("pk"))
        .values("count")
    )
    notices = Notification.objects.select_related("recall", "clinic", "endpoint").annotate(
        resend_count=Coalesce(Subquery(resends, output_field=IntegerField()), 0)
    )
    clinic_ids = visible_clinic_ids(user)
    if clinic_ids is None:
        return notices.order_by("-recall_id", "round", "pk")
    return notices.filter(clinic_id__in=clinic_ids).order_by("-recall_id", "round", "pk")


def webhook_endpoint_list() -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.select_related("clinic").order_by("name", "pk")


def recall_detail_list(*, user: Any) -> QuerySet[Recall]:
    """`recall_list` with the scope rounds, for one recall's detail."""
    return recall_list(user=user).prefetch_related(
        Prefetch(
            "scopes",
            queryset=RecallScope.objects.select_related(
                "donor", "product", "manufacturer", "added_by"
            ).prefetch_related("lots"),
        )
    )


def recall_clinic_ids(recall: Recall) -> QuerySet[Clinic]:
    """The clinics a recall reached: those with exposures or stock in it (its consignees)."""
    return Clinic.objects.filter(
        Q(pk__in=RecallExposure.objects.filter(recall=recall).values("clinic_id"))
        | Q(pk__in=RecallStock.objects.filter(recall=recall).values("clinic_id"))
    )


def acknowledgement_list(*, recall: Recall, clinic_ids: list[int] | None) -> QuerySet[Any]:
    acknowledgements = Acknowledgement.objects.filter(recall=recall).select_related(
        "clinic", "acknowledged_by"
    )
    if clinic_ids is not None:
        acknowledgements = acknowledgements.filter(clinic_id__in=clinic_ids)
    return acknowledgements.order_by("acknowledged_at", "pk")


def disposition_list(*, recall: Recall, clinic_ids: list[int] | None) -> QuerySet[Any]:
    dispositions = StockDisposition.objects.filter(recall=recall).select_related(
        "clinic", "lot", "recorded_by"
    )
    if clinic_ids is not None:
        dispositions = dispositions.filter(clinic_id__in=clinic_ids)
    return dispositions.order_by("recorded_at", "pk")


def stock_to_account_for(*, recall: Recall, clinic_ids: list[int] | None = None) -> QuerySet[Any]:
    """Each (clinic, lot) the recall froze, with `quantity_accounted` (returned or destroyed so
    far) and `quantity_outstanding`."""
    disposed = (
        StockDisposition.objects.filter(
            recall_id=OuterRef("recall_id"),
            clinic_id=OuterRef("clinic_id"),
            lot_id=OuterRef("lot_id"),
        )
        .order_by()
        .values("recall_id")
        .annotate(total=Sum("quantity"))
        .values("total")
    )
    rows = (
        RecallStock.objects.filter(recall=recall)
        .select_related("clinic", "lot")
        .annotate(quantity_accounted=Coalesce(Subquery(disposed), Value(0)))
        .annotate(quantity_outstanding=F("quantity_held") - F("quantity_accounted"))
        .order_by("clinic__name", "lot__lot_number")
    )
    if clinic_ids is not None:
        rows = rows.filter(clinic_id__in=clinic_ids)
    return rows


def exposure_list(*, recall: Recall, clinic_ids: list[int] | None) -> QuerySet[RecallExposure]:
    """The frozen exposures with what an evidence export names (never contact details)."""
    exposures = RecallExposure.objects.filter(recall=recall).select_related(
        "clinic", "patient", "practitioner", "lot__product"
    )
    if clinic_ids is not None:
        exposures = exposures.filter(clinic_id__in=clinic_ids)
    return exposures.order_by("clinic__name", "performed_at", "pk")


def notification_list(*, recall: Recall, clinic_ids: list[int] | None) -> QuerySet[Notification]:
    """The recall's outbox rows; clinic staff see their own clinics' notices only."""
    notifications = Notification.objects.filter(recall=recall).select_related("clinic")
    if clinic_ids is not None:
        notifications = notifications.filter(clinic_id__in=clinic_ids)
    return notifications.order_by("round", "clinic__name", "channel", "recipient", "pk")


# ---------------------------------------------------------------------------------------------
# Patients of a patient-level recall


@dataclass(frozen=True)
class RecallPatientList:
    """The clinic's patients exposed to the recall. `patients` is one query (annotated with their
    exposures and the latest contact attempt) and carries contact details only when
    `with_contacts` is true."""

    clinic: Clinic
    with_contacts: bool
    patients: QuerySet[Patient]


def may_read_contacts(user: Any, clinic: Clinic) -> bool:
    return access_for(user).may_read_contact(clinic.pk)


def recall_patient_list(*, recall: Recall, clinic: Clinic, user: Any) -> RecallPatientList:
    """The clinic's affected patients. Contact details go only to that clinic's own staff (clinic
    administrators and clinicians) and only for a patient-level recall; quality managers and
    auditors get the pseudonymous references. Other clinics' staff are refused.

    The caller records the read of contact details (`audit.services.contact_data_read_record`)
    once it has the patients it shows."""
    clinic_ids = visible_clinic_ids(user)
    if clinic_ids is not None and clinic.pk not in clinic_ids:
        raise DomainError.single(
            "role_required",
            "You see only the patients of your own clinic.",
            field="clinic",
            status=403,
        )
    with_contacts = recall.depth == RecallDepth.PATIENT and may_read_contacts(user, clinic)
    exposures = RecallExposure.objects.filter(recall=recall, patient_id=OuterRef("pk")).order_by()
    attempts = PatientContactAttempt.objects.filter(recall=recall, patient_id=OuterRef("pk"))
    patients = (
        Patient.objects.filter(
            clinic=clinic,
            pk__in=RecallExposure.objects.filter(recall=recall, clinic=clinic).values("patient_id"),
        )
        .annotate(
            exposure_count=Subquery(
                exposures.values("patient_id").annotate(n=Count("pk")).values("n"),
                output_field=IntegerField(),
            ),
            first_treated_at=Subquery(
                exposures.values("patient_id").annotate(at=Min("performed_at")).values("at")
            ),
            last_treated_at=Subquery(
                exposures.values("patient_id").annotate(at=Max("performed_at")).values("at")
            ),
            lot_numbers=Subquery(
                exposures.values("patient_id")
                .annotate(
                    numbers=ArrayAgg("lot__lot_number", distinct=True, order_by="lot__lot_number")
                )
                .values("numbers")
            ),
            attempt_count=Coalesce(
                Subquery(
                    attempts.order_by().values("patient_id").annotate(n=Count("pk")).values("n"),
                    output_field=IntegerField(),
                ),
                Value(0),
            ),
            last_outcome=Subquery(attempts.order_by("-attempted_at", "-pk").values("outcome")[:1]),
            last_attempted_at=Subquery(
                attempts.order_by("-attempted_at", "-pk").values("attempted_at")[:1]
            ),
            contacted=Exists(attempts.filter(outcome__in=FINAL_OUTCOMES)),
        )
        .order_by("reference", "pk")
    )
    if with_contacts:
        patients = patients.select_related("contact")
    return RecallPatientList(clinic=clinic, with_contacts=with_contacts, patients=patients)


# ---------------------------------------------------------------------------------------------
# Effectiveness


# Default levels: (level, lowest share of consignees acknowledged, in percent). See
# `effectiveness_level` for why this is configurable.
DEFAULT_EFFECTIVENESS_LEVELS: tuple[tuple[str, float], ...] = (
    ("A", 100.0),
    ("B", 75.0),
    ("C", 50.0),
    ("D", 25.0),
    ("E", 0.0),
)


def effectiveness_level(share: float | None) -> str | None:
    """The effectiveness level A-E for the share (0..1) of consignees that acknowledged.

    21 CFR 7.42(b)(3) names levels A (100 % of consignees) to E (no effectiveness checks) for how
    far the *checks* must reach; REGULATORY.md marks that wording *unverified*. Mapping the share
    acknowledged onto A (100 %), B (>= 75 %), C (>= 50 %), D (>= 25 %) and E (below) is a
    configurable default, not a legal rule: set `RECALL_EFFECTIVENESS_LEVELS` in the settings to
    a sequence of (level, lowest percent) pairs, highest first, to change it.
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
    """Open -> first notice sent -> all notices sent -> all acknowledged: the figures a drill is
    audited on, and those of a real recall."""

    opened_at: datetime.datetime
    first_notice_sent_at: datetime.datetime | None
    all_notices_sent_at: datetime.datetime | None
    fully_acknowledged_at: datetime.datetime | None
    closed_at: datetime.datetime | None

    def _since_open(self, moment: datetime.datetime | None) -> float | None:
        return None if moment is None else (moment - self.opened_at).total_seconds()

    @property
    def seconds_to_first_notice(self) -> float | None:
        return self._since_open(self.first_notice_sent_at)

    @property
    def seconds_to_all_notices_sent(self) -> float | None:
        return self._since_open(self.all_notices_sent_at)

    @property
    def seconds_to_full_acknowledgement(self) -> float | None:
        return self._since_open(self.fully_acknowledged_at)

    @property
    def seconds_to_close(self) -> float | None:
        return self._since_open(self.closed_at)


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
    def level(self) -> str | None:
        return effectiveness_level(self.clinics_acknowledged_share)

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
        opened_at=recall.opened_at,
        first_notice_sent_at=first_notice_sent_at,
        all_notices_sent_at=by_status["last_sent"] if all_sent else None,
        fully_acknowledged_at=fully_acknowledged_at,
        closed_at=recall.closed_at,
    )
    return RecallEffectiveness(
        recall=recall, clinics=clinics, notices=counts, failed_notices=failed, timing=timing
    )
