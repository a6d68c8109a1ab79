"""factory_boy factories. They write through the ORM to set up state quickly; tests of rules go
through the services."""

from __future__ import annotations

import datetime
import hashlib
import io
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone
from pypdf import PdfWriter

from lots.models import (
    Certificate,
    CertificateKind,
    Donor,
    DonorMarkerResult,
    Eligibility,
    Lot,
    LotDonor,
    LotQcResult,
    LotStatus,
    LotUnit,
    Marker,
    MarkerResultValue,
    Product,
    QcOutcome,
    QcTest,
    RegulatoryBasis,
    Route,
    SourceKind,
    Tissue,
)
from lots.services import certificate_upload_to_path
from providers.models import (
    Clinic,
    ClinicContact,
    ClinicPractitioner,
    Licence,
    Manufacturer,
    Membership,
    Practitioner,
    Profession,
    Role,
)
from stock.models import Receipt
from treatments.models import ConsentText, Patient, Treatment

PASSWORD = "correct horse battery staple"
# A Single European Code's parts as stored on a lot (its expiry is the lot's), for tests that give
# a lot one through the ORM.
SEC_FIELDS = {
    "sec_issuing_country": "DE",
    "sec_establishment_code": "000123",
    "sec_donation_number": "A99992112345X",
    "sec_coding_system": "E",
    "sec_product_number": "00T0001",
    "sec_split_number": "000",
}
TODAY = datetime.date.today  # factories only need a calendar date


