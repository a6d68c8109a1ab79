"""API tests for patients, consent texts, treatments, adverse events and scan resolution: status
codes, permissions, scoping by clinic and wiring. The rules themselves are tested at the services.

The helpers at the top (a clinic with released stock, a practitioner who may treat there, ...)
are shared with tests/stock/test_api.py and tests/treatments/test_trace_api.py."""

from __future__ import annotations

import datetime
import json
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from lots.models import AuthorisationStatus, Lot, LotStatus, Product, ProductAuthorisation
from providers.models import Clinic, ClinicPractitioner, Practitioner, Role
from stock.models import MovementKind, StockBalance, StockMovement, StockState
from stock.services import stock_receive
from tests.api_helpers import API, assert_list_queries_fixed, error_codes, error_fields
from tests.factories import (
    TODAY,
    ClinicFactory,
    LicenceFactory,
    LotFactory,
    ManufacturerFactory,
    MembershipFactory,
    PractitionerFactory,
    ProductFactory,
    UserFactory,
    lot_for_release,
)
from treatments.models import (
    AdverseEvent,
    ConsentText,
    Patient,
    PatientContact,
    Treatment,
)
from treatments.services import (
    ConsentRequest,
    LineRequest,
    adverse_event_record,
    patient_create,
    treatment_record,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]

# ---------------------------------------------------------------------------------------------
# Shared helpers


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def ago(**delta: float) -> datetime.datetime:
    return timezone.now() - datetime.timedelta(**delta)


def released_lot(quality_manager, *, product: Product | None = None, **fields) -> Lot:
    """A released lot with its whole evidence: donors with marker results, QC, CoA and GMP;
    made large enough for every site a test stocks with it (`make_site` receives 100 each)."""
    fields.setdefault("quantity", 1000)
    return lot_for_release(
        quality_manager=quality_manager, product=product, status=LotStatus.RELEASED, **fields
    )


def receive(clinic: Clinic, lot: Lot, quantity: int = 10, *, decision: str = "accept"):
    """Units of `lot` into the clinic's stock, through the service, by a clinic administrator."""
    admin = MembershipFactory(role=Role.CLINIC_ADMINISTRATOR, clinic=clinic).user
    return stock_receive(
        actor=admin,
        clinic=clinic,
        lot=lot,
        quantity=quantity,
        decision=decision,
        package_intact=True,
        label_readable=True,
        transport_min_celsius=Decimal("-75"),
        transport_max_celsius=Decimal("-65"),
        storage_location="Freezer 1",
    )


def practitioner_at(clinic: Clinic, **fields) -> Practitioner:
    """A practitioner who practises at the clinic with a licence valid there today."""
    practitioner = PractitionerFactory(**fields)
    LicenceFactory(practitioner=practitioner, jurisdiction=clinic.jurisdiction)
    ClinicPractitioner.objects.create(clinic=clinic, practitioner=practitioner)
    return practitioner


def consent_text(**fields) -> ConsentText:
    values = {
        "code": "exosome",
        "version": 1,
        "title": "Exosome treatment",
        "body": "Not approved by the FDA; risks explained.",
        **fields,
    }
    return ConsentText.objects.create(**values)


@dataclass
class Site:
    """A clinic where treatments can be recorded: staff, a practitioner, a patient with contact
    details, a consent text and accepted stock of one released lot."""

    clinic: Clinic
    clinician: Any
    administrator: Any
    practitioner: Practitioner
    patient: Patient
    lot: Lot
    consent_text: ConsentText

    def record(self, *, patient: Patient | None = None, practitioner=None, lots=None, units=1):
        return treatment_record(
            actor=self.clinician,
            clinic=self.clinic,
            patient=patient or self.patient,
            practitioner=practitioner or self.practitioner,
            performed_at=ago(minutes=5),
            indication="skin_rejuvenation",
            route="topical",
            anatomical_site="face",
            lines=[LineRequest(lot=lot, units=units) for lot in (lots or [self.lot])],
            consent=ConsentRequest(
                consent_text=self.consent_text, taken_by=self.clinician, taken_at=ago(minutes=10)
            ),
        )


def make_site(quality_manager, *, clinic: Clinic | None = None, lot: Lot | None = None) -> Site:
    clinic = clinic or ClinicFactory()
    clinician = MembershipFactory(role=Role.CLINICIAN, clinic=clinic).user
    administrator = MembershipFactory(role=Role.CLINIC_ADMINISTRATOR, clinic=clinic).user
    lot = lot or released_lot(quality_manager)
    receive(clinic, lot, 100)
    patient = patient_create(
        actor=clinician,
        clinic=clinic,
        reference=f"P-{clinic.pk}-0001",
        contact={"full_name": "Erika Mustermann", "phone": "+49 30 1234567"},
    )
    text = ConsentText.objects.filter(code="exosome", version=1).first() or consent_text()
    return Site(
        clinic=clinic,
        clinician=clinician,
        administrator=administrator,
        practitioner=practitioner_at(clinic),
        patient=patient,
        lot=lot,
        consent_text=text,
    )


