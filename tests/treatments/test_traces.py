"""The two traces of DESIGN ("The chain that must be traceable both ways"): forward from a lot,
donor, product or manufacturer to every treatment, patient, practitioner and clinic, with the
stock on hand and adverse events; backward from a patient or treatment to every lot, donor,
marker result, QC result and certificate. Scoped by role and clinic (rule 8), and a fixed number
of queries whatever the size of the result."""

from __future__ import annotations

import dataclasses
import datetime
import hashlib

import pytest
from django.utils import timezone

from common.errors import DomainError
from lots.models import Certificate, CertificateKind, Lot, LotDonor, LotStatus
from stock.models import StockState
from tests.factories import (
    ManufacturerFactory,
    PatientFactory,
    ProductFactory,
    UserFactory,
    clinic_ready,
    lot_for_release,
    receive,
    store_certificate,
    treat,
)
from treatments.selectors import ForwardScope, trace_backward, trace_forward
from treatments.services import adverse_event_record

# reference_data: the marker panel and QC specification, even in a database a transactional test
# flushed (with --reuse-db)
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("reference_data")]

TODAY = timezone.localdate()


def released(lot):
    Lot.objects.filter(pk=lot.pk).update(status=LotStatus.RELEASED)
    lot.refresh_from_db()
    return lot


@dataclasses.dataclass
class Network:
    """Two clinics, one manufacturer with two products, three lots.

    lot1 is pooled from donors d1 and d2; d2 also went into lot2; lot3 is of another product.
    Clinic A: patient a1 got lot1 + lot2 in one treatment, patient a2 got lot1.
    Clinic B: patient b1 got lot1, then lot3.
    """

    a: object
    b: object
    lot1: object
    lot2: object
    lot3: object
    d1: object
    d2: object
    a1_treatment: object
    a2_treatment: object
    b1_treatment: object
    b1_later: object
    event_a1: object
    event_b1: object


@pytest.fixture
def network(quality_manager) -> Network:
    manufacturer = ManufacturerFactory()
    serum = ProductFactory(manufacturer=manufacturer)
    cream = ProductFactory(manufacturer=manufacturer)
    lot1 = released(lot_for_release(quality_manager=quality_manager, product=serum, donors=2))
    d1, d2 = lot1.donors.order_by("pk")
    lot2 = released(lot_for_release(quality_manager=quality_manager, product=serum, donors=0))
    LotDonor.objects.create(lot=lot2, donor=d2)
    lot3 = released(lot_for_release(quality_manager=quality_manager, product=cream))
    a, b = clinic_ready(), clinic_ready()
    for ready in (a, b):
        for lot in (lot1, lot2, lot3):
            receive(ready, lot, 10)
    a2 = PatientFactory(clinic=a.clinic)
    a1_treatment = treat(a, [lot1, lot2], 2)
    a2_treatment = treat(a, lot1, 1, patient=a2)
    b1_treatment = treat(b, lot1, 3)
    b1_later = treat(b, lot3, 1)
    event_a1 = adverse_event_record(
        actor=a.clinician,
        treatment=a1_treatment,
        lot=lot1,
        onset_on=TODAY,
        description="Swelling",
        hospitalisation=True,
    )
    event_b1 = adverse_event_record(
        actor=b.clinician, treatment=b1_treatment, onset_on=TODAY, description="Fever"
    )
    return Network(
        a=a,
        b=b,
        lot1=lot1,
        lot2=lot2,
        lot3=lot3,
        d1=d1,
        d2=d2,
        a1_treatment=a1_treatment,
        a2_treatment=a2_treatment,
        b1_treatment=b1_treatment,
        b1_later=b1_later,
        event_a1=event_a1,
        event_b1=event_b1,
    )


def line_rows(trace):
    """What a reader of the forward trace sees per line."""
    return sorted(
        (
            line.lot.lot_number,
            line.treatment_id,
            line.treatment.clinic.name,
            line.treatment.patient.reference,
            line.treatment.practitioner.name,
            line.units,
        )
        for line in trace.lines
    )


