"""The reference data the release gate reads: the donor marker panel of 21 CFR 1271.85 and the
default lot QC specification (REGULATORY.md). Both are data a quality manager can change later;
this is only the starting point. No model imports at module level: migrations import it too."""

from decimal import Decimal
from typing import Any

ALL_TISSUES = ["adipose", "bone_marrow", "umbilical_cord", "placenta", "amniotic", "other"]
# Viable, leukocyte-rich cells or tissue add HTLV-I/II and CMV (1271.85(a)).
LEUKOCYTE_RICH = ["bone_marrow", "umbilical_cord"]

MARKERS = [
    ("hiv1_ab", "HIV-1 antibody", ALL_TISSUES),
    ("hiv1_nat", "HIV-1 nucleic acid test", ALL_TISSUES),
    ("hiv2_ab", "HIV-2 antibody", ALL_TISSUES),
    ("hbsag", "Hepatitis B surface antigen (HBsAg)", ALL_TISSUES),
    ("anti_hbc", "Total antibody to hepatitis B core antigen (anti-HBc)", ALL_TISSUES),
    ("hcv_ab", "Hepatitis C antibody", ALL_TISSUES),
    ("hcv_nat", "Hepatitis C nucleic acid test", ALL_TISSUES),
    ("treponema", "Treponema pallidum (syphilis)", ALL_TISSUES),
    ("wnv_nat", "West Nile virus nucleic acid test", ALL_TISSUES),
    ("htlv", "HTLV-I/II antibody", LEUKOCYTE_RICH),
    ("cmv", "Cytomegalovirus (CMV)", LEUKOCYTE_RICH),
]

# (code, name, kind, unit, min, max, expected outcome)
QC_TESTS = [
    ("sterility", "Sterility", "qualitative", "", None, None, "not_detected"),
    ("mycoplasma", "Mycoplasma", "qualitative", "", None, None, "not_detected"),
    ("endotoxin", "Endotoxin", "quantitative", "EU/mL", None, Decimal("0.5"), ""),
    (
        "particle_concentration",
        "Particle concentration",
        "quantitative",
        "particles/mL",
        Decimal("1000000000"),
        None,
        "",
    ),
    ("particle_size", "Particle size (mode)", "quantitative", "nm", Decimal(30), Decimal(200), ""),
    (
        "ev_marker_membrane",
        "EV membrane marker (CD9/CD63/CD81)",
        "qualitative",
        "",
        None,
        None,
        "detected",
    ),
    (
        "ev_marker_cytosolic",
        "EV cytosolic marker (TSG101/ALIX)",
        "qualitative",
        "",
        None,
        None,
        "detected",
    ),
    (
        "ev_negative_marker",
        "Negative marker (calnexin)",
        "qualitative",
        "",
        None,
        None,
        "not_detected",
    ),
]


def seed_reference_data(apps: Any, schema_editor: Any = None) -> None:
    """Idempotent: migrations call it with historical models, transactional tests (whose flush
    empties every table) with the live registry."""
    Marker = apps.get_model("lots", "Marker")
    QcTest = apps.get_model("lots", "QcTest")
    QcSpecification = apps.get_model("lots", "QcSpecification")
    for code, name, tissues in MARKERS:
        Marker.objects.update_or_create(
            code=code, defaults={"name": name, "required_for_tissues": tissues}
        )
    for code, name, kind, unit, minimum, maximum, outcome in QC_TESTS:
        test, _ = QcTest.objects.update_or_create(
            code=code, defaults={"name": name, "kind": kind, "unit": unit}
        )
        QcSpecification.objects.update_or_create(
            test=test,
            product=None,
            defaults={
                "required": True,
                "min_value": minimum,
                "max_value": maximum,
                "expected_outcome": outcome,
            },
        )
