"""The trace drawing on its own: well-formed SVG, accessible, and readable for a heavy lot."""

from __future__ import annotations

import datetime
import xml.etree.ElementTree as ET

from pages.graph import COLLAPSE_ABOVE, ClinicNode, Trace, TreatmentNode, render_trace_svg

SVG = "{http://www.w3.org/2000/svg}"
AT = datetime.datetime(2026, 12, 1, 10, 0, tzinfo=datetime.UTC)


def _clinic(name: str, treatments: int, *, draw: bool = True, clinic_id: int = 1) -> ClinicNode:
    clinic = ClinicNode(
        clinic_id=clinic_id, name=name, treatment_count=treatments, units_used=treatments
    )
    if draw:
        clinic.treatments = [TreatmentNode(f"P-{n:03d}", AT, 1) for n in range(treatments)]
    return clinic


def _texts(svg: ET.Element) -> list[str]:
    return [text.text or "" for text in svg.iter(f"{SVG}text")]


def test_the_trace_is_well_formed_svg_with_a_title_and_description():
    trace = Trace("Lot HX-1", "Released", ["D-1", "D-2"], [_clinic("Clinic North", 2)])

    svg = ET.fromstring(str(render_trace_svg(trace, element_id="t")))  # noqa: S314 - our own markup

    assert svg.tag == f"{SVG}svg"
    assert svg.get("role") == "img"
    assert svg.get("aria-labelledby") == "t-title t-desc"
    assert svg.find(f"{SVG}title").text == "Trace of Lot HX-1"
    description = svg.find(f"{SVG}desc").text
    assert "2 donors" in description and "1 clinic" in description
    assert "2 treatments" in description
    texts = _texts(svg)
    for label in ("Donor D-1", "Donor D-2", "Lot HX-1", "Clinic North", "Patient P-000"):
        assert label in texts


def test_a_clinic_with_many_treatments_is_one_counted_node():
    trace = Trace("Lot HX-2", "Released", ["D-1"], [_clinic("Busy Clinic", 40)])

    svg = ET.fromstring(str(render_trace_svg(trace)))  # noqa: S314 - our own markup

    texts = _texts(svg)
    assert "40 treatments" in texts
    assert not [text for text in texts if text.startswith("Patient ")]
    treatment_nodes = [g for g in svg.iter(f"{SVG}g") if "treatment" in g.get("class", "")]
    assert len(treatment_nodes) == 1


def test_a_clinic_at_the_threshold_still_draws_each_treatment():
    trace = Trace("Lot HX-3", "Released", [], [_clinic("Small Clinic", COLLAPSE_ABOVE)])

    svg = ET.fromstring(str(render_trace_svg(trace)))  # noqa: S314 - our own markup

    assert len([t for t in _texts(svg) if t.startswith("Patient ")]) == COLLAPSE_ABOVE
    assert "no recorded donor" in svg.find(f"{SVG}desc").text


def test_text_is_escaped_and_long_names_are_shortened_with_the_full_name_kept():
    name = 'Clinic <script>&"quotes" with a very long name indeed'
    trace = Trace("Lot <X>", "Quarantined", [], [_clinic(name, 0, draw=False)])

    markup = str(render_trace_svg(trace))
    svg = ET.fromstring(markup)  # noqa: S314 - our own markup

    assert "<script>" not in markup
    titles = [title.text for title in svg.iter(f"{SVG}title")]
    assert name in titles
    assert "Lot <X>" in _texts(svg)


def test_a_lot_that_reached_no_clinic_says_so():
    svg = ET.fromstring(str(render_trace_svg(Trace("Lot E", "Quarantined", ["D-9"], []))))  # noqa: S314 - our own markup

    assert "Not at any clinic you can see" in _texts(svg)


def test_a_clinic_node_names_blocked_stock_beside_usable_stock():
    clinic = _clinic("Recall Clinic", 0, draw=False)
    clinic.units_in_stock, clinic.units_blocked = 2, 15

    svg = ET.fromstring(str(render_trace_svg(Trace("Lot R", "Recalled", [], [clinic]))))  # noqa: S314 - our own markup

    assert "2 in stock · 15 blocked" in _texts(svg)
    assert "No donor recorded" in _texts(svg)