def row(lot, treatment, units):
    return (
        lot.lot_number,
        treatment.pk,
        treatment.clinic.name,
        treatment.patient.reference,
        treatment.practitioner.name,
        units,
    )


def stock_rows(trace):
    return sorted((b.clinic.name, b.lot.lot_number, b.state, b.quantity) for b in trace.stock)


# ---------------------------------------------------------------------------------------------
# Forward


def test_trace_forward_from_a_lot_finds_every_treatment_patient_practitioner_and_clinic(
    network, auditor
):
    n = network

    trace = trace_forward(user=auditor, scope=ForwardScope(lot_ids=[n.lot1.pk]))

    assert [lot.pk for lot in trace.lots] == [n.lot1.pk]
    assert line_rows(trace) == sorted(
        [
            row(n.lot1, n.a1_treatment, 2),
            row(n.lot1, n.a2_treatment, 1),
            row(n.lot1, n.b1_treatment, 3),
        ]
    )
    # the rest of the lot, clinic by clinic
    assert stock_rows(trace) == sorted(
        [
            (n.a.clinic.name, n.lot1.lot_number, StockState.ACCEPTED, 10 - 2 - 1),
            (n.b.clinic.name, n.lot1.lot_number, StockState.ACCEPTED, 10 - 3),
        ]
    )
    # the event suspected of lot1, and the event with no suspected lot after a treatment with it
    assert {event.pk for event in trace.adverse_events} == {n.event_a1.pk, n.event_b1.pk}


def test_trace_forward_from_a_donor_of_a_pooled_lot(network, auditor):
    n = network

    trace = trace_forward(user=auditor, scope=ForwardScope(donor_id=n.d1.pk))

    assert [lot.pk for lot in trace.lots] == [n.lot1.pk]
    assert {line.treatment_id for line in trace.lines} == {
        n.a1_treatment.pk,
        n.a2_treatment.pk,
        n.b1_treatment.pk,
    }


def test_trace_forward_from_a_donor_in_two_lots_follows_both(network, auditor):
    n = network

    trace = trace_forward(user=auditor, scope=ForwardScope(donor_id=n.d2.pk))

    assert sorted(lot.pk for lot in trace.lots) == sorted([n.lot1.pk, n.lot2.pk])
    assert line_rows(trace) == sorted(
        [
            row(n.lot1, n.a1_treatment, 2),
            row(n.lot2, n.a1_treatment, 2),
            row(n.lot1, n.a2_treatment, 1),
            row(n.lot1, n.b1_treatment, 3),
        ]
    )
    assert {(b.clinic_id, b.lot_id) for b in trace.stock} == {
        (n.a.clinic.pk, n.lot1.pk),
        (n.a.clinic.pk, n.lot2.pk),
        (n.b.clinic.pk, n.lot1.pk),
        (n.b.clinic.pk, n.lot2.pk),
    }


def test_trace_forward_from_a_product(network, auditor):
    n = network

    trace = trace_forward(user=auditor, scope=ForwardScope(product_id=n.lot3.product_id))

    assert [lot.pk for lot in trace.lots] == [n.lot3.pk]
    assert line_rows(trace) == [row(n.lot3, n.b1_later, 1)]
    assert list(trace.adverse_events) == []


def test_trace_forward_from_a_manufacturer_within_manufacture_dates(quality_manager, auditor):
    # given three lots of one manufacturer made in January, February and March, and one lot of
    # another manufacturer made in February
    product = ProductFactory()
    made = {
        month: released(
            lot_for_release(
                quality_manager=quality_manager,
                product=product,
                manufactured_on=datetime.date(2026, month, 15),
                expires_on=TODAY + datetime.timedelta(days=300),
            )
        )
        for month in (1, 2, 3)
    }
    stranger = released(
        lot_for_release(
            quality_manager=quality_manager,
            manufactured_on=datetime.date(2026, 2, 15),
            expires_on=TODAY + datetime.timedelta(days=300),
        )
    )
    ready = clinic_ready()
    treated = {}
    for lot in [*made.values(), stranger]:
        receive(ready, lot, 2)
        treated[lot.pk] = treat(ready, lot)

    # when tracing the manufacturer's lots made from 1 February to 31 March
    trace = trace_forward(
        user=auditor,
        scope=ForwardScope(
            manufacturer_id=product.manufacturer_id,
            manufactured_from=datetime.date(2026, 2, 1),
            manufactured_to=datetime.date(2026, 3, 31),
        ),
    )

    # then February and March are in, January and the other manufacturer out
    assert sorted(lot.pk for lot in trace.lots) == sorted([made[2].pk, made[3].pk])
    assert sorted(line.treatment_id for line in trace.lines) == sorted(
        [treated[made[2].pk].pk, treated[made[3].pk].pk]
    )
    assert {b.lot_id for b in trace.stock} == {made[2].pk, made[3].pk}


