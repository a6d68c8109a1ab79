"""The electronic signatures of the lot releases and donor determinations, as `signatures.sign`
writes them, so `signatures_verify` finds each valid and none missing.

PostgreSQL builds each signed content (the shape `lots.signing`'s builders read: values as
`signatures.registry.plain` renders them, times in whole seconds); Python only hashes it with
the project's own canonical serialisation (`content_hash`, `manifest_hash`): re-implementing
that in SQL would be a second definition to keep equal. The contents are streamed from a
server-side cursor and the rows written back by COPY, a thousand at a time: memory stays flat,
and there is one signature per lot and per donor, not per treatment.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import connection

from common.signatures import content_hash
from demo.scale.base import Load
from lots.models import Donor, LotStatusChange
from signatures.registry import record_label
from signatures.services import manifest_hash

BATCH = 1000


def iso_date(column: str) -> str:
    return f"to_char({column}, 'YYYY-MM-DD')"


def iso_time(column: str) -> str:
    """An instant as `datetime.isoformat()` writes it in UTC (whole seconds)."""
    return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS') || '+00:00'"


def _markers(donor: str) -> str:
    """The donor's marker results by code; each also names its own code, as
    `lots.signing._marker_results` leaves it in (the value is built before the key is popped)."""
    return f"""coalesce((
        SELECT jsonb_object_agg(marker.code, jsonb_build_object(
            'result', result.result, 'tested_on', {iso_date("result.tested_on")},
            'laboratory', result.laboratory, 'test_method', result.test_method,
            'marker__code', marker.code))
        FROM lots_donormarkerresult result JOIN lots_marker marker ON marker.id = result.marker_id
        WHERE result.donor_id = {donor}.id), '{{}}'::jsonb)"""  # noqa: S608 - the SQL is ours


def _donor_fields(donor: str) -> str:
    return f"""'id', {donor}.id, 'code', {donor}.code, 'isbt_din', {donor}.isbt_din,
        'tissue', {donor}.tissue, 'collection_date', {iso_date(f"{donor}.collection_date")},
        'specimen_date', {iso_date(f"{donor}.specimen_date")},
        'birth_mother_tested', {donor}.birth_mother_tested,
        'testing_laboratory', {donor}.testing_laboratory, 'eligibility', {donor}.eligibility"""


# (record id, subject, signer, printed name, signed at, meaning, reason, state, act), the state
# and the act as JSON text (Django's connection loads jsonb as text for JSONField to decode).
RELEASES_SQL = f"""
SELECT change.id, 'lots.lot:' || lot.id, change.signed_by_id, change.signer_name,
       change.signed_at, change.meaning, change.reason,
       jsonb_build_object(
           'lot', jsonb_build_object(
               'id', lot.id, 'lot_number', lot.lot_number,
               'manufacturer_id', lot.manufacturer_id, 'product_id', lot.product_id,
               'product__gtin', product.gtin, 'product__source_kind', product.source_kind,
               'product__tissue', product.tissue,
               'manufactured_on', {iso_date("lot.manufactured_on")},
               'expires_on', {iso_date("lot.expires_on")}, 'quantity', lot.quantity,
               'unit', lot.unit, 'regulatory_basis', lot.regulatory_basis,
               'regulatory_number', lot.regulatory_number),
           'donors', coalesce((
               SELECT jsonb_object_agg(donor.code, jsonb_build_object(
                   {_donor_fields("donor")}, 'markers', {_markers("donor")}))
               FROM lots_lotdonor link JOIN lots_donor donor ON donor.id = link.donor_id
               WHERE link.lot_id = lot.id), '{{}}'::jsonb),
           'qc', coalesce((
               SELECT jsonb_object_agg(test.code, jsonb_build_object(
                   'numeric_value', qc.numeric_value::text, 'outcome', qc.outcome,
                   'tested_on', {iso_date("qc.tested_on")}, 'laboratory', qc.laboratory,
                   'method', qc.method))
               FROM lots_lotqcresult qc JOIN lots_qctest test ON test.id = qc.test_id
               WHERE qc.lot_id = lot.id), '{{}}'::jsonb),
           'certificates', coalesce((
               SELECT jsonb_object_agg(certificate.id::text, jsonb_build_object(
                   'kind', certificate.kind, 'sha256', certificate.sha256,
                   'number', certificate.number, 'issuer', certificate.issuer,
                   'valid_from', {iso_date("certificate.valid_from")},
                   'valid_until', {iso_date("certificate.valid_until")}))
               FROM lots_certificate certificate
               WHERE (certificate.lot_id = lot.id
                      OR (certificate.manufacturer_id = lot.manufacturer_id
                          AND certificate.kind IN ('gmp', 'iso13485')))
                 AND certificate.uploaded_at <= change.signed_at), '{{}}'::jsonb)
       )::text,
       jsonb_build_object(
           'action', change.action, 'from_status', change.from_status,
           'to_status', change.to_status, 'signed_by_id', change.signed_by_id,
           'signer_name', change.signer_name, 'signed_at', {iso_time("change.signed_at")},
           'meaning', change.meaning, 'reason', change.reason,
           'record_digest', change.record_digest)::text
