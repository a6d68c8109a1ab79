"""Each treatment line carries its treatment's clinic, patient and practitioner besides its time,
all copied by the database and fixed with the treatment. The lot's index goes before the lines are
updated, so the update maintains one index fewer; 0007 builds its covering successor."""

import django.db.models.deletion
import pgtrigger.compiler
import pgtrigger.migrations
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("lots", "0009_effective_default_always"),
        ("providers", "0006_clinic_requires_sec"),
        ("stock", "0003_movement_no_longer_points_up_at_a_treatment"),
        ("treatments", "0005_covered_foreign_key_indexes_dropped"),
    ]

    operations = [
        pgtrigger.migrations.RemoveTrigger(
            model_name="treatment",
            name="treatment_time_fixed",
        ),
        pgtrigger.migrations.RemoveTrigger(
            model_name="treatmentline",
            name="treatment_line_time",
        ),
        migrations.RemoveIndex(
            model_name="treatmentline",
            name="treatment_line_lot_time",
        ),
        migrations.AddField(
            model_name="treatmentline",
            name="clinic",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="providers.clinic",
            ),
        ),
        migrations.AddField(
            model_name="treatmentline",
            name="patient",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="treatments.patient",
            ),
        ),
        migrations.AddField(
            model_name="treatmentline",
            name="practitioner",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="providers.practitioner",
            ),
        ),
        # The lines written so far: every user trigger of the table is set aside for this one
        # statement (the lines are otherwise immutable).
        migrations.RunSQL(
            """
            ALTER TABLE treatments_treatmentline DISABLE TRIGGER USER;
            UPDATE treatments_treatmentline line
            SET clinic_id = treatment.clinic_id, patient_id = treatment.patient_id,
                practitioner_id = treatment.practitioner_id
            FROM treatments_treatment treatment WHERE treatment.id = line.treatment_id;
            ALTER TABLE treatments_treatmentline ENABLE TRIGGER USER;
            """,
            migrations.RunSQL.noop,
        ),
        migrations.AlterField(
            model_name="treatmentline",
            name="clinic",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                editable=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="providers.clinic",
            ),
        ),
        migrations.AlterField(
            model_name="treatmentline",
            name="patient",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                editable=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="treatments.patient",
            ),
        ),
        migrations.AlterField(
            model_name="treatmentline",
            name="practitioner",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                editable=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="providers.practitioner",
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="treatment",
            trigger=pgtrigger.compiler.Trigger(
                name="treatment_copied_fixed",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    condition='WHEN (OLD."clinic_id" IS DISTINCT FROM (NEW."clinic_id") OR OLD."patient_id" IS DISTINCT FROM (NEW."patient_id") OR OLD."performed_at" IS DISTINCT FROM (NEW."performed_at") OR OLD."practitioner_id" IS DISTINCT FROM (NEW."practitioner_id"))',
                    func="RAISE EXCEPTION 'pgtrigger: Cannot update rows from % table', TG_TABLE_NAME;",
                    hash="474b306e117b5ca238be76c71f2475411a654de1",
                    operation="UPDATE",
                    pgid="pgtrigger_treatment_copied_fixed_d9394",
                    table="treatments_treatment",
                    when="BEFORE",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="treatmentline",
            trigger=pgtrigger.compiler.Trigger(
                name="treatment_line_copies",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func="\nSELECT performed_at, clinic_id, patient_id, practitioner_id\nINTO NEW.performed_at, NEW.clinic_id, NEW.patient_id, NEW.practitioner_id\nFROM treatments_treatment WHERE id = NEW.treatment_id;\nRETURN NEW;\n",
                    hash="906cc1ab5d07670e071425e5ec4adcf6b1e5cb02",
                    operation="INSERT",
                    pgid="pgtrigger_treatment_line_copies_fa04c",
                    table="treatments_treatmentline",
                    when="BEFORE",
                ),
            ),
        ),
    ]