def test_trace_forward_needs_a_starting_point(auditor):
    with pytest.raises(DomainError) as caught:
        trace_forward(user=auditor, scope=ForwardScope(manufactured_from=TODAY))

    assert caught.value.codes == ["trace_scope_missing"]
    assert caught.value.status == 400


def test_a_clinician_traces_forward_only_within_the_own_clinic(network):
    n = network

    trace = trace_forward(user=n.a.clinician, scope=ForwardScope(lot_ids=[n.lot1.pk]))

    assert line_rows(trace) == sorted(
        [row(n.lot1, n.a1_treatment, 2), row(n.lot1, n.a2_treatment, 1)]
    )
    assert {b.clinic_id for b in trace.stock} == {n.a.clinic.pk}
    assert [event.pk for event in trace.adverse_events] == [n.event_a1.pk]
    # and clinic B's clinician sees B's part only
    other = trace_forward(user=n.b.clinician, scope=ForwardScope(lot_ids=[n.lot1.pk]))
    assert line_rows(other) == [row(n.lot1, n.b1_treatment, 3)]
    assert [event.pk for event in other.adverse_events] == [n.event_b1.pk]


def test_network_roles_trace_forward_across_every_clinic(network, auditor, quality_manager):
    n = network
    for user in (auditor, quality_manager):
        trace = trace_forward(user=user, scope=ForwardScope(lot_ids=[n.lot1.pk]))
        assert {line.treatment.clinic_id for line in trace.lines} == {
            n.a.clinic.pk,
            n.b.clinic.pk,
        }


def test_a_user_without_a_role_sees_nothing(network):
    trace = trace_forward(user=UserFactory(), scope=ForwardScope(lot_ids=[network.lot1.pk]))

    assert (list(trace.lines), list(trace.stock), list(trace.adverse_events)) == ([], [], [])


# ---------------------------------------------------------------------------------------------
# Backward


def superseding(old: Certificate, *, number: str, uploaded_by) -> Certificate:
    """A new version of a manufacturer certificate (certificates are immutable once stored)."""
    sha256 = hashlib.sha256(number.encode()).hexdigest()
    certificate = Certificate(
        kind=old.kind,
        manufacturer=old.manufacturer,
        issuer=old.issuer,
        number=number,
        valid_from=TODAY - datetime.timedelta(days=10),
        valid_until=TODAY + datetime.timedelta(days=700),
        sha256=sha256,
        size_bytes=10,
        supersedes=old,
        uploaded_by=uploaded_by,
        uploaded_at=timezone.now(),
    )
    certificate.file.name = f"certificates/{sha256[:2]}/{sha256}.pdf"
    certificate.save()
    return certificate


