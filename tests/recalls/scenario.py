"""A small recall world the recall tests share: one released lot received at two clinics and used
on three patients, each clinic with a notification contact, then recalled.

    clinic A: received 5, treated patient A1 (2 units) and A2 (1 unit) -> holds 2
    clinic B: received 4, treated patient B1 (1 unit)                   -> holds 3
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.db import connection
from django.utils import timezone

from lots.models import Lot
from recalls.models import Notification, NotificationStatus, Recall
from recalls.services import RecallScopeRequest, recall_open
from tests.factories import (
    PASSWORD,
    ClinicContactFactory,
    ClinicReady,
    PatientFactory,
    clinic_ready,
    receive,
    released_lot,
    treat,
)
from treatments.models import Patient, PatientContact


@dataclass
class World:
    quality_manager: Any
    lot: Lot
    a: ClinicReady
    b: ClinicReady
    a2: Patient

    @property
    def a1(self) -> Patient:
        return self.a.patient

    @property
    def b1(self) -> Patient:
        return self.b.patient


def with_contact(patient: Patient, name: str) -> Patient:
    PatientContact.objects.create(
        patient=patient,
        full_name=name,
        phone="+1 512 555 0100",
        email=f"{name.split()[0].lower()}@patient.example",
        postal_address="2 Side Street, Austin TX",
    )
    return patient


def build_world(quality_manager: Any) -> World:
    lot = released_lot(created_by=quality_manager)
    a = clinic_ready()
    b = clinic_ready()
    for ready in (a, b):
        ClinicContactFactory(clinic=ready.clinic)
    receive(a, lot, 5)
    receive(b, lot, 4)
    with_contact(a.patient, "Alice Anders")
    a2 = with_contact(PatientFactory(clinic=a.clinic), "Arthur Ames")
    with_contact(b.patient, "Bella Berg")
    treat(a, lot, 2)
    treat(a, lot, 1, patient=a2)
    treat(b, lot, 1)
    return World(quality_manager=quality_manager, lot=lot, a=a, b=b, a2=a2)


def open_recall(
    world: World,
    *,
    depth: str = "patient",
    is_drill: bool = False,
    lots: list[Lot] | None = None,
    recall_class: str = "I",
) -> Recall:
    return recall_open(
        actor=world.quality_manager,
        password=PASSWORD,
        recall_class=recall_class,
        depth=depth,
        reason="Endotoxin above specification in retained sample",
        hazard="Fever, sepsis",
        instructions="Quarantine remaining vials.",
        is_drill=is_drill,
        scope=RecallScopeRequest(lot_ids=[lot.pk for lot in (lots or [world.lot])]),
    )


def mark_sent(recall: Recall, *, at: datetime.datetime | None = None, **filters: Any) -> None:
    """Stand in for the delivery worker (built and tested elsewhere): notices sent at `at`."""
    at = at or timezone.now()
    Notification.objects.filter(recall=recall, **filters).update(
        status=NotificationStatus.SENT, sent_at=at, attempts=1
    )
    Recall.objects.filter(pk=recall.pk, first_notice_sent_at__isnull=True).update(
        first_notice_sent_at=at
    )
    recall.refresh_from_db()


ALL_APPS = ("providers", "lots", "stock", "treatments", "recalls", "auth", "pghistory")


def all_row_counts() -> dict[str, int]:
    """Rows in every table of every traceability app, history included, in one query: a refused
    request must leave each one as it was."""
    tables = sorted(
        model._meta.db_table
        for label in ALL_APPS
        for model in apps.get_app_config(label).get_models()
        if model._meta.managed and not model._meta.proxy
    )
    # Table names come from the models, never from input.
    sql = " UNION ALL ".join(
        f"SELECT %s, COUNT(*) FROM {connection.ops.quote_name(table)}"  # noqa: S608
        for table in tables
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, tables)
        return dict(cursor.fetchall())