@pytest.fixture
def site(quality_manager, clinic):
    return make_site(quality_manager, clinic=clinic)


def treatment_body(site: Site, **overrides) -> dict[str, Any]:
    return {
        "clinic": site.clinic.pk,
        "patient": site.patient.pk,
        "practitioner": site.practitioner.pk,
        "performed_at": ago(minutes=5).isoformat(),
        "indication": "skin_rejuvenation",
        "route": "topical",
        "anatomical_site": "face",
        "notes": "",
        "lines": [{"lot": site.lot.pk, "units": 2}],
        "consent": {"consent_text": site.consent_text.pk, "taken_at": ago(minutes=10).isoformat()},
        **overrides,
    }


def accepted_units(clinic: Clinic, lot: Lot) -> int:
    balance = StockBalance.objects.filter(clinic=clinic, lot=lot, state=StockState.ACCEPTED)
    return balance.values_list("quantity", flat=True).first() or 0


# ---------------------------------------------------------------------------------------------
# Permissions


def test_an_anonymous_caller_cannot_list_patients(api_client):
    response = api_client.get(f"{API}/patients/")
    assert response.status_code in (401, 403)
    assert error_codes(response) == ["not_authenticated"]


def test_a_user_without_a_role_cannot_list_treatments(db):
    response = client_for(UserFactory()).get(f"{API}/treatments/")
    assert response.status_code == 403
    assert error_codes(response) == ["no_role"]


@pytest.mark.parametrize("path", ["/patients/", "/treatments/", "/receipts/", "/stock/transfers/"])
def test_an_auditor_is_refused_a_write_before_the_body_is_read(auditor, path):
    response = client_for(auditor).post(
        f"{API}{path}", data=b'{"clinic": ', content_type="application/json"
    )
    assert response.status_code == 403
    assert error_codes(response) == ["role_required"]


def test_an_auditor_reads_every_clinic(site, auditor):
    other = ClinicFactory()
    elsewhere = patient_create(
        actor=MembershipFactory(role=Role.CLINICIAN, clinic=other).user,
        clinic=other,
        reference="OTHER-1",
    )
    body = client_for(auditor).get(f"{API}/patients/").json()
    assert {row["id"] for row in body["results"]} == {site.patient.pk, elsewhere.pk}


# ---------------------------------------------------------------------------------------------
# Patients


