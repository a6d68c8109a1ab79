"""The treatment at the chair in a real browser (Debian's Chromium driven by Playwright) against the
live server: a clinician finds the patient, scans the vial with a keyboard-wedge scanner (its raw
string ending in Enter resolves the scan and never submits the form), or with the camera (a GS1
DataMatrix read by zxing-wasm from a fake camera fed a Y4M video of the vial's label), and saves
the treatment; a recalled lot shows red and is refused in plain words."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import pytest
import zxingcpp
from django.db import connections
from django.utils import timezone
from PIL import Image
from playwright.sync_api import expect, sync_playwright

from tests.factories import ConsentTextFactory, receive, released_lot
from tests.pages.conftest import assert_accessible, sign_in
from tests.pages.test_chair import GS, chair_ready, on_hand
from tests.recalls.conftest import eager_celery, open_recall  # noqa: F401 (a fixture)
from treatments.models import Treatment

pytestmark = pytest.mark.usefixtures("reference_data")


def scanner_string(lot: Any) -> str:
    """What a keyboard-wedge scanner types: the symbology identifier, the element strings with
    a GS after the variable-length lot number, a serial, and Enter."""
    return f"]d201{lot.product.gtin}17{lot.expires_on:%y%m%d}10{lot.lot_number}{GS}21SN0042\n"


def find_patient_and_start(page: Any, ready: Any) -> None:
    page.goto("/patients/")
    assert_accessible(page)
    page.get_by_label("Find a patient by name or reference").fill("Lovel")
    results = page.locator("#patient-results")
    expect(results.get_by_role("cell", name="Ada Lovelace")).to_be_visible()
    page.get_by_role("link", name=ready.patient.reference, exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Patient {ready.patient.reference}")
    assert_accessible(page)
    page.get_by_role("link", name="Start a treatment").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        f"Treatment of patient {ready.patient.reference}"
    )


def complete_the_form(page: Any, ready: Any) -> None:
    page.get_by_label("Practitioner").select_option(str(ready.practitioner.pk))
    page.get_by_label("Route").select_option("topical")
    page.get_by_label("Anatomical site").fill("face")
    page.get_by_label("Indication").select_option("skin_rejuvenation")


def test_a_clinician_scans_the_vial_and_saves_the_treatment(wide_page):
    page = wide_page
    ready = chair_ready(stock=5)
    second = released_lot(product=ready.lot.product)
    receive(ready, second, 3)
    ConsentTextFactory()
    sign_in(page, ready.clinician)
    find_patient_and_start(page, ready)
    opened = timezone.now()
    chair_url = page.url

    # Nothing sets the time at opening: it is taken when the treatment is saved.
    assert page.get_by_label("Treatment time").input_value() == ""
    assert page.get_by_label("Consent taken at").input_value() == ""

    scan = page.get_by_label("Scan the vial")
    expect(scan).to_be_focused()
    scan.press_sequentially(scanner_string(ready.lot))
    answer = page.locator("#scan-answer .answer")
    expect(answer).to_have_class("answer ok")
    expect(answer).to_contain_text(f"Use it: lot {ready.lot.lot_number} of Exosome serum A")
    expect(page.locator("#scan-answer")).to_contain_text("5 units accepted")
    # Enter resolved the scan and did not submit the form.
    assert page.url == chair_url
    assert not Treatment.objects.exists()
    expect(scan).to_have_value("")
    expect(scan).to_be_focused()
    line = page.locator(f"#line-{ready.lot.pk}")
    expect(line).to_contain_text(f"Lot {ready.lot.lot_number} of Exosome serum A")
    expect(page.get_by_label(f"Units of lot {ready.lot.lot_number}")).to_have_value("1")
    expect(page.locator("#regulatory-statement")).to_contain_text(
        f"Exosome serum A lot {ready.lot.lot_number}: IND 012345"
    )
    # A second scan of the same vial's lot counts one more unit on its line.
    scan.press_sequentially(scanner_string(ready.lot))
    expect(page.get_by_label(f"Units of lot {ready.lot.lot_number}")).to_have_value("2")
    expect(page.locator("#lines > li")).to_have_count(1)
    # A vial of another lot becomes a second line.
    scan.press_sequentially(scanner_string(second))
    expect(page.locator("#lines > li")).to_have_count(2)
    expect(page.get_by_label(f"Units of lot {second.lot_number}")).to_have_value("1")
    expect(page.locator("#scan-answer")).to_contain_text("3 units accepted")
    assert_accessible(page)

    complete_the_form(page, ready)
    # Consent is taken a while after the page opened: it must not count as after the treatment.
    time.sleep(1.5)
    consent_given = timezone.now()
    page.get_by_label("The patient has read the consent text").check()
    page.get_by_role("button", name="Save treatment").click()

    expect(page.get_by_role("status").first).to_contain_text(
        f"of patient {ready.patient.reference} is saved."
    )
    expect(page.locator(".banner.ok")).to_contain_text("3 units left at this clinic.")
    expect(page.locator(".banner.ok")).to_contain_text("2 units left at this clinic.")
    assert_accessible(page)
    treatment = Treatment.objects.get()
    assert treatment.performed_at > opened
    assert treatment.performed_at >= consent_given.replace(microsecond=0)
    assert treatment.consent_taken_at == treatment.performed_at
    assert {(line.lot_id, line.units) for line in treatment.lines.all()} == {
        (ready.lot.pk, 2),
        (second.pk, 1),
    }
    assert (on_hand(ready, ready.lot), on_hand(ready, second)) == (3, 2)

    page.goto("/treatments/")
    expect(page.get_by_role("table")).to_contain_text(ready.patient.reference)
    assert_accessible(page)
    page.goto("/patients/new/")
    assert_accessible(page)


def test_a_recalled_lot_scans_red_and_saving_is_refused_in_plain_words(
    wide_page,
    quality_manager,
    eager_celery,  # noqa: F811
):
    page = wide_page
    ready = chair_ready(stock=5)
    recall = open_recall(quality_manager, ready.lot)
    sign_in(page, ready.clinician)
    page.goto(f"/treatments/new/?patient={ready.patient.pk}")

    page.get_by_label("Scan the vial").press_sequentially(scanner_string(ready.lot))
    answer = page.locator("#scan-answer .answer")
    expect(answer).to_have_class("answer bad")
    expect(answer).to_contain_text(f"Do not use lot {ready.lot.lot_number}.")
    expect(answer).to_contain_text(f"set the vial aside, see recall {recall.reference}")
    expect(page.locator(f"#line-{ready.lot.pk}")).to_contain_text("do not use")
    assert_accessible(page)

    complete_the_form(page, ready)
    page.get_by_role("button", name="Save treatment").click()
    refusal = page.locator("#refusal")
    expect(refusal).to_contain_text("Not saved:")
    expect(refusal).to_contain_text(f"Lot {ready.lot.lot_number} was recalled on")
    expect(refusal).to_contain_text(f"set the vial aside, see recall {recall.reference}")
    # What was filled in is kept, the line too.
    expect(page.get_by_label("Anatomical site")).to_have_value("face")
    expect(page.locator(f"#line-{ready.lot.pk}")).to_be_visible()
    assert_accessible(page)
    assert not Treatment.objects.exists()
    # The vial set aside, its line is removed by keyboard alone; the scan field is ready again.
    page.get_by_role("button", name=f"Remove lot {ready.lot.lot_number}").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#lines > li")).to_have_count(0)
    expect(page.get_by_label("Scan the vial")).to_be_focused()


# --------------------------------------------------------------------------------------------
# The camera


def label_png(lot: Any) -> Image.Image:
    """The vial's GS1 DataMatrix, as the label printer draws it (FNC1 first: GS1 mode)."""
    barcode = zxingcpp.create_barcode(
        f"[01]{lot.product.gtin}[17]{lot.expires_on:%y%m%d}[10]{lot.lot_number}",
        zxingcpp.BarcodeFormat.DataMatrix,
        gs1=True,
        forceSquare=True,
    )
    image = Image.fromarray(zxingcpp.write_barcode_to_image(barcode, scale=8))
    # Round-trip through PNG: what a label file would be.
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return Image.open(io.BytesIO(buffer.getvalue())).convert("L")


