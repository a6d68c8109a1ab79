"""The clinical gate (DESIGN rule 2): `treatment_record` refuses with a code for every unmet rule,
lists all of them at once, and a refusal changes nothing. Each refusal is shown both ways: refused
with its code, and recorded once the one thing wrong is put right."""

from __future__ import annotations

import dataclasses
import datetime

import pytest
from django.utils import timezone

from common.errors import DomainError
from lots.models import (
    AuthorisationStatus,
    Lot,
    LotStatus,
    ProductAuthorisation,
    RegulatoryBasis,
    RestrictionScope,
    Route,
    SourceKind,
    SourceRestriction,
)
from lots.services import lot_release
from providers.models import ClinicPractitioner, Role
from stock.models import MovementKind, StockBalance, StockMovement, StockState
from stock.selectors import stock_balances_disagreeing
from stock.services import stock_quarantine_resolve
from tests.factories import (
    PASSWORD,
    SEC_FIELDS,
    ClinicPractitionerFactory,
    ConsentTextFactory,
    LicenceFactory,
    MembershipFactory,
    PatientFactory,
    PractitionerFactory,
    ProductFactory,
    clinic_ready,
    practitioner_at,
    receive,
    releasable_lot,
    released_lot,
    treat,
)
from treatments.models import AdverseEvent, Patient, PatientContact, Treatment, TreatmentLine
from treatments.services import (
    ConsentRequest,
    adverse_event_record,
    patient_create,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("reference_data")]


@pytest.fixture
def ready():
    return clinic_ready()


@pytest.fixture
def lot(ready):
    """A released lot with 10 accepted units at the clinic."""
    lot = released_lot()
    receive(ready, lot, 10)
    return lot


def today() -> datetime.date:
    return timezone.localdate()


def at_noon(day: datetime.date) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(12), tzinfo=datetime.UTC)


def set_status(lot, status: str) -> None:
    # Recalls and holds are other services' work; here only the lot's status matters.
    Lot.objects.filter(pk=lot.pk).update(status=status)


def snapshot():
    return (
        Treatment.objects.count(),
        TreatmentLine.objects.count(),
        StockMovement.objects.count(),
        AdverseEvent.objects.count(),
        sorted(StockBalance.objects.values_list("clinic_id", "lot_id", "state", "quantity")),
    )


def refused(call) -> DomainError:
    """Run `call`, expecting a refusal; prove nothing was written."""
    before = snapshot()
    with pytest.raises(DomainError) as caught:
        call()
    assert snapshot() == before
    assert stock_balances_disagreeing() == []
    return caught.value


def accepted(ready, lot) -> int:
    return StockBalance.objects.get(
        clinic=ready.clinic, lot=lot, state=StockState.ACCEPTED
    ).quantity


# ---------------------------------------------------------------------------------------------
# A treatment that meets every rule


def test_treatment_record_draws_the_units_from_the_clinics_accepted_stock(ready, lot):
    # when 3 units of a released lot are used
    treatment = treat(ready, lot, 3)

    # then the treatment has one line, the ledger has one treatment movement tied to the line,
    # and the balance went from 10 to 7 in agreement with the ledger
    line = treatment.lines.get()
    assert (line.lot_id, line.units) == (lot.pk, 3)
    movement = StockMovement.objects.get(kind=MovementKind.TREATMENT)
    assert (movement.clinic_id, movement.lot_id, movement.state, movement.delta) == (
        ready.clinic.pk,
        lot.pk,
        StockState.ACCEPTED,
        -3,
    )
    assert line.stock_movement_id == movement.pk
    assert movement.occurred_at == treatment.performed_at
    assert accepted(ready, lot) == 7
    assert treatment.recorded_by == ready.clinician
    assert stock_balances_disagreeing() == []


def test_treatment_record_uses_several_lots_in_one_treatment(ready, lot):
    second = released_lot()
    receive(ready, second, 4)

    treatment = treat(ready, [lot, second], 2)

    assert sorted(treatment.lines.values_list("lot_id", "units")) == sorted(
        [(lot.pk, 2), (second.pk, 2)]
    )
    assert (accepted(ready, lot), accepted(ready, second)) == (8, 2)
    assert StockMovement.objects.filter(kind=MovementKind.TREATMENT).count() == 2
    assert stock_balances_disagreeing() == []


