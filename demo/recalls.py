"""The third chapter of the demo story that `manage.py seed_demo` tells: recalls.

1. An open, real recall, half acknowledged. The manufacturer's retained-sample retest of lot
   HLX-C2490 (Helix UC-Exo Injectable, used for scalp injections at Lone Star Aesthetics and knee
   injections at Bayview Skin & Laser) found endotoxin above the release limit: the quality manager
   opens a class II, patient-level recall, its notices are delivered, and Bayview acknowledges,
   accounts for every vial it held and starts calling its patients. Lone Star has not answered
   yet: the demo clinic administrator's clinic has a recall waiting for it.
2. A finished drill on lot NVS-S2490 (the synthetic mimetic, at Lone Star and Hautzentrum am Main):
   notices delivered, both clinics acknowledged and counted their vials, and the quality manager
   closed it, so its timing report (opened, all notices sent, all acknowledged, closed) is real.

Everything goes through the services (recall_open, notification_deliver, recall_acknowledge,
recall_disposition_record, recall_contact_attempt_record, recall_close); the services take the
present as the time, so the timings are the seconds the seed took. Notices are delivered here, one
by one and synchronously, with the configured e-mail backend (the console unless EMAIL_BACKEND
says otherwise); the delivery task queued when each recall opened finds them sent and sends
nothing twice. A notice the backend could not send for now stays pending for the worker.

Idempotent: each recall is found by its lot (a real recall, or a drill, that includes it) and
each later step runs only while it is still missing, so a second run writes nothing.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from typing import Any

from django.conf import settings

from lots.models import Lot
from providers.models import Clinic
from recalls import delivery
from recalls.models import (
    Acknowledgement,
    AcknowledgementVia,
    ContactOutcome,
    DispositionKind,
    Notification,
    NotificationStatus,
    PatientContactAttempt,
    Recall,
    RecallClass,
    RecallDepth,
    RecallExposure,
    RecallStatus,
    RecallStock,
    StockDisposition,
)
from recalls.selectors import recall_clinic_ids, recall_effectiveness
from recalls.services import (
    RecallScopeRequest,
    recall_acknowledge,
    recall_close,
    recall_contact_attempt_record,
    recall_disposition_record,
    recall_open,
)
from recalls.services.accounting import units_left_to_account_for
from treatments.models import Patient

OPEN_RECALL_LOT = "HLX-C2490"
DRILL_LOT = "NVS-S2490"

OPEN_RECALL: dict[str, str] = {
    "recall_class": RecallClass.CLASS_II,
    "depth": RecallDepth.PATIENT,
    "reason": (
        "Helix Biologics' retest of retained samples of lot HLX-C2490 found bacterial endotoxin "
        "at 1.1 EU/mL, above the 0.5 EU/mL release limit; the lot passed at release."
    ),
    "hazard": (
        "Endotoxin injected into the scalp or a joint can cause fever, chills and a painful "
        "inflammatory reaction at the site within hours to two days of the treatment. The "
        "reaction is temporary; serious harm is unlikely."
    ),
    "instructions": (
        "Stop using lot HLX-C2490 at once: your remaining vials are blocked in the system. Return "
        "unopened vials to Helix Biologics (RMA HLX-RMA-0457) or destroy them as clinical waste, "
        "and record which. Call every patient on the list, ask about fever, swelling or pain at "
        "the injection site since the treatment, refer anyone with symptoms to a physician, and "
        "record each attempt and its outcome."
    ),
}

DRILL: dict[str, str] = {
    "recall_class": RecallClass.CLASS_II,
    "depth": RecallDepth.CLINIC,
    "reason": (
        "Annual mock recall (SOP QA-014): trace lot NVS-S2490 to every clinic that holds it, "
        "reach each one and account for every vial."
    ),
    "hazard": (
        "None: this is a drill. Scenario: particle concentration below the labelled minimum, so "
        "the product may work less well; no harm to patients is expected."
    ),
    "instructions": (
        "Acknowledge the notice, count your vials of NVS-S2490 and record them as returned. "
        "Do not move any stock: a drill changes nothing on the shelves."
    ),
}
DRILL_CLOSE_REASON = (
    "Drill complete: every clinic acknowledged and accounted for every vial it held."
)

# The open recall's patient calls at Bayview: the first two exposed patients, in treatment order.
CONTACT_ATTEMPTS = [
    (
        ContactOutcome.REACHED,
        "Reached by phone: no fever and no knee swelling since the injection; asked to call the "
        "clinic at once if either appears.",
    ),
    (
        ContactOutcome.UNREACHABLE,
        "No answer on the mobile number; voicemail left asking to call back. Will try again "
        "tomorrow morning.",
    ),
]
# Vials of the open recall that Bayview destroys (thawed, not returnable); it returns the rest.
DESTROYED_UNITS = 2


class DemoRecalls:
    """Runs the chapter. `clinics` and `lots` are the first chapter's records by key and lot
    number; `staff[clinic]` is the clinic's administrator, who acknowledges and accounts for it."""

    def __init__(
        self,
        *,
        quality_manager: Any,
        password: str,
        clinics: dict[str, Clinic],
        staff: dict[str, Any],
        lots: dict[str, Lot],
        write: Callable[[str], Any],
    ) -> None:
        self.quality_manager, self.password = quality_manager, password
        self.clinics, self.staff, self.lots, self.write = clinics, staff, lots, write

    def run(self) -> tuple[Recall, Recall]:
        recall = self._open_recall()
        drill = self._drill()
        for each in (recall, drill):
            self._describe(each)
        return recall, drill

    # -- the open recall -------------------------------------------------------------------------

    def _open_recall(self) -> Recall:
        lot = self.lots[OPEN_RECALL_LOT]
        recall = Recall.objects.filter(is_drill=False, recall_lots__lot=lot).first()
        if recall is None:
            recall = self._open(lot, OPEN_RECALL, is_drill=False)
        self._deliver(recall)
        if recall.status != RecallStatus.OPEN:
            return recall
        bayview, admin = self.clinics["ca"], self.staff["ca"]
        self._acknowledge(recall, bayview, admin)
        if not StockDisposition.objects.filter(recall=recall, clinic=bayview).exists():
            held, accounted = units_left_to_account_for(recall=recall, clinic=bayview, lot=lot)
            left = held - accounted
            destroyed = min(DESTROYED_UNITS, left)
            for kind, quantity in (
                (DispositionKind.RETURNED, left - destroyed),
                (DispositionKind.DESTROYED, destroyed),
            ):
                if quantity:
                    recall_disposition_record(
                        recall=recall,
                        clinic=bayview,
                        lot=lot,
                        kind=kind,
                        quantity=quantity,
                        actor=admin,
                    )
        if not PatientContactAttempt.objects.filter(
            recall=recall, patient__clinic=bayview
        ).exists():
            for patient, (outcome, note) in zip(
                self._exposed_patients(recall, bayview), CONTACT_ATTEMPTS, strict=False
            ):
                recall_contact_attempt_record(
                    recall=recall, patient=patient, outcome=outcome, note=note, actor=admin
                )
        return recall

    def _exposed_patients(self, recall: Recall, clinic: Clinic) -> list[Patient]:
        patient_ids = list(
            RecallExposure.objects.filter(recall=recall, clinic=clinic)
            .order_by("performed_at", "pk")
            .values_list("patient_id", flat=True)
        )
        first_ids = list(dict.fromkeys(patient_ids))[: len(CONTACT_ATTEMPTS)]
        patients = Patient.objects.in_bulk(first_ids)
        return [patients[pk] for pk in first_ids]

    # -- the drill -------------------------------------------------------------------------------

    def _drill(self) -> Recall:
        lot = self.lots[DRILL_LOT]
        drill = Recall.objects.filter(is_drill=True, recall_lots__lot=lot).first()
        if drill is None:
            drill = self._open(lot, DRILL, is_drill=True)
        self._deliver(drill)
        if drill.status != RecallStatus.OPEN:
            return drill
        administrators = {self.clinics[key].pk: self.staff[key] for key in self.clinics}
        for clinic in recall_clinic_ids(drill).order_by("name"):
            self._acknowledge(drill, clinic, administrators[clinic.pk])
        # A drill accounts for stock too (recall_close counts every unit each clinic held); its
        # dispositions are records only and move nothing.
        for row in RecallStock.objects.filter(recall=drill).select_related("clinic", "lot"):
            held, accounted = units_left_to_account_for(
                recall=drill, clinic=row.clinic, lot=row.lot
            )
            if held > accounted:
                recall_disposition_record(
                    recall=drill,
                    clinic=row.clinic,
                    lot=row.lot,
                    kind=DispositionKind.RETURNED,
                    quantity=held - accounted,
                    actor=administrators[row.clinic_id],
                )
        return recall_close(
            recall=drill,
            actor=self.quality_manager,
            password=self.password,
            reason=DRILL_CLOSE_REASON,
        )

    # -- shared steps ----------------------------------------------------------------------------

    def _open(self, lot: Lot, story: dict[str, str], *, is_drill: bool) -> Recall:
        return recall_open(
            actor=self.quality_manager,
            password=self.password,
            scope=RecallScopeRequest(lot_ids=[lot.pk]),
            is_drill=is_drill,
            recall_class=story["recall_class"],
            depth=story["depth"],
            reason=story["reason"],
            hazard=story["hazard"],
            instructions=story.get("instructions", ""),
        )

    def _deliver(self, recall: Recall) -> None:
        """Send the recall's pending notices now, through the delivery service the worker runs.

        The console backend (the default) prints each message in full, patient lists and HTML
        included: some hundreds of lines that would bury the demo logins, so that print is
        left out and one line says what was sent."""
        pending = Notification.objects.filter(recall=recall, status=NotificationStatus.PENDING)
        outcomes = []
        with contextlib.redirect_stdout(io.StringIO()) as printed:
            for notification_id in pending.order_by("pk").values_list("pk", flat=True):
                try:
                    outcomes.append(delivery.notification_deliver(notification_id))
                except delivery.TransientDeliveryError as error:
                    self.write(f"  notice {notification_id} not sent yet ({error.reason})")
        recall.refresh_from_db()
        if outcomes:
            sent = outcomes.count(delivery.Outcome.SENT)
            shown = " (the printed messages are left out here)" if printed.getvalue() else ""
            self.write(
                f"  {recall.reference}: {sent} of {len(outcomes)} notice(s) delivered with "
                f"{settings.EMAIL_BACKEND}{shown}"
            )

    def _acknowledge(self, recall: Recall, clinic: Clinic, administrator: Any) -> None:
        if not Acknowledgement.objects.filter(recall=recall, clinic=clinic).exists():
            recall_acknowledge(
                recall=recall, clinic=clinic, via=AcknowledgementVia.ADMIN, actor=administrator
            )

    def _describe(self, recall: Recall) -> None:
        recall.refresh_from_db()
        figures = recall_effectiveness(recall=recall)
        lots = ", ".join(
            recall.recall_lots.order_by("lot__lot_number").values_list("lot__lot_number", flat=True)
        )
        kind = "drill" if recall.is_drill else f"class {recall.recall_class}"
        self.write(
            f"  {recall.reference:<17} {recall.status}, {kind}, {recall.depth} level: {lots}; "
            f"{figures.clinics_acknowledged} of {figures.clinics_total} clinics acknowledged, "
            f"{figures.notices.sent} of {figures.notices.total} notices sent, "
            f"{figures.units_accounted} of {figures.units_held} units accounted for"
        )
        timing = figures.timing
        if recall.status == RecallStatus.CLOSED:
            self.write(
                "    timing from opening: all notices sent "
                f"{_seconds(timing.seconds_to_all_notices_sent)}, all acknowledged "
                f"{_seconds(timing.seconds_to_full_acknowledgement)}, closed "
                f"{_seconds(timing.seconds_to_close)}"
            )
        else:
            waiting = [clinic.clinic_name for clinic in figures.clinics if not clinic.acknowledged]
            if waiting:
                self.write(f"    waiting for: {', '.join(waiting)}")


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"