def y4m_video(symbol: Image.Image, path: Path, *, width: int = 640, height: int = 480) -> Path:
    """A short Y4M video (4:2:0, full-range) of the symbol on white, for Chromium's fake camera."""
    frame = Image.new("L", (width, height), 255)
    frame.paste(symbol, ((width - symbol.width) // 2, (height - symbol.height) // 2))
    luma = frame.tobytes()
    chroma = bytes([128]) * ((width // 2) * (height // 2))
    with path.open("wb") as video:
        video.write(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(10):
            video.write(b"FRAME\n" + luma + chroma + chroma)
    return path


def test_the_camera_reads_the_vials_datamatrix_and_resolves_the_lot(
    live_server, tmp_path, monkeypatch
):
    ready = chair_ready(stock=4)
    video = y4m_video(label_png(ready.lot), tmp_path / "vial.y4m")
    # Playwright keeps an event loop on this thread while it runs (see tests/conftest.py).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=[
                "--no-sandbox",
                "--use-fake-device-for-media-stream",
                "--use-fake-ui-for-media-stream",
                f"--use-file-for-fake-video-capture={video}",
            ],
        )
        context = browser.new_context(
            base_url=live_server.url, locale="en-GB", viewport={"width": 1024, "height": 768}
        )
        context.set_default_timeout(20_000)
        requests: list[str] = []
        try:
            page = context.new_page()
            page.on("request", lambda request: requests.append(request.url))
            sign_in(page, ready.clinician)
            page.goto(f"/treatments/new/?patient={ready.patient.pk}")
            page.get_by_role("button", name="Scan with the camera").click()
            answer = page.locator("#scan-answer .answer")
            expect(answer).to_have_class("answer ok")
            expect(answer).to_contain_text(f"Use it: lot {ready.lot.lot_number}")
            expect(page.locator("#scan-answer")).to_contain_text("4 units accepted")
            expect(page.locator(f"#line-{ready.lot.pk}")).to_be_visible()
            # The camera is let go once the vial is read.
            expect(page.locator("#camera")).to_be_hidden()
            assert_accessible(page)
        finally:
            context.close()
            browser.close()
            connections.close_all()
    # The reader and its .wasm came from this site: nothing was fetched from another.
    assert any(url.endswith("/zxing_reader.wasm") for url in requests)
    assert all(url.startswith(live_server.url) for url in requests)