def test_treatment_record_may_use_the_last_unit(ready, lot):
    treat(ready, lot, 10)

    assert accepted(ready, lot) == 0


def test_a_clinic_administrator_may_record_a_treatment(ready, lot):
    treatment = treat(ready, lot, actor=ready.administrator)

    assert treatment.recorded_by == ready.administrator


# ---------------------------------------------------------------------------------------------
# The lot: released, not recalled or on hold, not expired on the treatment date


@pytest.mark.parametrize("status", [LotStatus.QUARANTINED, LotStatus.REJECTED])
def test_treatment_record_refuses_a_lot_that_is_not_released(ready, lot, status):
    # given accepted stock of a lot that is not (or no longer) released
    set_status(lot, status)

    # when it is used, the treatment is refused and nothing is written
    error = refused(lambda: treat(ready, lot))
    assert error.codes == ["lot_not_released"]
    assert error.status == 409
    assert error.problems[0].field == "lines[0].lot"
    assert lot.lot_number in error.problems[0].message

    # and once released, the same treatment is recorded
    set_status(lot, LotStatus.RELEASED)
    assert treat(ready, lot).lines.count() == 1


def test_treatment_record_refuses_a_recalled_lot(ready, lot):
    set_status(lot, LotStatus.RECALLED)

    error = refused(lambda: treat(ready, lot))

    assert error.codes == ["lot_recalled"]
    assert "do not use it" in error.problems[0].message
    set_status(lot, LotStatus.RELEASED)
    treat(ready, lot)


def test_treatment_record_refuses_a_lot_on_hold(ready, lot):
    set_status(lot, LotStatus.ON_HOLD)

    error = refused(lambda: treat(ready, lot))

    assert error.codes == ["lot_on_hold"]
    set_status(lot, LotStatus.RELEASED)
    treat(ready, lot)


def test_treatment_record_refuses_a_lot_expired_on_the_treatment_date(ready):
    # given a lot that expired yesterday, still in stock
    lot = released_lot(expires_on=today() - datetime.timedelta(days=1))
    receive(ready, lot, 5)

    # when it is used today, the treatment is refused
    error = refused(lambda: treat(ready, lot))
    assert error.codes == ["lot_expired"]
    assert lot.expires_on.isoformat() in error.problems[0].message

    # but a treatment performed yesterday (recorded late) was within the expiry date
    treatment = treat(ready, lot, performed_at=at_noon(lot.expires_on))
    assert treatment.lines.get().lot_id == lot.pk


def test_expiry_is_judged_on_the_date_the_treatment_was_performed(ready):
    # given a lot whose last usable day was yesterday
    yesterday = today() - datetime.timedelta(days=1)
    lot = released_lot(expires_on=yesterday)
    receive(ready, lot, 5)
    end_of_expiry_day = datetime.datetime.combine(
        yesterday, datetime.time(23, 59), tzinfo=datetime.UTC
    )

    # then a minute before midnight on the expiry date it is usable, a minute after it is not
    treat(ready, lot, performed_at=end_of_expiry_day)
    error = refused(
        lambda: treat(ready, lot, performed_at=end_of_expiry_day + datetime.timedelta(minutes=2))
    )
    assert error.codes == ["lot_expired"]


def test_treatment_record_allows_a_lot_on_its_expiry_date(ready):
    lot = released_lot(expires_on=today())
    receive(ready, lot, 5)

    treat(ready, lot)

    assert accepted(ready, lot) == 4


def test_treatment_record_refuses_a_treatment_dated_before_the_lot_was_made(ready, lot):
    # given a lot made 30 days ago (LotFactory), and a treatment dated 31 days ago
    before = at_noon(lot.manufactured_on - datetime.timedelta(days=1))

    error = refused(lambda: treat(ready, lot, performed_at=before))

    assert error.codes == ["treatment_before_lot_made"]
    assert error.problems[0].field == "lines[0].lot"
    # on the day it was made it is possible
    treat(ready, lot, performed_at=at_noon(lot.manufactured_on))


