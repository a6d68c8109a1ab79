"""The demo story that `manage.py seed_demo` loads: plain data, plus the two small generators it
needs (a real one-page PDF, an ISBT 128 donation number with its check character). Days are
relative to the day the command runs."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pypdf import PdfWriter

from common.validators import isbt_din_check_character
from lots.models import (
    AuthorisationStatus,
    CertificateKind,
    LotStatus,
    QcOutcome,
    RegulatoryBasis,
    RestrictionScope,
    Route,
    SourceKind,
    Tissue,
)
from providers.models import Profession, Role


def demo_pdf(title: str) -> io.BytesIO:
    """A real one-page PDF; the title goes into the metadata, so each certificate hashes apart."""
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.add_metadata({"/Title": title, "/Subject": "Demo certificate - not a real document"})
    buffer = io.BytesIO()
    writer.write(buffer)
    buffer.seek(0)
    return buffer


def gtin(body: str) -> str:
    """A GTIN-14 from its first 13 digits and the GS1 mod-10 check digit."""
    total = sum(int(digit) * (3 if i % 2 == 0 else 1) for i, digit in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)


def isbt_din(sequence: int) -> str:
    """A DIN of the demo facility code for this year's collections: 13 characters and the check."""
    body = f"A9999{25:02d}{sequence:06d}"
    return body + isbt_din_check_character(body)


# kind, number, issuer, valid from and valid until in days from today
CertificateRow = tuple[str, str, str, int, int]
# number, jurisdiction, valid from and valid until in days from today
LicenceRow = tuple[str, str, int, int]

USERS: list[tuple[Role, str, str, str]] = [
    (Role.QUALITY_MANAGER, "demo-quality", "Quinn", "Quality"),
    (Role.CLINIC_ADMINISTRATOR, "demo-clinic-admin", "Casey", "Admin"),
    (Role.CLINICIAN, "demo-clinician", "Maria", "Alvarez"),
    (Role.AUDITOR, "demo-auditor", "Avery", "Auditor"),
]

# key, legal name, country, registration, (certificate kind, number, issuer, from, until days)
MANUFACTURERS: list[tuple[str, str, str, str, CertificateRow]] = [
    (
        "helix",
        "Helix Biologics Inc.",
        "US",
        "3012345678",
        (CertificateKind.GMP, "GMP-HLX-2025", "FDA (establishment inspection)", -200, 530),
    ),
    (
        "nord",
        "NordVesikel GmbH",
        "DE",
        "DE-HE-0815",
        (CertificateKind.ISO_13485, "ISO13485-NV-7731", "TUV SUD Product Service", -300, 800),
    ),
    (
        # The expired GMP certificate: every lot of this manufacturer fails the release gate.
        "pacific",
        "Pacific Exo Labs LLC",
        "US",
        "3098765432",
        (CertificateKind.GMP, "GMP-PXL-2022", "FDA (establishment inspection)", -1100, -35),
    ),
]

CLINICS: list[tuple[str, str, str, str, list[tuple[str, str]]]] = [
    (
        "tx",
        "Lone Star Aesthetics",
        "US-TX",
        "2100 Ross Avenue, Dallas, TX 75201",
        [
            ("Front desk", "frontdesk@lonestar-aesthetics.example"),
            ("Medical director", "director@lonestar-aesthetics.example"),
        ],
    ),
    (
        "ca",
        "Bayview Skin & Laser",
        "US-CA",
        "500 Howard Street, San Francisco, CA 94105",
        [("Clinic manager", "manager@bayview-skin.example")],
    ),
    (
        "de",
        "Hautzentrum am Main",
        "DE",
        "Zeil 10, 60313 Frankfurt am Main",
        [("Praxisleitung", "praxis@hautzentrum-main.example")],
    ),
]

# Each clinic's time zone (IANA), in which its calendar days are judged: lot expiry on the day of
# treatment, a receipt's date. Kept apart from CLINICS, whose rows seed_demo unpacks as they are.
CLINIC_TIME_ZONES: dict[str, str] = {
    "tx": "America/Chicago",
    "ca": "America/Los_Angeles",
    "de": "Europe/Berlin",
}

# The language each clinic's recall notices are written in (and its staff's pages default to).
CLINIC_LANGUAGES: dict[str, str] = {"tx": "en", "ca": "en", "de": "de"}

# The administrators of the other two clinics: they receive stock and record treatments in the
# story, and have no login (clinic key, username, first name, last name).
CLINIC_STAFF: list[tuple[str, str, str, str]] = [
    ("ca", "bayview-admin", "Bea", "Morales"),
    ("de", "hautzentrum-admin", "Hanna", "Becker"),
]

