"""Products, source donors and their tests, lots with QC results and certificates, and release
decisions. Traceability records are never deleted (database triggers refuse it) and every change is
captured by django-pghistory inside PostgreSQL."""

from __future__ import annotations

import datetime
import re

import pgtrigger
from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from common.history import track_history
from common.triggers import no_delete
from common.validators import (
    validate_donor_code,
    validate_gtin,
    validate_isbt_din,
    validate_jurisdiction,
)
from lots.sec import PARTS as SEC_PARTS
from lots.sec import SecCodingSystem, SingleEuropeanCode
from providers.models import Manufacturer


class SourceKind(models.TextChoices):
    HUMAN = "human", _("Human-derived")
    ANIMAL = "animal", _("Animal-derived")
    PLANT = "plant", _("Plant-derived")
    SYNTHETIC = "synthetic", _("Synthetic / engineered")


class Tissue(models.TextChoices):
    ADIPOSE = "adipose", _("Adipose")
    BONE_MARROW = "bone_marrow", _("Bone marrow")
    UMBILICAL_CORD = "umbilical_cord", _("Umbilical cord")
    PLACENTA = "placenta", _("Placenta")
    AMNIOTIC = "amniotic", _("Amniotic")
    OTHER = "other", _("Other")


# Tissue recovered at birth: the donor is a neonate, so the birth mother is tested (1271.80(a)).
NEONATAL_TISSUES = (Tissue.UMBILICAL_CORD, Tissue.PLACENTA, Tissue.AMNIOTIC)


class Route(models.TextChoices):
    INJECTION = "injection", _("Injection (intradermal / subcutaneous)")
    TOPICAL = "topical", _("Topical")
    MICRONEEDLING = "microneedling", _("Microneedling")
    INTRAVENOUS = "intravenous", _("Intravenous")
    INTRA_ARTICULAR = "intra_articular", _("Intra-articular")
    INHALATION = "inhalation", _("Inhalation")


@track_history()
class Product(models.Model):
    manufacturer = models.ForeignKey(
        Manufacturer, on_delete=models.PROTECT, related_name="products"
    )
    name = models.CharField(max_length=200)
    gtin = models.CharField(
        max_length=14,
        unique=True,
        null=True,
        blank=True,
        validators=[validate_gtin],
        help_text="GS1 GTIN-14 with a valid check digit.",
    )
    source_kind = models.CharField(max_length=20, choices=SourceKind.choices)
    tissue = models.CharField(
        max_length=20, choices=Tissue.choices, blank=True, help_text="Human-derived products only."
    )
    permitted_routes = ArrayField(models.CharField(max_length=20, choices=Route.choices))
    storage_min_celsius = models.DecimalField(max_digits=5, decimal_places=1)
    storage_max_celsius = models.DecimalField(max_digits=5, decimal_places=1)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["manufacturer_id", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["manufacturer", "name"], name="product_unique_name_per_manufacturer"
            ),
            # The pair is the target of the lot's composite foreign key (see the migration).
            models.UniqueConstraint(fields=["id", "manufacturer"], name="product_id_manufacturer"),
            models.CheckConstraint(
                condition=(Q(source_kind=SourceKind.HUMAN) & ~Q(tissue=""))
                | (~Q(source_kind=SourceKind.HUMAN) & Q(tissue="")),
                name="product_tissue_only_for_human_source",
                violation_error_code="product_tissue_mismatch",
            ),
            models.CheckConstraint(
                condition=Q(storage_max_celsius__gte=F("storage_min_celsius")),
                name="product_storage_range_ordered",
                violation_error_code="product_storage_range_reversed",
            ),
            models.CheckConstraint(
                condition=Q(permitted_routes__len__gt=0),
                name="product_has_a_route",
                violation_error_code="product_routes_empty",
            ),
        ]
        triggers = [no_delete("product_no_delete")]

    def __str__(self) -> str:
        return self.name

    @property
    def is_human_derived(self) -> bool:
        return self.source_kind == SourceKind.HUMAN


class AuthorisationStatus(models.TextChoices):
    ALLOWED = "allowed", _("Allowed")
    BANNED = "banned", _("Banned")
    INVESTIGATIONAL = "investigational", _("Investigational use only")


