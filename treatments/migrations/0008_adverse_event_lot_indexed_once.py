"""An adverse event's lot was indexed twice: by its foreign key's own index and by adverse_event_lot."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('lots', '0009_effective_default_always'),
        ('treatments', '0007_line_lot_covering_index'),
    ]

    operations = [
        migrations.AlterField(
            model_name='adverseevent',
            name='lot',
            field=models.ForeignKey(blank=True, db_index=False, help_text="The suspected lot, one of the treatment's.", null=True, on_delete=django.db.models.deletion.PROTECT, related_name='adverse_events', to='lots.lot'),
        ),
    ]