@pytest.mark.parametrize("days_before", [1, 2, 20])
def test_treatment_record_refuses_a_use_dated_before_a_retrospective_release_took_effect(
    ready, lot, days_before
):
    # given a lot whose release was entered with effect from ten days ago
    effective_day = today() - datetime.timedelta(days=10)
    Lot.objects.filter(pk=lot.pk).update(
        release_effective_at=datetime.datetime.combine(
            effective_day, datetime.time.min, tzinfo=datetime.UTC
        )
    )
    lot.refresh_from_db()

    # a treatment dated before that day is refused, naming the line and the day
    error = refused(
        lambda: treat(
            ready,
            lot,
            performed_at=at_noon(effective_day - datetime.timedelta(days=days_before)),
        )
    )
    assert error.codes == ["treatment_before_release"]
    assert error.problems[0].field == "lines[0].lot"
    assert effective_day.isoformat() in error.problems[0].message

    # from the effective day on, it is possible
    treat(ready, lot, performed_at=at_noon(effective_day))
    treat(ready, lot, performed_at=at_noon(effective_day + datetime.timedelta(days=1)))
    assert accepted(ready, lot) == 8


def test_a_lot_released_now_has_no_effective_day_to_precede(ready, lot):
    # a release signed today without a stated date holds from its signature; the factory's lot
    # carries none, and a treatment dated before today is judged only on expiry and manufacture
    assert lot.release_effective_at is None

    treat(ready, lot, performed_at=at_noon(lot.manufactured_on + datetime.timedelta(days=1)))

    assert accepted(ready, lot) == 9


def test_a_clinic_requiring_the_sec_refuses_a_human_lot_without_one_and_changes_nothing():
    ready = clinic_ready(jurisdiction="DE")
    ready.clinic.requires_sec = True
    ready.clinic.save(update_fields=["requires_sec"])
    uncoded = released_lot()
    assert uncoded.product.is_human_derived
    receive(ready, uncoded, 5)

    error = refused(lambda: treat(ready, uncoded))

    assert error.codes == ["lot_sec_missing"]
    assert error.problems[0].field == "lines[0].lot"


def test_a_clinic_requiring_the_sec_accepts_a_coded_human_lot_and_a_synthetic_one():
    ready = clinic_ready(jurisdiction="DE")
    ready.clinic.requires_sec = True
    ready.clinic.save(update_fields=["requires_sec"])
    coded = released_lot(**SEC_FIELDS)
    synthetic = released_lot(product=ProductFactory(source_kind=SourceKind.SYNTHETIC, tissue=""))
    for lot in (coded, synthetic):
        receive(ready, lot, 5)

    treat(ready, [coded, synthetic], 2)

    assert (accepted(ready, coded), accepted(ready, synthetic)) == (3, 3)


def test_a_clinic_not_requiring_the_sec_accepts_a_human_lot_without_one(ready, lot):
    assert not ready.clinic.requires_sec and lot.sec is None

    treat(ready, lot)

    assert accepted(ready, lot) == 9


# ---------------------------------------------------------------------------------------------
# Stock: only the clinic's own accepted units count


def test_treatment_record_refuses_a_lot_the_clinic_has_no_stock_of(ready):
    lot = released_lot()

    error = refused(lambda: treat(ready, lot))

    assert error.codes == ["stock_insufficient"]
    assert error.problems[0].field == "lines[0].units"
    assert "0 accepted unit(s)" in error.problems[0].message
    receive(ready, lot, 1)
    treat(ready, lot)
    assert accepted(ready, lot) == 0


def test_accepted_stock_at_another_clinic_does_not_count(ready):
    # given 10 accepted units at another clinic and none here
    lot = released_lot()
    elsewhere = clinic_ready()
    receive(elsewhere, lot, 10)

    # when this clinic uses the lot, it is refused, and the other clinic's stock is untouched
    error = refused(lambda: treat(ready, lot))
    assert error.codes == ["stock_insufficient"]
    assert accepted(elsewhere, lot) == 10