@track_history()
class ProductAuthorisation(models.Model):
    """Whether a product may be used in a jurisdiction (a country, or a subdivision of one)."""

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="authorisations")
    jurisdiction = models.CharField(max_length=6, validators=[validate_jurisdiction])
    status = models.CharField(max_length=20, choices=AuthorisationStatus.choices)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["product_id", "jurisdiction"]
        constraints = [
            models.UniqueConstraint(
                fields=["product", "jurisdiction"], name="authorisation_unique_per_jurisdiction"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product} in {self.jurisdiction}: {self.get_status_display()}"


class RestrictionScope(models.TextChoices):
    ALL_USES = "all_uses", _("All uses")
    COSMETIC_USES = "cosmetic_uses", _("Cosmetic uses")


@track_history()
class SourceRestriction(models.Model):
    """A jurisdiction's ban on a source kind, e.g. human-origin material in cosmetics in the EU
    (Reg. 1223/2009 Annex II). Rules per jurisdiction are data, not code."""

    jurisdiction = models.CharField(max_length=6, validators=[validate_jurisdiction])
    source_kind = models.CharField(max_length=20, choices=SourceKind.choices)
    scope = models.CharField(max_length=20, choices=RestrictionScope.choices)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["jurisdiction", "source_kind"]
        constraints = [
            models.UniqueConstraint(
                fields=["jurisdiction", "source_kind"], name="source_restriction_unique"
            )
        ]

    def __str__(self) -> str:
        return (
            f"{self.jurisdiction}: no {self.get_source_kind_display().lower()}{self.scope_phrase()}"
        )

    def scope_phrase(self) -> str:
        return " for cosmetic use" if self.scope == RestrictionScope.COSMETIC_USES else ""

    def applies_to(
        self, *, source_kind: str, indication: str, cosmetic_indications: tuple[str, ...]
    ) -> bool:
        if source_kind != self.source_kind:
            return False
        return self.scope == RestrictionScope.ALL_USES or indication in cosmetic_indications


@track_history()
class Marker(models.Model):
    """An infectious-disease marker and the tissues whose donors must be tested for it.

    The required panel is data (seeded from 21 CFR 1271.85), so a quality manager can extend it.
    """

    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=200)
    required_for_tissues = ArrayField(
        models.CharField(max_length=20, choices=Tissue.choices), default=list, blank=True
    )
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class Eligibility(models.TextChoices):
    ELIGIBLE = "eligible", _("Eligible")
    INELIGIBLE = "ineligible", _("Ineligible")
    INCOMPLETE = "incomplete", _("Incomplete")


@track_history()
class Donor(models.Model):
    """A source donation. Its code relates the product to the donor without naming them."""

    code = models.CharField(max_length=32, unique=True, validators=[validate_donor_code])
    isbt_din = models.CharField(
        "ISBT 128 DIN",
        max_length=14,
        unique=True,
        null=True,
        blank=True,
        validators=[validate_isbt_din],
        help_text="13 characters and the ISO 7064 MOD 37-2 check character.",
    )
    tissue = models.CharField(max_length=20, choices=Tissue.choices)
    collection_date = models.DateField()
    specimen_date = models.DateField(help_text="Within 7 days of recovery.")
    birth_mother_tested = models.BooleanField(
        default=False,
        help_text="For tissue recovered at birth the birth mother's specimen is tested.",
    )
    testing_laboratory = models.CharField(max_length=200)
    eligibility = models.CharField(
        max_length=20, choices=Eligibility.choices, default=Eligibility.INCOMPLETE
    )
    eligibility_decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    eligibility_decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(specimen_date__gte=F("collection_date") - datetime.timedelta(days=7))
                & Q(specimen_date__lte=F("collection_date") + datetime.timedelta(days=7)),
                name="donor_specimen_within_7_days",
                violation_error_code="donor_specimen_out_of_window",
            ),
            models.CheckConstraint(
                condition=Q(eligibility=Eligibility.INCOMPLETE)
                | (
                    Q(eligibility_decided_by__isnull=False)
                    & Q(eligibility_decided_at__isnull=False)
                ),
                name="donor_eligibility_decision_signed",
                violation_error_code="donor_eligibility_unsigned",
            ),
        ]
        triggers = [no_delete("donor_no_delete")]

    def __str__(self) -> str:
        return self.code