def test_trace_backward_from_a_patient_reaches_lots_donors_tests_and_certificates(
    network, auditor, quality_manager
):
    # given the manufacturer's GMP certificate renewed (the old version superseded) and an
    # ISO 13485 certificate on file
    n = network
    manufacturer = n.lot1.manufacturer
    old_gmp = Certificate.objects.get(
        manufacturer=manufacturer,
        kind=CertificateKind.GMP,
        number=f"GMP-{manufacturer.pk}-{n.lot1.pk}",
    )
    new_gmp = superseding(old_gmp, number="GMP-RENEWED", uploaded_by=quality_manager)
    iso = store_certificate(
        kind=CertificateKind.ISO_13485,
        manufacturer=manufacturer,
        uploaded_by=quality_manager,
        valid_until=TODAY + datetime.timedelta(days=365),
        number="ISO-1",
    )

    # when tracing back from patient a1
    trace = trace_backward(user=auditor, patient_id=n.a.patient.pk)

    # then the one treatment and both of its lots
    assert [t.pk for t in trace.treatments] == [n.a1_treatment.pk]
    assert [e.pk for e in trace.treatments[0].adverse_events.all()] == [n.event_a1.pk]
    assert [lot.pk for lot in trace.lots] == sorted([n.lot1.pk, n.lot2.pk])
    lot1, lot2 = trace.lots if trace.lots[0].pk == n.lot1.pk else reversed(trace.lots)
    # lot1's two donors, each with a full, non-reactive marker panel
    assert [d.pk for d in lot1.donors.all()] == sorted([n.d1.pk, n.d2.pk])
    for donor in lot1.donors.all():
        results = donor.marker_results.all()
        assert len(results) == 9  # the adipose panel of 21 CFR 1271.85
        assert {r.result for r in results} == {"non_reactive"}
    assert [d.pk for d in lot2.donors.all()] == [n.d2.pk]
    # the lot's QC results and its certificate of analysis
    assert len(lot1.qc_results.all()) == 8
    assert [c.kind for c in lot1.certificates.all()] == [CertificateKind.COA]
    assert lot1.certificates.all()[0].number == f"COA-{n.lot1.lot_number}"
    # and the manufacturer's current GMP and ISO 13485 certificates, not the superseded one
    current = {c.pk for c in lot1.manufacturer.quality_certificates}
    assert new_gmp.pk in current
    assert iso.pk in current
    assert old_gmp.pk not in current
    assert {c.kind for c in lot1.manufacturer.quality_certificates} == {
        CertificateKind.GMP,
        CertificateKind.ISO_13485,
    }


def test_trace_backward_from_a_treatment(network, auditor):
    n = network

    trace = trace_backward(user=auditor, treatment_id=n.b1_later.pk)

    assert [t.pk for t in trace.treatments] == [n.b1_later.pk]
    assert [lot.pk for lot in trace.lots] == [n.lot3.pk]


def test_trace_backward_from_a_patient_with_several_treatments(network, auditor):
    n = network
    b1 = n.b.patient

    trace = trace_backward(user=auditor, patient_id=b1.pk)

    assert [t.pk for t in trace.treatments] == [n.b1_treatment.pk, n.b1_later.pk]
    assert [lot.pk for lot in trace.lots] == sorted([n.lot1.pk, n.lot3.pk])


def test_a_clinic_cannot_trace_back_another_clinics_patient(network):
    n = network

    trace = trace_backward(user=n.b.clinician, patient_id=n.a.patient.pk)

    assert (trace.treatments, trace.lots) == ([], [])
    assert trace_backward(user=n.a.clinician, patient_id=n.a.patient.pk).treatments == [
        n.a1_treatment
    ]


def test_trace_backward_needs_a_starting_point(auditor):
    with pytest.raises(DomainError) as caught:
        trace_backward(user=auditor)

    assert caught.value.codes == ["trace_scope_missing"]


# ---------------------------------------------------------------------------------------------
# Query counts: the same for one treatment and for thirty


def walk_forward(trace) -> int:
    """Touch everything a forward-trace page or export shows; return how many values."""
    values = []
    for lot in trace.lots:
        values += [lot.lot_number, lot.product.name, lot.manufacturer.legal_name]
    for line in trace.lines:
        treatment = line.treatment
        values += [
            line.units,
            line.lot.lot_number,
            line.lot.product.name,
            treatment.performed_at,
            treatment.indication,
            treatment.route,
            treatment.clinic.name,
            treatment.patient.reference,
            treatment.practitioner.name,
        ]
    for balance in trace.stock:
        values += [balance.clinic.name, balance.lot.lot_number, balance.state, balance.quantity]
    for event in trace.adverse_events:
        values += [
            event.onset_on,
            event.is_serious,
            event.treatment.clinic.name,
            event.treatment.patient.reference,
            event.lot.lot_number if event.lot else None,
        ]
    return len(values)


