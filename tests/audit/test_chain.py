"""The audit trail is a hash chain kept by PostgreSQL (DESIGN rule 7: tamper-evident): every
history event, every version of its context (who, why) and every contact-data read is a link;
`audit_verify` recomputes the chain and names the first broken link. The tamper test alters,
deletes and forges rows as a superuser with the triggers off, and the command finds each.

Links are written at COMMIT (a deferred trigger), so these tests commit (transaction=True).
"""

from __future__ import annotations

import io
import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, connections, transaction
from django.db.utils import DatabaseError

from audit.chain import audited_tables, chain_install, chain_verify
from audit.models import ChainLink
from audit.services import contact_data_read_record
from providers.models import Manufacturer
from tests.factories import ManufacturerFactory, clinic_ready, receive, released_lot, treat
from treatments.services import patient_create

pytestmark = [pytest.mark.django_db(transaction=True)]


def verify() -> str:
    out = io.StringIO()
    call_command("audit_verify", stdout=out)
    return out.getvalue()


def broken() -> tuple[str, str]:
    """The command's output and its error, when it fails as it must."""
    out = io.StringIO()
    with pytest.raises(CommandError) as error:
        call_command("audit_verify", stdout=out)
    return out.getvalue(), str(error.value)


def as_superuser_without_triggers(sql: str, params: list | None = None) -> None:
    """What an attacker with the database password does: triggers off for the session."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params or [])


@pytest.fixture
def history():
    """A realistic set of writes through the services: a clinic, a released lot received and
    used in two treatments, a patient with contact details, a read of those details."""
    ready = clinic_ready()
    lot = released_lot()
    receive(ready, lot, 10)
    treat(ready, lot)
    treat(ready, lot, 2)
    patient = patient_create(
        actor=ready.clinician,
        clinic=ready.clinic,
        reference="CH-0001",
        contact={"full_name": "Ada Chain", "phone": "+1 555 0100"},
    )
    contact_data_read_record(user=ready.administrator, what="test", via="api", patients=[patient])
    return ready


def event_counts() -> int:
    with connection.cursor() as cursor:
        total = 0
        for table in audited_tables(cursor):
            if table.name == "pghistory_context":
                continue
            cursor.execute(f'SELECT count(*) FROM "{table.name}"')  # noqa: S608
            total += cursor.fetchone()[0]
        return total


def first_link(table: str) -> ChainLink:
    return ChainLink.objects.filter(table_name=table).order_by("id").first()


def test_a_realistic_set_of_writes_verifies_clean_and_every_row_has_a_link(history):
    output = verify()

    assert "Audit chain intact" in output
    assert "Head (note it as an anchor)" in output
    chained = ChainLink.objects.exclude(table_name="pghistory_context").count()
    assert chained == event_counts() > 10
    assert ChainLink.objects.filter(table_name="audit_contactdataread").count() == 1
    assert ChainLink.objects.filter(table_name="pghistory_context").exists()


def test_altered_event_content_is_named_as_the_first_broken_link(history):
    link = first_link("lots_lotevent")
    as_superuser_without_triggers(
        "UPDATE lots_lotevent SET lot_number = 'FORGED' WHERE pgh_id = %s", [int(link.row_id)]
    )

    output, error = broken()

    assert "Audit chain BROKEN" in output
    assert (
        f"First broken link: [altered_content] link #{link.pk}, lots_lotevent #{link.row_id}"
        in (output)
    )
    assert "altered_content" in error
    assert ", written 20" in output  # the time the link was written


def test_a_deleted_event_is_found(history):
    link = first_link("treatments_treatmentevent")
    as_superuser_without_triggers(
        "DELETE FROM treatments_treatmentevent WHERE pgh_id = %s", [int(link.row_id)]
    )

    output, _ = broken()

    assert (
        f"First broken link: [missing_event] link #{link.pk}, treatments_treatmentevent "
        f"#{link.row_id}" in output
    )


def test_a_forged_event_inserted_without_the_trigger_is_found(history):
    as_superuser_without_triggers(
        """
        INSERT INTO providers_manufacturerevent
        SELECT (x).* FROM (
            SELECT jsonb_populate_record(
                e, jsonb_build_object('pgh_id', e.pgh_id + 1000, 'legal_name', 'Forged Labs')
            ) AS x
            FROM providers_manufacturerevent e ORDER BY pgh_id LIMIT 1
        ) forged
        """
    )

    output, _ = broken()

    assert "First broken link: [unchained_event] no link, providers_manufacturerevent #" in output
    assert "written with the chain trigger off" in output


def test_an_altered_link_is_found_and_so_is_the_link_after_it(history):
    links = list(ChainLink.objects.order_by("id")[4:6])
    as_superuser_without_triggers(
        "UPDATE audit_chainlink SET link = sha256('forged') WHERE id = %s", [links[0].pk]
    )

    output, _ = broken()

    assert f"First broken link: [broken_link] link #{links[0].pk}," in output
    assert f"also: [broken_link] link #{links[1].pk}," in output


def test_a_deleted_link_is_found_at_the_link_after_it(history):
    links = list(ChainLink.objects.order_by("id")[4:6])
    as_superuser_without_triggers("DELETE FROM audit_chainlink WHERE id = %s", [links[0].pk])

    output, _ = broken()

    # The row of the deleted link is now unchained, and the next link no longer follows.
    assert f"First broken link: [broken_link] link #{links[1].pk}," in output
    assert "[unchained_event]" in output


def test_a_rewritten_context_who_and_why_is_found(history):
    context_id = first_link("pghistory_context").row_id
    as_superuser_without_triggers(
        "UPDATE pghistory_context SET metadata = metadata || '{\"user\": 999}' WHERE id = %s",
        [context_id],
    )

    output, _ = broken()

    assert f"pghistory_context #{context_id}" in output
    assert "[altered_content]" in output


def test_a_disabled_trigger_is_reported(history):
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE lots_lotevent DISABLE TRIGGER ALL")
    try:
        output, _ = broken()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE lots_lotevent ENABLE TRIGGER ALL")

    assert "First broken link: [trigger_disabled] no link, lots_lotevent" in output


def test_an_anchor_noted_earlier_must_still_match(history):
    head = ChainLink.objects.order_by("-id").first()
    out = io.StringIO()
    call_command("audit_verify", f"--anchor={head.pk}:{bytes(head.link).hex()}", stdout=out)
    assert "intact" in out.getvalue()

    with pytest.raises(CommandError, match="anchor_mismatch"):
        call_command("audit_verify", f"--anchor={head.pk}:{'0' * 64}", stdout=io.StringIO())


def test_the_chain_refuses_update_delete_and_truncate(history):
    for sql in (
        "UPDATE audit_chainlink SET row_id = 'x'",
        "DELETE FROM audit_chainlink",
        "TRUNCATE audit_chainlink",
        "TRUNCATE lots_lotevent",
        "DELETE FROM audit_chainhead",
    ):
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
    assert "intact" in verify()


def test_a_table_without_its_trigger_gets_it_and_its_rows_chained_by_the_installer(history):
    # A model tracked after the migration: its event table has no trigger until post_migrate.
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER audit_chain ON providers_manufacturerevent")
    try:
        ManufacturerFactory(legal_name="Written while unchained")
        output, _ = broken()
        assert "[trigger_missing] no link, providers_manufacturerevent" in output
    finally:
        installed = chain_install()

    assert installed == ["providers_manufacturerevent"]

    assert "intact" in verify()


def test_verification_reads_the_chain_in_chunks(history):
    result = chain_verify(chunk=3)
    assert result.intact
    assert result.links == ChainLink.objects.count()


def test_concurrent_writers_keep_one_unforked_chain(history):
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def write(worker: int) -> None:
        try:
            start.wait()
            for number in range(10):
                with transaction.atomic():
                    ManufacturerFactory(legal_name=f"Maker {worker}-{number}")
        except BaseException as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert Manufacturer.objects.filter(legal_name__startswith="Maker ").count() == 80
    result = chain_verify()
    assert result.intact, [problem.describe() for problem in result.breaks]
    links = list(ChainLink.objects.order_by("id").values_list("link", flat=True))
    assert len({bytes(link) for link in links}) == len(links)


# ---------------------------------------------------------------------------------------------
# Columns added after events were chained (a migration adds a field to a tracked model)


@pytest.fixture
def added_column(history):
    """A column added to the lot events' table, as a migration adding a field to Lot does: the
    events already there hold its default. Dropped again afterwards (the DDL is committed)."""
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE lots_lotevent ADD COLUMN audit_test_note text DEFAULT 'x'")
    try:
        yield "lots_lotevent"
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE lots_lotevent DROP COLUMN IF EXISTS audit_test_note")


def test_an_added_column_unrecorded_makes_older_events_read_as_altered(added_column):
    output, _ = broken()

    assert f"[altered_content] link #{first_link(added_column).pk}" in output


def test_an_added_column_recorded_leaves_older_events_intact_and_says_so(added_column):
    chain_install()  # what the post_migrate handler does after every migrate

    output = verify()

    assert "Audit chain intact" in output
    assert "Columns changed since events were chained: lots_lotevent: +audit_test_note" in output


def test_an_older_event_altered_in_a_column_it_had_is_still_found(added_column):
    chain_install()
    link = first_link(added_column)
    as_superuser_without_triggers(
        "UPDATE lots_lotevent SET lot_number = 'FORGED' WHERE pgh_id = %s", [int(link.row_id)]
    )

    output, _ = broken()

    assert f"[altered_content] link #{link.pk}, lots_lotevent #{link.row_id}" in output


def test_an_event_written_after_the_column_was_added_is_checked_with_it(added_column):
    chain_install()
    later = released_lot()
    link = (
        ChainLink.objects.filter(table_name=added_column, row_id__in=_event_ids(later.pk))
        .order_by("-id")
        .first()
    )
    as_superuser_without_triggers(
        "UPDATE lots_lotevent SET audit_test_note = 'changed' WHERE pgh_id = %s",
        [int(link.row_id)],
    )

    output, _ = broken()

    assert f"[altered_content] link #{link.pk}, lots_lotevent #{link.row_id}" in output


def test_the_recorded_columns_are_themselves_chained(history):
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM audit_chainschema WHERE table_name = 'lots_lotevent'")
        (schema_id,) = cursor.fetchone()
    as_superuser_without_triggers(
        "UPDATE audit_chainschema SET from_link = from_link + 1000 WHERE id = %s", [schema_id]
    )

    output, _ = broken()

    assert f"audit_chainschema #{schema_id}" in output
    assert "[altered_content]" in output


def test_the_recorded_columns_refuse_change(history):
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_chainschema")


def _event_ids(lot_id: int) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pgh_id::text FROM lots_lotevent WHERE pgh_obj_id = %s", [lot_id])
        return [row[0] for row in cursor.fetchall()]


def test_links_written_under_any_session_settings_verify(history):
    """A link's digest is of the row's canonical text (UTC, ISO dates, ISO intervals, hex bytes)
    whatever the writing session shows times, numbers and bytes as: written in a session set
    otherwise, the chain still verifies and each digest is the one audit_row_digest gives. (The
    dates stay ISO here: psycopg reads no other style.)"""
    ready = history
    lot = released_lot()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SET LOCAL TimeZone = 'Pacific/Chatham'; SET LOCAL DateStyle = 'ISO, DMY'; "
            "SET LOCAL IntervalStyle = 'postgres_verbose'; SET LOCAL extra_float_digits = 0; "
            "SET LOCAL bytea_output = 'escape'"
        )
        receive(ready, lot, 5)
        treat(ready, lot)
    assert "Audit chain intact" in verify()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT count(*), count(*) FILTER (
                WHERE link.content_digest = audit_row_digest(
                    'treatments_treatmentevent', link.row_id, event
                )
            )
            FROM audit_chainlink link
            JOIN treatments_treatmentevent event ON event.pgh_id::text = link.row_id
            WHERE link.table_name = 'treatments_treatmentevent'
            """
        )
        linked, canonical = cursor.fetchone()
    assert linked == canonical == 3
