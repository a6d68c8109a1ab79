"""`python manage.py seed_demo`: demo data that tells a story, written through the services so the
audit trail shows who did what and why.

Three manufacturers (one whose GMP certificate has expired), products from four tissues and one
synthetic, donors with complete, incomplete and reactive marker panels, lots in every status, one
lot whose release is refused for several reasons at once, three clinics (US-TX, US-CA, DE) with
notification contacts, practitioners linked to them (one whose licence has lapsed), the DE ban on
human-derived material for cosmetic use, an informed-consent text, and one login per role. Then
(demo.story) months of deliveries and a few hundred treatments, a transfer, a
wasted vial, a quarantined delivery and two adverse events, after which one lot is put on hold.
Last (demo.recalls) an open patient-level recall that one of its two clinics has
acknowledged, and a finished recall drill with its timing report.

Idempotent: every record is looked up by its natural key first, and the stock and treatment chapter
is one transaction checked by one key, so a second run adds nothing; only the demo passwords change.
"""

from __future__ import annotations

import datetime
import re
import secrets
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db.models import Count
from django.test.utils import override_settings
from django.utils import timezone

from common.errors import DomainError
from common.services import history, validate_instance
from demo.data import (
    CLINIC_STAFF,
    CLINICS,
    CONSENT_TEXT,
    DONORS,
    LOTS,
    MANUFACTURERS,
    PASSING_QC,
    PRACTITIONERS,
    PRODUCTS,
    SOURCE_RESTRICTIONS,
    USERS,
    CertificateRow,
    LicenceRow,
    LotStory,
    demo_pdf,
    isbt_din,
)
from demo.recalls import DemoRecalls
from demo.story import DemoStory
from lots import services as lot_services
from lots.models import (
    Certificate,
    CertificateKind,
    Donor,
    DonorMarkerResult,
    Eligibility,
    Lot,
    LotQcResult,
    LotStatus,
    Marker,
    MarkerResultValue,
    Product,
    ProductAuthorisation,
    QcTest,
    SourceRestriction,
)
from lots.selectors import required_markers_for
from pages.models import AccountPreference
from providers import services as provider_services
from providers.models import (
    Clinic,
    ClinicContact,
    ClinicPractitioner,
    Licence,
    Manufacturer,
    Membership,
    Practitioner,
    Role,
)
from stock.models import MovementKind, Receipt, StockMovement
from treatments.models import AdverseEvent, ConsentText, Patient, Treatment

FAST_HASHER = "django.contrib.auth.hashers.MD5PasswordHasher"
# Days from a lot's manufacture to its contamination tests, after which its evidence is complete.
EVIDENCE_DAYS = 7


def _alphanumeric(text: str, length: int) -> str:
    """`text`'s letters and digits, upper case, cut or padded with zeros to `length`."""
    return re.sub(r"[^A-Z0-9]", "", text.upper())[-length:].rjust(length, "0")


def _sec(lot_number: str, product: Product, expires_on: datetime.date) -> dict[str, str] | None:
    """The Single European Code of a human-derived demo lot: the demo's lots reach the EU (the
    Frankfurt clinic, whose jurisdiction requires the code) through one German tissue
    establishment, which codes each lot it imports, by ISBT 128 (coding system A)."""
    if not product.is_human_derived:
        return None
    return {
        "issuing_country": "DE",
        "establishment_code": "000777",
        "donation_number": _alphanumeric(lot_number, 13),
        "coding_system": "A",
        "product_number": _alphanumeric(product.gtin or product.name, 7),
        "split_number": "000",
        "expiry_date": expires_on.strftime("%Y%m%d"),
    }