class MarkerResultValue(models.TextChoices):
    NON_REACTIVE = "non_reactive", _("Non-reactive")
    REACTIVE = "reactive", _("Reactive")
    INDETERMINATE = "indeterminate", _("Indeterminate")


@track_history()
class DonorMarkerResult(models.Model):
    donor = models.ForeignKey(Donor, on_delete=models.PROTECT, related_name="marker_results")
    marker = models.ForeignKey(Marker, on_delete=models.PROTECT, related_name="results")
    result = models.CharField(max_length=20, choices=MarkerResultValue.choices)
    test_method = models.CharField(max_length=200, blank=True)
    tested_on = models.DateField()
    laboratory = models.CharField(max_length=200)

    class Meta:
        ordering = ["donor_id", "marker_id"]
        constraints = [
            models.UniqueConstraint(fields=["donor", "marker"], name="marker_result_unique"),
        ]
        triggers = [no_delete("marker_result_no_delete")]

    def __str__(self) -> str:
        return f"{self.donor} {self.marker.code}: {self.get_result_display()}"


class LotStatus(models.TextChoices):
    QUARANTINED = "quarantined", _("Quarantined")
    RELEASED = "released", _("Released")
    REJECTED = "rejected", _("Rejected")
    ON_HOLD = "on_hold", _("On hold")
    RECALLED = "recalled", _("Recalled")


class LotUnit(models.TextChoices):
    VIAL = "vial", _("Vial")
    SYRINGE = "syringe", _("Pre-filled syringe")
    AMPOULE = "ampoule", _("Ampoule")
    MILLILITRE = "ml", _("Millilitre")


class RegulatoryBasis(models.TextChoices):
    IND = "ind", _("IND (investigational new drug)")
    BLA = "bla", _("BLA (licensed biologic)")
    NONE = "none", _("None: not approved")


# GS1 application identifier (10) holds up to 20 characters of GS1's "character set 82".
_LOT_NUMBER = RegexValidator(
    re.compile(r"^[!\"%&'()*+,\-./0-9:;<=>?A-Z_a-z]{1,20}$"),
    "A lot number is 1-20 characters of the GS1 AI (10) character set (no spaces).",
    code="lot_number_invalid",
)


