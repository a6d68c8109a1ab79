"""The recall exposure check compares each frozen row with its line alone (whose copies of the
treatment are the database's), found by the key of the lot's covering index."""


import pgtrigger.compiler
import pgtrigger.migrations
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('recalls', '0010_notification_queue_failed_at'),
        ('treatments', '0007_line_lot_covering_index'),
    ]

    operations = [
        pgtrigger.migrations.RemoveTrigger(
            model_name='recallexposure',
            name='recall_exposure_matches_line',
        ),
        pgtrigger.migrations.AddTrigger(
            model_name='recallexposure',
            trigger=pgtrigger.compiler.Trigger(name='recall_exposure_matches_line', sql=pgtrigger.compiler.UpsertTriggerSql(func="\nIF (\n    SELECT count(*) FROM (SELECT DISTINCT recall_id FROM frozen) e\n    LEFT JOIN recalls_recall r ON r.id = e.recall_id\n    WHERE r.id IS NULL\n) > 0 OR (\n    SELECT count(*) FROM frozen e\n    LEFT JOIN treatments_treatmentline l\n        ON l.lot_id = e.lot_id AND l.performed_at = e.performed_at\n        AND l.treatment_id = e.treatment_id AND l.id = e.treatment_line_id\n    WHERE l.id IS NULL\n        OR (l.units, l.clinic_id, l.patient_id, l.practitioner_id)\n        IS DISTINCT FROM (e.units, e.clinic_id, e.patient_id, e.practitioner_id)\n) > 0 THEN\n    RAISE EXCEPTION USING\n        ERRCODE = 'foreign_key_violation',\n        CONSTRAINT = 'recall_exposure_matches_line',\n        MESSAGE = 'a recall exposure must copy an existing treatment line of an existing recall';\nEND IF;\nRETURN NULL;\n", hash='224cc958444376f7a52106b13e554145ba9f8dc6', level='STATEMENT', operation='INSERT', pgid='pgtrigger_recall_exposure_matches_line_a6349', referencing='REFERENCING NEW TABLE AS frozen ', table='recalls_recallexposure', when='AFTER')),
        ),
    ]