class Command(BaseCommand):
    help = "Load demo data (idempotent) and print one fresh login per role."

    def handle(self, *args: Any, **options: Any) -> None:
        # Every signature re-checks the signer's password (21 CFR 11.200), and checking a PBKDF2
        # hash takes as long as making one (about half a second here); the story signs some twenty
        # times. So while it is told the demo users' passwords are stored with a fast hasher, and
        # at the end each is stored once with the configured one: one slow hash per user and run.
        with override_settings(PASSWORD_HASHERS=[FAST_HASHER, *settings.PASSWORD_HASHERS]):
            self._tell()
        for user, password in [*self.logins.values(), *self.clinic_logins.values()]:
            user.set_password(password)
            user.save(update_fields=["password"])
        self._print_logins()

    def _tell(self) -> None:
        self.today = timezone.localdate()
        self.logins = self._users()
        self.clinic_logins: dict[str, tuple[Any, str]] = {}
        self.qm, self.qm_password = self.logins[Role.QUALITY_MANAGER]
        manufacturers = {
            key: self._manufacturer(name, country, registration, certificate)
            for key, name, country, registration, certificate in MANUFACTURERS
        }
        clinics = {
            key: self._clinic(name, jurisdiction, address, contacts)
            for key, name, jurisdiction, address, contacts in CLINICS
        }
        self._clinic_memberships(clinics)
        staff = self._clinic_staff(clinics)
        practitioners = {
            row[0]: self._practitioner(*row[:4], [clinics[key] for key in row[4]])
            for row in PRACTITIONERS
        }
        self._source_restrictions()
        consent_text = self._consent_text()
        products = {
            key: self._product(manufacturers[owner], name, source, tissue, dict(fields))
            for key, owner, name, source, tissue, fields in PRODUCTS
        }
        self.stdout.write(self.style.MIGRATE_HEADING("Donors"))
        donors = {row[0]: self._donor(*row) for row in DONORS}
        self.stdout.write(self.style.MIGRATE_HEADING("Lots"))
        lots = {
            story.lot_number: self._lot(
                story, products[story.product], [donors[code] for code in story.donors]
            )
            for story in LOTS
        }
        self.stdout.write(self.style.MIGRATE_HEADING("Stock and treatments"))
        written = DemoStory(
            clinics=clinics,
            staff=staff,
            lots=lots,
            practitioners=practitioners,
            consent_text=consent_text,
            write=self.stdout.write,
        ).run()
        self.stdout.write("  written now" if written else "  already there: nothing added")
        # Holds come after the stock chapter: the clinics used these lots while they were released.
        for story in LOTS:
            self._hold(lots[story.lot_number], story)
        self.stdout.write(self.style.MIGRATE_HEADING("Recalls"))
        DemoRecalls(
            quality_manager=self.qm,
            password=self.qm_password,
            clinics=clinics,
            staff=staff,
            lots=lots,
            write=self.stdout.write,
        ).run()
        self._summary()

    # -- people --------------------------------------------------------------------------------

    def _users(self) -> dict[str, tuple[Any, str]]:
        """One staff login per role with a new password every run. The first quality manager is
        granted without an actor (bootstrap); every later grant is made by that manager."""
        logins: dict[str, tuple[Any, str]] = {}
        for role, username, first_name, last_name in USERS:
            password = secrets.token_urlsafe(9)
            user = get_user_model().objects.filter(username=username).first()
            if user is None:
                user = provider_services.user_create(
                    actor=None,
                    username=username,
                    password=password,
                    first_name=first_name,
                    last_name=last_name,
                )
            else:
                user.set_password(password)
            user.is_staff = True
            user.save(update_fields=["password", "is_staff"])
            logins[role] = (user, password)
        qm = logins[Role.QUALITY_MANAGER][0]
        self._grant(None, qm, Role.QUALITY_MANAGER, None)
        self._grant(qm, logins[Role.AUDITOR][0], Role.AUDITOR, None)
        return logins

    def _grant(self, actor: Any, user: Any, role: str, clinic: Clinic | None) -> None:
        if not Membership.objects.filter(user=user, role=role, clinic=clinic).exists():
            provider_services.membership_grant(actor=actor, user=user, role=role, clinic=clinic)

    def _clinic(
        self, name: str, jurisdiction: str, address: str, contacts: list[tuple[str, str]]
    ) -> Clinic:
        clinic = Clinic.objects.filter(name=name).first() or provider_services.clinic_create(
            actor=self.qm, name=name, address=address, jurisdiction=jurisdiction, contacts=[]
        )
        for contact_name, email in contacts:
            if not ClinicContact.objects.filter(clinic=clinic, email=email).exists():
                provider_services.clinic_contact_add(
                    actor=self.qm, clinic=clinic, name=contact_name, email=email
                )
        return clinic

    def _clinic_memberships(self, clinics: dict[str, Clinic]) -> None:
        for role in (Role.CLINIC_ADMINISTRATOR, Role.CLINICIAN):
            self._grant(self.qm, self.logins[role][0], role, clinics["tx"])

    def _clinic_staff(self, clinics: dict[str, Clinic]) -> dict[str, Any]:
        """The administrator of each clinic: the demo login at Lone Star; at the other two a user
        without a password (no login, no slow hashing), who only acts in the story."""
        staff = {"tx": self.logins[Role.CLINIC_ADMINISTRATOR][0]}
        for key, username, first_name, last_name in CLINIC_STAFF:
            user = get_user_model().objects.filter(username=username).first()
            if user is None:
                user = get_user_model().objects.create_user(
                    username=username, password=None, first_name=first_name, last_name=last_name
                )
            self._grant(self.qm, user, Role.CLINIC_ADMINISTRATOR, clinics[key])
            staff[key] = user
        # The Berlin clinic's administrator signs in too, and reads the pages in German.
        berlin = staff["de"]
        self.clinic_logins[f"{clinics['de'].name}, Deutsch"] = (berlin, secrets.token_urlsafe(9))
        AccountPreference.objects.update_or_create(user=berlin, defaults={"language": "de"})
        return staff

    def _practitioner(
        self,
        name: str,
        profession: str,
        is_demo_clinician: bool,
        licences: list[LicenceRow],
        clinics: list[Clinic],
    ) -> Practitioner:
        user = self.logins[Role.CLINICIAN][0] if is_demo_clinician else None
        practitioner = Practitioner.objects.filter(
            name=name
        ).first() or provider_services.practitioner_create(
            actor=self.qm, name=name, profession=profession, user=user
        )
        for clinic in clinics:
            if not ClinicPractitioner.objects.filter(
                clinic=clinic, practitioner=practitioner
            ).exists():
                provider_services.clinic_practitioner_link(
                    actor=self.qm, clinic=clinic, practitioner=practitioner
                )
        for number, jurisdiction, from_days, until_days in licences:
            if not Licence.objects.filter(jurisdiction=jurisdiction, number=number).exists():
                provider_services.licence_add(
                    actor=self.qm,
                    practitioner=practitioner,
                    number=number,
                    jurisdiction=jurisdiction,
                    valid_from=self.today + datetime.timedelta(days=from_days),
                    valid_until=self.today + datetime.timedelta(days=until_days),
                )
        return practitioner

    # -- jurisdiction rules and consent ----------------------------------------------------------

    def _source_restrictions(self) -> None:
        """lots.services has no writer for jurisdictions' source rules yet (they are reference
        data), so the seed saves the row itself the way a service would: validated, under the
        quality manager's name and a reason in the history context."""
        for jurisdiction, source_kind, scope, note in SOURCE_RESTRICTIONS:
            if SourceRestriction.objects.filter(
                jurisdiction=jurisdiction, source_kind=source_kind
            ).exists():
                continue
            restriction = SourceRestriction(
                jurisdiction=jurisdiction, source_kind=source_kind, scope=scope, note=note
            )
            validate_instance(restriction)
            with history(self.qm, "Regulatory review of the demo network"):
                restriction.save()

    def _consent_text(self) -> ConsentText:
        """No service publishes consent texts yet: saved the way `_source_restrictions` saves."""
        consent = ConsentText.objects.filter(
            code=CONSENT_TEXT["code"], version=CONSENT_TEXT["version"]
        ).first()
        if consent is None:
            consent = ConsentText(**CONSENT_TEXT)
            validate_instance(consent)
            with history(self.qm, "Consent text approved by the medical directors"):
                consent.save()
        return consent

    # -- manufacturers and products ------------------------------------------------------------

    def _manufacturer(
        self, legal_name: str, country: str, registration: str, certificate: CertificateRow
    ) -> Manufacturer:
        manufacturer = Manufacturer.objects.filter(
            legal_name=legal_name
        ).first() or provider_services.manufacturer_create(
            actor=self.qm, legal_name=legal_name, country=country, registration_number=registration
        )
        kind, number, issuer, from_days, until_days = certificate
        self._certificate(
            kind=kind,
            number=number,
            issuer=issuer,
            manufacturer=manufacturer,
            valid_from=self.today + datetime.timedelta(days=from_days),
            valid_until=self.today + datetime.timedelta(days=until_days),
        )
        return manufacturer

    def _certificate(
        self, *, kind: str, number: str, manufacturer: Manufacturer, **fields: Any
    ) -> None:
        lot = fields.get("lot")
        scope = {"lot": lot} if lot is not None else {"manufacturer": manufacturer, "lot": None}
        if Certificate.objects.filter(kind=kind, number=number, **scope).exists():
            return
        lot_services.certificate_upload(
            actor=self.qm,
            kind=kind,
            number=number,
            manufacturer=manufacturer,
            file=demo_pdf(f"{kind.upper()} {number} - {manufacturer.legal_name}"),
            filename=f"{number}.pdf",
            **fields,
        )

    def _product(
        self, manufacturer: Manufacturer, name: str, source: str, tissue: str, rest: dict[str, Any]
    ) -> Product:
        product = Product.objects.filter(manufacturer=manufacturer, name=name).first()
        authorisations = rest.pop("authorisations", [])
        if product is None:
            product = lot_services.product_create(
                actor=self.qm,
                manufacturer=manufacturer,
                name=name,
                source_kind=source,
                tissue=tissue,
                **rest,
            )
        for jurisdiction, status, note in authorisations:
            if not ProductAuthorisation.objects.filter(
                product=product, jurisdiction=jurisdiction
            ).exists():
                lot_services.product_authorisation_set(
                    actor=self.qm,
                    product=product,
                    jurisdiction=jurisdiction,
                    status=status,
                    note=note,
                    reason="Regulatory review of the demo network",
                )
        return product

    # -- donors ----------------------------------------------------------------------------------

    def _donor(
        self,
        code: str,
        tissue: str,
        sequence: int,
        missing: tuple[str, ...],
        reactive: tuple[str, ...],
    ) -> Donor:
        donor = Donor.objects.filter(code=code).first()
        if donor is None:
            collected = self.today - datetime.timedelta(days=150 + sequence)
            donor = lot_services.donor_create(
                actor=self.qm,
                code=code,
                tissue=tissue,
                collection_date=collected,
                specimen_date=collected,
                testing_laboratory="Demo Reference Laboratory",
                isbt_din=isbt_din(sequence),
                birth_mother_tested=True,
            )
        markers = list(Marker.objects.filter(active=True))
        for marker in required_markers_for(tissue, markers):
            if (
                marker.code in missing
                or DonorMarkerResult.objects.filter(donor=donor, marker=marker).exists()
            ):
                continue
            lot_services.donor_marker_result_record(
                actor=self.qm,
                donor=donor,
                marker=marker,
                result=(
                    MarkerResultValue.REACTIVE
                    if marker.code in reactive
                    else MarkerResultValue.NON_REACTIVE
                ),
                tested_on=donor.specimen_date,
                laboratory=donor.testing_laboratory,
                test_method="FDA-licensed donor screening assay",
            )
        refusal = ""
        if donor.eligibility == Eligibility.INCOMPLETE:
            decision = Eligibility.INELIGIBLE if reactive else Eligibility.ELIGIBLE
            try:
                donor = lot_services.donor_eligibility_decide(
                    actor=self.qm,
                    donor=donor,
                    eligibility=decision,
                    password=self.qm_password,
                    reason="Donor screening and testing records reviewed",
                )
            except DomainError as error:
                refusal = "; ".join(f"{p.code}: {p.message}" for p in error.problems)
        self.stdout.write(
            f"  {code:<12} {donor.get_tissue_display():<32} {donor.get_eligibility_display()}"
        )
        if refusal:
            self.stdout.write(f"    eligibility decision refused - {refusal}")
        return donor

    # -- lots ------------------------------------------------------------------------------------

    def _lot(self, story: LotStory, product: Product, donors: list[Donor]) -> Lot:
        lot = Lot.objects.filter(
            manufacturer=product.manufacturer, lot_number=story.lot_number
        ).first()
        if lot is None:
            made = self.today - datetime.timedelta(days=story.age_days)
            expires_on = made + datetime.timedelta(days=365)
            lot = lot_services.lot_create(
                actor=self.qm,
                product=product,
                lot_number=story.lot_number,
                manufactured_on=made,
                expires_on=expires_on,
                sec=_sec(story.lot_number, product, expires_on),
                quantity=story.quantity,
                unit="vial",
                regulatory_basis=story.regulatory_basis,
                regulatory_number=story.regulatory_number,
                donors=donors,
            )
        for test in QcTest.objects.filter(code__in=PASSING_QC).exclude(code__in=story.skip_qc):
            if LotQcResult.objects.filter(lot=lot, test=test).exists():
                continue
            value = story.qc.get(test.code, PASSING_QC[test.code])
            lot_services.lot_qc_result_record(
                actor=self.qm,
                lot=lot,
                test=test,
                tested_on=lot.manufactured_on + datetime.timedelta(days=EVIDENCE_DAYS),
                laboratory="Demo QC Laboratory",
                numeric_value=value if isinstance(value, Decimal) else None,
                outcome="" if isinstance(value, Decimal) else value,
            )
        if story.coa:
            self._certificate(
                kind=CertificateKind.COA,
                number=f"COA-{story.lot_number}",
                issuer=product.manufacturer.legal_name,
                manufacturer=product.manufacturer,
                lot=lot,
                valid_from=lot.manufactured_on,
            )
        self._decide(lot, story)
        lot.refresh_from_db()
        self.stdout.write(f"  {lot.lot_number:<12} {product.name:<32} {lot.get_status_display()}")
        return lot

    def _decide(self, lot: Lot, story: LotStory) -> None:
        """Walk the lot to its target status with signed decisions; each step runs only while the
        lot is still where that step starts, so a second run signs nothing. A hold waits for
        `_hold`, after the clinics have used the lot."""
        sign = {"actor": self.qm, "lot_id": lot.pk, "password": self.qm_password}
        target = story.target
        if target == LotStatus.REJECTED and lot.status == LotStatus.QUARANTINED:
            lot_services.lot_reject(**sign, meaning="rejection", reason=story.reason)
        if (
            target in (LotStatus.RELEASED, LotStatus.ON_HOLD)
            and lot.status == LotStatus.QUARANTINED
        ):
            lot_services.lot_release(
                **sign,
                meaning="approval",
                reason="Batch record, QC and donor file reviewed",
                effective_date=self._released_on(lot),
            )
            lot.refresh_from_db()
        if target == LotStatus.QUARANTINED and story.try_release:
            try:
                lot_services.lot_release(**sign, meaning="approval", reason="Release attempt")
            except DomainError as error:
                self.stdout.write(
                    self.style.WARNING(
                        f"  Release of {lot.lot_number} refused, {len(error.problems)} reasons:"
                    )
                )
                for problem in error.problems:
                    self.stdout.write(f"    - {problem.code}: {problem.message}")

    def _released_on(self, lot: Lot) -> datetime.date | None:
        """The demo's history goes back months, and its clinics used each lot from soon after
        it was made: the release is entered with the day its evidence was complete (the tests,
        a week after manufacture), as a clinic moving onto the system enters its lots. A lot
        whose evidence completes today is released as of now."""
        evidence_complete = lot.manufactured_on + datetime.timedelta(days=EVIDENCE_DAYS)
        return evidence_complete if evidence_complete < self.today else None

    def _hold(self, lot: Lot, story: LotStory) -> None:
        lot.refresh_from_db()
        if story.target == LotStatus.ON_HOLD and lot.status == LotStatus.RELEASED:
            lot_services.lot_hold(
                actor=self.qm,
                lot_id=lot.pk,
                password=self.qm_password,
                meaning="review",
                reason=story.reason,
            )
            self.stdout.write(f"  {lot.lot_number:<12} put on hold: {story.reason}")

    # -- output ----------------------------------------------------------------------------------

    def _summary(self) -> None:
        kinds = dict(
            StockMovement.objects.values_list("kind").annotate(rows=Count("id")).order_by()
        )
        receipts = Receipt.objects.values_list("clinic_id", "decision")
        self.stdout.write(self.style.MIGRATE_HEADING("Summary"))
        rows = [
            ("clinics", Clinic.objects.count()),
            ("practitioners linked to clinics", ClinicPractitioner.objects.count()),
            ("lots", Lot.objects.count()),
            (
                "receipts (clinics)",
                f"{len(receipts)} ({len({clinic for clinic, _ in receipts})}), "
                f"{sum(1 for _, decision in receipts if decision == 'quarantine')} quarantined",
            ),
            ("patients", Patient.objects.count()),
            ("treatments", Treatment.objects.count()),
            ("transfers", kinds.get(MovementKind.TRANSFER_OUT, 0)),
            ("wastage write-offs", kinds.get(MovementKind.WASTAGE, 0)),
            ("adverse events", AdverseEvent.objects.count()),
        ]
        for label, value in rows:
            self.stdout.write(f"  {label:<32} {value}")
        self.stdout.write(
            "  Scans of released lots (GS1 text, for the treatment form and the API):"
        )
        released = Lot.objects.filter(status=LotStatus.RELEASED, product__gtin__isnull=False)
        for lot in released.select_related("product").order_by("lot_number"):
            self.stdout.write(
                f"    {lot.lot_number:<12} (01){lot.product.gtin}(17){lot.expires_on:%y%m%d}"
                f"(10){lot.lot_number}"
            )

    def _print_logins(self) -> None:
        site = settings.SITE_URL.rstrip("/")
        self.stdout.write(self.style.MIGRATE_HEADING("Demo logins (new passwords on every run)"))
        self.stdout.write(f"  {'role':<22} {'username':<20} password")
        for role, (user, password) in self.logins.items():
            self.stdout.write(f"  {Role(role).label:<22} {user.username:<20} {password}")
        for label, (user, password) in self.clinic_logins.items():
            self.stdout.write(f"  {'Clinic administrator':<22} {user.username:<20} {password}")
            self.stdout.write(f"    ({label})")
        self.stdout.write(f"  Pages:    {site}/  (sign in with any login above)")
        self.stdout.write(f"  Admin:    {site}/admin/  (back office)")
        self.stdout.write(f"  API docs: {site}/api/docs/")
