"""Which history imports a user sees: those of the clinics they import for or read (providers.
access decides), never another clinic's."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from history.models import HistoryImport
from providers.access import access_for


def history_import_list(*, user: Any) -> QuerySet[HistoryImport]:
    """The imports the user may read, newest first, without their files."""
    imports = HistoryImport.objects.select_related("clinic", "uploaded_by").defer("content")
    clinic_ids = access_for(user).history_import_clinic_ids
    if clinic_ids is None:
        return imports
    return imports.filter(clinic_id__in=clinic_ids)
