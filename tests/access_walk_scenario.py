"""The world the access walk (tests/test_access_walk.py) runs in: two clinics that received the same
lot, treated patients with contact details on record, and a recall that reached both; a second lot
still in stock at clinic A; a quarantined lot with its donor and certificates; one record of every
kind an admin page or an API path names; and the six callers.

    clinic A: administrator, clinician; patients A1, A2 (contact details), treatments, stock
    clinic B: administrator; patient B1 (contact details), a treatment, stock
    network:  quality manager, auditor; lots, donor, certificates, webhook endpoints, the recall
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group

from audit.models import ReadVia
from audit.services import contact_data_read_record
from lots.models import Certificate, ProductAuthorisation, SourceRestriction
from providers.models import Clinic, Role
from recalls.models import AcknowledgementVia, Notification, Recall, WebhookEndpoint
from tests.factories import (
    ConsentTextFactory,
    MembershipFactory,
    UserFactory,
    pdf_bytes,
    receive,
    releasable_lot,
    released_lot,
)
from tests.recalls.scenario import World, build_world, open_recall
from treatments.models import Patient, PatientContact, Treatment

ANONYMOUS = "anonymous"
CALLERS = (
    "clinic A administrator",
    "clinic A clinician",
    "clinic B administrator",
    "quality manager",
    "auditor",
    ANONYMOUS,
)


@dataclass(frozen=True)
class PathObject:
    """What an API path parameter names: its value, and the clinics it belongs to (None for a
    network record every role may read, such as a lot; a recall belongs to every clinic it
    reached)."""

    value: Any
    clinic_ids: frozenset[int] | None


@dataclass
class Scenario:
    world: World
    recall: Recall
    callers: dict[str, Any]
    path_objects: dict[str, PathObject]
    # Strings that must never reach a reader outside clinic A (patient references, contact data),
    # and contact data that must never reach a network role.
    clinic_a_secrets: list[str] = field(default_factory=list)
    contact_secrets: list[str] = field(default_factory=list)

    @property
    def clinic_a(self) -> Clinic:
        return self.world.a.clinic

    @property
    def clinic_b(self) -> Clinic:
        return self.world.b.clinic


def _staff(user: Any) -> Any:
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    return user


def _network_user(username: str, role: Role) -> Any:
    user = UserFactory(username=username, first_name="Walk", last_name=role.label)
    MembershipFactory(user=user, role=role, clinic=None)
    return _staff(user)


def _store_certificate_files() -> None:
    """The factories name a certificate's file without writing it; the file endpoints read it."""
    root = Path(settings.MEDIA_ROOT)
    for certificate in Certificate.objects.all():
        target = root / certificate.file.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(pdf_bytes(f"walk-{certificate.pk}"))