def test_quarantined_stock_does_not_count_until_accepted(ready):
    # given 5 units in the clinic's quarantine
    lot = released_lot()
    receive(ready, lot, 5, decision="quarantine")

    # then they cannot be used
    error = refused(lambda: treat(ready, lot))
    assert error.codes == ["stock_insufficient"]

    # until the clinic accepts them out of quarantine
    stock_quarantine_resolve(
        actor=ready.administrator,
        clinic=ready.clinic,
        lot=lot,
        quantity=5,
        accept=True,
        reason="Temperature log reviewed",
    )
    treat(ready, lot)
    assert accepted(ready, lot) == 4


def test_treatment_record_refuses_more_units_than_are_in_stock(ready, lot):
    error = refused(lambda: treat(ready, lot, 11))

    assert error.codes == ["stock_insufficient"]
    assert "10 accepted unit(s)" in error.problems[0].message
    treat(ready, lot, 10)
    assert accepted(ready, lot) == 0
    assert refused(lambda: treat(ready, lot, 1)).codes == ["stock_insufficient"]


# ---------------------------------------------------------------------------------------------
# The practitioner: a member of the clinic, licensed there on the treatment date


def test_treatment_record_refuses_a_practitioner_who_does_not_practise_at_the_clinic(ready, lot):
    # given a practitioner licensed in Texas who practises at another clinic only
    outsider = PractitionerFactory()
    LicenceFactory(practitioner=outsider, jurisdiction="US-TX")
    ClinicPractitionerFactory(practitioner=outsider)
    by_outsider = dataclasses.replace(ready, practitioner=outsider)

    error = refused(lambda: treat(by_outsider, lot))
    assert error.codes == ["practitioner_not_member"]
    assert error.problems[0].field == "practitioner"

    # once they practise here, they may treat
    ClinicPractitionerFactory(clinic=ready.clinic, practitioner=outsider)
    treat(by_outsider, lot)


def test_an_inactive_clinic_link_does_not_make_a_member(ready, lot):
    ClinicPractitioner.objects.filter(practitioner=ready.practitioner).update(active=False)

    assert refused(lambda: treat(ready, lot)).codes == ["practitioner_not_member"]

    ClinicPractitioner.objects.filter(practitioner=ready.practitioner).update(active=True)
    treat(ready, lot)


def test_treatment_record_refuses_a_practitioner_whose_licence_expired(ready, lot):
    # given a member practitioner whose only licence ended yesterday
    lapsed = practitioner_at(
        ready.clinic,
        valid_from=today() - datetime.timedelta(days=400),
        valid_until=today() - datetime.timedelta(days=1),
    )
    by_lapsed = dataclasses.replace(ready, practitioner=lapsed)

    error = refused(lambda: treat(by_lapsed, lot))
    assert error.codes == ["practitioner_not_licensed"]
    assert "US-TX" in error.problems[0].message

    # a treatment performed while the licence was valid is fine
    treat(by_lapsed, lot, performed_at=at_noon(today() - datetime.timedelta(days=2)))

    # and a renewed licence lets them treat today
    LicenceFactory(practitioner=lapsed, jurisdiction="US-TX")
    treat(by_lapsed, lot)


def test_treatment_record_refuses_a_licence_that_is_not_yet_valid(ready, lot):
    early = practitioner_at(
        ready.clinic,
        valid_from=today() + datetime.timedelta(days=1),
        valid_until=today() + datetime.timedelta(days=365),
    )

    error = refused(lambda: treat(dataclasses.replace(ready, practitioner=early), lot))

    assert error.codes == ["practitioner_not_licensed"]


def test_a_licence_from_another_jurisdiction_does_not_count(ready, lot):
    # given a member practitioner licensed in California, treating in Texas
    californian = practitioner_at(ready.clinic, jurisdiction="US-CA")
    by_californian = dataclasses.replace(ready, practitioner=californian)

    assert refused(lambda: treat(by_californian, lot)).codes == ["practitioner_not_licensed"]

    LicenceFactory(practitioner=californian, jurisdiction="US-TX")
    treat(by_californian, lot)