@track_history()
class Lot(models.Model):
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="lots")
    # Denormalised so the database can hold lot numbers unique per manufacturer; a composite
    # foreign key (product_id, manufacturer_id) keeps it equal to the product's manufacturer.
    manufacturer = models.ForeignKey(Manufacturer, on_delete=models.PROTECT, related_name="lots")
    lot_number = models.CharField(max_length=20, validators=[_LOT_NUMBER])
    manufactured_on = models.DateField()
    expires_on = models.DateField()
    donors = models.ManyToManyField(Donor, through="LotDonor", related_name="lots")
    quantity = models.PositiveIntegerField()
    unit = models.CharField(max_length=10, choices=LotUnit.choices, default=LotUnit.VIAL)
    regulatory_basis = models.CharField(max_length=10, choices=RegulatoryBasis.choices)
    regulatory_number = models.CharField(
        max_length=40, blank=True, help_text="IND or BLA number; empty when the basis is none."
    )
    status = models.CharField(
        max_length=20, choices=LotStatus.choices, default=LotStatus.QUARANTINED
    )
    status_changed_at = models.DateTimeField()
    release_effective_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="From when the latest release holds: the signing time, or the effective date a "
        "retrospective release states. No treatment dated before it is accepted.",
    )
    # The Single European Code (lots.sec): all parts or none; the expiry is the lot's own.
    sec_issuing_country = models.CharField(max_length=2, blank=True, default="", db_default="")
    sec_establishment_code = models.CharField(max_length=6, blank=True, default="", db_default="")
    sec_donation_number = models.CharField(max_length=13, blank=True, default="", db_default="")
    sec_coding_system = models.CharField(
        max_length=1, choices=SecCodingSystem.choices, blank=True, default="", db_default=""
    )
    sec_product_number = models.CharField(max_length=7, blank=True, default="", db_default="")
    sec_split_number = models.CharField(max_length=3, blank=True, default="", db_default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-manufactured_on", "lot_number"]
        constraints = [
            models.UniqueConstraint(
                fields=["manufacturer", "lot_number"], name="lot_number_unique_per_manufacturer"
            ),
            models.CheckConstraint(
                condition=Q(expires_on__gt=F("manufactured_on")),
                name="lot_expires_after_manufacture",
                violation_error_code="lot_dates_reversed",
            ),
            models.CheckConstraint(
                condition=Q(quantity__gt=0),
                name="lot_quantity_positive",
                violation_error_code="lot_quantity_not_positive",
            ),
            models.CheckConstraint(
                condition=(Q(regulatory_basis=RegulatoryBasis.NONE) & Q(regulatory_number=""))
                | (~Q(regulatory_basis=RegulatoryBasis.NONE) & ~Q(regulatory_number="")),
                name="lot_regulatory_number_matches_basis",
                violation_error_code="lot_regulatory_number_mismatch",
            ),
            models.CheckConstraint(
                condition=Q(**{f"sec_{name}": "" for name in SEC_PARTS})
                | Q(
                    **{
                        f"sec_{name}__regex": f"^{pattern}$"
                        for name, (_, pattern) in SEC_PARTS.items()
                    }
                ),
                name="lot_sec_complete_and_well_formed",
                violation_error_code="sec_invalid",
            ),
            models.UniqueConstraint(
                fields=[f"sec_{name}" for name in SEC_PARTS],
                condition=~Q(sec_issuing_country=""),
                name="lot_sec_unique",
                violation_error_code="sec_taken",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "expires_on"], name="lot_status_expiry"),
            models.Index(
                fields=["sec_issuing_country", "sec_establishment_code", "sec_donation_number"],
                condition=~Q(sec_issuing_country=""),
                name="lot_sec_donation",
            ),
        ]
        triggers = [no_delete("lot_no_delete")]
        permissions = [("release_lot", "Can release or reject a lot (quality manager)")]

    def __str__(self) -> str:
        return f"{self.lot_number} ({self.product})"

    def is_expired(self, *, on: datetime.date) -> bool:
        """A lot is usable through its expiry date and expired from the day after."""
        return on > self.expires_on

    @property
    def sec(self) -> SingleEuropeanCode | None:
        """The lot's Single European Code, if it carries one."""
        if not self.sec_issuing_country:
            return None
        return SingleEuropeanCode(
            issuing_country=self.sec_issuing_country,
            establishment_code=self.sec_establishment_code,
            donation_number=self.sec_donation_number,
            coding_system=self.sec_coding_system,
            product_number=self.sec_product_number,
            split_number=self.sec_split_number,
            expires_on=self.expires_on,
        )


@track_history()
class LotDonor(models.Model):
    lot = models.ForeignKey(Lot, on_delete=models.PROTECT, related_name="lot_donors")
    donor = models.ForeignKey(Donor, on_delete=models.PROTECT, related_name="lot_donors")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["lot", "donor"], name="lot_donor_unique")]
        triggers = [no_delete("lot_donor_no_delete")]

    def __str__(self) -> str:
        return f"lot {self.lot.lot_number} from donor {self.donor}"


class QcKind(models.TextChoices):
    QUANTITATIVE = "quantitative", _("Quantitative")
    QUALITATIVE = "qualitative", _("Qualitative")


class QcOutcome(models.TextChoices):
    NOT_DETECTED = "not_detected", _("Not detected / negative")
    DETECTED = "detected", _("Detected / positive")