def build_scenario() -> Scenario:
    from recalls.services import (
        recall_acknowledge,
        recall_contact_attempt_record,
        recall_disposition_record,
    )
    from treatments.services import adverse_event_record

    quality_manager = _network_user("walk-quality-manager", Role.QUALITY_MANAGER)
    auditor = _network_user("walk-auditor", Role.AUDITOR)
    world = build_world(quality_manager)
    a, b = world.a, world.b

    # Stock at clinic A that the recall does not block, and a lot still in quarantine with its
    # donor and certificates behind it.
    in_stock = released_lot(created_by=quality_manager)
    receive(a, in_stock, 3)
    quarantined = releasable_lot(quality_manager=quality_manager)
    donor = quarantined.donors.first()
    certificate = Certificate.objects.filter(lot=quarantined).order_by("pk").first()

    network_endpoint = WebhookEndpoint.objects.create(
        name="Network hub", url="https://hooks.example/network", secret="whsec_" + "a" * 32
    )
    WebhookEndpoint.objects.create(
        name="Clinic A hub",
        url="https://hooks.example/clinic-a",
        secret="whsec_" + "b" * 32,
        clinic=a.clinic,
    )
    recall = open_recall(world)

    treatment_a = Treatment.objects.filter(clinic=a.clinic).order_by("pk").first()
    adverse_event_record(
        actor=a.clinician,
        treatment=treatment_a,
        onset_on=treatment_a.clinic.local_date(),
        description="Redness at the injection site",
        lot=world.lot,
    )
    recall_acknowledge(
        recall=recall, clinic=a.clinic, via=AcknowledgementVia.API, actor=a.administrator
    )
    recall_disposition_record(
        recall=recall,
        clinic=a.clinic,
        lot=world.lot,
        kind="destroyed",
        quantity=1,
        actor=a.administrator,
    )
    recall_contact_attempt_record(
        recall=recall, patient=a.patient, outcome="reached", actor=a.clinician
    )
    contact_data_read_record(
        user=a.administrator, patients=[a.patient], what="access walk", via=ReadVia.API
    )
    from knox.models import AuthToken

    token, _ = AuthToken.objects.create(user=quality_manager)
    _store_certificate_files()
    # Rows the reference data leaves out, for their admin pages.
    Group.objects.create(name="Walk group")
    ConsentTextFactory()
    ProductAuthorisation.objects.create(
        product=world.lot.product, jurisdiction="DE", status="banned", note="access walk"
    )
    SourceRestriction.objects.get_or_create(
        jurisdiction="FR", source_kind="animal", scope="cosmetic_uses"
    )

    from history.models import HistoryImport
    from signatures.models import Signature

    notice_a = Notification.objects.filter(recall=recall, clinic=a.clinic).order_by("pk").first()
    signature = Signature.objects.order_by("pk").first()
    assert notice_a is not None and signature is not None and certificate is not None
    only_a = frozenset({a.clinic.pk})
    history_import = HistoryImport.objects.create(
        kind="treatments",
        clinic=a.clinic,
        uploaded_by=a.administrator,
        file_name="chart.csv",
        file_sha256="0" * 64,
        content=b"",
        status="done",
    )
    path_objects = {
        "manufacturer_id": PathObject(world.lot.manufacturer_id, None),
        "clinic_id": PathObject(a.clinic.pk, only_a),
        "practitioner_id": PathObject(a.practitioner.pk, None),
        "product_id": PathObject(world.lot.product_id, None),
        "jurisdiction": PathObject("DE", None),
        "donor_id": PathObject(donor.pk, None),
        "lot_id": PathObject(world.lot.pk, None),
        "certificate_id": PathObject(certificate.pk, None),
        "patient_id": PathObject(a.patient.pk, only_a),
        "treatment_id": PathObject(treatment_a.pk, only_a),
        "recall_id": PathObject(recall.pk, frozenset({a.clinic.pk, b.clinic.pk})),
        "notice_id": PathObject(notice_a.pk, only_a),
        "endpoint_id": PathObject(network_endpoint.pk, None),
        "signature_id": PathObject(signature.pk, None),
        # Accounts are the network's: the quality manager's own, with a role and a token.
        "user_id": PathObject(quality_manager.pk, None),
        "membership_id": PathObject(quality_manager.memberships.get().pk, None),
        "token_key": PathObject(token.token_key, None),
        "import_id": PathObject(history_import.pk, only_a),
    }
    callers = {
        "clinic A administrator": _staff(a.administrator),
        "clinic A clinician": _staff(a.clinician),
        "clinic B administrator": _staff(b.administrator),
        "quality manager": quality_manager,
        "auditor": auditor,
        ANONYMOUS: None,
    }
    patients_a = Patient.objects.filter(clinic=a.clinic)
    contacts = PatientContact.objects.all()
    contacts_a = contacts.filter(patient__clinic=a.clinic)
    return Scenario(
        world=world,
        recall=recall,
        callers=callers,
        path_objects=path_objects,
        clinic_a_secrets=[
            *(patient.reference for patient in patients_a),
            *(contact.full_name for contact in contacts_a),
            *(contact.email for contact in contacts_a if contact.email),
        ],
        contact_secrets=[
            *(contact.full_name for contact in contacts),
            *(contact.email for contact in contacts if contact.email),
        ],
    )
