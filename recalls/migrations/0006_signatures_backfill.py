"""Signature rows for the recall openings and widenings signed before `signatures.Signature`.

An opening or widening signed earlier carries a digest (`Recall.opened_signature_digest`,
`RecallScope.signature_digest`) over the recall's class, depth, reason, hazard, drill flag, the
round's lots, signer, time and meaning (the payload below, frozen as `recalls.services` computed
it). A Signature is written only when that digest, recomputed from the rows as they stand now,
still matches; its content is read by `recalls.signing` from the same rows. Fields the legacy
digest did not cover (instructions, the scope's criteria) are taken as they stand; their
earlier values are in the history tables. Closings carried no digest, so none is written for
them: nothing would prove what the signer saw.

`recalls.signing` reads through this migration's historical models.
"""

import datetime
import hashlib
import json

from django.db import migrations


def legacy_digest(recall, lot_ids, signer_id, at, meaning, round_number, reason):
    payload = {
        "recall": recall.pk,
        "class": recall.recall_class,
        "depth": recall.depth,
        "reason": recall.reason,
        "hazard": recall.hazard,
        "drill": recall.is_drill,
        "lots": lot_ids,
        "signer": signer_id,
        "at": at.astimezone(datetime.UTC).isoformat(),
        "meaning": meaning,
    }
    if round_number != 1:
        payload["round"] = round_number
        payload["round_reason"] = reason.strip()
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _printed_name(user):
    return f"{user.first_name} {user.last_name}".strip() or user.username


def backfill(apps, schema_editor):
    from signatures.registry import kind_get, record_label, signed_content
    from signatures.services import manifest_hash
    from common.signatures import content_hash

    Recall = apps.get_model("recalls", "Recall")
    RecallScope = apps.get_model("recalls", "RecallScope")
    RecallLot = apps.get_model("recalls", "RecallLot")
    Signature = apps.get_model("signatures", "Signature")
    ContentType = apps.get_model("contenttypes", "ContentType")

    def write(kind_code, model, record_id, signer, at, reason):
        kind = kind_get(kind_code)
        record_type, _ = ContentType.objects.get_or_create(app_label="recalls", model=model)
        label = f"recalls.{model}"
        content = signed_content(
            kind=kind,
            record_model=label,
            record_id=record_id,
            signed_at=at,
            get_model=apps.get_model,
        )
        digest = content_hash(content)
        name = _printed_name(signer)
        Signature.objects.create(
            kind=kind.code,
            record_type=record_type,
            record_id=record_id,
            subject=content["subject"],
            signer_id=signer.pk,
            printed_name=name,
            signed_at=at,
            meaning="responsibility",
            reason=reason,
            content=content,
            content_sha256=digest,
            signature_sha256=manifest_hash(
                kind=kind.code,
                record=record_label(label, record_id),
                subject=content["subject"],
                signer_id=signer.pk,
                printed_name=name,
                signed_at=at,
                meaning="responsibility",
                reason=reason,
                content_sha256=digest,
            ),
            backfilled=True,
        )

    scopes = RecallScope.objects.select_related("recall", "added_by").order_by("recall_id", "round")
    for scope in scopes.iterator(chunk_size=200):
        recall = scope.recall
        lot_ids = sorted(
            RecallLot.objects.filter(recall=recall, round=scope.round).values_list(
                "lot_id", flat=True
            )
        )
        if scope.round == 1:
            expected = legacy_digest(
                recall, lot_ids, recall.opened_by_id, recall.opened_at, "open", 1, ""
            )
            if expected == recall.opened_signature_digest and recall.reason.strip():
                opener = apps.get_model("auth", "User").objects.get(pk=recall.opened_by_id)
                write("recall_open", "recall", recall.pk, opener, recall.opened_at, recall.reason)
        else:
            expected = legacy_digest(
                recall,
                lot_ids,
                scope.added_by_id,
                scope.added_at,
                "widen",
                scope.round,
                scope.reason,
            )
            if expected == scope.signature_digest and scope.reason.strip():
                write(
                    "recall_widen",
                    "recallscope",
                    scope.pk,
                    scope.added_by,
                    scope.added_at,
                    scope.reason,
                )


class Migration(migrations.Migration):
    dependencies = [
        ("recalls", "0005_notice_window_resend_endpoint_rotation"),
        ("lots", "0007_signatures_backfill"),
        ("signatures", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
