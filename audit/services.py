"""Recording reads of patient contact data (DESIGN rule 7): the one place that writes them to the
database and to the `traceability.contact_access` log."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

from django.utils import timezone

from audit.models import ContactDataRead, ReadVia

if TYPE_CHECKING:
    from providers.models import Clinic


class PatientLike(Protocol):
    """A patient as far as the record needs one (treatments.models.Patient)."""

    pk: Any
    clinic_id: int


contact_access_log = logging.getLogger("traceability.contact_access")

WHAT_MAX_LENGTH = ContactDataRead._meta.get_field("what").max_length or 200


def contact_data_read_log(
    *, user_id: int | None, clinic_id: int, patient_ids: list[int], what: str, via: str
) -> None:
    """The log line of a read, for log shippers; `contact_data_read_record` writes it for every
    row it records."""
    contact_access_log.info(
        "contact data read: user=%s patient=%s clinic=%s via=%s what=%s",
        user_id,
        ",".join(map(str, patient_ids)),
        clinic_id,
        via,
        what,
    )


def contact_data_read_record(
    *,
    user: Any,
    what: str,
    via: ReadVia | str,
    patients: Iterable[PatientLike] = (),
    clinic: Clinic | None = None,
    patient_ids: Iterable[int] = (),
) -> list[ContactDataRead]:
    """Record that `user` was shown the contact details of some patients: `patients` (each row's
    clinic is the patient's own), or `patient_ids` of one `clinic`.

    One read is one row per clinic it showed (almost always one) written in a single INSERT,
    whatever the number of patients; nothing is written when no patient was shown. Call it in
    the request that shows the details, before the response leaves: a read that cannot be
    recorded is not shown."""
    by_clinic: dict[int, set[int]] = defaultdict(set)
    for patient in patients:
        by_clinic[patient.clinic_id].add(patient.pk)
    wanted = set(patient_ids)
    if wanted:
        if clinic is None:
            raise ValueError("patient_ids need the clinic they belong to")
        by_clinic[clinic.pk] |= wanted
    if not by_clinic:
        return []
    via = ReadVia(via)
    what = what[:WHAT_MAX_LENGTH]
    user_name = user.get_full_name() or user.get_username()
    at = timezone.now()
    reads = [
        ContactDataRead(
            user=user,
            user_name=user_name,
            clinic_id=clinic_id,
            patient_ids=sorted(ids),
            patient_count=len(ids),
            what=what,
            via=via,
            at=at,
        )
        for clinic_id, ids in sorted(by_clinic.items())
    ]
    # One statement, atomic on its own (bulk_create opens no savepoint): a read that shows
    # nothing costs no query at all, and the pages that call this stay at a fixed count.
    ContactDataRead.objects.bulk_create(reads)
    for read in reads:
        contact_data_read_log(
            user_id=user.pk,
            clinic_id=read.clinic_id,
            patient_ids=read.patient_ids,
            what=what,
            via=via,
        )
    return reads