FROM lots_lotstatuschange change
JOIN lots_lot lot ON lot.id = change.lot_id
JOIN lots_product product ON product.id = lot.product_id
WHERE change.id >= %(lots_lotstatuschange_first)s
ORDER BY change.id
"""  # noqa: S608 - the SQL is ours

DETERMINATIONS_SQL = f"""
SELECT donor.id, 'lots.donor:' || donor.id, donor.eligibility_decided_by_id, signer.username,
       donor.eligibility_decided_at, 'responsibility',
       'Eligible: every required marker non-reactive (scale run ' || %(run)s || ')',
       jsonb_build_object(
           {_donor_fields("donor")},
           'eligibility_decided_by_id', donor.eligibility_decided_by_id,
           'eligibility_decided_at', {iso_time("donor.eligibility_decided_at")},
           'markers', {_markers("donor")})::text,
       '{{}}'
FROM lots_donor donor JOIN auth_user signer ON signer.id = donor.eligibility_decided_by_id
WHERE donor.id >= %(lots_donor_first)s
ORDER BY donor.id
"""  # noqa: S608 - the SQL is ours

COLUMNS = (
    "kind, record_type_id, record_id, subject, signer_id, printed_name, signed_at, meaning, "
    "reason, content, content_sha256, signature_sha256, backfilled"
)


def signatures_create(load: Load) -> None:
    load.mark("signatures_signature")
    # The contents are read through the foreign keys' indexes, whose statistics must know the
    # rows just written.
    for table in (
        "lots_lotdonor",
        "lots_donormarkerresult",
        "lots_lotqcresult",
        "lots_certificate",
    ):
        load.execute(f"ANALYZE {table}")
    kinds = (
        ("lot_release", LotStatusChange, RELEASES_SQL, load.sizes.lots),
        ("donor_eligibility", Donor, DETERMINATIONS_SQL, donor_total(load)),
    )
    with load.phase("signatures", sum(count for *_, count in kinds)):
        for kind, model, sql, _ in kinds:
            record_type = ContentType.objects.get_for_model(model)
            for batch in _contents(load, sql):
                _write(kind, record_type, batch)
                load.progress.advance(len(batch))


def donor_total(load: Load) -> int:
    return int(load.value("SELECT count(*) FROM lots_donor WHERE id >= %(lots_donor_first)s"))


def _contents(load: Load, sql: str) -> Iterator[list[tuple[Any, ...]]]:
    raw = connection.connection
    with raw.cursor(name="scale_signatures") as cursor:
        cursor.execute(sql, load.params())
        while batch := cursor.fetchmany(BATCH):
            yield batch


def _write(kind: str, record_type: ContentType, batch: list[tuple[Any, ...]]) -> None:
    record_model = f"{record_type.app_label}.{record_type.model}"
    with connection.connection.cursor() as cursor:
        with cursor.copy(f"COPY signatures_signature ({COLUMNS}) FROM STDIN") as copy:
            for (
                record_id,
                subject,
                signer_id,
                name,
                signed_at,
                meaning,
                reason,
                state,
                act,
            ) in batch:
                record = record_label(record_model, record_id)
                content = {
                    "kind": kind,
                    "record": record,
                    "subject": subject,
                    "state": json.loads(state),
                    "act": json.loads(act),
                }
                digest = content_hash(content)
                manifest = manifest_hash(
                    kind=kind,
                    record=record,
                    subject=subject,
                    signer_id=signer_id,
                    printed_name=name,
                    signed_at=signed_at,
                    meaning=meaning,
                    reason=reason,
                    content_sha256=digest,
                )
                copy.write_row(
                    (
                        kind,
                        record_type.pk,
                        record_id,
                        subject,
                        signer_id,
                        name,
                        signed_at,
                        meaning,
                        reason,
                        json.dumps(content, separators=(",", ":")),
                        digest,
                        manifest,
                        False,
                    )
                )
