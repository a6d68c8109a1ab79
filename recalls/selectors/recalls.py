"""Reads about recalls, scoped by role and clinic (DESIGN rule 8): the recalls a user sees, a
recall's consignees, acknowledgements, stock to account for, exposures, and the patients of a
patient-level recall."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
from django.utils.translation import gettext as _

from common.errors import DomainError
from providers.access import access_for
from providers.models import Clinic
from recalls.models import (
    Acknowledgement,
    ContactOutcome,
    Notification,
    PatientContactAttempt,
    Recall,
    RecallDepth,
    RecallExposure,
    RecallLot,
    RecallScope,
    RecallStock,
    StockDisposition,
)
from treatments.models import Patient
from treatments.selectors import visible_clinic_ids

# A patient is "contacted" once a final outcome is on record; "unreachable" is an attempt only.
FINAL_OUTCOMES = (ContactOutcome.REACHED, ContactOutcome.DECEASED)


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


@dataclass(frozen=True)
class RecallPatientList:
    """The clinic's patients exposed to the recall. `patients` is one query (annotated with their
    exposures and the latest contact attempt) and carries contact details only when
    `with_contacts` is true."""

    clinic: Clinic
    with_contacts: bool
    patients: QuerySet[Patient]


# Who sees a patient's contact details: the staff of the patient's own clinic (never network
# roles: HIPAA's minimum necessary, and DESIGN's "auditors see references only").
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
            _("You see only the patients of your own clinic."),
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
