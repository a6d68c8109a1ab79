"""The forms of the recalls admin. Each collects a service's arguments and nothing more: opening a
recall is a `ServiceForm` (the service runs as the form validates), the follow-up pages of one
recall are `RecallActionForm`s whose `submit` calls one service and says what it did, and a webhook
endpoint is added or changed through `recalls.services.webhooks`.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.widgets import (
    AdminDateWidget,
    AutocompleteSelect,
    AutocompleteSelectMultiple,
)
from django.db.models import QuerySet

from common.admin import ServiceForm
from lots.models import Donor, Lot, Product
from providers.models import Clinic, Manufacturer
from recalls.models import (
    WEBHOOK_SECRET_RULE,
    AcknowledgementVia,
    ContactOutcome,
    DispositionKind,
    Notification,
    Recall,
    RecallExposure,
    RecallLot,
    RecallScope,
    WebhookEndpoint,
)
from recalls.services import (
    RecallScopeRequest,
    recall_acknowledge,
    recall_close,
    recall_contact_attempt_record,
    recall_disposition_record,
    recall_notice_resend,
    recall_open,
    recall_widen,
    webhook_endpoint_create,
    webhook_endpoint_update,
)
from treatments.models import Patient

SIGNATURE_HELP = "Re-enter your password to sign (21 CFR 11.200)."


# ---------------------------------------------------------------------------------------------
# Fields


def _text(*, required: bool = True, rows: int = 3, help_text: str = "") -> forms.CharField:
    return forms.CharField(
        required=required,
        widget=forms.Textarea(attrs={"rows": rows}),
        help_text=help_text,
        max_length=5000,
    )


def _password() -> forms.CharField:
    return forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        strip=False,
        help_text=SIGNATURE_HELP,
    )


def _lots_field() -> forms.ModelMultipleChoiceField[Lot]:
    # An autocomplete (the lot admin's search) instead of a list of every lot: it renders only the
    # chosen lots, and asks admin's autocomplete view for 20 matches at a time. The field named is
    # the scope's own, so the view checks the lot admin's view permission and search fields.
    return forms.ModelMultipleChoiceField(
        queryset=Lot.objects.select_related("product").order_by("lot_number"),
        required=False,
        widget=AutocompleteSelectMultiple(RecallScope._meta.get_field("lots"), admin.site),
        help_text="The lots to recall (type part of a lot number, product or donor code); or "
        "leave empty and recall by donor, product or manufacturer below.",
    )


def _donor_field() -> forms.ModelChoiceField[Donor]:
    return forms.ModelChoiceField(
        queryset=Donor.objects.order_by("code"),
        required=False,
        widget=AutocompleteSelect(RecallScope._meta.get_field("donor"), admin.site),
        help_text="Every lot made from this donation (type part of the donor code).",
    )


def _optional(queryset: QuerySet[Any], help_text: str) -> forms.ModelChoiceField[Any]:
    # Products and manufacturers are few (hundreds at most): a plain select.
    return forms.ModelChoiceField(queryset=queryset, required=False, help_text=help_text)


def _date(help_text: str) -> forms.DateField:
    return forms.DateField(required=False, widget=AdminDateWidget, help_text=help_text)


# ---------------------------------------------------------------------------------------------
# Opening a recall


SCOPE_FIELDS = (
    "lots",
    "donor",
    "product",
    "manufacturer",
    "manufactured_from",
    "manufactured_to",
)
SCOPE_DESCRIPTION = (
    "Name the lots, or a donor, a product or a manufacturer (optionally only lots made between "
    "two dates); every lot the scope matches is recalled."
)


def scope_request(data: dict[str, Any]) -> RecallScopeRequest:
    def pk(value: Any) -> int | None:
        return value.pk if value is not None else None

    return RecallScopeRequest(
        lot_ids=[lot.pk for lot in data.get("lots") or []],
        donor_id=pk(data.get("donor")),
        product_id=pk(data.get("product")),
        manufacturer_id=pk(data.get("manufacturer")),
        manufactured_from=data.get("manufactured_from"),
        manufactured_to=data.get("manufactured_to"),
    )


def scope_problem_field(field: str | None) -> str | None:
    """Where a scope problem shows: `scope` (nothing matches, nothing named) and
    `scope.lots.<id>` (already in an open recall) on the lots, `scope.<name>` on that field."""
    if field is None:
        return None
    if field == "scope" or field.startswith("scope.lots"):
        return "lots"
    return field.removeprefix("scope.")


class RecallOpenForm(ServiceForm):
    """Opening a recall: `recall_open` in one transaction; nothing is written when it refuses."""

    lots = _lots_field()
    donor = _donor_field()
    product = _optional(Product.objects.order_by("name"), "Every lot of this product.")
    manufacturer = _optional(
        Manufacturer.objects.order_by("legal_name"), "Every lot of this manufacturer."
    )
    manufactured_from = _date("Only lots made on or after this day.")
    manufactured_to = _date("Only lots made on or before this day.")
    withdrawn_at = _date(
        "Only for a recall entered after the fact: the day its lots were really withdrawn."
    )
    password = _password()

    class Meta:
        model = Recall
        fields = ["recall_class", "depth", "reason", "hazard", "instructions", "is_drill"]
        labels = {"is_drill": "Drill (mock recall)"}

    def problem_field(self, field: str | None) -> str | None:
        return scope_problem_field(field)

    def call_service(self, data: dict[str, Any]) -> Recall:
        return recall_open(
            actor=self.actor,
            password=data["password"],
            recall_class=data["recall_class"],
            depth=data["depth"],
            reason=data["reason"],
            hazard=data["hazard"],
            instructions=data.get("instructions") or "",
            is_drill=bool(data.get("is_drill")),
            scope=scope_request(data),
            withdrawn_at=data.get("withdrawn_at"),
        )


# ---------------------------------------------------------------------------------------------
# Follow-up pages of one recall


class RecallActionForm(forms.Form):
    """A form on a page of one recall whose `submit` calls one service and says what it did."""

    title = ""
    intro = ""
    submit_label = "Record"

    def __init__(self, *args: Any, recall: Recall, actor: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.recall, self.actor = recall, actor

    def submit(self) -> str:
        raise NotImplementedError


class RecallWidenForm(RecallActionForm):
    title = "Widen the recall (signed)"
    intro = (
        "Adds every lot the scope matches that is not in the recall yet: their lots are marked "
        "recalled, the stock blocked, the exposures frozen and new notices written."
    )
    submit_label = "Sign and widen"
    lots = _lots_field()
    donor = _donor_field()
    product = _optional(Product.objects.order_by("name"), "Every lot of this product.")
    manufacturer = _optional(
        Manufacturer.objects.order_by("legal_name"), "Every lot of this manufacturer."
    )
    manufactured_from = _date("Only lots made on or after this day.")
    manufactured_to = _date("Only lots made on or before this day.")
    reason = _text(help_text="Why the recall is widened; kept with your signature.")
    password = _password()

    def problem_field(self, field: str | None) -> str | None:
        return scope_problem_field(field)

    def submit(self) -> str:
        data = self.cleaned_data
        recall_widen(
            actor=self.actor,
            password=data["password"],
            recall=self.recall,
            scope=scope_request(data),
            reason=data["reason"],
        )
        # The widening succeeded, so the recall has lots and the newest round is this one.
        rounds = list(RecallLot.objects.filter(recall=self.recall).values_list("round", flat=True))
        newest = max(rounds)
        added = rounds.count(newest)
        return f"{self.recall.reference} widened: {added} lot(s) added in round {newest}."


class RecallAcknowledgeForm(RecallActionForm):
    title = "Acknowledge for a clinic"
    intro = (
        "Records that the clinic has received the recall and acts on it (once per clinic). "
        "A clinic administrator acknowledges for the own clinic; a quality manager for any."
    )
    submit_label = "Acknowledge"
    clinic = forms.ModelChoiceField(queryset=Clinic.objects.none())
    name = forms.CharField(
        required=False,
        max_length=200,
        help_text="Who at the clinic acknowledges; empty for your own name.",
    )

    def __init__(self, *args: Any, clinics: QuerySet[Clinic], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["clinic"].queryset = clinics  # type: ignore[attr-defined]

    def submit(self) -> str:
        acknowledgement = recall_acknowledge(
            recall=self.recall,
            clinic=self.cleaned_data["clinic"],
            via=AcknowledgementVia.ADMIN,
            actor=self.actor,
            name=self.cleaned_data["name"],
        )
        return (
            f"{acknowledgement.clinic.name} acknowledged {self.recall.reference} "
            f"({acknowledgement.acknowledged_by_name})."
        )


class RecallDispositionForm(RecallActionForm):
    title = "Record stock returned or destroyed"
    intro = (
        "Units of a recalled lot a clinic returned to the manufacturer or destroyed; they leave "
        "the clinic's blocked stock through the ledger (a drill moves no stock)."
    )
    clinic = forms.ModelChoiceField(queryset=Clinic.objects.none())
    lot = forms.ModelChoiceField(queryset=Lot.objects.none())
    kind = forms.ChoiceField(choices=DispositionKind.choices)
    quantity = forms.IntegerField(help_text="Whole units.")

    def __init__(self, *args: Any, clinics: QuerySet[Clinic], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["clinic"].queryset = clinics  # type: ignore[attr-defined]
        self.fields["lot"].queryset = (  # type: ignore[attr-defined]
            Lot.objects.filter(recall_lots__recall=self.recall)
            .select_related("product")
            .order_by("lot_number")
        )

    def submit(self) -> str:
        data = self.cleaned_data
        disposition = recall_disposition_record(
            recall=self.recall,
            clinic=data["clinic"],
            lot=data["lot"],
            kind=data["kind"],
            quantity=data["quantity"],
            actor=self.actor,
        )
        return (
            f"{disposition.clinic.name}: {disposition.quantity} unit(s) of lot "
            f"{disposition.lot.lot_number} {disposition.get_kind_display().lower()}."
        )


class RecallContactAttemptForm(RecallActionForm):
    title = "Record a patient contact attempt"
    submit_label = "Record the attempt"
    patient = forms.ModelChoiceField(queryset=Patient.objects.none())
    outcome = forms.ChoiceField(choices=ContactOutcome.choices)
    note = _text(
        required=False,
        help_text="What was said or agreed. Quality managers and auditors read this note: keep "
        "contact details out of it.",
    )

    def __init__(self, *args: Any, clinic: Clinic, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        exposed = RecallExposure.objects.filter(recall=self.recall, clinic=clinic)
        self.fields["patient"].queryset = Patient.objects.filter(  # type: ignore[attr-defined]
            clinic=clinic, pk__in=exposed.values("patient_id")
        ).order_by("reference")

    def submit(self) -> str:
        data = self.cleaned_data
        attempt = recall_contact_attempt_record(
            recall=self.recall,
            patient=data["patient"],
            outcome=data["outcome"],
            note=data["note"],
            actor=self.actor,
        )
        return f"Patient {attempt.patient.reference}: {attempt.get_outcome_display().lower()}."


class RecallCloseForm(RecallActionForm):
    title = "Close the recall (signed)"
    intro = (
        "A recall closes once every clinic it reached has acknowledged and every unit they held "
        "is returned or destroyed; otherwise only by an override, which is recorded."
    )
    submit_label = "Sign and close"
    reason = _text(help_text="Why the recall is closed (and why any open item is set aside).")
    override = forms.BooleanField(
        required=False,
        label="Close despite open items",
        help_text="Sets the open items listed above aside; the override is kept on the record.",
    )
    password = _password()

    def submit(self) -> str:
        data = self.cleaned_data
        recall = recall_close(
            recall=self.recall,
            actor=self.actor,
            password=data["password"],
            reason=data["reason"],
            override=data["override"],
        )
        override = " by override" if recall.close_override else ""
        return f"{recall.reference} closed{override}."


class RecallNoticeResendForm(RecallActionForm):
    title = "Resend a failed notice"
    intro = (
        "The notice goes back to the outbox under the same message id, so a receiver that did "
        "get it can drop the duplicate; its delivery window starts again."
    )
    submit_label = "Resend"
    reason = _text(help_text="Why the notice is resent (the channel is back, the address fixed).")

    def __init__(self, *args: Any, notification: Notification, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.notification = notification
        self.intro = (
            f"{notification.get_channel_display()} to {notification.recipient} (round "
            f"{notification.round}) failed after {notification.attempts} attempt(s): "
            f"{notification.last_error or 'no error recorded'}. {self.intro}"
        )

    def submit(self) -> str:
        recall_notice_resend(
            actor=self.actor, notification=self.notification, reason=self.cleaned_data["reason"]
        )
        return f"The notice to {self.notification.recipient} is queued again."


# ---------------------------------------------------------------------------------------------
# Webhook endpoints


class WebhookEndpointForm(ServiceForm):
    url = forms.URLField(max_length=500, assume_scheme="https")
    secret = forms.CharField(
        required=False,
        max_length=100,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=f"{WEBHOOK_SECRET_RULE} Never shown again once saved; leave empty when changing "
        "an endpoint to keep its secret.",
    )
    reason = _text(
        required=False,
        rows=2,
        help_text="Why the endpoint changes (required for a change); kept in the audit trail.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["name", "url", "clinic", "active"]

    def call_service(self, data: dict[str, Any]) -> WebhookEndpoint:
        fields = {
            "name": data["name"],
            "url": data["url"],
            "secret": data.get("secret") or "",
            "clinic": data.get("clinic"),
            "active": bool(data.get("active")),
        }
        reason = data.get("reason") or ""
        if self.instance.pk is None:
            return webhook_endpoint_create(actor=self.actor, reason=reason, **fields)
        return webhook_endpoint_update(
            actor=self.actor, endpoint=self.instance, reason=reason, **fields
        )
