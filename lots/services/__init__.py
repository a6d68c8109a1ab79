"""Writes about products, donors, tests, lots and certificates, and the release gate.

Every write checks the quality-manager role, validates, and runs inside one transaction with the
acting user and reason attached to the history rows that PostgreSQL's triggers write. One module
per use case; callers import the services from here.
"""

from lots.services.certificates import certificate_upload, certificate_upload_to_path
from lots.services.donors import donor_create, donor_eligibility_decide, donor_marker_result_record
from lots.services.products import product_authorisation_set, product_create
from lots.services.qc import lot_qc_result_record
from lots.services.registration import lot_create, lot_donor_add, lot_sec_set
from lots.services.release import (
    lot_hold,
    lot_record_digest,
    lot_reject,
    lot_release,
    lots_mark_recalled,
)

__all__ = [
    "certificate_upload",
    "certificate_upload_to_path",
    "donor_create",
    "donor_eligibility_decide",
    "donor_marker_result_record",
    "lot_create",
    "lot_donor_add",
    "lot_hold",
    "lot_qc_result_record",
    "lot_record_digest",
    "lot_reject",
    "lot_release",
    "lot_sec_set",
    "lots_mark_recalled",
    "product_authorisation_set",
    "product_create",
]