def test_a_country_level_licence_is_valid_in_each_of_its_subdivisions(ready, lot):
    national = practitioner_at(ready.clinic, jurisdiction="US")

    treatment = treat(dataclasses.replace(ready, practitioner=national), lot)

    assert treatment.practitioner == national


# ---------------------------------------------------------------------------------------------
# The product: authorised where the clinic is, for this use and this route


def test_treatment_record_refuses_a_product_banned_in_the_clinics_jurisdiction(ready, lot):
    ban = ProductAuthorisation.objects.create(
        product=lot.product, jurisdiction="US-TX", status=AuthorisationStatus.BANNED
    )

    error = refused(lambda: treat(ready, lot))
    assert error.codes == ["product_not_authorised"]
    assert "US-TX" in error.problems[0].message

    ban.status = AuthorisationStatus.ALLOWED
    ban.save()
    treat(ready, lot)


def test_a_ban_in_the_clinics_country_covers_its_subdivisions(ready, lot):
    ProductAuthorisation.objects.create(
        product=lot.product, jurisdiction="US", status=AuthorisationStatus.BANNED
    )

    assert refused(lambda: treat(ready, lot)).codes == ["product_not_authorised"]


def test_a_ban_in_another_jurisdiction_does_not_apply(ready, lot):
    ProductAuthorisation.objects.create(
        product=lot.product, jurisdiction="US-CA", status=AuthorisationStatus.BANNED
    )
    ProductAuthorisation.objects.create(
        product=lot.product, jurisdiction="DE", status=AuthorisationStatus.BANNED
    )

    treat(ready, lot)


@pytest.fixture
def german(db):
    """A clinic in Germany, where human-derived material is banned in cosmetics."""
    ready = clinic_ready(jurisdiction="DE")
    SourceRestriction.objects.create(
        jurisdiction="DE", source_kind=SourceKind.HUMAN, scope=RestrictionScope.COSMETIC_USES
    )
    return ready


@pytest.mark.parametrize("indication", ["skin_rejuvenation", "hair"])
def test_a_cosmetic_ban_on_human_material_refuses_cosmetic_uses(german, indication):
    lot = released_lot()
    receive(german, lot, 5)

    error = refused(lambda: treat(german, lot, indication=indication))

    assert error.codes == ["product_not_authorised"]
    assert "DE forbids human-derived products for cosmetic use" in error.problems[0].message


def test_a_cosmetic_ban_on_human_material_allows_wound_care(german):
    lot = released_lot()
    receive(german, lot, 5)

    treatment = treat(german, lot, indication="wound")

    assert treatment.indication == "wound"


def test_a_cosmetic_ban_on_human_material_does_not_touch_a_synthetic_product(german):
    lot = released_lot(product=ProductFactory(source_kind=SourceKind.SYNTHETIC, tissue=""))
    receive(german, lot, 5)

    treat(german, lot, indication="skin_rejuvenation")


def test_a_ban_on_all_uses_refuses_every_indication(german):
    SourceRestriction.objects.filter(jurisdiction="DE").update(scope=RestrictionScope.ALL_USES)
    lot = released_lot()
    receive(german, lot, 5)

    for indication in ("wound", "orthopaedic", "skin_rejuvenation"):
        error = refused(lambda indication=indication: treat(german, lot, indication=indication))
        assert error.codes == ["product_not_authorised"]


def test_an_investigational_product_needs_a_lot_under_an_ind(ready):
    # given a product that in the US may only be used under an IND
    product = ProductFactory()
    ProductAuthorisation.objects.create(
        product=product, jurisdiction="US", status=AuthorisationStatus.INVESTIGATIONAL
    )
    unapproved = released_lot(
        product=product, regulatory_basis=RegulatoryBasis.NONE, regulatory_number=""
    )
    under_ind = released_lot(product=product)
    receive(ready, unapproved, 5)
    receive(ready, under_ind, 5)

    # then a lot without an IND is refused, and the lot under an IND is used
    error = refused(lambda: treat(ready, unapproved))
    assert error.codes == ["product_investigational_only"]
    treat(ready, under_ind)


