"""Signature rows for the lot decisions signed before `signatures.Signature` existed.

A release, rejection or hold signed earlier carries only `record_digest`: SHA-256 over the lot's
content as it was then (the payload below, frozen as `lots.services` computed it). A Signature is
written for such a decision only when that digest, recomputed from the records as they stand
now, still matches: then the lot's signed content is provably unchanged, and the new signature's
content (read by `lots.signing` from the same records) is what was signed. Fields the legacy
digest did not cover (a laboratory's name, a test method) are taken as they stand, and their
earlier values stay in the history tables. A decision whose digest no longer matches gets no
Signature: nothing proves what it signed, and its `record_digest` and history stay the
evidence. Decisions for recalls (action `recall`) are covered by the recall's own signatures
(`recalls` 0006). Donor eligibility determinations carried no digest at all, so none is written
for them: nothing would prove that the donor's results are those the signer saw.

`lots.signing` reads through this migration's historical models, so the backfill runs against
the schema of this point in history.
"""

import datetime
import hashlib
import json

from django.db import migrations
from django.db.models import Q

MANUFACTURER_CERTIFICATES = ("gmp", "iso13485")


def legacy_record_digest(apps, lot, status):
    DonorMarkerResult = apps.get_model("lots", "DonorMarkerResult")
    LotDonor = apps.get_model("lots", "LotDonor")
    LotQcResult = apps.get_model("lots", "LotQcResult")
    Certificate = apps.get_model("lots", "Certificate")
    donor_results = DonorMarkerResult.objects.filter(donor__lot_donors__lot=lot).values_list(
        "donor__code", "marker__code", "result", "tested_on"
    )
    return {
        "lot": lot.pk,
        "lot_number": lot.lot_number,
        "manufacturer": lot.manufacturer_id,
        "product": lot.product_id,
        "manufactured_on": lot.manufactured_on.isoformat(),
        "expires_on": lot.expires_on.isoformat(),
        "quantity": lot.quantity,
        "regulatory_basis": lot.regulatory_basis,
        "regulatory_number": lot.regulatory_number,
        "status": status,
        "donors": sorted(
            [code, eligibility]
            for code, eligibility in LotDonor.objects.filter(lot=lot).values_list(
                "donor__code", "donor__eligibility"
            )
        ),
        "donor_markers": sorted(
            [code, marker, result, tested_on.isoformat()]
            for code, marker, result, tested_on in donor_results
        ),
        "qc": sorted(
            [r.test_id, str(r.numeric_value), r.outcome, r.tested_on.isoformat()]
            for r in LotQcResult.objects.filter(lot=lot)
        ),
        "certificates": sorted(
            Certificate.objects.filter(
                Q(lot=lot)
                | Q(manufacturer_id=lot.manufacturer_id, kind__in=MANUFACTURER_CERTIFICATES)
            ).values_list("sha256", flat=True)
        ),
    }


def legacy_digest(apps, change):
    payload = {
        "record": legacy_record_digest(apps, change.lot, change.from_status),
        "action": change.action,
        "to_status": change.to_status,
        "signer": change.signed_by_id,
        "signed_at": change.signed_at.astimezone(datetime.UTC).isoformat(),
        "meaning": change.meaning,
        "reason": change.reason,
    }
    return hashlib.sha256(
        json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


def backfill(apps, schema_editor):
    from signatures.registry import kind_get, record_label, signed_content
    from signatures.services import manifest_hash
    from common.signatures import content_hash

    LotStatusChange = apps.get_model("lots", "LotStatusChange")
    Signature = apps.get_model("signatures", "Signature")
    ContentType = apps.get_model("contenttypes", "ContentType")
    record_type = None
    changes = (
        LotStatusChange.objects.filter(action__in=["release", "reject", "hold"])
        .select_related("lot")
        .order_by("pk")
    )
    for change in changes.iterator(chunk_size=200):
        if legacy_digest(apps, change) != change.record_digest:
            continue
        if record_type is None:
            record_type, _ = ContentType.objects.get_or_create(
                app_label="lots", model="lotstatuschange"
            )
        kind = kind_get(f"lot_{change.action}")
        content = signed_content(
            kind=kind,
            record_model="lots.lotstatuschange",
            record_id=change.pk,
            signed_at=change.signed_at,
            get_model=apps.get_model,
        )
        digest = content_hash(content)
        Signature.objects.create(
            kind=kind.code,
            record_type=record_type,
            record_id=change.pk,
            subject=content["subject"],
            signer_id=change.signed_by_id,
            printed_name=change.signer_name,
            signed_at=change.signed_at,
            meaning=change.meaning,
            reason=change.reason,
            content=content,
            content_sha256=digest,
            signature_sha256=manifest_hash(
                kind=kind.code,
                record=record_label("lots.lotstatuschange", change.pk),
                subject=content["subject"],
                signer_id=change.signed_by_id,
                printed_name=change.signer_name,
                signed_at=change.signed_at,
                meaning=change.meaning,
                reason=change.reason,
                content_sha256=digest,
            ),
            backfilled=True,
        )


class Migration(migrations.Migration):
    dependencies = [
        ("lots", "0006_alter_lotstatuschange_action_and_more"),
        ("signatures", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
