"""Each treatment line carries its treatment's time, indexed after its lot, so that a lot's lines
are read in a trace's order without sorting them all. The database copies the time as a line is
written, and a treatment's time is fixed from now on."""

import pgtrigger.compiler
import pgtrigger.migrations
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("lots", "0009_effective_default_always"),
        ("stock", "0003_movement_no_longer_points_up_at_a_treatment"),
        ("treatments", "0003_treatment_line_points_at_its_stock_movement"),
    ]

    operations = [
        pgtrigger.migrations.RemoveTrigger(
            model_name="treatmentline",
            name="update_update",
        ),
        migrations.AddField(
            model_name="treatmentline",
            name="performed_at",
            field=models.DateTimeField(editable=False, null=True),
        ),
        # The lines written so far: every user trigger of the table is set aside for this one
        # statement (the lines are otherwise immutable), the foreign keys' checks are not.
        migrations.RunSQL(
            """
            ALTER TABLE treatments_treatmentline DISABLE TRIGGER USER;
            UPDATE treatments_treatmentline line SET performed_at = treatment.performed_at
            FROM treatments_treatment treatment WHERE treatment.id = line.treatment_id;
            ALTER TABLE treatments_treatmentline ENABLE TRIGGER USER;
            """,
            migrations.RunSQL.noop,
        ),
        migrations.AlterField(
            model_name="treatmentline",
            name="performed_at",
            field=models.DateTimeField(editable=False),
        ),
        migrations.AddIndex(
            model_name="treatmentline",
            index=models.Index(
                fields=["lot", "performed_at", "treatment"], name="treatment_line_lot_time"
            ),
        ),
        migrations.RemoveIndex(
            model_name="treatmentline",
            name="treatment_line_lot",
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="treatment",
            trigger=pgtrigger.compiler.Trigger(
                name="treatment_time_fixed",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    condition='WHEN (OLD."performed_at" IS DISTINCT FROM (NEW."performed_at"))',
                    func="RAISE EXCEPTION 'pgtrigger: Cannot update rows from % table', TG_TABLE_NAME;",
                    hash="ec98a709dd8e483f191699bf0776a9c0b0576a9f",
                    operation="UPDATE",
                    pgid="pgtrigger_treatment_time_fixed_67cd1",
                    table="treatments_treatment",
                    when="BEFORE",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="treatmentline",
            trigger=pgtrigger.compiler.Trigger(
                name="treatment_line_time",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func="NEW.performed_at := (SELECT performed_at FROM treatments_treatment WHERE id = NEW.treatment_id); RETURN NEW;",
                    hash="b2343f7c52218fdd619cd96a6cf21d0d3fec4582",
                    operation="INSERT",
                    pgid="pgtrigger_treatment_line_time_600ff",
                    table="treatments_treatmentline",
                    when="BEFORE",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="treatmentline",
            trigger=pgtrigger.compiler.Trigger(
                name="update_update",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    condition='WHEN (OLD."id" IS DISTINCT FROM (NEW."id") OR OLD."lot_id" IS DISTINCT FROM (NEW."lot_id") OR OLD."stock_movement_id" IS DISTINCT FROM (NEW."stock_movement_id") OR OLD."treatment_id" IS DISTINCT FROM (NEW."treatment_id") OR OLD."units" IS DISTINCT FROM (NEW."units"))',
                    func='INSERT INTO "treatments_treatmentlineevent" ("id", "lot_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "stock_movement_id", "treatment_id", "units") VALUES (NEW."id", NEW."lot_id", _pgh_attach_context(), NOW(), \'update\', NEW."id", NEW."stock_movement_id", NEW."treatment_id", NEW."units"); RETURN NULL;',
                    hash="864843a25c8111fe953becd7e621480ac709e370",
                    operation="UPDATE",
                    pgid="pgtrigger_update_update_68a61",
                    table="treatments_treatmentline",
                    when="AFTER",
                ),
            ),
        ),
    ]