@track_history()
class QcTest(models.Model):
    """A lot release test: sterility, mycoplasma, endotoxin, particle concentration and size, EV
    markers. What passes is in QcSpecification."""

    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=QcKind.choices)
    unit = models.CharField(max_length=30, blank=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


@track_history()
class QcSpecification(models.Model):
    """What a test must show for release. A row without a product is the network default; a row for
    a product overrides it."""

    test = models.ForeignKey(QcTest, on_delete=models.PROTECT, related_name="specifications")
    product = models.ForeignKey(
        Product,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="qc_specifications",
    )
    required = models.BooleanField(default=True)
    min_value = models.DecimalField(max_digits=20, decimal_places=4, null=True, blank=True)
    max_value = models.DecimalField(max_digits=20, decimal_places=4, null=True, blank=True)
    expected_outcome = models.CharField(max_length=20, choices=QcOutcome.choices, blank=True)

    class Meta:
        ordering = ["test_id", "product_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["test", "product"], name="qc_spec_unique_per_product", nulls_distinct=False
            ),
            models.CheckConstraint(
                condition=Q(min_value__isnull=True)
                | Q(max_value__isnull=True)
                | Q(max_value__gte=F("min_value")),
                name="qc_spec_range_ordered",
                violation_error_code="qc_spec_range_reversed",
            ),
            models.CheckConstraint(
                condition=~Q(expected_outcome="")
                | Q(min_value__isnull=False)
                | Q(max_value__isnull=False),
                name="qc_spec_has_acceptance_criterion",
                violation_error_code="qc_spec_empty",
            ),
        ]

    def __str__(self) -> str:
        scope = self.product or "all products"
        return f"{self.test} ({scope}): {self.describe()}"

    def describe(self) -> str:
        if self.expected_outcome:
            return str(QcOutcome(self.expected_outcome).label)
        unit = f" {self.test.unit}" if self.test.unit else ""
        if self.min_value is not None and self.max_value is not None:
            return f"{self.min_value}-{self.max_value}{unit}"
        if self.max_value is not None:
            return f"<= {self.max_value}{unit}"
        return f">= {self.min_value}{unit}"


@track_history()
class LotQcResult(models.Model):
    lot = models.ForeignKey(Lot, on_delete=models.PROTECT, related_name="qc_results")
    test = models.ForeignKey(QcTest, on_delete=models.PROTECT, related_name="results")
    numeric_value = models.DecimalField(max_digits=20, decimal_places=4, null=True, blank=True)
    outcome = models.CharField(max_length=20, choices=QcOutcome.choices, blank=True)
    tested_on = models.DateField()
    laboratory = models.CharField(max_length=200)
    method = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["lot_id", "test_id"]
        constraints = [
            models.UniqueConstraint(fields=["lot", "test"], name="qc_result_unique_per_lot"),
            models.CheckConstraint(
                condition=(Q(numeric_value__isnull=False) & Q(outcome=""))
                | (Q(numeric_value__isnull=True) & ~Q(outcome="")),
                name="qc_result_value_or_outcome",
                violation_error_code="qc_result_value_xor_outcome",
            ),
        ]
        triggers = [no_delete("qc_result_no_delete")]

    def __str__(self) -> str:
        value = self.outcome or self.numeric_value
        return f"lot {self.lot.lot_number} {self.test.code}: {value}"


class CertificateKind(models.TextChoices):
    COA = "coa", _("Certificate of analysis (lot)")
    GMP = "gmp", _("GMP certificate (manufacturer)")
    ISO_13485 = "iso13485", _("ISO 13485 certificate (manufacturer)")


MANUFACTURER_CERTIFICATE_KINDS = (CertificateKind.GMP, CertificateKind.ISO_13485)


def certificate_upload_to(instance: Certificate, filename: str) -> str:
    return f"certificates/{instance.sha256[:2]}/{instance.sha256}.pdf"


