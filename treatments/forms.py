"""Admin forms for patients, treatments and adverse events. Each one is a service call
(common.admin.ServiceForm): the form collects the arguments, the service decides."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.contrib.admin.widgets import AdminDateWidget, AdminSplitDateTime
from django.db.models import QuerySet
from django.utils.translation import gettext as _

from common.admin import ServiceForm
from common.errors import DomainError
from lots.models import Lot
from lots.scan import scan_resolve
from treatments import services
from treatments.models import AdverseEvent, ConsentText, Patient, Treatment

CONTACT_FIELDS = ("full_name", "date_of_birth", "phone", "email", "postal_address")


class PatientAddForm(ServiceForm):
    """A pseudonymous reference, and the contact details kept apart from the record."""

    full_name = forms.CharField(max_length=200, required=False)
    date_of_birth = forms.DateField(required=False, widget=AdminDateWidget)
    phone = forms.CharField(max_length=40, required=False)
    email = forms.EmailField(required=False)
    postal_address = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    class Meta:
        model = Patient
        fields = ["clinic", "reference"]
        help_texts = {
            "reference": "Unique within the clinic; never a name or a record number.",
        }

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        given = [name for name in CONTACT_FIELDS if data.get(name)]
        if given and not data.get("full_name"):
            self.add_error("full_name", _("Contact details need the patient's full name."))
        return data

    def call_service(self, data: dict[str, Any]) -> Patient:
        contact = {name: data[name] for name in CONTACT_FIELDS if data.get(name)}
        return services.patient_create(
            actor=self.actor,
            clinic=data["clinic"],
            reference=data["reference"],
            contact=contact or None,
        )


class LotChoiceField(forms.ModelChoiceField):  # type: ignore[type-arg]
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.lot_number} - {obj.product.name} ({obj.get_status_display().lower()})"


LINE_ROWS = 3
_LINE_PROBLEM = re.compile(r"^lines\[(\d+)\]\.(lot|units)$")


def _lot_field(row: int) -> LotChoiceField:
    return LotChoiceField(Lot.objects.none(), required=False, label=f"Lot {row}")


def _scan_field() -> forms.CharField:
    return forms.CharField(
        required=False,
        label="or scan",
        help_text="The vial's GS1 DataMatrix, or its text: (01)…(17)…(10)…",
    )


def _units_field() -> forms.IntegerField:
    return forms.IntegerField(required=False, label="Units")


class TreatmentRecordForm(ServiceForm):
    """One treatment with up to three lots, each chosen from the clinic's stock or scanned."""

    consent_text = forms.ModelChoiceField(
        ConsentText.objects.filter(active=True),
        required=False,
        help_text="The informed-consent text the patient signed.",
    )
    consent_taken_at = forms.SplitDateTimeField(
        required=False, widget=AdminSplitDateTime, label="Consent taken at"
    )
    line_1_lot = _lot_field(1)
    line_1_scan = _scan_field()
    line_1_units = _units_field()
    line_2_lot = _lot_field(2)
    line_2_scan = _scan_field()
    line_2_units = _units_field()
    line_3_lot = _lot_field(3)
    line_3_scan = _scan_field()
    line_3_units = _units_field()

    class Meta:
        model = Treatment
        fields = [
            "clinic",
            "patient",
            "practitioner",
            "performed_at",
            "indication",
            "route",
            "anatomical_site",
            "notes",
        ]

    # The lots offered in the lists: set per request by the admin, as `actor` is.
    line_lots: QuerySet[Lot] = Lot.objects.none()
    # The service is told the lines without the empty rows; this maps its line index back to the
    # row the user filled in, and whether the lot came from the list or a scan.
    line_rows: list[tuple[int, str]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.line_rows = []
        for row in range(1, LINE_ROWS + 1):
            self.fields[f"line_{row}_lot"].queryset = self.line_lots  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        lines: list[services.LineRequest] = []
        self.line_rows = []
        for row in range(1, LINE_ROWS + 1):
            lot, scan, units = (
                data.get(f"line_{row}_lot"),
                (data.get(f"line_{row}_scan") or "").strip(),
                data.get(f"line_{row}_units"),
            )
            if lot is None and not scan and units is None:
                continue
            source = f"line_{row}_lot"
            if lot is not None and scan:
                self.add_error(f"line_{row}_scan", _("Choose the lot or scan it, not both."))
                continue
            if scan:
                source = f"line_{row}_scan"
                try:
                    lot = scan_resolve(scan).lot
                except DomainError as error:
                    for problem in error.problems:
                        message = _("%(message)s (%(code)s)") % {
                            "message": problem.message,
                            "code": problem.code,
                        }
                        self.add_error(source, message)
                    continue
            if lot is None:
                self.add_error(source, _("Choose the lot used, or scan the vial."))
                continue
            if units is None:
                self.add_error(f"line_{row}_units", _("Give the units used."))
                continue
            lines.append(services.LineRequest(lot=lot, units=units))
            self.line_rows.append((row, source))
        data["lines"] = lines
        text, taken_at = data.get("consent_text"), data.get("consent_taken_at")
        if text is not None and taken_at is None:
            self.add_error("consent_taken_at", _("Give the time consent was taken."))
        if taken_at is not None and text is None:
            self.add_error("consent_text", _("Choose the consent text the patient signed."))
        return data

    def problem_field(self, name: str | None) -> str | None:
        match = _LINE_PROBLEM.match(name or "")
        if match:
            index, part = int(match.group(1)), match.group(2)
            if index < len(self.line_rows):
                row, source = self.line_rows[index]
                return source if part == "lot" else f"line_{row}_units"
        return {
            "lines": "line_1_lot",
            "consent": "consent_text",
            "consent.consent_text": "consent_text",
            "consent.taken_at": "consent_taken_at",
        }.get(name or "", name)

    def call_service(self, data: dict[str, Any]) -> Treatment:
        consent = None
        if data.get("consent_text") is not None:
            consent = services.ConsentRequest(
                consent_text=data["consent_text"],
                taken_by=self.actor,
                taken_at=data["consent_taken_at"],
            )
        return services.treatment_record(
            actor=self.actor,
            clinic=data["clinic"],
            patient=data["patient"],
            practitioner=data["practitioner"],
            performed_at=data["performed_at"],
            indication=data["indication"],
            route=data["route"],
            anatomical_site=data["anatomical_site"],
            lines=data["lines"],
            consent=consent,
            notes=data.get("notes", ""),
        )


SERIOUSNESS = (
    "results_in_death",
    "life_threatening",
    "hospitalisation",
    "disability",
    "intervention_required",
)


class TreatmentChoiceField(forms.ModelChoiceField):  # type: ignore[type-arg]
    def label_from_instance(self, obj: Any) -> str:
        return (
            f"{obj.performed_at:%Y-%m-%d %H:%M} - patient {obj.patient.reference} at "
            f"{obj.clinic.name} (treatment {obj.pk})"
        )


class AdverseEventRecordForm(ServiceForm):
    class Meta:
        model = AdverseEvent
        fields = ["treatment", "lot", "onset_on", "description", *SERIOUSNESS]
        field_classes = {"treatment": TreatmentChoiceField}

    def call_service(self, data: dict[str, Any]) -> AdverseEvent:
        return services.adverse_event_record(
            actor=self.actor,
            treatment=data["treatment"],
            lot=data.get("lot"),
            onset_on=data["onset_on"],
            description=data["description"],
            **{name: bool(data.get(name)) for name in SERIOUSNESS},
        )
