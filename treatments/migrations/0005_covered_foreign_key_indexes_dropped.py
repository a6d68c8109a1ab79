"""A treatment's clinic, patient and practitioner, and a line's treatment and lot, each lead a wider
index that serves their lookups: their single-column indexes only cost every write."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('lots', '0009_effective_default_always'),
        ('providers', '0006_clinic_requires_sec'),
        ('treatments', '0004_line_carries_treatment_time'),
    ]

    operations = [
        migrations.AlterField(
            model_name='treatment',
            name='clinic',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='treatments', to='providers.clinic'),
        ),
        migrations.AlterField(
            model_name='treatment',
            name='patient',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='treatments', to='treatments.patient'),
        ),
        migrations.AlterField(
            model_name='treatment',
            name='practitioner',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='treatments', to='providers.practitioner'),
        ),
        migrations.AlterField(
            model_name='treatmentline',
            name='lot',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='treatment_lines', to='lots.lot'),
        ),
        migrations.AlterField(
            model_name='treatmentline',
            name='treatment',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='lines', to='treatments.treatment'),
        ),
    ]