def test_treatment_record_refuses_a_route_the_product_is_not_for(ready, lot):
    error = refused(lambda: treat(ready, lot, route=Route.INJECTION))

    assert error.codes == ["route_not_permitted"]
    assert error.problems[0].field == "route"
    treat(ready, lot, route=Route.MICRONEEDLING)


# ---------------------------------------------------------------------------------------------
# Consent


@pytest.fixture
def consent_text(db):
    return ConsentTextFactory()


def test_treatment_record_refuses_a_treatment_without_consent_where_the_clinic_requires_it(
    lot, consent_text
):
    ready = clinic_ready(consent_required=True)
    receive(ready, lot, 5)
    performed_at = timezone.now() - datetime.timedelta(minutes=5)

    # when recorded without consent, it is refused
    error = refused(lambda: treat(ready, lot, performed_at=performed_at))
    assert error.codes == ["consent_required"]
    assert error.problems[0].field == "consent"

    # with consent taken before the treatment, it is recorded with who took it and when
    consent = ConsentRequest(
        consent_text=consent_text,
        taken_by=ready.clinician,
        taken_at=performed_at - datetime.timedelta(minutes=20),
    )
    treatment = treat(ready, lot, performed_at=performed_at, consent=consent)
    assert treatment.consent_text == consent_text
    assert treatment.consent_taken_by == ready.clinician
    assert treatment.consent_taken_at == consent.taken_at


def test_treatment_record_refuses_consent_taken_after_the_treatment(ready, lot, consent_text):
    performed_at = timezone.now() - datetime.timedelta(hours=1)

    def with_consent_at(taken_at):
        consent = ConsentRequest(
            consent_text=consent_text, taken_by=ready.clinician, taken_at=taken_at
        )
        return lambda: treat(ready, lot, performed_at=performed_at, consent=consent)

    error = refused(with_consent_at(performed_at + datetime.timedelta(minutes=1)))
    assert error.codes == ["consent_after_treatment"]
    assert error.problems[0].field == "consent.taken_at"

    with_consent_at(performed_at)()  # taken at the same moment is not after


def test_treatment_record_refuses_a_retired_consent_text(ready, lot):
    retired = ConsentTextFactory(active=False)
    consent = ConsentRequest(
        consent_text=retired,
        taken_by=ready.clinician,
        taken_at=timezone.now() - datetime.timedelta(hours=1),
    )

    assert refused(lambda: treat(ready, lot, consent=consent)).codes == ["consent_text_retired"]


def test_the_consent_statement_names_the_ind_number(ready, lot):
    treatment = treat(ready, lot)

    assert treatment.consent_regulatory_statement == (
        f"{lot.product.name} lot {lot.lot_number}: IND 012345"
    )


def test_the_consent_statement_adds_the_basis_to_a_bare_number(ready):
    lot = released_lot(regulatory_basis=RegulatoryBasis.BLA, regulatory_number="125001")
    receive(ready, lot, 1)

    treatment = treat(ready, lot)

    assert treatment.consent_regulatory_statement.endswith("BLA 125001")


def test_the_consent_statement_says_not_approved_when_the_lot_has_no_basis(ready, lot):
    unapproved = released_lot(regulatory_basis=RegulatoryBasis.NONE, regulatory_number="")
    receive(ready, unapproved, 1)

    treatment = treat(ready, [lot, unapproved])

    statement = treatment.consent_regulatory_statement
    assert f"lot {lot.lot_number}: IND 012345" in statement
    assert f"lot {unapproved.lot_number}: not approved by the FDA; no IND or BLA" in statement


# ---------------------------------------------------------------------------------------------
# The patient, the time, the lines


def test_treatment_record_refuses_a_patient_of_another_clinic(ready, lot):
    stranger = PatientFactory()

    error = refused(lambda: treat(ready, lot, patient=stranger))

    assert error.codes == ["patient_other_clinic"]
    treat(ready, lot, patient=PatientFactory(clinic=ready.clinic))