def test_patient_create_keeps_contact_details_out_of_the_response(clinician, clinic):
    response = client_for(clinician).post(
        f"{API}/patients/",
        {
            "clinic": clinic.pk,
            "reference": " P-0042 ",
            "contact": {
                "full_name": "Max Mustermann",
                "date_of_birth": "1980-04-01",
                "email": "max@example.org",
            },
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["reference"] == "P-0042"
    assert body["clinic"] == {"id": clinic.pk, "name": clinic.name}
    assert set(body) == {"id", "reference", "clinic", "created_at"}
    assert b"Mustermann" not in response.content
    contact = PatientContact.objects.get(patient_id=body["id"])
    assert contact.full_name == "Max Mustermann"
    assert contact.date_of_birth == datetime.date(1980, 4, 1)


def test_patient_create_without_contact_details(clinic_administrator, clinic):
    response = client_for(clinic_administrator).post(
        f"{API}/patients/", {"clinic": clinic.pk, "reference": "P-1"}, format="json"
    )
    assert response.status_code == 201
    assert not PatientContact.objects.exists()


def test_patient_create_refuses_a_reference_the_clinic_already_uses(clinician, clinic):
    client = client_for(clinician)
    client.post(f"{API}/patients/", {"clinic": clinic.pk, "reference": "P-1"}, format="json")
    response = client.post(
        f"{API}/patients/", {"clinic": clinic.pk, "reference": "P-1"}, format="json"
    )
    assert response.status_code == 400
    assert Patient.objects.count() == 1
    error_codes(response)


def test_patient_create_refuses_a_bad_contact_email_naming_the_nested_field(clinician, clinic):
    response = client_for(clinician).post(
        f"{API}/patients/",
        {"clinic": clinic.pk, "reference": "P-1", "contact": {"full_name": "A", "email": "no"}},
        format="json",
    )
    assert response.status_code == 400
    assert error_fields(response) == ["contact.email"]
    assert not Patient.objects.exists()


def test_patient_create_at_another_clinic_is_refused_by_role(clinician):
    other = ClinicFactory()
    response = client_for(clinician).post(
        f"{API}/patients/", {"clinic": other.pk, "reference": "P-1"}, format="json"
    )
    assert response.status_code == 403
    assert error_codes(response) == ["role_required"]
    assert not Patient.objects.exists()


def test_a_network_quality_manager_does_not_register_patients(qm_client, clinic):
    response = qm_client.post(
        f"{API}/patients/", {"clinic": clinic.pk, "reference": "P-1"}, format="json"
    )
    assert response.status_code == 403
    assert error_codes(response) == ["role_required"]


def test_patient_list_shows_only_the_own_clinic_and_filters(site, quality_manager):
    other = make_site(quality_manager)
    second = patient_create(actor=site.clinician, clinic=site.clinic, reference="P-0002")
    client = client_for(site.clinician)

    rows = client.get(f"{API}/patients/").json()["results"]
    assert {row["id"] for row in rows} == {site.patient.pk, second.pk}
    assert other.patient.pk not in {row["id"] for row in rows}
    assert all(set(row) == {"id", "reference", "clinic", "created_at"} for row in rows)

    rows = client.get(f"{API}/patients/", {"reference": "P-0002"}).json()["results"]
    assert [row["id"] for row in rows] == [second.pk]
    # Filtering by another clinic shows nothing of it.
    assert client.get(f"{API}/patients/", {"clinic": other.clinic.pk}).json()["count"] == 0


def test_patient_detail_of_another_clinic_is_not_found(site, quality_manager):
    other = make_site(quality_manager)
    client = client_for(site.clinician)
    assert client.get(f"{API}/patients/{site.patient.pk}/").status_code == 200
    response = client.get(f"{API}/patients/{other.patient.pk}/")
    assert response.status_code == 404
    assert error_codes(response) == ["not_found"]


def test_patient_detail_never_shows_contact_details(site, auditor):
    for user in (site.clinician, auditor):
        response = client_for(user).get(f"{API}/patients/{site.patient.pk}/")
        assert response.json()["reference"] == site.patient.reference
        assert b"Mustermann" not in response.content
        assert b"1234567" not in response.content


@pytest.mark.parametrize("who", ["clinician", "administrator"])
def test_patient_contact_is_shown_to_the_own_clinic_staff_and_logged(site, who, caplog):
    user = getattr(site, who)
    with caplog.at_level(logging.INFO, logger="treatments.api"):
        response = client_for(user).get(f"{API}/patients/{site.patient.pk}/contact/")
    assert response.status_code == 200
    assert response.json() == {
        "patient": site.patient.pk,
        "full_name": "Erika Mustermann",
        "date_of_birth": None,
        "phone": "+49 30 1234567",
        "email": "",
        "postal_address": "",
    }
    assert response["Cache-Control"] == "no-store"
    assert f"user={user.pk} patient={site.patient.pk}" in caplog.text


@pytest.mark.parametrize("role_user", ["auditor", "quality_manager"])
def test_patient_contact_is_refused_to_network_roles(site, request, role_user):
    response = client_for(request.getfixturevalue(role_user)).get(
        f"{API}/patients/{site.patient.pk}/contact/"
    )
    assert response.status_code == 403
    assert error_codes(response) == ["role_required"]
    assert b"Erika" not in response.content


def test_patient_contact_is_refused_to_a_clinic_quality_manager(site):
    local_qm = MembershipFactory(role=Role.QUALITY_MANAGER, clinic=site.clinic).user
    response = client_for(local_qm).get(f"{API}/patients/{site.patient.pk}/contact/")
    assert response.status_code == 403


def test_patient_contact_of_another_clinic_is_not_found(site, quality_manager):
    other = make_site(quality_manager)
    response = client_for(site.clinician).get(f"{API}/patients/{other.patient.pk}/contact/")
    assert response.status_code == 404
    assert error_codes(response) == ["not_found"]


def test_patient_contact_missing_is_a_404_with_its_own_code(clinician, clinic):
    patient = patient_create(actor=clinician, clinic=clinic, reference="P-1")
    response = client_for(clinician).get(f"{API}/patients/{patient.pk}/contact/")
    assert response.status_code == 404
    assert error_codes(response) == ["patient_contact_missing"]


def test_patient_list_runs_a_fixed_number_of_queries(clinician, clinic, django_assert_num_queries):
    def add(n):
        start = Patient.objects.count()
        for i in range(n):
            patient_create(actor=clinician, clinic=clinic, reference=f"P-{start + i:04d}")

    assert_list_queries_fixed(
        client_for(clinician), f"{API}/patients/", add, django_assert_num_queries
    )


# ---------------------------------------------------------------------------------------------
# Consent texts


def test_consent_texts_lists_active_versions_only(clinician):
    current = consent_text(version=2)
    consent_text(version=1, active=False)
    body = client_for(clinician).get(f"{API}/consent-texts/").json()
    assert [row["id"] for row in body["results"]] == [current.pk]
    assert body["results"][0]["body"] == current.body


def test_consent_text_list_runs_a_fixed_number_of_queries(auditor, django_assert_num_queries):
    def add(n):
        start = ConsentText.objects.count()
        for i in range(n):
            consent_text(code=f"text-{start + i}")

    assert_list_queries_fixed(
        client_for(auditor), f"{API}/consent-texts/", add, django_assert_num_queries
    )


# ---------------------------------------------------------------------------------------------
# Treatments: recording


def test_treatment_record_by_lot_id_draws_stock_and_records_consent(site):
    response = client_for(site.clinician).post(
        f"{API}/treatments/", treatment_body(site), format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["lines"] == [
        {
            "lot": site.lot.pk,
            "lot_number": site.lot.lot_number,
            "product": {
                "id": site.lot.product.pk,
                "name": site.lot.product.name,
                "gtin": site.lot.product.gtin,
            },
            "units": 2,
            "stock_movement": StockMovement.objects.get(
                lot=site.lot, kind=MovementKind.TREATMENT
            ).pk,
        }
    ]
    assert body["consent"]["taken_by"] == site.clinician.username
    assert body["consent"]["consent_text"]["id"] == site.consent_text.pk
    assert "lot " + site.lot.lot_number in body["consent"]["regulatory_statement"]
    assert body["patient"] == {"id": site.patient.pk, "reference": site.patient.reference}
    assert body["practitioner"]["id"] == site.practitioner.pk
    assert body["adverse_events"] == []
    assert body["recorded_by"] == site.clinician.username
    assert accepted_units(site.clinic, site.lot) == 98
    treatment = Treatment.objects.get(pk=body["id"])
    assert treatment.consent_taken_by == site.clinician


def scanned_product_and_lot(quality_manager, **lot_fields) -> Lot:
    product = ProductFactory(gtin="09506000134352")
    return released_lot(
        quality_manager,
        product=product,
        lot_number="EXO-LOT-0001",
        manufactured_on=datetime.date(2025, 6, 30),
        expires_on=datetime.date(2027, 6, 30),
        **lot_fields,
    )


RAW_SCAN = "]d2" + "0109506000134352" + "17270630" + "10EXO-LOT-0001" + "\x1d" + "21SN000123"
HUMAN_READABLE_SCAN = "(01)09506000134352(17)270630(10)EXO-LOT-0001(21)SN000123"


@pytest.mark.parametrize("scan", [RAW_SCAN, HUMAN_READABLE_SCAN], ids=["raw", "human_readable"])
def test_treatment_record_by_scanning_the_vial(quality_manager, clinic, scan):
    lot = scanned_product_and_lot(quality_manager)
    site = make_site(quality_manager, clinic=clinic, lot=lot)
    body = treatment_body(site, lines=[{"scan": scan, "units": 3}])
    response = client_for(site.clinician).post(f"{API}/treatments/", body, format="json")
    assert response.status_code == 201, response.content
    assert [(line["lot"], line["units"]) for line in response.json()["lines"]] == [(lot.pk, 3)]
    assert accepted_units(clinic, lot) == 97


def test_treatment_record_mixes_a_lot_id_and_a_scan(quality_manager, clinic):
    scanned = scanned_product_and_lot(quality_manager)
    site = make_site(quality_manager, clinic=clinic)
    receive(clinic, scanned, 5)
    body = treatment_body(
        site, lines=[{"lot": site.lot.pk, "units": 1}, {"scan": HUMAN_READABLE_SCAN, "units": 1}]
    )
    response = client_for(site.clinician).post(f"{API}/treatments/", body, format="json")
    assert response.status_code == 201, response.content
    assert {line["lot"] for line in response.json()["lines"]} == {site.lot.pk, scanned.pk}


def test_treatment_record_reports_every_unresolvable_scan_at_its_line(site):
    body = treatment_body(
        site,
        lines=[
            {"lot": site.lot.pk, "units": 1},
            {"scan": "(01)09506000134352(10)NOPE", "units": 1},
            {"scan": "hello", "units": 1},
        ],
    )
    before = StockMovement.objects.count()
    response = client_for(site.clinician).post(f"{API}/treatments/", body, format="json")
    # An unknown GTIN is a 404, a malformed scan a 400: the most severe status answers.
    assert response.status_code == 404
    assert error_codes(response) == ["scan_gtin_unknown", "scan_malformed"]
    assert error_fields(response) == ["lines[1].scan", "lines[2].scan"]
    assert not Treatment.objects.exists()
    assert StockMovement.objects.count() == before


def test_treatment_record_scan_whose_label_expiry_disagrees_is_a_conflict(quality_manager, clinic):
    site = make_site(quality_manager, clinic=clinic, lot=scanned_product_and_lot(quality_manager))
    body = treatment_body(
        site, lines=[{"scan": "(01)09506000134352(17)270531(10)EXO-LOT-0001", "units": 1}]
    )
    response = client_for(site.clinician).post(f"{API}/treatments/", body, format="json")
    assert response.status_code == 409
    assert error_codes(response) == ["scan_expiry_mismatch"]
    assert error_fields(response) == ["lines[0].scan"]


@pytest.mark.parametrize(
    "line",
    [{"units": 1}, {"lot": 1, "scan": HUMAN_READABLE_SCAN, "units": 1}],
    ids=["neither", "both"],
)
def test_treatment_line_names_its_lot_by_id_or_by_scan(site, line):
    if "lot" in line:
        line = {**line, "lot": site.lot.pk}
    response = client_for(site.clinician).post(
        f"{API}/treatments/", treatment_body(site, lines=[line]), format="json"
    )
    assert response.status_code == 400
    assert error_codes(response) == ["lot_or_scan_required"]
    assert error_fields(response) == ["lines[0]"]


def test_treatment_record_needs_a_time_with_its_utc_offset(site):
    naive = ago(minutes=5).replace(tzinfo=None).isoformat()
    response = client_for(site.clinician).post(
        f"{API}/treatments/", treatment_body(site, performed_at=naive), format="json"
    )
    assert response.status_code == 400
    assert error_codes(response) == ["offset_required"]
    assert error_fields(response) == ["performed_at"]


def test_treatment_record_accepts_a_time_in_another_offset(site):
    local = ago(minutes=5).astimezone(datetime.timezone(datetime.timedelta(hours=-7)))
    response = client_for(site.clinician).post(
        f"{API}/treatments/", treatment_body(site, performed_at=local.isoformat()), format="json"
    )
    assert response.status_code == 201, response.content
    assert Treatment.objects.get().performed_at == local


def test_treatment_refusal_lists_every_problem_and_changes_nothing(site, quality_manager):
    recalled = LotFactory(status=LotStatus.RECALLED, created_by=quality_manager)
    on_hold = LotFactory(status=LotStatus.ON_HOLD, created_by=quality_manager)
    expired_quarantined = LotFactory(
        created_by=quality_manager,
        manufactured_on=TODAY() - datetime.timedelta(days=400),
        expires_on=TODAY() - datetime.timedelta(days=1),
    )
    banned = released_lot(quality_manager)
    ProductAuthorisation.objects.create(
        product=banned.product, jurisdiction=site.clinic.jurisdiction, status="banned"
    )
    stranger = PractitionerFactory()
    body = treatment_body(
        site,
        practitioner=stranger.pk,
        route="intravenous",
        consent=None,
        lines=[
            {"lot": lot.pk, "units": 1} for lot in (recalled, on_hold, expired_quarantined, banned)
        ],
    )
    movements = StockMovement.objects.count()

    response = client_for(site.clinician).post(f"{API}/treatments/", body, format="json")

    assert response.status_code == 409, response.content
    assert set(error_codes(response)) == {
        "lot_recalled",
        "lot_on_hold",
        "lot_not_released",
        "lot_expired",
        "stock_insufficient",
        "practitioner_not_member",
        "practitioner_not_licensed",
        "product_not_authorised",
        "route_not_permitted",
        "consent_required",
    }
    assert "lines[0].lot" in error_fields(response)
    assert not Treatment.objects.exists()
    assert StockMovement.objects.count() == movements
    assert accepted_units(site.clinic, site.lot) == 100


def test_treatment_record_refuses_more_units_than_the_clinic_holds(site):
    body = treatment_body(site, lines=[{"lot": site.lot.pk, "units": 101}])
    response = client_for(site.clinician).post(f"{API}/treatments/", body, format="json")
    assert response.status_code == 409
    assert error_codes(response) == ["stock_insufficient"]
    assert error_fields(response) == ["lines[0].units"]


def test_treatment_record_with_another_clinics_patient_does_not_reveal_it(site, quality_manager):
    other = make_site(quality_manager)
    response = client_for(site.clinician).post(
        f"{API}/treatments/", treatment_body(site, patient=other.patient.pk), format="json"
    )
    assert response.status_code == 400
    assert error_codes(response) == ["does_not_exist"]
    assert error_fields(response) == ["patient"]


def test_treatment_record_at_a_clinic_where_the_caller_has_no_role_is_refused(
    site, quality_manager
):
    other = make_site(quality_manager)
    # The caller's own patient, but the other clinic named.
    response = client_for(site.clinician).post(
        f"{API}/treatments/", treatment_body(site, clinic=other.clinic.pk), format="json"
    )
    assert response.status_code == 403
    assert error_codes(response) == ["role_required"]
    assert not Treatment.objects.exists()


def test_a_quality_manager_does_not_record_treatments(site, qm_client):
    response = qm_client.post(f"{API}/treatments/", treatment_body(site), format="json")
    assert response.status_code == 403
    assert error_codes(response) == ["role_required"]


def test_treatment_record_with_an_empty_line_list_is_refused_with_the_reason(site):
    response = client_for(site.clinician).post(
        f"{API}/treatments/", treatment_body(site, lines=[]), format="json"
    )
    assert response.status_code == 409
    assert "treatment_no_lot" in error_codes(response)


# ---------------------------------------------------------------------------------------------
# Treatments: reading


def test_treatment_detail_shows_lines_consent_and_adverse_events(site):
    treatment = site.record(units=2)
    adverse_event_record(
        actor=site.clinician,
        treatment=treatment,
        onset_on=TODAY(),
        description="Redness",
        lot=site.lot,
        hospitalisation=True,
    )
    body = client_for(site.clinician).get(f"{API}/treatments/{treatment.pk}/").json()
    assert [line["units"] for line in body["lines"]] == [2]
    assert body["consent"]["taken_by"] == site.clinician.username
    [event] = body["adverse_events"]
    assert event["serious"] is True
    assert event["lot"] == {"id": site.lot.pk, "lot_number": site.lot.lot_number}


def test_treatment_without_consent_shows_none(quality_manager):
    site = make_site(quality_manager, clinic=ClinicFactory(consent_required=False))
    treatment = treatment_record(
        actor=site.clinician,
        clinic=site.clinic,
        patient=site.patient,
        practitioner=site.practitioner,
        performed_at=ago(minutes=1),
        indication="hair",
        route="microneedling",
        anatomical_site="scalp",
        lines=[LineRequest(lot=site.lot, units=1)],
    )
    body = client_for(site.clinician).get(f"{API}/treatments/{treatment.pk}/").json()
    assert body["consent"] is None


def test_treatment_detail_of_another_clinic_is_not_found(site, quality_manager):
    other = make_site(quality_manager)
    treatment = other.record()
    response = client_for(site.clinician).get(f"{API}/treatments/{treatment.pk}/")
    assert response.status_code == 404
    assert error_codes(response) == ["not_found"]


def test_treatment_list_filters(site, quality_manager):
    second_lot = released_lot(quality_manager)
    receive(site.clinic, second_lot, 5)
    other_practitioner = practitioner_at(site.clinic)
    other_patient = patient_create(actor=site.clinician, clinic=site.clinic, reference="P-2")
    first = site.record()
    second = site.record(patient=other_patient, practitioner=other_practitioner, lots=[second_lot])
    elsewhere = make_site(quality_manager).record()
    client = client_for(site.administrator)

    def ids(**params):
        response = client.get(f"{API}/treatments/", params)
        assert response.status_code == 200, response.content
        return {row["id"] for row in response.json()["results"]}

    assert ids() == {first.pk, second.pk}
    assert ids(lot=second_lot.pk) == {second.pk}
    assert ids(patient=other_patient.pk) == {second.pk}
    assert ids(practitioner=site.practitioner.pk) == {first.pk}
    assert ids(clinic=site.clinic.pk) == {first.pk, second.pk}
    assert ids(clinic=elsewhere.clinic_id) == set()
    assert ids(performed_after=ago(hours=1).isoformat()) == {first.pk, second.pk}
    assert ids(performed_before=ago(hours=1).isoformat()) == set()
    assert elsewhere.pk in {
        row["id"] for row in client_for(quality_manager).get(f"{API}/treatments/").json()["results"]
    }


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"lot": "abc"}, "lot"),
        ({"patient": "0"}, "patient"),
        ({"performed_after": "yesterday"}, "performed_after"),
        ({"clinic": str(10**30)}, "clinic"),
    ],
)
def test_treatment_list_refuses_bad_filters_naming_them(site, params, field):
    response = client_for(site.clinician).get(f"{API}/treatments/", params)
    assert response.status_code == 400
    assert error_fields(response) == [field]


