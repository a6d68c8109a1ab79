"""Expiry watch: clinics are warned of usable stock expiring within 90, 60 and 30 days, quality
managers of manufacturer certificates expiring within 60 days; each warning once per threshold."""

from __future__ import annotations

import datetime
import hashlib

import pytest
from django.utils import timezone

from lots.models import Certificate, CertificateKind
from lots.services import certificate_upload_to_path
from recalls.expiry import expiry_watch
from recalls.models import ExpiryWarning
from tests.factories import (
    ClinicContactFactory,
    ManufacturerFactory,
    clinic_ready,
    pdf_bytes,
    receive,
    released_lot,
    treat,
)
from tests.recalls.conftest import free_port, message_text

pytestmark = pytest.mark.django_db

DAY = datetime.timedelta(days=1)


def _lot_expiring_in(days: int):
    return released_lot(expires_on=timezone.now().date() + days * DAY)


def _clinic_with_contacts(count: int = 1):
    ready = clinic_ready()
    contacts = [ClinicContactFactory(clinic=ready.clinic) for _ in range(count)]
    return ready, contacts


def _certificate(
    manufacturer, *, kind=CertificateKind.GMP, valid_for_days: int, supersedes=None, uploader
) -> Certificate:
    number = f"{kind}-{manufacturer.pk}-{valid_for_days}"
    content = pdf_bytes(number)
    sha256 = hashlib.sha256(content).hexdigest()
    certificate = Certificate(
        kind=kind,
        manufacturer=manufacturer,
        issuer="TÜV SÜD",
        number=number,
        valid_from=timezone.now().date() - 300 * DAY,
        valid_until=timezone.now().date() + valid_for_days * DAY,
        sha256=sha256,
        size_bytes=len(content),
        supersedes=supersedes,
        uploaded_by=uploader,
        uploaded_at=timezone.now(),
    )
    certificate.file.name = certificate_upload_to_path(sha256)
    certificate.save()
    return certificate


def test_clinic_is_warned_once_at_90_60_and_30_days_before_its_stock_expires(smtp):
    lot = _lot_expiring_in(100)
    ready, contacts = _clinic_with_contacts(2)
    receive(ready, lot, 5)
    _clinic_with_contacts(1)  # holds none of it
    now = timezone.now()

    runs = {days: expiry_watch(now=now + days * DAY) for days in (0, 15, 16, 45, 46, 75, 80)}

    assert {days: report.stock_warnings for days, report in runs.items()} == {
        0: 0,
        15: 1,
        16: 0,
        45: 1,
        46: 0,
        75: 1,
        80: 0,
    }
    assert [str(message["Subject"]) for message in smtp.messages] == [
        f"Stock expiring within {threshold} days at {ready.clinic.name}: 1 lot, the first in "
        f"{100 - days} days"
        for threshold, days in ((90, 15), (60, 45), (30, 75))
    ]
    assert all(
        sorted(str(message["To"]).split(", ")) == sorted(contact.email for contact in contacts)
        for message in smtp.messages
    )
    body = message_text(smtp.messages[0])
    assert lot.lot_number in body and "5 vial(s)" in body.lower()
    assert lot.expires_on.isoformat() in body
    assert sorted(ExpiryWarning.objects.values_list("threshold_days", flat=True)) == [30, 60, 90]
    assert not ExpiryWarning.objects.filter(sent_at__isnull=True).exists()


def test_stock_arriving_inside_a_threshold_gets_only_the_tightest_warning(smtp):
    lot = _lot_expiring_in(20)
    ready, _contacts = _clinic_with_contacts()
    receive(ready, lot, 3)

    first = expiry_watch()
    again = expiry_watch(now=timezone.now() + 5 * DAY)

    assert (first.stock_warnings, again.stock_warnings) == (1, 0)
    [message] = smtp.messages
    assert "within 30 days" in str(message["Subject"])


