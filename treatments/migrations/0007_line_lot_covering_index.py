"""A lot's lines are indexed in a trace's order with what a trace's counts and a recall's exposures
read, so that those come from the index alone.

Built in a migration of its own, after 0006 has committed its update of every line: built in the
same transaction, the index would hold an entry for each line's old version too (still visible to
other transactions then), and stay half empty once VACUUM removed them."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("treatments", "0006_line_carries_treatment_parties"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="treatmentline",
            index=models.Index(
                fields=["lot", "performed_at", "treatment"],
                include=("id", "units", "clinic", "patient", "practitioner"),
                name="treatment_line_lot_covering",
            ),
        ),
    ]
