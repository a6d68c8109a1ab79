"""The admin is a thin client of the services: who sees and does what, signed lot decisions, the
certificate upload and the audit trail."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from pghistory.models import Event, Events

from lots.models import (
    AuthorisationStatus,
    Certificate,
    CertificateKind,
    Donor,
    DonorMarkerResult,
    Eligibility,
    Lot,
    LotStatus,
    LotStatusChange,
    Marker,
    MarkerResultValue,
    ProductAuthorisation,
    QcSpecification,
    SourceKind,
    SourceRestriction,
)
from lots.services import lot_release
from providers.models import Clinic, ClinicPractitioner, Manufacturer
from tests.factories import (
    PASSWORD,
    TODAY,
    ClinicContactFactory,
    ClinicFactory,
    DonorFactory,
    LicenceFactory,
    LotFactory,
    ManufacturerFactory,
    ProductFactory,
    pdf_bytes,
    releasable_lot,
)

APPS = ("providers", "lots")
REGISTERED = sorted(
    (model for model in admin.site._registry if model._meta.app_label in APPS),
    key=lambda model: model._meta.label,
)


def _url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def staff(quality_manager, auditor):
    for user in (quality_manager, auditor):
        user.is_staff = True
        user.save(update_fields=["is_staff"])


@pytest.fixture
def qm_browser(staff, quality_manager):
    client = Client()
    client.force_login(quality_manager)
    return client


@pytest.fixture
def auditor_browser(staff, auditor):
    client = Client()
    client.force_login(auditor)
    return client


@pytest.fixture
def every_record(quality_manager, clinic):
    """At least one row of every registered model."""
    lot = releasable_lot(quality_manager=quality_manager)
    lot_release(
        actor=quality_manager, lot_id=lot.pk, password=PASSWORD, meaning="approval", reason="ok"
    )
    ProductAuthorisation.objects.create(
        product=lot.product, jurisdiction="DE", status=AuthorisationStatus.BANNED
    )
    QcSpecification.objects.create(
        test=QcSpecification.objects.first().test, product=lot.product, max_value=1
    )
    ClinicContactFactory(clinic=clinic)
    licence = LicenceFactory()
    ClinicPractitioner.objects.create(clinic=clinic, practitioner=licence.practitioner)
    SourceRestriction.objects.get_or_create(
        jurisdiction="FR", source_kind=SourceKind.HUMAN, defaults={"scope": "cosmetic_uses"}
    )
    return lot


def _browsers(request):
    return {
        "quality manager": request.getfixturevalue("qm_browser"),
        "auditor": request.getfixturevalue("auditor_browser"),
    }


def test_every_model_of_providers_and_lots_is_registered():
    models = [
        model
        for label in APPS
        for model in apps.get_app_config(label).get_models()
        if not issubclass(model, Event)
    ]
    assert set(models) == set(REGISTERED)
    assert {model._meta.model_name for model in REGISTERED} >= {
        "manufacturer",
        "clinic",
        "cliniccontact",
        "practitioner",
        "licence",
        "membership",
        "product",
        "productauthorisation",
        "marker",
        "donor",
        "donormarkerresult",
        "lot",
        "lotdonor",
        "qctest",
        "qcspecification",
        "lotqcresult",
        "certificate",
        "lotstatuschange",
    }


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["quality manager", "auditor"])
def test_change_lists_and_change_pages_answer_for_quality_manager_and_auditor(
    request, every_record, role
):
    browser = _browsers(request)[role]
    assert browser.get(reverse("admin:index")).status_code == 200
    for model in REGISTERED:
        assert browser.get(_url(model, "changelist")).status_code == 200, model
        obj = model.objects.order_by("pk").first()
        assert obj is not None, model
        response = browser.get(_url(model, "change", obj.pk))
        assert response.status_code == 200, model
        assert browser.get(_url(model, "audit_trail", obj.pk)).status_code == 200, model


@pytest.mark.django_db
def test_auditor_cannot_add_change_or_post(auditor_browser, every_record):
    for model in REGISTERED:
        assert auditor_browser.get(_url(model, "add")).status_code == 403, model
        assert auditor_browser.post(_url(model, "add"), {}).status_code == 403, model
        obj = model.objects.order_by("pk").first()
        assert auditor_browser.post(_url(model, "change", obj.pk), {}).status_code == 403, model
        response = auditor_browser.post(
            _url(model, "changelist"), {"action": "release_lots", "_selected_action": [obj.pk]}
        )
        assert response.status_code == 403, model
    lot = every_record
    assert (
        auditor_browser.post(reverse("admin:lots_lot_sign", args=[lot.pk, "hold"]), {}).status_code
        == 403
    )


@pytest.mark.django_db
def test_nobody_can_delete_through_the_admin(qm_browser, every_record):
    for model in REGISTERED:
        obj = model.objects.order_by("pk").first()
        assert qm_browser.get(_url(model, "delete", obj.pk)).status_code == 403, model
        action_form = qm_browser.get(_url(model, "changelist")).context["action_form"]
        if action_form is not None:
            choices = dict(action_form.fields["action"].choices)
            assert "delete_selected" not in choices, model


@pytest.mark.django_db
def test_quality_manager_sees_add_pages_only_where_a_service_creates(qm_browser):
    read_only = {
        model._meta.model_name
        for model in REGISTERED
        if admin.site._registry[model].add_form is None
    }
    assert read_only >= {"marker", "qctest", "qcspecification", "lotstatuschange"}
    assert not read_only & {"lot", "certificate", "donor", "manufacturer", "membership"}
    for model in REGISTERED:
        expected = 403 if model._meta.model_name in read_only else 200
        assert qm_browser.get(_url(model, "add")).status_code == expected, model


@pytest.mark.django_db
def test_user_without_role_sees_no_traceability_pages(staff, quality_manager):
    from tests.factories import UserFactory

    user = UserFactory(is_staff=True)
    client = Client()
    client.force_login(user)
    assert client.get(_url(Lot, "changelist")).status_code == 403


@pytest.mark.django_db
def test_clinic_staff_see_only_their_own_clinic(clinic_administrator, clinic):
    other = ClinicFactory(name="Somewhere Else")
    clinic_administrator.is_staff = True
    clinic_administrator.save(update_fields=["is_staff"])
    client = Client()
    client.force_login(clinic_administrator)
    listed = client.get(_url(Clinic, "changelist")).context["cl"].result_list
    assert list(listed) == [clinic]
    assert client.get(_url(Clinic, "change", other.pk)).status_code == 302  # "does not exist"
    assert client.get(_url(Clinic, "add")).status_code == 403


# ---------------------------------------------------------------------------------------------
# Creating and changing through the services


@pytest.mark.django_db
def test_manufacturer_added_through_the_admin_carries_user_and_reason(qm_browser, quality_manager):
    response = qm_browser.post(
        _url(Manufacturer, "add"),
        {"legal_name": "Helix Biologics Inc.", "country": "US", "registration_number": "301"},
    )
    assert response.status_code == 302
    manufacturer = Manufacturer.objects.get(legal_name="Helix Biologics Inc.")
    event = Events.objects.tracks(manufacturer).get()
    assert event.pgh_context["user"] == quality_manager.pk
    assert event.pgh_context["reason"] == "manufacturer created"


@pytest.mark.django_db
def test_a_refused_add_is_a_form_error_and_writes_nothing(qm_browser):
    ManufacturerFactory(legal_name="Taken Inc.")
    response = qm_browser.post(
        _url(Manufacturer, "add"), {"legal_name": "Taken Inc.", "country": "US"}
    )
    assert response.status_code == 200
    assert "already exists" in str(response.context["adminform"].form.errors["legal_name"])
    assert Manufacturer.objects.filter(legal_name="Taken Inc.").count() == 1


@pytest.mark.django_db
def test_manufacturer_change_needs_a_reason_and_records_it(qm_browser, quality_manager):
    manufacturer = ManufacturerFactory(legal_name="Old Name Inc.", country="US")
    url = _url(Manufacturer, "change", manufacturer.pk)
    data = {"legal_name": "New Name Inc.", "country": "US", "registration_number": "1"}

    assert qm_browser.post(url, data).status_code == 200
    manufacturer.refresh_from_db()
    assert manufacturer.legal_name == "Old Name Inc."

    assert qm_browser.post(url, {**data, "reason": "renamed after merger"}).status_code == 302
    manufacturer.refresh_from_db()
    assert manufacturer.legal_name == "New Name Inc."
    update = Events.objects.tracks(manufacturer).filter(pgh_label="update").get()
    assert update.pgh_context["reason"] == "renamed after merger"
    trail = qm_browser.get(_url(Manufacturer, "audit_trail", manufacturer.pk))
    assert b"renamed after merger" in trail.content
    assert b"Quinn Manager" in trail.content


@pytest.mark.django_db
def test_lots_are_read_only_after_creation_even_for_the_quality_manager(
    qm_browser, quality_manager
):
    lot = LotFactory(created_by=quality_manager, quantity=10)
    response = qm_browser.post(_url(Lot, "change", lot.pk), {"quantity": 99})
    assert response.status_code == 403
    lot.refresh_from_db()
    assert lot.quantity == 10


# ---------------------------------------------------------------------------------------------
# Signed lot decisions


def _sign(browser, lots, action="release_lots", **fields):
    data = {
        "action": action,
        "_selected_action": [lot.pk for lot in lots],
        "signature": "1",
        "meaning": "approval",
        "reason": "Batch record reviewed",
        **fields,
    }
    return browser.post(_url(Lot, "changelist"), data)


def _messages(response):
    return [str(message) for message in get_messages(response.wsgi_request)]


@pytest.mark.django_db
def test_release_action_first_asks_for_a_signature(qm_browser, quality_manager):
    lot = releasable_lot(quality_manager=quality_manager)
    response = qm_browser.post(
        _url(Lot, "changelist"),
        {"action": "release_lots", "_selected_action": [lot.pk], "index": "0"},
    )
    assert response.status_code == 200
    assert response.templates[0].name == "admin/lots/signature.html"
    assert b"Re-enter your password" in response.content
    lot.refresh_from_db()
    assert lot.status == LotStatus.QUARANTINED


@pytest.mark.django_db
def test_release_with_a_wrong_password_releases_nothing(qm_browser, quality_manager):
    lot = releasable_lot(quality_manager=quality_manager)
    response = _sign(qm_browser, [lot], password="not my password")
    assert response.status_code == 200
    assert "signature_password_invalid" in str(response.context["form"].errors["password"])
    lot.refresh_from_db()
    assert lot.status == LotStatus.QUARANTINED
    assert not LotStatusChange.objects.exists()


@pytest.mark.django_db
def test_release_with_the_right_password_releases_a_releasable_lot(qm_browser, quality_manager):
    lot = releasable_lot(quality_manager=quality_manager)
    response = _sign(qm_browser, [lot], password=PASSWORD)
    assert response.status_code == 302
    lot.refresh_from_db()
    assert lot.status == LotStatus.RELEASED
    change = LotStatusChange.objects.get(lot=lot)
    assert (change.signed_by, change.meaning, change.reason) == (
        quality_manager,
        "approval",
        "Batch record reviewed",
    )
    assert f"Lot {lot.lot_number} released." in _messages(response)


@pytest.mark.django_db
def test_a_refused_release_reports_every_problem_and_the_others_still_release(
    qm_browser, quality_manager
):
    good = releasable_lot(quality_manager=quality_manager)
    bare = LotFactory(product=ProductFactory(), created_by=quality_manager)
    response = _sign(qm_browser, [good, bare], password=PASSWORD)
    good.refresh_from_db()
    bare.refresh_from_db()
    assert (good.status, bare.status) == (LotStatus.RELEASED, LotStatus.QUARANTINED)
    refusal = next(m for m in _messages(response) if bare.lot_number in m)
    for code in ("donor_missing", "qc_result_missing", "coa_missing", "gmp_certificate_missing"):
        assert f"[{code}]" in refusal


@pytest.mark.django_db
def test_lot_page_shows_why_a_lot_cannot_be_released(qm_browser, quality_manager):
    lot = LotFactory(product=ProductFactory(), created_by=quality_manager)
    response = qm_browser.get(_url(Lot, "change", lot.pk))
    content = response.content.decode()
    for code in ("donor_missing", "qc_result_missing", "coa_missing", "gmp_certificate_missing"):
        assert f"<code>{code}</code>" in content
    assert reverse("admin:lots_lot_sign", args=[lot.pk, "release"]) in content


@pytest.mark.django_db
def test_hold_from_the_lot_page_is_signed_through_the_service(qm_browser, quality_manager):
    lot = releasable_lot(quality_manager=quality_manager)
    lot_release(
        actor=quality_manager, lot_id=lot.pk, password=PASSWORD, meaning="approval", reason="ok"
    )
    url = reverse("admin:lots_lot_sign", args=[lot.pk, "hold"])
    assert qm_browser.get(url).status_code == 200
    refused = qm_browser.post(
        url, {"signature": "1", "password": PASSWORD, "meaning": "approval", "reason": "check"}
    )
    assert "signature_meaning_invalid" in str(refused.context["form"].errors["meaning"])
    response = qm_browser.post(
        url, {"signature": "1", "password": PASSWORD, "meaning": "review", "reason": "complaint"}
    )
    assert response.status_code == 302
    lot.refresh_from_db()
    assert lot.status == LotStatus.ON_HOLD


# ---------------------------------------------------------------------------------------------
# Certificates


def _upload(browser, lot, content, name="coa.pdf", **fields):
    return browser.post(
        _url(Certificate, "add"),
        {
            "kind": CertificateKind.COA,
            "lot": lot.pk,
            "issuer": "QC lab",
            "number": "COA-1",
            "valid_from": TODAY().isoformat(),
            "file": SimpleUploadedFile(name, content, content_type="application/pdf"),
            **fields,
        },
    )


@pytest.mark.django_db
def test_certificate_upload_refuses_a_file_that_is_not_a_pdf(qm_browser, quality_manager, settings):
    lot = LotFactory(created_by=quality_manager)
    response = _upload(qm_browser, lot, b"GIF89a not a pdf at all", name="coa.pdf")
    assert response.status_code == 200
    errors = str(response.context["adminform"].form.errors["file"])
    assert "The file is not a PDF document." in errors
    assert not Certificate.objects.exists()
    assert not list(Path(settings.MEDIA_ROOT).rglob("*.pdf"))


@pytest.mark.django_db
def test_certificate_upload_stores_the_pdf_and_a_new_version_supersedes(
    qm_browser, quality_manager
):
    lot = LotFactory(created_by=quality_manager)
    assert _upload(qm_browser, lot, pdf_bytes("v1")).status_code == 302
    first = Certificate.objects.get()
    assert first.uploaded_by == quality_manager and first.lot == lot

    refused = _upload(qm_browser, lot, pdf_bytes("v2"), number="COA-1b", supersedes=first.pk)
    assert "reason_required" in str(refused.context["adminform"].form.errors["reason"])

    response = _upload(
        qm_browser,
        lot,
        pdf_bytes("v2"),
        number="COA-1b",
        supersedes=first.pk,
        reason="typo in the endotoxin unit",
    )
    assert response.status_code == 302
    assert Certificate.objects.get(supersedes=first).number == "COA-1b"
    pdf = qm_browser.get(reverse("admin:lots_certificate_pdf", args=[first.pk]))
    assert pdf.status_code == 200
    assert b"".join(pdf.streaming_content).startswith(b"%PDF-")


@pytest.mark.django_db
def test_gmp_certificate_without_validity_end_is_refused_on_the_form(qm_browser):
    manufacturer = ManufacturerFactory()
    response = qm_browser.post(
        _url(Certificate, "add"),
        {
            "kind": CertificateKind.GMP,
            "manufacturer": manufacturer.pk,
            "issuer": "FDA",
            "number": "GMP-1",
            "valid_from": (TODAY() - datetime.timedelta(days=1)).isoformat(),
            "file": SimpleUploadedFile("gmp.pdf", pdf_bytes("gmp")),
        },
    )
    assert response.status_code == 200
    assert "certificate_validity_required" in str(
        response.context["adminform"].form.errors["valid_until"]
    )


@pytest.mark.django_db
def test_eligibility_decision_is_signed_per_donor_and_refusals_name_the_marker(
    qm_browser, quality_manager
):
    complete = DonorFactory(code="DN-OK-0001")
    for marker in Marker.objects.filter(active=True):
        if complete.tissue in marker.required_for_tissues:
            DonorMarkerResult.objects.create(
                donor=complete,
                marker=marker,
                result=MarkerResultValue.NON_REACTIVE,
                tested_on=complete.specimen_date,
                laboratory="lab",
            )
    untested = DonorFactory(code="DN-NO-0001")
    response = qm_browser.post(
        _url(Donor, "changelist"),
        {
            "action": "decide_eligibility",
            "_selected_action": [complete.pk, untested.pk],
            "signature": "1",
            "password": PASSWORD,
            "eligibility": Eligibility.ELIGIBLE,
            "reason": "Donor file reviewed",
        },
    )
    assert response.status_code == 302
    complete.refresh_from_db()
    untested.refresh_from_db()
    assert (complete.eligibility, complete.eligibility_decided_by) == (
        Eligibility.ELIGIBLE,
        quality_manager,
    )
    assert untested.eligibility == Eligibility.INCOMPLETE
    refusal = next(m for m in _messages(response) if "DN-NO-0001" in m)
    assert "[donor_marker_missing]" in refusal and "HIV-1 antibody" in refusal