def pdf_bytes(text: str = "certificate") -> bytes:
    """A real, one-page PDF; `text` goes into the metadata so different texts hash differently."""
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.add_metadata({"/Title": text})
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def save_password(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class ManufacturerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Manufacturer

    legal_name = factory.Sequence(lambda n: f"Manufacturer {n} Inc.")
    country = "US"
    registration_number = factory.Sequence(lambda n: f"{3000000000 + n}")


class ClinicFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Clinic

    name = factory.Sequence(lambda n: f"Clinic {n}")
    address = "1 Main Street"
    jurisdiction = "US-TX"


class ClinicContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ClinicContact

    clinic = factory.SubFactory(ClinicFactory)
    name = "Front desk"
    email = factory.Sequence(lambda n: f"contact{n}@clinic.example")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    role = Role.CLINICIAN
    clinic = factory.SubFactory(ClinicFactory)


class PractitionerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Practitioner

    name = factory.Faker("name")
    profession = Profession.PHYSICIAN


class LicenceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Licence

    practitioner = factory.SubFactory(PractitionerFactory)
    number = factory.Sequence(lambda n: f"LIC-{n:05d}")
    jurisdiction = "US-TX"
    valid_from = factory.LazyFunction(lambda: TODAY() - datetime.timedelta(days=365))
    valid_until = factory.LazyFunction(lambda: TODAY() + datetime.timedelta(days=365))


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    manufacturer = factory.SubFactory(ManufacturerFactory)
    name = factory.Sequence(lambda n: f"Exosome serum {n}")
    source_kind = SourceKind.HUMAN
    tissue = Tissue.ADIPOSE
    permitted_routes = factory.LazyFunction(lambda: [Route.TOPICAL, Route.MICRONEEDLING])
    storage_min_celsius = Decimal("-80.0")
    storage_max_celsius = Decimal("-60.0")


class DonorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Donor

    code = factory.Sequence(lambda n: f"DN-{n:06d}")
    tissue = Tissue.ADIPOSE
    collection_date = factory.LazyFunction(lambda: TODAY() - datetime.timedelta(days=120))
    specimen_date = factory.LazyAttribute(lambda donor: donor.collection_date)
    testing_laboratory = "Viracor Eurofins"
    eligibility = Eligibility.INCOMPLETE


def complete_marker_panel(donor: Donor, *, decided_by) -> Donor:
    """Record every required marker non-reactive and decide the donor eligible."""
    for marker in Marker.objects.filter(active=True):
        if donor.tissue in marker.required_for_tissues:
            DonorMarkerResult.objects.create(
                donor=donor,
                marker=marker,
                result=MarkerResultValue.NON_REACTIVE,
                tested_on=donor.specimen_date,
                laboratory=donor.testing_laboratory,
            )
    donor.eligibility = Eligibility.ELIGIBLE
    donor.eligibility_decided_by = decided_by
    donor.eligibility_decided_at = timezone.now()
    donor.save()
    return donor


class LotFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Lot

    product = factory.SubFactory(ProductFactory)
    manufacturer = factory.LazyAttribute(lambda lot: lot.product.manufacturer)
    lot_number = factory.Sequence(lambda n: f"EXO-{n:05d}")
    manufactured_on = factory.LazyFunction(lambda: TODAY() - datetime.timedelta(days=30))
    expires_on = factory.LazyFunction(lambda: TODAY() + datetime.timedelta(days=335))
    quantity = 100
    unit = LotUnit.VIAL
    regulatory_basis = RegulatoryBasis.IND
    regulatory_number = "IND 012345"
    status = LotStatus.QUARANTINED
    status_changed_at = factory.LazyFunction(timezone.now)
    created_by = factory.SubFactory(UserFactory)


PASSING_QC = {
    "sterility": QcOutcome.NOT_DETECTED,
    "mycoplasma": QcOutcome.NOT_DETECTED,
    "endotoxin": Decimal("0.1"),
    "particle_concentration": Decimal("5000000000"),
    "particle_size": Decimal("110"),
    "ev_marker_membrane": QcOutcome.DETECTED,
    "ev_marker_cytosolic": QcOutcome.DETECTED,
    "ev_negative_marker": QcOutcome.NOT_DETECTED,
}


def record_passing_qc(lot: Lot, *, skip: tuple[str, ...] = ()) -> None:
    for test in QcTest.objects.filter(code__in=PASSING_QC).exclude(code__in=skip):
        value = PASSING_QC[test.code]
        LotQcResult.objects.create(
            lot=lot,
            test=test,
            numeric_value=value if isinstance(value, Decimal) else None,
            outcome=value if isinstance(value, str) else "",
            tested_on=lot.manufactured_on,
            laboratory="QC lab",
        )


def store_certificate(
    *,
    kind: str,
    manufacturer: Manufacturer,
    uploaded_by,
    lot: Lot | None = None,
    valid_from: datetime.date | None = None,
    valid_until: datetime.date | None = None,
    number: str = "CERT-1",
) -> Certificate:
    content = pdf_bytes(f"{kind}-{number}-{manufacturer.pk}-{getattr(lot, 'pk', '')}")
    sha256 = hashlib.sha256(content).hexdigest()
    certificate = Certificate(
        kind=kind,
        manufacturer=manufacturer,
        lot=lot,
        issuer="Notified body",
        number=number,
        valid_from=valid_from or TODAY() - datetime.timedelta(days=100),
        valid_until=valid_until,
        sha256=sha256,
        size_bytes=len(content),
        uploaded_by=uploaded_by,
        uploaded_at=timezone.now(),
    )
    certificate.file.name = certificate_upload_to_path(sha256)
    certificate.save()
    return certificate


def releasable_lot(*, quality_manager, product: Product | None = None, donors: int = 1) -> Lot:
    """A quarantined lot with everything rule 1 asks for, ready to be released."""
    product = product or ProductFactory()
    lot = LotFactory(product=product, created_by=quality_manager)
    if product.is_human_derived:
        for _ in range(donors):
            donor = complete_marker_panel(
                DonorFactory(tissue=product.tissue), decided_by=quality_manager
            )
            LotDonor.objects.create(lot=lot, donor=donor)
    record_passing_qc(lot)
    store_certificate(
        kind=CertificateKind.COA,
        manufacturer=product.manufacturer,
        lot=lot,
        uploaded_by=quality_manager,
        number=f"COA-{lot.lot_number}",
    )
    if not Certificate.objects.filter(
        manufacturer=product.manufacturer, kind=CertificateKind.GMP
    ).exists():
        store_certificate(
            kind=CertificateKind.GMP,
            manufacturer=product.manufacturer,
            uploaded_by=quality_manager,
            valid_until=TODAY() + datetime.timedelta(days=365),
            number=f"GMP-{product.manufacturer.pk}",
        )
    return lot


def eligible_donor(
    *,
    decided_by,
    tissue: str = Tissue.ADIPOSE,
    skip_markers: tuple[str, ...] = (),
    marker_results: dict[str, str] | None = None,
    **fields,
) -> Donor:
    """A donor decided eligible with every required marker recorded non-reactive, except those in
    `skip_markers` (left without a result) and those in `marker_results` (recorded with the given
    value), so a test can break the panel one marker at a time."""
    donor = DonorFactory(tissue=tissue, **fields)
    overrides = marker_results or {}
    for marker in Marker.objects.filter(active=True):
        if tissue in marker.required_for_tissues and marker.code not in skip_markers:
            DonorMarkerResult.objects.create(
                donor=donor,
                marker=marker,
                result=overrides.get(marker.code, MarkerResultValue.NON_REACTIVE),
                tested_on=donor.specimen_date,
                laboratory=donor.testing_laboratory,
            )
    donor.eligibility = Eligibility.ELIGIBLE
    donor.eligibility_decided_by = decided_by
    donor.eligibility_decided_at = timezone.now()
    donor.save()
    return donor


def lot_for_release(
    *,
    quality_manager,
    product: Product | None = None,
    donors: int = 1,
    skip_qc: tuple[str, ...] = (),
    coa: bool = True,
    gmp: bool = True,
    **lot_fields,
) -> Lot:
    """Like `releasable_lot`, but leaves out what the caller asks for (`donors=0`, `skip_qc`,
    `coa=False`, `gmp=False`) so a test can leave one requirement unmet at a time."""
    product = product or ProductFactory()
    lot = LotFactory(product=product, created_by=quality_manager, **lot_fields)
    if product.is_human_derived:
        for _ in range(donors):
            donor = eligible_donor(decided_by=quality_manager, tissue=product.tissue)
            LotDonor.objects.create(lot=lot, donor=donor)
    record_passing_qc(lot, skip=skip_qc)
    if coa:
        store_certificate(
            kind=CertificateKind.COA,
            manufacturer=product.manufacturer,
            lot=lot,
            uploaded_by=quality_manager,
            number=f"COA-{lot.lot_number}",
        )
    if gmp:
        store_certificate(
            kind=CertificateKind.GMP,
            manufacturer=product.manufacturer,
            uploaded_by=quality_manager,
            valid_until=TODAY() + datetime.timedelta(days=365),
            number=f"GMP-{product.manufacturer.pk}-{lot.pk}",
        )
    return lot


# ---------------------------------------------------------------------------------------------
# Stock and treatments. The factories set up state through the ORM; `receive` and `treat` go
# through the services, so the stock ledger and its balances stay in agreement.


class ClinicPractitionerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ClinicPractitioner

    clinic = factory.SubFactory(ClinicFactory)
    practitioner = factory.SubFactory(PractitionerFactory)
    active = True


class PatientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Patient

    clinic = factory.SubFactory(ClinicFactory)
    reference = factory.Sequence(lambda n: f"P-{n:05d}")


class ConsentTextFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ConsentText

    code = "exosome-treatment"
    version = factory.Sequence(lambda n: n + 1)
    title = "Exosome treatment: informed consent"
    body = "No exosome product is approved by the FDA. Risks include infection."
    active = True


def practitioner_at(clinic: Clinic, *, jurisdiction: str | None = None, **licence) -> Practitioner:
    """A practitioner who practises at `clinic` and holds a licence valid there today (or in
    `jurisdiction`, with the licence fields given)."""
    practitioner = PractitionerFactory()
    LicenceFactory(
        practitioner=practitioner, jurisdiction=jurisdiction or clinic.jurisdiction, **licence
    )
    ClinicPractitionerFactory(clinic=clinic, practitioner=practitioner)
    return practitioner


@dataclass
class ClinicReady:
    """A clinic with what a treatment needs: staff with roles, a licensed member practitioner and
    a registered patient."""

    clinic: Clinic
    clinician: Any
    administrator: Any
    practitioner: Practitioner
    patient: Patient


def clinic_ready(
    *, jurisdiction: str = "US-TX", consent_required: bool = False, time_zone: str = "UTC"
) -> ClinicReady:
    clinic = ClinicFactory(
        jurisdiction=jurisdiction, consent_required=consent_required, time_zone=time_zone
    )
    return ClinicReady(
        clinic=clinic,
        clinician=MembershipFactory(role=Role.CLINICIAN, clinic=clinic).user,
        administrator=MembershipFactory(role=Role.CLINIC_ADMINISTRATOR, clinic=clinic).user,
        practitioner=practitioner_at(clinic),
        patient=PatientFactory(clinic=clinic),
    )


def released_lot(**fields) -> Lot:
    """A released lot, set up through the ORM (the release gate has its own tests)."""
    return LotFactory(status=LotStatus.RELEASED, **fields)


def receive(ready: ClinicReady, lot: Lot, quantity: int, *, decision: str = "accept") -> Receipt:
    """Receive units at the clinic through `stock_receive`, every check at the door passed."""
    from stock.services import stock_receive

    product = lot.product
    return stock_receive(
        actor=ready.administrator,
        clinic=ready.clinic,
        lot=lot,
        quantity=quantity,
        decision=decision,
        package_intact=True,
        label_readable=True,
        transport_min_celsius=product.storage_min_celsius,
        transport_max_celsius=product.storage_max_celsius,
        storage_location="Freezer 1",
    )


def treat(
    ready: ClinicReady,
    lots: Lot | list[Lot],
    units: int = 1,
    *,
    patient: Patient | None = None,
    performed_at: datetime.datetime | None = None,
    **fields,
) -> Treatment:
    """Record a treatment through `treatment_record`: topical skin rejuvenation of the face, five
    minutes ago, `units` of each lot, by the clinic's own practitioner."""
    from treatments.services import LineRequest, treatment_record

    lots = lots if isinstance(lots, list) else [lots]
    arguments: dict[str, Any] = {
        "actor": ready.clinician,
        "clinic": ready.clinic,
        "patient": patient or ready.patient,
        "practitioner": ready.practitioner,
        "performed_at": performed_at or timezone.now() - datetime.timedelta(minutes=5),
        "indication": "skin_rejuvenation",
        "route": "topical",
        "anatomical_site": "face",
        "lines": [LineRequest(lot=lot, units=units) for lot in lots],
    }
    arguments.update(fields)
    return treatment_record(**arguments)