def walk_backward(trace) -> int:
    values = []
    for treatment in trace.treatments:
        values += [
            treatment.performed_at,
            treatment.clinic.name,
            treatment.patient.reference,
            treatment.practitioner.name,
        ]
        for line in treatment.lines.all():
            values += [line.units, line.lot.lot_number, line.lot.product.name]
        for event in treatment.adverse_events.all():
            values += [event.onset_on, event.lot.lot_number if event.lot else None]
    for lot in trace.lots:
        values += [lot.lot_number, lot.product.name, lot.manufacturer.legal_name]
        values += [lot.product.manufacturer.legal_name]
        for donor in lot.donors.all():
            values.append(donor.code)
            for result in donor.marker_results.all():
                values += [result.marker.code, result.result]
        for qc in lot.qc_results.all():
            values += [qc.test.code, qc.numeric_value, qc.outcome]
        for certificate in lot.certificates.all():
            values += [certificate.number, certificate.sha256]
        for certificate in lot.manufacturer.quality_certificates:
            values += [certificate.kind, certificate.number, certificate.valid_until]
    return len(values)


@dataclasses.dataclass
class Sized:
    manufacturer_id: int
    patient_id: int
    clinician: object


def build(quality_manager, *, treatments: int, lots: int) -> Sized:
    """`treatments` treatments of one patient at clinic A across `lots` lots (pooled from two
    donors each), a few more at clinic B, stock left at both, and an adverse event per lot."""
    product = ProductFactory()
    made = [
        released(lot_for_release(quality_manager=quality_manager, product=product, donors=2))
        for _ in range(lots)
    ]
    a, b = clinic_ready(), clinic_ready()
    for lot in made:
        receive(a, lot, treatments + 5)
        receive(b, lot, 5)
    recorded = [treat(a, made[index % lots]) for index in range(treatments)]
    for index in range(treatments // 10):
        treat(b, made[index % lots])
    for index, lot in enumerate(made):
        adverse_event_record(
            actor=a.clinician,
            treatment=recorded[index],
            lot=lot,
            onset_on=TODAY,
            description="Redness",
        )
    return Sized(product.manufacturer_id, a.patient.pk, a.clinician)


# the user's clinics, lots, lines (then their lots, products, clinics, practitioners), stock, events
FORWARD_QUERIES = 9
BACKWARD_QUERIES = 10  # clinics, treatments, lines, events, lots, donors, markers, QC, CoA, GMP


@pytest.mark.parametrize(("treatments", "lots"), [(1, 1), (30, 3)])
def test_trace_forward_runs_a_fixed_number_of_queries(
    quality_manager, auditor, django_assert_num_queries, treatments, lots
):
    sized = build(quality_manager, treatments=treatments, lots=lots)
    scope = ForwardScope(manufacturer_id=sized.manufacturer_id)

    # the whole network, as the auditor sees it
    with django_assert_num_queries(FORWARD_QUERIES):
        trace = trace_forward(user=auditor, scope=scope)
        assert walk_forward(trace) > 0
    assert len(trace.lines) == treatments + treatments // 10

    # one clinic's part, as its clinician sees it
    with django_assert_num_queries(FORWARD_QUERIES):
        trace = trace_forward(user=sized.clinician, scope=scope)
        assert walk_forward(trace) > 0
    assert len(trace.lines) == treatments


@pytest.mark.parametrize(("treatments", "lots"), [(1, 1), (30, 3)])
def test_trace_backward_runs_a_fixed_number_of_queries(
    quality_manager, auditor, django_assert_num_queries, treatments, lots
):
    sized = build(quality_manager, treatments=treatments, lots=lots)

    with django_assert_num_queries(BACKWARD_QUERIES):
        trace = trace_backward(user=auditor, patient_id=sized.patient_id)
        assert walk_backward(trace) > 0

    assert len(trace.treatments) == treatments
    assert len(trace.lots) == lots
