"""A clinic with its history to import: a lot made two years ago and expired last month, received
at the clinic 400 days ago, and a practitioner whose licence covered the past year only."""

from __future__ import annotations

import csv
import datetime
import io
from collections.abc import Iterable
from typing import Any

import pytest
from django.utils import timezone

from lots.models import Lot
from stock.services import stock_receive
from tests.factories import ClinicReady, clinic_ready, released_lot

DAY = datetime.timedelta(days=1)


def csv_bytes(rows: Iterable[dict[str, Any]], *, header: list[str] | None = None) -> bytes:
    rows = list(rows)
    names = header or list(dict.fromkeys(name for row in rows for name in row))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def days_ago(days: int) -> datetime.datetime:
    return timezone.now().replace(microsecond=0) - days * DAY


def past_receipt(ready: ClinicReady, lot: Lot, quantity: int, *, at: datetime.datetime) -> None:
    product = lot.product
    stock_receive(
        actor=ready.administrator,
        clinic=ready.clinic,
        lot=lot,
        quantity=quantity,
        decision="accept",
        package_intact=True,
        label_readable=True,
        transport_min_celsius=product.storage_min_celsius,
        transport_max_celsius=product.storage_max_celsius,
        storage_location="Freezer 1",
        received_at=at,
    )


def treatment_row(ready: ClinicReady, lot: Lot, **cells: Any) -> dict[str, Any]:
    row = {
        "patient": "EMR-0001",
        "practitioner": ready.practitioner.pk,
        "performed_at": days_ago(200).isoformat(),
        "lot_number": lot.lot_number,
        "units": 1,
        "route": "topical",
        "indication": "skin_rejuvenation",
        "anatomical_site": "face",
    }
    row.update(cells)
    return row


def check_statements(run_import: Any) -> int:
    """The statements an import reads before it starts writing (its check phase): `run_import`
    is called with a progress callback and must find no problem."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    seen: list[int] = []
    with CaptureQueriesContext(connection) as queries:

        def progress(phase: str, done: int, total: int) -> None:
            if phase == "writing" and not seen:
                seen.append(len(queries.captured_queries))

        assert run_import(progress).problems == []
    return seen[0]


@pytest.fixture
def ready(db) -> ClinicReady:
    ready = clinic_ready()
    licence = ready.practitioner.licences.get()
    licence.valid_from = timezone.now().date() - 500 * DAY
    licence.valid_until = timezone.now().date() - 10 * DAY
    licence.save()
    return ready


@pytest.fixture
def lot(ready) -> Lot:
    """Valid from two years ago until last month; 100 units received 400 days ago."""
    today = timezone.now().date()
    lot = released_lot(manufactured_on=today - 730 * DAY, expires_on=today - 30 * DAY)
    past_receipt(ready, lot, 100, at=days_ago(400))
    return lot


# The recalls suite's Celery fixtures: tasks run in this process (eager), or a real worker
# process against the test database and the broker.
from tests.recalls.conftest import (  # noqa: E402, F401
    celery_worker,
    eager_celery,
    smtp,
    smtp_server,
)
