"""Admin forms for products, donors, lots, QC results and certificates. Each one is a service call
(common.admin.ServiceForm); the signature forms collect what a signed decision needs."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.admin.widgets import AdminDateWidget, FilteredSelectMultiple

from common.admin import ServiceForm
from lots import services
from lots.models import (
    Certificate,
    Donor,
    DonorMarkerResult,
    Eligibility,
    Lot,
    LotAction,
    LotDonor,
    LotQcResult,
    Product,
    ProductAuthorisation,
    Route,
    SignatureMeaning,
)
from lots.selectors import current_certificates

REASON_HELP = "Why; kept in the audit trail with your name."


def _reason(*, required: bool, help_text: str = REASON_HELP) -> forms.CharField:
    return forms.CharField(
        required=required, widget=forms.Textarea(attrs={"rows": 2}), help_text=help_text
    )


class ProductAddForm(ServiceForm):
    permitted_routes = forms.MultipleChoiceField(
        choices=Route.choices, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = Product
        fields = [
            "manufacturer",
            "name",
            "gtin",
            "source_kind",
            "tissue",
            "permitted_routes",
            "storage_min_celsius",
            "storage_max_celsius",
        ]

    def call_service(self, data: dict[str, Any]) -> Product:
        return services.product_create(actor=self.actor, **data)


class ProductAuthorisationForm(ServiceForm):
    reason = _reason(required=True)

    class Meta:
        model = ProductAuthorisation
        fields = ["product", "jurisdiction", "status", "note"]

    def call_service(self, data: dict[str, Any]) -> ProductAuthorisation:
        instance = self.instance
        return services.product_authorisation_set(
            actor=self.actor,
            product=data.get("product") or instance.product,
            jurisdiction=data.get("jurisdiction") or instance.jurisdiction,
            status=data["status"],
            note=data.get("note", ""),
            reason=data["reason"],
        )


class DonorAddForm(ServiceForm):
    class Meta:
        model = Donor
        fields = [
            "code",
            "isbt_din",
            "tissue",
            "collection_date",
            "specimen_date",
            "birth_mother_tested",
            "testing_laboratory",
        ]

    def call_service(self, data: dict[str, Any]) -> Donor:
        return services.donor_create(actor=self.actor, **data)


class DonorMarkerResultForm(ServiceForm):
    reason = _reason(required=False, help_text="Required when it corrects an earlier result.")

    class Meta:
        model = DonorMarkerResult
        fields = ["donor", "marker", "result", "tested_on", "laboratory", "test_method"]

    def call_service(self, data: dict[str, Any]) -> DonorMarkerResult:
        return services.donor_marker_result_record(actor=self.actor, **data)


class LotAddForm(ServiceForm):
    donors = forms.ModelMultipleChoiceField(
        queryset=Donor.objects.all(),
        required=False,
        widget=FilteredSelectMultiple("donors", is_stacked=False),
        help_text="The donations the lot was made from (human-derived products only).",
    )

    class Meta:
        model = Lot
        fields = [
            "product",
            "lot_number",
            "manufactured_on",
            "expires_on",
            "quantity",
            "unit",
            "regulatory_basis",
            "regulatory_number",
        ]

    def call_service(self, data: dict[str, Any]) -> Lot:
        data = dict(data)
        data["donors"] = list(data.get("donors") or [])
        return services.lot_create(actor=self.actor, **data)


class LotDonorAddForm(ServiceForm):
    reason = _reason(required=True)

    class Meta:
        model = LotDonor
        fields = ["lot", "donor"]

    def call_service(self, data: dict[str, Any]) -> LotDonor:
        lot = services.lot_donor_add(
            actor=self.actor, lot=data["lot"], donor=data["donor"], reason=data["reason"]
        )
        return LotDonor.objects.get(lot=lot, donor=data["donor"])


class LotQcResultForm(ServiceForm):
    reason = _reason(required=False, help_text="Required when it corrects an earlier result.")

    class Meta:
        model = LotQcResult
        fields = ["lot", "test", "numeric_value", "outcome", "tested_on", "laboratory", "method"]

    def call_service(self, data: dict[str, Any]) -> LotQcResult:
        return services.lot_qc_result_record(actor=self.actor, **data)


class CertificateUploadForm(ServiceForm):
    """A new certificate or a new version of one (`supersedes`); the PDF checks are the
    service's."""

    file = forms.FileField(help_text="The certificate as a PDF.")
    supersedes = forms.ModelChoiceField(
        queryset=current_certificates().select_related("manufacturer", "lot"),
        required=False,
        help_text="The certificate this one replaces (a correction or renewal).",
    )
    reason = _reason(required=False, help_text="Required when it supersedes a certificate.")

    class Meta:
        model = Certificate
        fields = [
            "kind",
            "manufacturer",
            "lot",
            "issuer",
            "number",
            "valid_from",
            "valid_until",
            "file",
            "supersedes",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["manufacturer"].required = False
        self.fields["manufacturer"].help_text = "For GMP / ISO 13485; a CoA takes the lot's."

    def call_service(self, data: dict[str, Any]) -> Certificate:
        upload = data["file"]
        return services.certificate_upload(
            actor=self.actor,
            kind=data["kind"],
            issuer=data["issuer"],
            number=data["number"],
            valid_from=data["valid_from"],
            valid_until=data.get("valid_until"),
            manufacturer=data.get("manufacturer"),
            lot=data.get("lot"),
            supersedes=data.get("supersedes"),
            reason=data.get("reason", ""),
            file=upload,
            filename=upload.name,
        )


# ---------------------------------------------------------------------------------------------
# Signatures


DEFAULT_MEANING = {
    LotAction.RELEASE: SignatureMeaning.APPROVAL,
    LotAction.REJECT: SignatureMeaning.REJECTION,
    LotAction.HOLD: SignatureMeaning.REVIEW,
}


class SignatureForm(forms.Form):
    """An electronic signature (21 CFR 11.200): password re-entry, meaning and reason. The service
    verifies the password and which meanings an action accepts."""

    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        strip=False,
        help_text="Re-enter your password to sign.",
    )
    meaning = forms.ChoiceField(choices=SignatureMeaning.choices)
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}))
    effective_date = forms.DateField(
        required=False,
        widget=AdminDateWidget,
        help_text="Only for a lot released long ago: the day its release took effect. Every rule "
        "is judged on that day, the signature is given now and marked retrospective, and no "
        "treatment dated before it is accepted.",
    )

    def __init__(self, *args: Any, action: LotAction, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {"meaning": DEFAULT_MEANING[action]})
        super().__init__(*args, **kwargs)
        if action != LotAction.RELEASE:
            del self.fields["effective_date"]


class EligibilityForm(forms.Form):
    """The responsible person's signed donor eligibility determination."""

    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        strip=False,
        help_text="Re-enter your password to sign.",
    )
    eligibility = forms.ChoiceField(choices=Eligibility.choices)
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}))