def test_treatment_list_runs_a_fixed_number_of_queries(site, django_assert_num_queries):
    lots = [site.lot]

    def add(n):
        # Each treatment with its own patient, practitioner and a second lot line, so a query
        # per row anywhere would show.
        for _ in range(n):
            patient = patient_create(
                actor=site.clinician,
                clinic=site.clinic,
                reference=f"P-{Patient.objects.count():04d}",
            )
            site.record(patient=patient, practitioner=practitioner_at(site.clinic), lots=lots)

    assert_list_queries_fixed(
        client_for(site.clinician), f"{API}/treatments/", add, django_assert_num_queries
    )


# ---------------------------------------------------------------------------------------------
# Adverse events


def adverse_event_body(**overrides):
    return {"onset_on": TODAY().isoformat(), "description": "Swelling at the site", **overrides}


def test_adverse_event_record_after_a_treatment(site):
    treatment = site.record()
    response = client_for(site.clinician).post(
        f"{API}/treatments/{treatment.pk}/adverse-events/",
        adverse_event_body(lot=site.lot.pk, life_threatening=True),
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["treatment"] == treatment.pk
    assert body["serious"] is True
    assert body["life_threatening"] is True
    assert body["reported_by"] == site.clinician.username


def test_adverse_event_naming_a_lot_the_treatment_did_not_use_is_refused(site, quality_manager):
    treatment = site.record()
    other_lot = released_lot(quality_manager)
    response = client_for(site.clinician).post(
        f"{API}/treatments/{treatment.pk}/adverse-events/",
        adverse_event_body(lot=other_lot.pk),
        format="json",
    )
    assert response.status_code == 400
    assert error_codes(response) == ["adverse_event_lot_not_used"]
    assert not AdverseEvent.objects.exists()


def test_adverse_event_onset_before_the_treatment_is_refused(site):
    treatment = site.record()
    response = client_for(site.clinician).post(
        f"{API}/treatments/{treatment.pk}/adverse-events/",
        adverse_event_body(onset_on=(TODAY() - datetime.timedelta(days=3)).isoformat()),
        format="json",
    )
    assert response.status_code == 400
    assert error_codes(response) == ["adverse_event_before_treatment"]


def test_adverse_event_on_another_clinics_treatment_is_not_found(site, quality_manager):
    treatment = make_site(quality_manager).record()
    response = client_for(site.clinician).post(
        f"{API}/treatments/{treatment.pk}/adverse-events/", adverse_event_body(), format="json"
    )
    assert response.status_code == 404
    assert not AdverseEvent.objects.exists()


def test_adverse_event_list_filters_and_scope(site, quality_manager):
    treatment = site.record()
    suspected = adverse_event_record(
        actor=site.clinician,
        treatment=treatment,
        onset_on=TODAY(),
        description="Fever",
        lot=site.lot,
        hospitalisation=True,
    )
    unattributed = adverse_event_record(
        actor=site.clinician, treatment=treatment, onset_on=TODAY(), description="Itch"
    )
    other = make_site(quality_manager)
    elsewhere = adverse_event_record(
        actor=other.clinician, treatment=other.record(), onset_on=TODAY(), description="Rash"
    )
    client = client_for(site.clinician)

    def ids(**params):
        response = client.get(f"{API}/adverse-events/", params)
        assert response.status_code == 200, response.content
        return {row["id"] for row in response.json()["results"]}

    assert ids() == {suspected.pk, unattributed.pk}
    # An event that names no lot belongs to every lot its treatment used.
    assert ids(lot=site.lot.pk) == {suspected.pk, unattributed.pk}
    assert ids(product=site.lot.product_id) == {suspected.pk, unattributed.pk}
    assert ids(lot=other.lot.pk) == set()
    assert ids(serious="true") == {suspected.pk}
    assert ids(serious="false") == {unattributed.pk}
    assert ids(clinic=other.clinic.pk) == set()
    row = client.get(f"{API}/adverse-events/", {"serious": "true"}).json()["results"][0]
    assert row["patient_reference"] == site.patient.reference
    assert row["clinic"]["id"] == site.clinic.pk
    all_ids = {
        row["id"]
        for row in client_for(quality_manager).get(f"{API}/adverse-events/").json()["results"]
    }
    assert elsewhere.pk in all_ids


def test_adverse_event_list_refuses_a_serious_filter_that_is_not_a_boolean(site):
    response = client_for(site.clinician).get(f"{API}/adverse-events/", {"serious": "maybe"})
    assert response.status_code == 400
    assert error_fields(response) == ["serious"]


def test_adverse_event_list_runs_a_fixed_number_of_queries(site, django_assert_num_queries):
    def add(n):
        for _ in range(n):
            patient = patient_create(
                actor=site.clinician,
                clinic=site.clinic,
                reference=f"P-{Patient.objects.count():04d}",
            )
            treatment = site.record(patient=patient)
            adverse_event_record(
                actor=site.clinician,
                treatment=treatment,
                onset_on=TODAY(),
                description="Redness",
                lot=site.lot,
            )

    assert_list_queries_fixed(
        client_for(site.clinician), f"{API}/adverse-events/", add, django_assert_num_queries
    )


# ---------------------------------------------------------------------------------------------
# Scan resolution


def resolve(user, scan: str):
    return client_for(user).post(f"{API}/scans/resolve/", {"scan": scan}, format="json")


def test_scan_resolve_of_the_raw_datamatrix_sent_as_json(quality_manager, clinician):
    lot = scanned_product_and_lot(quality_manager)
    # As JSON on the wire the GS separator is the escape \u001d.
    raw_json = json.dumps({"scan": RAW_SCAN}).encode()
    assert b"EXO-LOT-0001\\u001d21SN000123" in raw_json
    response = client_for(clinician).post(
        f"{API}/scans/resolve/", data=raw_json, content_type="application/json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["gtin"] == "09506000134352"
    assert body["lot_number"] == "EXO-LOT-0001"
    assert body["expiry"] == "2027-06-30"
    assert body["serial"] == "SN000123"
    assert body["lot"] == {
        "id": lot.pk,
        "lot_number": "EXO-LOT-0001",
        "status": "released",
        "expires_on": "2027-06-30",
        "product": {"id": lot.product.pk, "name": lot.product.name, "gtin": "09506000134352"},
    }
    # Usable through the expiry date itself.
    expired = TODAY() > datetime.date(2027, 6, 30)
    assert [w["code"] for w in body["warnings"]] == (["lot_expired"] if expired else [])
    assert body["usable"] is not expired


def test_scan_resolve_of_the_human_readable_form(quality_manager, clinician):
    lot = scanned_product_and_lot(quality_manager)
    body = resolve(clinician, HUMAN_READABLE_SCAN).json()
    assert body["lot"]["id"] == lot.pk
    assert body["serial"] == "SN000123"


def test_scan_resolve_reads_day_00_as_the_last_day_of_the_month(quality_manager, auditor):
    lot = scanned_product_and_lot(quality_manager)
    response = resolve(auditor, "(01)09506000134352(17)270600(10)EXO-LOT-0001(21)SN000123")
    assert response.status_code == 200, response.content
    assert response.json()["expiry"] == "2027-06-30"
    assert response.json()["lot"]["id"] == lot.pk


@pytest.mark.parametrize(
    ("status", "codes"),
    [
        (LotStatus.QUARANTINED, ["lot_not_released"]),
        (LotStatus.REJECTED, ["lot_not_released"]),
        (LotStatus.ON_HOLD, ["lot_on_hold"]),
        (LotStatus.RECALLED, ["lot_recalled"]),
    ],
)
def test_scan_resolve_warns_when_the_vial_must_not_be_used(
    quality_manager, clinician, status, codes
):
    lot = scanned_product_and_lot(quality_manager)
    Lot.objects.filter(pk=lot.pk).update(status=status)
    body = resolve(clinician, HUMAN_READABLE_SCAN).json()
    assert [warning["code"] for warning in body["warnings"]] == codes
    assert body["usable"] is False
    assert all(set(w) == {"code", "message", "field"} for w in body["warnings"])


def test_scan_resolve_warns_of_an_expired_lot(quality_manager, clinician):
    product = ProductFactory(gtin="09506000134352")
    yesterday = TODAY() - datetime.timedelta(days=1)
    released_lot(
        quality_manager,
        product=product,
        lot_number="OLD-1",
        manufactured_on=yesterday - datetime.timedelta(days=300),
        expires_on=yesterday,
    )
    body = resolve(clinician, "(01)09506000134352(10)OLD-1").json()
    assert [warning["code"] for warning in body["warnings"]] == ["lot_expired"]
    assert body["usable"] is False


@pytest.mark.parametrize(
    ("scan", "status", "code"),
    [
        ("not a barcode", 400, "scan_malformed"),
        ("(10)EXO-LOT-0001", 400, "scan_gtin_missing"),
        ("(01)09506000134353(10)EXO-LOT-0001", 400, "scan_gtin_invalid"),
        ("(01)09506000134352(21)SN1", 400, "scan_lot_missing"),
        ("(01)00012345600012(10)EXO-LOT-0001", 404, "scan_gtin_unknown"),
        ("(01)09506000134352(10)EXO-LOT-9999", 404, "scan_lot_unknown"),
        ("(01)09506000134352(17)270531(10)EXO-LOT-0001", 409, "scan_expiry_mismatch"),
    ],
)
def test_scan_resolve_errors_answer_with_their_status_and_code(
    quality_manager, clinician, scan, status, code
):
    scanned_product_and_lot(quality_manager)
    response = resolve(clinician, scan)
    assert response.status_code == status, response.content
    assert error_codes(response) == [code]
    assert error_fields(response) == ["scan"]


def test_scan_resolve_needs_a_scan(clinician):
    response = client_for(clinician).post(f"{API}/scans/resolve/", {}, format="json")
    assert response.status_code == 400
    assert error_codes(response) == ["required"]


def test_scan_resolve_needs_a_role(db):
    response = resolve(UserFactory(), HUMAN_READABLE_SCAN)
    assert response.status_code == 403
    assert error_codes(response) == ["no_role"]


def test_products_with_two_manufacturers_do_not_mix_lots(quality_manager, clinician):
    # The same lot number at another manufacturer is not the scanned product's lot.
    scanned_product_and_lot(quality_manager)
    other_product = ProductFactory(manufacturer=ManufacturerFactory())
    LotFactory(product=other_product, lot_number="EXO-LOT-0002", created_by=quality_manager)
    response = resolve(clinician, "(01)09506000134352(10)EXO-LOT-0002")
    assert response.status_code == 404
    assert error_codes(response) == ["scan_lot_unknown"]


def test_treatment_record_refuses_a_banned_product_scanned(quality_manager, clinic):
    lot = scanned_product_and_lot(quality_manager)
    ProductAuthorisation.objects.create(
        product=lot.product, jurisdiction="US", status=AuthorisationStatus.BANNED
    )
    site = make_site(quality_manager, clinic=clinic, lot=lot)
    body = treatment_body(site, lines=[{"scan": RAW_SCAN, "units": 1}])
    response = client_for(site.clinician).post(f"{API}/treatments/", body, format="json")
    assert response.status_code == 409
    assert error_codes(response) == ["product_not_authorised"]
    assert error_fields(response) == ["lines[0].lot"]


# ---------------------------------------------------------------------------------------------
# Gaps in the services, reported to the service owner: these fail until treatment_record and
# adverse_event_record refuse the impossible dates (DESIGN rule 9: bad input changes nothing).


def test_treatment_record_refuses_a_treatment_dated_before_its_lot_was_made(site):
    # The lot was manufactured 30 days ago (LotFactory); a treatment 200 days ago cannot have
    # used it, and a trace that showed it would mislead a recall's exposure window.
    performed = ago(days=200)
    body = treatment_body(
        site,
        performed_at=performed.isoformat(),
        consent={
            "consent_text": site.consent_text.pk,
            "taken_at": (performed - datetime.timedelta(hours=1)).isoformat(),
        },
    )
    response = client_for(site.clinician).post(f"{API}/treatments/", body, format="json")
    assert response.status_code == 409, response.content
    assert "lines[0].lot" in error_fields(response)
    assert not Treatment.objects.exists()
    assert accepted_units(site.clinic, site.lot) == 100


def test_adverse_event_onset_in_the_future_is_refused(site):
    treatment = site.record()
    response = client_for(site.clinician).post(
        f"{API}/treatments/{treatment.pk}/adverse-events/",
        adverse_event_body(onset_on=(TODAY() + datetime.timedelta(days=30)).isoformat()),
        format="json",
    )
    assert response.status_code == 400, response.content
    assert error_fields(response) == ["onset_on"]
    assert not AdverseEvent.objects.exists()