@track_history()
class Certificate(models.Model):
    """A certificate and its PDF. Never changed once stored: a correction is a new certificate that
    supersedes this one."""

    kind = models.CharField(max_length=10, choices=CertificateKind.choices)
    manufacturer = models.ForeignKey(
        Manufacturer, on_delete=models.PROTECT, related_name="certificates"
    )
    lot = models.ForeignKey(
        Lot, on_delete=models.PROTECT, null=True, blank=True, related_name="certificates"
    )
    issuer = models.CharField(max_length=200)
    number = models.CharField(max_length=100)
    valid_from = models.DateField()
    valid_until = models.DateField(null=True, blank=True)
    file = models.FileField(upload_to=certificate_upload_to, max_length=200)
    sha256 = models.CharField(max_length=64)
    size_bytes = models.PositiveIntegerField()
    original_filename = models.CharField(max_length=255, blank=True)
    supersedes = models.OneToOneField(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="superseded_by",
    )
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    uploaded_at = models.DateTimeField()

    class Meta:
        ordering = ["-uploaded_at"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(kind=CertificateKind.COA) & Q(lot__isnull=False))
                | (~Q(kind=CertificateKind.COA) & Q(lot__isnull=True)),
                name="certificate_lot_only_for_coa",
                violation_error_code="certificate_lot_mismatch",
            ),
            models.CheckConstraint(
                condition=Q(valid_until__isnull=True) | Q(valid_until__gte=F("valid_from")),
                name="certificate_validity_ordered",
                violation_error_code="certificate_dates_reversed",
            ),
            models.CheckConstraint(
                condition=Q(sha256__regex=r"^[0-9a-f]{64}$"),
                name="certificate_sha256_hex",
                violation_error_code="certificate_sha256_invalid",
            ),
        ]
        indexes = [models.Index(fields=["manufacturer", "kind"], name="certificate_manufacturer")]
        triggers = [
            no_delete("certificate_no_delete"),
            pgtrigger.Protect(name="certificate_immutable", operation=pgtrigger.Update),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.number}"

    def is_valid_on(self, day: datetime.date) -> bool:
        return self.valid_from <= day and (self.valid_until is None or day <= self.valid_until)


class LotAction(models.TextChoices):
    RELEASE = "release", _("Release")
    REJECT = "reject", _("Reject")
    HOLD = "hold", _("Put on hold")
    RECALL = "recall", _("Recall")


class SignatureMeaning(models.TextChoices):
    APPROVAL = "approval", _("Approval: the lot meets its release criteria")
    REJECTION = "rejection", _("Rejection: the lot must not be used")
    REVIEW = "review", _("Review")
    RESPONSIBILITY = "responsibility", _("Responsibility")


@track_history()
class LotStatusChange(models.Model):
    """A signed decision on a lot (21 CFR Part 11): who, when, what it means, why, and a digest that
    binds the signature to the lot's content at that moment."""

    lot = models.ForeignKey(Lot, on_delete=models.PROTECT, related_name="status_changes")
    action = models.CharField(max_length=10, choices=LotAction.choices)
    from_status = models.CharField(max_length=20, choices=LotStatus.choices)
    to_status = models.CharField(max_length=20, choices=LotStatus.choices)
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    signer_name = models.CharField(max_length=300)
    signed_at = models.DateTimeField()
    meaning = models.CharField(max_length=20, choices=SignatureMeaning.choices)
    reason = models.TextField()
    record_digest = models.CharField(max_length=64)
    # Filled with signed_at when an insert leaves it out (bulk loaders), by a trigger that also
    # fires under session_replication_role = replica (migration 0009).
    effective_at = models.DateTimeField(
        help_text="From when the change holds: the signing time, or before it for a "
        "retrospective release."
    )
    retrospective = models.BooleanField(default=False, db_default=False)

    class Meta:
        ordering = ["-signed_at"]
        get_latest_by = "signed_at"
        constraints = [
            models.CheckConstraint(
                condition=~Q(reason=""),
                name="status_change_has_reason",
                violation_error_code="reason_required",
            ),
            models.CheckConstraint(
                condition=Q(retrospective=False, effective_at=F("signed_at"))
                | Q(retrospective=True, effective_at__lt=F("signed_at"), action="release"),
                name="status_change_effective_not_after_signing",
                violation_error_code="status_change_effective_invalid",
            ),
        ]
        triggers = [
            no_delete("status_change_no_delete"),
            pgtrigger.Protect(name="status_change_immutable", operation=pgtrigger.Update),
        ]

    def __str__(self) -> str:
        moved = f"{self.from_status} -> {self.to_status}"
        return f"lot {self.lot.lot_number} {moved} by {self.signer_name}"

    @property
    def effective_day(self) -> datetime.date:
        """The network's day (UTC) the change took effect, as the release gate judges days."""
        return self.effective_at.astimezone(datetime.UTC).date()