def test_treatment_record_refuses_a_treatment_in_the_future(ready, lot):
    error = refused(
        lambda: treat(ready, lot, performed_at=timezone.now() + datetime.timedelta(hours=1))
    )

    assert error.codes == ["treatment_in_future"]
    # a tablet clock a few minutes fast is tolerated
    treat(ready, lot, performed_at=timezone.now() + datetime.timedelta(minutes=5))


def test_treatment_record_refuses_a_treatment_without_a_lot(ready):
    assert refused(lambda: treat(ready, [])).codes == ["treatment_no_lot"]


def test_treatment_record_refuses_a_lot_named_twice(ready, lot):
    error = refused(lambda: treat(ready, [lot, lot]))

    assert error.codes == ["treatment_lot_repeated"]


def test_treatment_record_refuses_zero_units(ready, lot):
    assert refused(lambda: treat(ready, lot, 0)).codes == ["units_not_positive"]


def test_treatment_record_lists_every_problem_at_once(lot):
    # given a clinic that requires consent, a lot that is recalled and expires today, banned in
    # Texas, a practitioner who neither practises here nor holds a licence, and another clinic's
    # patient
    ready = clinic_ready(consent_required=True)
    receive(ready, lot, 2)
    Lot.objects.filter(pk=lot.pk).update(expires_on=today())
    set_status(lot, LotStatus.RECALLED)
    ProductAuthorisation.objects.create(
        product=lot.product, jurisdiction="US-TX", status=AuthorisationStatus.BANNED
    )
    stranger = dataclasses.replace(ready, practitioner=PractitionerFactory())

    # when 5 units are injected tomorrow into another clinic's patient
    error = refused(
        lambda: treat(
            stranger,
            lot,
            5,
            patient=PatientFactory(),
            route=Route.INJECTION,
            performed_at=timezone.now() + datetime.timedelta(days=1),
        )
    )

    # then every reason is listed, each with a message and the field it concerns
    assert sorted(error.codes) == sorted(
        [
            "patient_other_clinic",
            "treatment_in_future",
            "practitioner_not_member",
            "practitioner_not_licensed",
            "lot_recalled",
            "lot_expired",
            "route_not_permitted",
            "product_not_authorised",
            "stock_insufficient",
            "consent_required",
        ]
    )
    assert all(problem.message and problem.field for problem in error.problems)


# ---------------------------------------------------------------------------------------------
# Who may record


def test_an_auditor_cannot_record_a_treatment(ready, lot, auditor):
    error = refused(lambda: treat(ready, lot, actor=auditor))

    assert error.codes == ["role_required"]
    assert error.status == 403


def test_a_clinician_of_another_clinic_cannot_record_a_treatment_here(ready, lot):
    other_clinician = clinic_ready().clinician

    assert refused(lambda: treat(ready, lot, actor=other_clinician)).codes == ["role_required"]


# ---------------------------------------------------------------------------------------------
# Patients


def test_patient_create_keeps_contact_details_apart(ready):
    patient = patient_create(
        actor=ready.clinician,
        clinic=ready.clinic,
        reference=" P-7001 ",
        contact={"full_name": "Ada Example", "phone": "+1 512 555 0100"},
    )

    assert patient.reference == "P-7001"
    assert PatientContact.objects.get(patient=patient).full_name == "Ada Example"


def test_patient_references_are_unique_per_clinic(ready):
    patient_create(actor=ready.clinician, clinic=ready.clinic, reference="P-7001")

    with pytest.raises(DomainError) as caught:
        patient_create(actor=ready.clinician, clinic=ready.clinic, reference="P-7001")

    assert caught.value.status == 400
    assert Patient.objects.filter(reference="P-7001").count() == 1
    other = clinic_ready()
    patient_create(actor=other.clinician, clinic=other.clinic, reference="P-7001")


def test_patient_create_needs_a_treating_role_at_the_clinic(ready, auditor):
    elsewhere = MembershipFactory(role=Role.CLINIC_ADMINISTRATOR).user
    for actor in (auditor, elsewhere):
        with pytest.raises(DomainError) as caught:
            patient_create(actor=actor, clinic=ready.clinic, reference="P-7002")
        assert caught.value.codes == ["role_required"]
    assert not Patient.objects.filter(reference="P-7002").exists()