# jurisdiction, source kind, scope, note: rules of a jurisdiction, whatever the product
SOURCE_RESTRICTIONS: list[tuple[str, str, str, str]] = [
    (
        "DE",
        SourceKind.HUMAN,
        RestrictionScope.COSMETIC_USES,
        "EU Cosmetics Regulation (EC) 1223/2009 Annex II entry 416: cells, tissues or products "
        "of human origin are prohibited in cosmetic products.",
    ),
]

CONSENT_TEXT: dict[str, Any] = {
    "code": "exosome-informed-consent",
    "version": 1,
    "title": "Exosome treatment: informed consent",
    "body": (
        "No exosome product is approved by the U.S. Food and Drug Administration (FDA public "
        "safety notification, 6 December 2019). Products made from human cells or tissue carry a "
        "risk of viral or bacterial contamination, and their quality varies between "
        "manufacturers and lots. You have been told the product, its lot and its regulatory "
        "basis (an investigational new drug application, or none), what the treatment is meant "
        "to achieve, its known risks (redness, swelling, infection, allergic reaction) and the "
        "alternatives. The clinic records the lot used so that you can be contacted if it is "
        "recalled. You may refuse or stop the treatment at any time."
    ),
    "active": True,
}

# name, profession, is the demo clinician's practitioner record, licences (number, where, days),
# keys of the clinics the practitioner practises at
PRACTITIONERS: list[tuple[str, str, bool, list[LicenceRow], tuple[str, ...]]] = [
    ("Dr. Maria Alvarez", Profession.PHYSICIAN, True, [("TX-Q8841", "US-TX", -900, 500)], ("tx",)),
    (
        "Jordan Lee",
        Profession.NURSE_PRACTITIONER,
        False,
        [("CA-NP-95512", "US-CA", -400, 320)],
        ("ca",),
    ),
    (
        "Dr. Lena Vogel",
        Profession.PHYSICIAN,
        False,
        [("DE-HE-2019-0471", "DE", -2000, 3000)],
        ("de",),
    ),
    # A lapsed licence: treatments by this nurse are refused until it is renewed.
    (
        "Sam Rivera",
        Profession.REGISTERED_NURSE,
        False,
        [("TX-RN-771204", "US-TX", -800, -20)],
        ("tx",),
    ),
    ("Dr. Priya Shah", Profession.PHYSICIAN, False, [("TX-R2231", "US-TX", -1500, 700)], ("tx",)),
    (
        "Dr. Ethan Brooks",
        Profession.PHYSICIAN,
        False,
        [("CA-A139920", "US-CA", -600, 400)],
        ("ca",),
    ),
]

_FROZEN = {"storage_min_celsius": Decimal("-80.0"), "storage_max_celsius": Decimal("-60.0")}
_EU_BAN = (
    "DE",
    AuthorisationStatus.BANNED,
    "EU Cosmetics Regulation (EC) 1223/2009 Annex II: no human cells or tissues.",
)

# key, manufacturer key, name, source, tissue, product fields (authorisations: jurisdiction rows)
PRODUCTS: list[tuple[str, str, str, str, str, dict[str, Any]]] = [
    (
        "helix_adipose",
        "helix",
        "Helix AD-Exo Serum",
        SourceKind.HUMAN,
        Tissue.ADIPOSE,
        {
            "gtin": "09506000134352",
            "permitted_routes": [Route.TOPICAL, Route.MICRONEEDLING],
            **_FROZEN,
            "authorisations": [_EU_BAN],
        },
    ),
    (
        "helix_cord",
        "helix",
        "Helix UC-Exo Injectable",
        SourceKind.HUMAN,
        Tissue.UMBILICAL_CORD,
        {
            "gtin": gtin("0950600013437"),
            "permitted_routes": [Route.INJECTION, Route.INTRA_ARTICULAR],
            **_FROZEN,
            "authorisations": [_EU_BAN],
        },
    ),
    (
        "nord_marrow",
        "nord",
        "NordVesikel BM-EV",
        SourceKind.HUMAN,
        Tissue.BONE_MARROW,
        {"gtin": gtin("0950600013440"), "permitted_routes": [Route.INJECTION], **_FROZEN},
    ),
    (
        "nord_synthetic",
        "nord",
        "NordVesikel SynthEV Mimetic",
        SourceKind.SYNTHETIC,
        "",
        {
            "gtin": gtin("0950600013441"),
            "permitted_routes": [Route.TOPICAL, Route.MICRONEEDLING],
            "storage_min_celsius": Decimal("2.0"),
            "storage_max_celsius": Decimal("8.0"),
            "authorisations": [
                ("DE", AuthorisationStatus.ALLOWED, "Cosmetic use, no human origin.")
            ],
        },
    ),
    (
        "pacific_placenta",
        "pacific",
        "Pacific PL-Exo Concentrate",
        SourceKind.HUMAN,
        Tissue.PLACENTA,
        {"permitted_routes": [Route.INJECTION, Route.MICRONEEDLING], **_FROZEN},
    ),
]

