"""Reads about products, donors and lots, and the release gate's evaluation (a read: it changes
nothing; `lots.services.lot_release` acts on it)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Case, CharField, F, Func, Prefetch, QuerySet, Value, When
from django.db.models.functions import Concat
from django.utils import timezone
from django.utils.translation import gettext as _

from common.errors import Problem
from lots.models import (
    MANUFACTURER_CERTIFICATE_KINDS,
    NEONATAL_TISSUES,
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
    QcKind,
    QcSpecification,
    RegulatoryBasis,
)
from lots.sec import PARTS as SEC_PARTS
from lots.sec import search_parts
from providers.models import Clinic

RELEASABLE_FROM = (LotStatus.QUARANTINED, LotStatus.ON_HOLD)


def product_list() -> QuerySet[Product]:
    return Product.objects.select_related("manufacturer").prefetch_related("authorisations")


def donor_list() -> QuerySet[Donor]:
    return Donor.objects.select_related("eligibility_decided_by").prefetch_related(
        Prefetch("marker_results", queryset=DonorMarkerResult.objects.select_related("marker"))
    )


def lot_list() -> QuerySet[Lot]:
    return Lot.objects.select_related("product", "manufacturer").prefetch_related(
        Prefetch("donors", queryset=Donor.objects.only("id", "code")),
    )


def lot_get(*, lot_id: int) -> Lot:
    return (
        lot_list()
        .prefetch_related(
            Prefetch("qc_results", queryset=LotQcResult.objects.select_related("test")),
            "certificates",
            "status_changes",
        )
        .get(pk=lot_id)
    )


def certificate_list() -> QuerySet[Certificate]:
    return Certificate.objects.select_related("manufacturer", "lot", "superseded_by")


def current_certificates() -> QuerySet[Certificate]:
    """Certificates that no newer version supersedes."""
    return Certificate.objects.filter(superseded_by__isnull=True)


def qc_specifications_for(product: Product) -> dict[int, QcSpecification]:
    """The specification per test for a product: its own row where it has one, else the default."""
    specs: dict[int, QcSpecification] = {}
    rows = QcSpecification.objects.filter(product__in=[product]) | QcSpecification.objects.filter(
        product__isnull=True
    )
    for spec in rows.select_related("test").order_by("product_id"):
        # Product rows sort before the null default in PostgreSQL's ascending order, so the first
        # spec seen for a test wins.
        specs.setdefault(spec.test_id, spec)
    return specs


def qc_result_passes(spec: QcSpecification, result: LotQcResult) -> bool:
    if spec.test.kind == QcKind.QUALITATIVE:
        return bool(spec.expected_outcome) and result.outcome == spec.expected_outcome
    if result.numeric_value is None:
        return False
    value = Decimal(result.numeric_value)
    if spec.min_value is not None and value < spec.min_value:
        return False
    return not (spec.max_value is not None and value > spec.max_value)


def required_markers_for(tissue: str, markers: list[Marker]) -> list[Marker]:
    return [marker for marker in markers if marker.active and tissue in marker.required_for_tissues]


@dataclass
class ReleaseCheck:
    lot: Lot
    on: datetime.date
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def releasable(self) -> bool:
        return not self.problems


def lot_release_check(
    *, lot: Lot, on: datetime.date | None = None, retrospective: bool = False
) -> ReleaseCheck:
    """Evaluate every release requirement of DESIGN rule 1 and report *all* that are unmet.

    Expiry and certificates are judged on `on` (default: today). A retrospective release judges on
    the day it states, and also refuses evidence dated after it: it could not have supported the
    release then.
    Runs a fixed number of queries whatever the number of donors, markers and tests.
    """
    # The network's day (UTC): releasing a lot is not any one clinic's act.
    today = on or timezone.localdate()
    evidence_until = today if retrospective else None
    check = ReleaseCheck(lot=lot, on=today)
    product = Product.objects.select_related("manufacturer").get(pk=lot.product_id)
    problems = check.problems

    if lot.status not in RELEASABLE_FROM:
        problems.append(
            Problem(
                "lot_status_not_releasable",
                _("A %(status)s lot cannot be released; only quarantined or on-hold lots can.")
                % {"status": lot.get_status_display().lower()},
                "status",
            )
        )
    if lot.is_expired(on=today):
        problems.append(
            Problem(
                "lot_expired",
                _("The lot expired on %(date)s.") % {"date": lot.expires_on.isoformat()},
                "expires_on",
            )
        )
    if product.is_human_derived:
        _check_donors(lot, product, problems, evidence_until)
    _check_qc(lot, product, problems, evidence_until)
    _check_certificates(lot, product, today, problems, retrospective=retrospective)
    if lot.regulatory_basis == RegulatoryBasis.NONE:
        check.warnings.append(
            Problem(
                "regulatory_basis_none",
                _(
                    "No IND or BLA: the product is not approved; patients must be told so when "
                    "they consent."
                ),
                "regulatory_basis",
            )
        )
    return check


def _dated_after(day: datetime.date | None, until: datetime.date | None) -> bool:
    return until is not None and day is not None and day > until


def _evidence_after(what: str, day: datetime.date, until: datetime.date, where: str) -> Problem:
    return Problem(
        "release_evidence_after_effective_date",
        _("%(what)s is dated %(day)s, after the release's effective date %(until)s.")
        % {"what": what, "day": day.isoformat(), "until": until.isoformat()},
        where,
    )


def _check_donors(
    lot: Lot, product: Product, problems: list[Problem], until: datetime.date | None
) -> None:
    donors = list(
        Donor.objects.filter(lot_donors__lot=lot)
        .prefetch_related(
            Prefetch("marker_results", queryset=DonorMarkerResult.objects.select_related("marker"))
        )
        .order_by("code")
    )
    if not donors:
        problems.append(
            Problem(
                "donor_missing",
                _("A human-derived lot must name the donor(s) whose tissue it was made from."),
                "donors",
            )
        )
        return
    markers = list(Marker.objects.filter(active=True).order_by("code"))
    for donor in donors:
        where = f"donors.{donor.code}"
        if donor.tissue != product.tissue:
            problems.append(
                Problem(
                    "donor_tissue_mismatch",
                    _(
                        "Donor %(donor)s gave %(tissue)s tissue but the product is made from "
                        "%(product_tissue)s."
                    )
                    % {
                        "donor": donor.code,
                        "tissue": donor.get_tissue_display().lower(),
                        "product_tissue": product.get_tissue_display().lower(),
                    },
                    f"{where}.tissue",
                )
            )
        if donor.eligibility != Eligibility.ELIGIBLE:
            problems.append(
                Problem(
                    "donor_not_eligible",
                    _("Donor %(donor)s is %(eligibility)s, not eligible.")
                    % {
                        "donor": donor.code,
                        "eligibility": donor.get_eligibility_display().lower(),
                    },
                    f"{where}.eligibility",
                )
            )
        if donor.tissue in NEONATAL_TISSUES and not donor.birth_mother_tested:
            problems.append(
                Problem(
                    "donor_birth_mother_not_tested",
                    _(
                        "Donor %(donor)s: tissue recovered at birth needs the birth mother's "
                        "specimen tested."
                    )
                    % {"donor": donor.code},
                    f"{where}.birth_mother_tested",
                )
            )
        for label, day, part in (
            (
                _("Donor %(donor)s's collection") % {"donor": donor.code},
                donor.collection_date,
                "collection_date",
            ),
            (
                _("Donor %(donor)s's specimen") % {"donor": donor.code},
                donor.specimen_date,
                "specimen_date",
            ),
        ):
            if until is not None and _dated_after(day, until):
                problems.append(_evidence_after(label, day, until, f"{where}.{part}"))
        results = {result.marker_id: result for result in donor.marker_results.all()}
        for marker in required_markers_for(donor.tissue, markers):
            result = results.get(marker.pk)
            if result is None:
                problems.append(
                    Problem(
                        "donor_marker_missing",
                        _("Donor %(donor)s has no %(marker)s result.")
                        % {"donor": donor.code, "marker": marker.name},
                        f"{where}.markers.{marker.code}",
                    )
                )
            elif until is not None and _dated_after(result.tested_on, until):
                problems.append(
                    _evidence_after(
                        _("Donor %(donor)s's %(marker)s result")
                        % {"donor": donor.code, "marker": marker.name},
                        result.tested_on,
                        until,
                        f"{where}.markers.{marker.code}",
                    )
                )
            elif result.result != MarkerResultValue.NON_REACTIVE:
                problems.append(
                    Problem(
                        "donor_marker_reactive",
                        _("Donor %(donor)s tested %(result)s for %(marker)s.")
                        % {
                            "donor": donor.code,
                            "result": result.get_result_display().lower(),
                            "marker": marker.name,
                        },
                        f"{where}.markers.{marker.code}",
                    )
                )


def _check_qc(
    lot: Lot, product: Product, problems: list[Problem], until: datetime.date | None
) -> None:
    specs = qc_specifications_for(product)
    results = {result.test_id: result for result in LotQcResult.objects.filter(lot=lot)}
    for spec in sorted(specs.values(), key=lambda s: s.test.code):
        result = results.get(spec.test_id)
        where = f"qc.{spec.test.code}"
        if result is None:
            if spec.required:
                problems.append(
                    Problem(
                        "qc_result_missing",
                        _("No %(test)s result on file.") % {"test": spec.test.name},
                        where,
                    )
                )
            continue
        if until is not None and _dated_after(result.tested_on, until):
            problems.append(
                _evidence_after(
                    _("The %(test)s result") % {"test": spec.test.name},
                    result.tested_on,
                    until,
                    where,
                )
            )
        elif not qc_result_passes(spec, result):
            shown = (
                result.get_outcome_display()
                if result.outcome
                else f"{result.numeric_value} {spec.test.unit}".strip()
            )
            problems.append(
                Problem(
                    "qc_out_of_spec",
                    _("%(test)s is %(shown)s; the specification is %(specification)s.")
                    % {"test": spec.test.name, "shown": shown, "specification": spec.describe()},
                    where,
                )
            )


def _check_certificates(
    lot: Lot,
    product: Product,
    today: datetime.date,
    problems: list[Problem],
    *,
    retrospective: bool,
) -> None:
    certificates = list(
        current_certificates().filter(lot=lot, kind=CertificateKind.COA)
        | current_certificates().filter(
            manufacturer_id=product.manufacturer_id,
            kind__in=MANUFACTURER_CERTIFICATE_KINDS,
            lot__isnull=True,
        )
    )
    analyses = [c for c in certificates if c.kind == CertificateKind.COA]
    if not analyses:
        problems.append(
            Problem("coa_missing", _("No certificate of analysis for this lot is on file."), "coa")
        )
    elif retrospective and all(c.valid_from > today for c in analyses):
        problems.append(
            _evidence_after(
                _("The certificate of analysis"),
                min(c.valid_from for c in analyses),
                today,
                "coa",
            )
        )
    quality = [c for c in certificates if c.kind in MANUFACTURER_CERTIFICATE_KINDS]
    name = product.manufacturer.legal_name
    if not quality:
        problems.append(
            Problem(
                "gmp_certificate_missing",
                _("No GMP or ISO 13485 certificate for %(manufacturer)s is on file.")
                % {"manufacturer": name},
                "gmp_certificate",
            )
        )
    elif not any(c.is_valid_on(today) for c in quality):
        latest = max((c.valid_until for c in quality if c.valid_until), default=None)
        if latest is not None and latest < today:
            code, message = (
                "gmp_certificate_expired",
                _("%(manufacturer)s's GMP certificate expired on %(date)s.")
                % {"manufacturer": name, "date": latest},
            )
        else:
            code, message = (
                "gmp_certificate_not_yet_valid",
                _("%(manufacturer)s's GMP certificate is not yet valid.") % {"manufacturer": name},
            )
        problems.append(Problem(code, message, "gmp_certificate"))


def lot_use_problems(*, lot: Lot, clinic: Clinic, day: datetime.date, where: str) -> list[Problem]:
    """What the lot itself forbids of a use at `clinic` on the clinic's `day`, beyond its status
    and expiry: a use dated before the release took effect (a retrospective release holds from
    the day it states, not before), and a human-derived lot without a Single European Code at a
    clinic whose jurisdiction asks for one. Reads nothing: the lot (with its product) and the
    clinic are at hand."""
    problems: list[Problem] = []
    effective = lot.release_effective_at
    if effective is not None and day < effective.astimezone(datetime.UTC).date():
        problems.append(
            Problem(
                "treatment_before_release",
                _(
                    "Lot %(lot)s was released with effect from %(released_on)s, after the date of "
                    "this treatment."
                )
                % {
                    "lot": lot.lot_number,
                    "released_on": effective.astimezone(datetime.UTC).date().isoformat(),
                },
                where,
            )
        )
    if clinic.requires_sec and lot.product.is_human_derived and lot.sec is None:
        problems.append(
            Problem(
                "lot_sec_missing",
                _(
                    "%(clinic)s requires the Single European Code on human tissues and cells; lot "
                    "%(lot)s has none."
                )
                % {"clinic": clinic.name, "lot": lot.lot_number},
                where,
            )
        )
    return problems


def lots_matching_sec(lots: QuerySet[Lot], value: str) -> QuerySet[Lot]:
    """The lots whose Single European Code starts with `value`: a full SEC, its donation
    identification sequence, or a leading part of it, with or without the SEC prefix and the
    spaces of the eye-readable form. A complete part matches exactly (on the donation index);
    an incomplete last part matches as a prefix; a string no SEC starts with matches nothing."""
    parts = search_parts(value)
    if parts is None:
        return lots.none()
    expiry = parts.pop("expiry", "")
    conditions: dict[str, str | datetime.date] = {}
    for name, piece in parts.items():
        complete = len(piece) == SEC_PARTS[name][0]
        conditions[f"sec_{name}" if complete else f"sec_{name}__startswith"] = piece
    if len(expiry) == len("YYYYMMDD"):
        try:
            conditions["expires_on"] = datetime.date(
                int(expiry[:4]), int(expiry[4:6]), int(expiry[6:])
            )
        except ValueError:
            return lots.none()
    return lots.filter(**conditions)


def sec_eye_readable(path: str = "") -> Case:
    """The eye-readable Single European Code of the lot at `path` (`lot__` from a treatment line),
    as `SingleEuropeanCode.eye_readable` writes it, computed by PostgreSQL (for a CSV that the
    database writes); NULL for a lot without one (all of whose parts are empty)."""
    parts = [F(f"{path}sec_{name}") for name in SEC_PARTS]
    expiry = Func(
        F(f"{path}expires_on"), Value("YYYYMMDD"), function="to_char", output_field=CharField()
    )
    return Case(
        When(**{f"{path}sec_issuing_country": ""}, then=Value(None)),
        default=Concat(
            Value("SEC "), *parts[:3], Value(" "), *parts[3:], expiry, output_field=CharField()
        ),
        output_field=CharField(),
    )