# ---------------------------------------------------------------------------------------------
# Adverse events


def test_adverse_event_record_links_the_event_to_the_treatment_and_the_suspected_lot(ready, lot):
    treatment = treat(ready, lot)

    event = adverse_event_record(
        actor=ready.clinician,
        treatment=treatment,
        lot=lot,
        onset_on=today(),
        description=" Swelling and redness at the site ",
        hospitalisation=True,
    )

    assert (event.treatment, event.lot, event.reported_by) == (treatment, lot, ready.clinician)
    assert event.description == "Swelling and redness at the site"
    assert event.is_serious


def test_adverse_event_record_accepts_an_event_without_a_suspected_lot(ready, lot):
    treatment = treat(ready, lot)

    event = adverse_event_record(
        actor=ready.clinician, treatment=treatment, onset_on=today(), description="Headache"
    )

    assert event.lot is None
    assert not event.is_serious


def test_adverse_event_record_refuses_a_lot_the_treatment_did_not_use(ready, lot):
    treatment = treat(ready, lot)
    other_lot = released_lot()

    error = refused(
        lambda: adverse_event_record(
            actor=ready.clinician,
            treatment=treatment,
            lot=other_lot,
            onset_on=today(),
            description="Rash",
        )
    )

    assert error.codes == ["adverse_event_lot_not_used"]
    assert error.status == 400


def test_adverse_event_record_refuses_an_onset_before_the_treatment(ready, lot):
    treatment = treat(ready, lot, performed_at=at_noon(today() - datetime.timedelta(days=3)))

    error = refused(
        lambda: adverse_event_record(
            actor=ready.clinician,
            treatment=treatment,
            lot=lot,
            onset_on=today() - datetime.timedelta(days=4),
            description="Rash",
        )
    )
    assert error.codes == ["adverse_event_before_treatment"]
    assert error.problems[0].field == "onset_on"

    # the treatment's own day is a possible onset
    adverse_event_record(
        actor=ready.clinician,
        treatment=treatment,
        lot=lot,
        onset_on=today() - datetime.timedelta(days=3),
        description="Rash",
    )


def test_adverse_event_record_refuses_an_onset_in_the_future(ready, lot):
    treatment = treat(ready, lot)

    error = refused(
        lambda: adverse_event_record(
            actor=ready.clinician,
            treatment=treatment,
            onset_on=today() + datetime.timedelta(days=30),
            description="Rash",
        )
    )

    assert error.codes == ["adverse_event_onset_in_future"]
    assert (error.status, error.problems[0].field) == (400, "onset_on")


def test_an_auditor_cannot_record_an_adverse_event(ready, lot, auditor):
    treatment = treat(ready, lot)

    error = refused(
        lambda: adverse_event_record(
            actor=auditor, treatment=treatment, onset_on=today(), description="Rash"
        )
    )

    assert error.codes == ["role_required"]


def test_a_lot_released_through_the_release_gate_can_be_used(ready, quality_manager):
    # given a lot that passed the release gate with a signature, then received
    lot = releasable_lot(quality_manager=quality_manager)
    lot_release(
        actor=quality_manager, lot_id=lot.pk, password=PASSWORD, meaning="approval", reason="ok"
    )
    receive(ready, lot, 5)

    treatment = treat(ready, lot, 2)

    assert treatment.lines.get().units == 2
    assert accepted(ready, lot) == 3


def test_each_line_of_a_treatment_points_at_the_movement_that_took_its_units(ready, lot):
    from tests.factories import receive, released_lot

    other = released_lot(product=lot.product)
    receive(ready, other, 5)

    treatment = treat(ready, [lot, other], 2)

    for line in treatment.lines.select_related("stock_movement"):
        movement = line.stock_movement
        assert movement is not None
        assert (movement.lot_id, movement.delta, movement.kind) == (
            line.lot_id,
            -2,
            MovementKind.TREATMENT,
        )
        assert movement.clinic_id == treatment.clinic_id