# code, tissue, DIN sequence, markers left untested, markers that tested reactive
DONORS: list[tuple[str, str, int, tuple[str, ...], tuple[str, ...]]] = [
    ("DN-A-0001", Tissue.ADIPOSE, 1, (), ()),
    ("DN-A-0002", Tissue.ADIPOSE, 2, (), ()),
    ("DN-U-0001", Tissue.UMBILICAL_CORD, 3, (), ()),
    ("DN-B-0001", Tissue.BONE_MARROW, 4, ("wnv_nat",), ()),  # incomplete: WNV NAT pending
    ("DN-P-0001", Tissue.PLACENTA, 5, (), ("anti_hbc",)),  # ineligible: anti-HBc reactive
    ("DN-A-0003", Tissue.ADIPOSE, 6, (), ()),
    ("DN-U-0002", Tissue.UMBILICAL_CORD, 7, (), ()),
    ("DN-B-0002", Tissue.BONE_MARROW, 8, (), ()),
]

PASSING_QC: dict[str, Decimal | str] = {
    "sterility": QcOutcome.NOT_DETECTED,
    "mycoplasma": QcOutcome.NOT_DETECTED,
    "endotoxin": Decimal("0.12"),
    "particle_concentration": Decimal("4800000000"),
    "particle_size": Decimal("118"),
    "ev_marker_membrane": QcOutcome.DETECTED,
    "ev_marker_cytosolic": QcOutcome.DETECTED,
    "ev_negative_marker": QcOutcome.NOT_DETECTED,
}


@dataclass(frozen=True)
class LotStory:
    lot_number: str
    product: str
    donors: tuple[str, ...]
    target: str
    age_days: int = 40
    quantity: int = 200
    regulatory_basis: str = RegulatoryBasis.IND
    regulatory_number: str = "IND 027845"
    qc: dict[str, Decimal | str] = field(default_factory=dict)
    skip_qc: tuple[str, ...] = ()
    coa: bool = True
    reason: str = ""
    try_release: bool = False


LOTS = [
    # Older released lots: the clinics have used them for months (see treatments.management).
    LotStory(
        "HLX-A2490", "helix_adipose", ("DN-A-0003",), LotStatus.RELEASED, age_days=140, quantity=400
    ),
    LotStory(
        "HLX-C2490", "helix_cord", ("DN-U-0002",), LotStatus.RELEASED, age_days=120, quantity=300
    ),
    LotStory(
        "NVS-S2490",
        "nord_synthetic",
        (),
        LotStatus.RELEASED,
        age_days=130,
        quantity=400,
        regulatory_basis=RegulatoryBasis.NONE,
        regulatory_number="",
    ),
    LotStory(
        "NVS-B2490",
        "nord_marrow",
        ("DN-B-0002",),
        LotStatus.RELEASED,
        age_days=110,
        regulatory_basis=RegulatoryBasis.NONE,
        regulatory_number="",
    ),
    LotStory("HLX-A2501", "helix_adipose", ("DN-A-0001",), LotStatus.RELEASED, age_days=60),
    LotStory(
        "HLX-A2502",
        "helix_adipose",
        ("DN-A-0002",),
        LotStatus.ON_HOLD,
        age_days=45,
        reason="Two clinics reported unexpected erythema after microneedling; under review.",
    ),
    LotStory(
        "HLX-C2501",
        "helix_cord",
        ("DN-U-0001",),
        LotStatus.REJECTED,
        qc={"endotoxin": Decimal("1.40")},
        reason="Endotoxin 1.40 EU/mL exceeds the 0.5 EU/mL limit.",
    ),
    LotStory(
        "NVS-B2501",
        "nord_marrow",
        ("DN-B-0001",),
        LotStatus.QUARANTINED,
        age_days=20,
        regulatory_basis=RegulatoryBasis.NONE,
        regulatory_number="",
    ),
    LotStory(
        "NVS-S2501",
        "nord_synthetic",
        (),
        LotStatus.RELEASED,
        age_days=30,
        regulatory_basis=RegulatoryBasis.NONE,
        regulatory_number="",
    ),
    # Refused for several reasons at once: ineligible reactive donor, no mycoplasma result,
    # endotoxin out of specification, no CoA, and the manufacturer's GMP certificate expired.
    LotStory(
        "PXL-P2501",
        "pacific_placenta",
        ("DN-P-0001",),
        LotStatus.QUARANTINED,
        age_days=25,
        qc={"endotoxin": Decimal("0.80")},
        skip_qc=("mycoplasma",),
        coa=False,
        try_release=True,
    ),
]
