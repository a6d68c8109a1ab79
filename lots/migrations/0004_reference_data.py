"""Seed the reference data the release gate reads (see lots/reference_data.py)."""

from django.db import migrations

from lots.reference_data import seed_reference_data


class Migration(migrations.Migration):
    dependencies = [("lots", "0003_lot_product_manufacturer_fk")]

    operations = [migrations.RunPython(seed_reference_data, migrations.RunPython.noop)]
