import pgtrigger.migrations
from django.db import migrations

# A bulk loader (demo.scale) writes with session_replication_role = replica, where ordinary
# triggers are off: the effective time's default must fire there too (ENABLE ALWAYS), which
# pgtrigger's triggers cannot be declared to do.
CREATE = """
CREATE FUNCTION lots_status_change_effective_default() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.effective_at := COALESCE(NEW.effective_at, NEW.signed_at);
    RETURN NEW;
END;
$$;
CREATE TRIGGER lots_status_change_effective_default
    BEFORE INSERT ON lots_lotstatuschange
    FOR EACH ROW EXECUTE FUNCTION lots_status_change_effective_default();
ALTER TABLE lots_lotstatuschange ENABLE ALWAYS TRIGGER lots_status_change_effective_default;
"""
DROP = """
DROP TRIGGER IF EXISTS lots_status_change_effective_default ON lots_lotstatuschange;
DROP FUNCTION IF EXISTS lots_status_change_effective_default();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("lots", "0008_retrospective_release_and_sec"),
    ]

    operations = [
        pgtrigger.migrations.RemoveTrigger(
            model_name="lotstatuschange",
            name="status_change_effective_default",
        ),
        migrations.RunSQL(CREATE, DROP),
    ]