def test_stock_that_is_not_usable_or_used_up_is_not_warned_of(smtp):
    lot = _lot_expiring_in(40)
    quarantined, _ = _clinic_with_contacts()
    receive(quarantined, lot, 2, decision="quarantine")
    used_up, _ = _clinic_with_contacts()
    receive(used_up, lot, 1)
    treat(used_up, lot, 1)

    assert expiry_watch().stock_warnings == 0
    assert smtp.messages == []


def test_quality_managers_are_warned_once_of_current_manufacturer_certificates_expiring(
    quality_manager, smtp
):
    quality_manager.email = "quinn@network.example"
    quality_manager.save()
    expiring, later, superseded, renewed = (ManufacturerFactory() for _ in range(4))
    gmp = _certificate(expiring, valid_for_days=50, uploader=quality_manager)
    iso = _certificate(
        later, kind=CertificateKind.ISO_13485, valid_for_days=70, uploader=quality_manager
    )
    old = _certificate(superseded, valid_for_days=30, uploader=quality_manager)
    _certificate(superseded, valid_for_days=400, supersedes=old, uploader=quality_manager)
    _certificate(renewed, valid_for_days=40, uploader=quality_manager)
    _certificate(renewed, valid_for_days=420, uploader=quality_manager)
    now = timezone.now()

    first = expiry_watch(now=now)
    again = expiry_watch(now=now + DAY)
    later_run = expiry_watch(now=now + 15 * DAY)

    assert (first.certificate_warnings, again.certificate_warnings) == (1, 0)
    assert later_run.certificate_warnings == 1
    first_mail, second_mail = smtp.messages
    assert str(first_mail["To"]) == "quinn@network.example"
    assert gmp.number in message_text(first_mail) and expiring.legal_name in message_text(
        first_mail
    )
    for name in (later.legal_name, superseded.legal_name, renewed.legal_name):
        assert name not in message_text(first_mail)
    assert iso.number in message_text(second_mail)


def test_warning_the_mail_server_refused_is_sent_by_a_later_run(smtp, settings):
    lot = _lot_expiring_in(25)
    ready, _contacts = _clinic_with_contacts()
    receive(ready, lot, 2)
    working_port = settings.EMAIL_PORT
    settings.EMAIL_PORT = free_port()  # the mail server is down
    now = timezone.now()

    down = expiry_watch(now=now)
    settings.EMAIL_PORT = working_port
    within_lease = expiry_watch(now=now + datetime.timedelta(seconds=1))
    after_lease = expiry_watch(
        now=now + datetime.timedelta(seconds=settings.RECALL_DELIVERY_LEASE_SECONDS + 1)
    )

    assert (down.stock_warnings, len(down.unsent)) == (0, 1)
    assert within_lease.stock_warnings == 0  # the failed run's claim is still held
    assert after_lease.stock_warnings == 1
    assert len(smtp.messages) == 1
    assert ExpiryWarning.objects.get().sent_at is not None


def test_days_left_are_counted_on_each_clinics_own_calendar(smtp):
    # 23:30 UTC is already the next day in Berlin and still the same day in Chicago.
    day = timezone.now().date() + DAY
    now = datetime.datetime.combine(day, datetime.time(23, 30), tzinfo=datetime.UTC)
    lot = released_lot(expires_on=day + 30 * DAY)
    berlin, _ = _clinic_with_contacts()
    chicago, _ = _clinic_with_contacts()
    for ready, zone in ((berlin, "Europe/Berlin"), (chicago, "America/Chicago")):
        ready.clinic.time_zone = zone
        ready.clinic.save()
        receive(ready, lot, 2)

    report = expiry_watch(now=now)

    assert report.stock_warnings == 2
    subjects = [str(message["Subject"]) for message in smtp.messages]
    [to_berlin] = [subject for subject in subjects if f"at {berlin.clinic.name}:" in subject]
    [to_chicago] = [subject for subject in subjects if f"at {chicago.clinic.name}:" in subject]
    assert to_berlin.endswith("the first in 29 days")
    assert to_chicago.endswith("the first in 30 days")
