"""Recording a lot's QC results (pass or fail is derived from the specification, not stored)."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from common.errors import DomainError
from common.services import history, require_reason, validate_instance
from lots.models import Lot, LotQcResult, QcKind, QcTest
from providers.models import Role
from providers.selectors import require_role


@transaction.atomic
def lot_qc_result_record(
    *,
    actor: Any,
    lot: Lot,
    test: QcTest,
    tested_on: datetime.date,
    laboratory: str,
    numeric_value: Decimal | None = None,
    outcome: str = "",
    method: str = "",
    reason: str = "",
) -> LotQcResult:
    """Record a lot's result for a QC test. Pass or fail is derived from the specification, never
    stored. A second result for the same test is a correction and needs a reason."""
    require_role(actor, Role.QUALITY_MANAGER)
    if test.kind == QcKind.QUANTITATIVE and (numeric_value is None or outcome):
        raise DomainError.single(
            "qc_numeric_value_required",
            (
                _("%(test)s is measured: give numeric_value (%(unit)s), not outcome.")
                % {"test": test.name, "unit": test.unit}
                if test.unit
                else _("%(test)s is measured: give numeric_value (number), not outcome.")
                % {"test": test.name}
            ),
            field="numeric_value",
            status=400,
        )
    if test.kind == QcKind.QUALITATIVE and (not outcome or numeric_value is not None):
        raise DomainError.single(
            "qc_outcome_required",
            _("%(test)s is qualitative: give outcome (detected / not_detected), not a number.")
            % {"test": test.name},
            field="outcome",
            status=400,
        )
    existing = LotQcResult.objects.select_for_update().filter(lot=lot, test=test).first()
    if existing is not None:
        reason = require_reason(reason)
    record = existing or LotQcResult(lot=lot, test=test)
    record.numeric_value = numeric_value
    record.outcome = outcome
    record.tested_on = tested_on
    record.laboratory = laboratory
    record.method = method
    validate_instance(record)
    with history(actor, reason or "QC result recorded"):
        record.save()
    return record
