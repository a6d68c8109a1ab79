"""Backup and restore (docs/backup.md): the demo data backed up with `backup_create`, restored
into a new database with pg_restore and its media unpacked with tar, exactly as the procedure
says, is found whole by `backup_verify`, with the same audit chain; and what a restore lost or
damaged is named.

The backup is taken once for the module from committed data (pg_dump sees only what is
committed), which is flushed afterwards as a transactional test's is; each test restores it into a
database of its own and drops that database at the end.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from django.apps import apps
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings

from lots.reference_data import seed_reference_data
from ops.postgres import client_program

# The tests use no database of Django's, but the mark makes pytest-django set up the test
# database the module's backup is taken from (unmarked, the module would use DATABASE_URL's own),
# and transaction=True runs them with the other tests that commit: after every test that rolls
# back, since the backup's data is committed and then flushed.
pytestmark = pytest.mark.django_db(transaction=True)

FAST_HASHING = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def database_url(name: str) -> str:
    """A URL for database `name` on the server the tests use (TCP or the embedded server's
    socket directory)."""
    params = connection.settings_dict
    user = quote(params["USER"] or "", safe="")
    if params["PASSWORD"]:
        user += ":" + quote(params["PASSWORD"], safe="")
    host = params["HOST"] + (f":{params['PORT']}" if params["PORT"] else "")
    socket = params["OPTIONS"].get("host")
    return f"postgresql://{user}@{host}/{name}" + (f"?host={socket}" if socket else "")


def audit_verify(url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "audit_verify"],
        env={**os.environ, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def head_of(output: str) -> str:
    return output.split("Head (note it as an anchor): ")[1].strip()


@pytest.fixture(scope="module")
def backup(django_db_setup, django_db_blocker, tmp_path_factory):
    """The demo story (lots with certificate files, treatments, recalls with notices, signatures,
    audit events) committed and backed up; the audit chain's head noted from the live database."""
    media_root = tmp_path_factory.mktemp("live-media")
    directory = tmp_path_factory.mktemp("backups") / "nightly"
    with (
        django_db_blocker.unblock(),
        override_settings(PASSWORD_HASHERS=FAST_HASHING, MEDIA_ROOT=str(media_root)),
    ):
        try:
            # An earlier transactional test's flush took the migrations' reference data too.
            seed_reference_data(apps)
            call_command("seed_demo", stdout=io.StringIO())
            call_command("backup_create", out=directory, stdout=io.StringIO())
            audit = io.StringIO()
            call_command("audit_verify", stdout=audit)
            yield {"directory": directory, "audit_head": head_of(audit.getvalue())}
        finally:
            call_command("flush", interactive=False, verbosity=0)


@pytest.fixture
def restored(backup, tmp_path):
    """The backup restored as docs/backup.md says: createdb, pg_restore --no-owner, tar -x."""
    name = f"{connection.settings_dict['NAME']}_restored"
    url = database_url(name)
    with psycopg.connect(database_url("postgres"), autocommit=True) as server:
        server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        server.execute(f'CREATE DATABASE "{name}"')
        server_major = server.info.server_version // 10000
    media_root = tmp_path / "restored-media"
    media_root.mkdir()
    try:
        subprocess.run(
            [
                str(client_program("pg_restore", server_major=server_major)),
                "--no-owner",
                "--exit-on-error",
                "--single-transaction",
                "--no-password",
                f"--dbname={url}",
                str(backup["directory"] / "database.dump"),
            ],
            check=True,
            capture_output=True,
            timeout=600,
        )
        subprocess.run(
            ["tar", "-xf", str(backup["directory"] / "media.tar"), "-C", str(media_root)],
            check=True,
            timeout=600,
        )
        yield {"url": url, "media_root": media_root}
    finally:
        with psycopg.connect(database_url("postgres"), autocommit=True) as server:
            server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def backup_verify(backup, restored, out: io.StringIO) -> str:
    call_command(
        "backup_verify",
        str(backup["directory"]),
        database_url=restored["url"],
        media_root=str(restored["media_root"]),
        stdout=out,
    )
    return out.getvalue()


def test_the_backup_holds_the_dump_the_media_and_a_manifest_of_every_table(backup):
    manifest = json.loads((backup["directory"] / "manifest.json").read_text())
    counts = manifest["row_counts"]
    for table in (
        "lots_certificate",
        "treatments_treatment",
        "recalls_recall",
        "recalls_notification",
        "signatures_signature",
        "lots_lotevent",
        "audit_chainlink",
    ):
        assert counts[table] > 0, table
    assert len(manifest["certificate_files"]) > 0
    assert all(
        name.endswith(f"/{sha256}.pdf") for name, sha256 in manifest["certificate_files"].items()
    )
    assert manifest["migrations"]["lots"].startswith("00")
    assert manifest["audit_chain_head"] == backup["audit_head"]
    assert (backup["directory"] / "database.dump").read_bytes().startswith(b"PGDMP")


def test_the_dump_loads_every_row_before_it_creates_any_trigger(backup):
    """pg_restore follows the archive's table of contents: rows loaded while no pgtrigger
    protection, pghistory trigger or audit chain trigger exists write no history and are never
    refused (docs/backup.md, "Triggers, history and sequences at restore")."""
    manifest = json.loads((backup["directory"] / "manifest.json").read_text())
    server_major = int(manifest["database"]["server_version"].split(".")[0])
    contents = subprocess.run(
        [
            str(client_program("pg_restore", server_major=server_major)),
            "--list",
            str(backup["directory"] / "database.dump"),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    kinds = re.findall(r"^\d+; \d+ \d+ (TABLE DATA|TRIGGER) ", contents, re.MULTILINE)

    for trigger in (
        "lots_certificate pgtrigger_certificate_immutable_",
        "lots_certificate pgtrigger_insert_insert_",
        "lots_certificateevent audit_chain ",
    ):
        assert f"TRIGGER public {trigger}" in contents, trigger
    assert kinds.index("TRIGGER") > len(kinds) - 1 - kinds[::-1].index("TABLE DATA")


def test_backup_create_never_writes_over_an_earlier_backup(backup):
    with pytest.raises(CommandError, match="already holds a backup"):
        call_command("backup_create", out=backup["directory"], stdout=io.StringIO())


def test_a_restored_backup_has_every_row_every_certificate_file_and_the_same_audit_chain(
    backup, restored
):
    assert "Restore verified" in backup_verify(backup, restored, io.StringIO())

    audit = audit_verify(restored["url"])
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert head_of(audit.stdout) == backup["audit_head"]


def test_backup_verify_names_a_damaged_certificate_file_a_lost_row_and_a_lost_audit_event(
    backup, restored
):
    manifest = json.loads((backup["directory"] / "manifest.json").read_text())
    damaged = sorted(manifest["certificate_files"])[0]
    with (restored["media_root"] / damaged).open("ab") as handle:
        handle.write(b"%% appended after the backup")
    with psycopg.connect(restored["url"], autocommit=True) as database, database.transaction():
        database.execute("SET LOCAL session_replication_role = replica")
        database.execute(
            "DELETE FROM treatments_treatment WHERE id = (SELECT min(id) FROM treatments_treatment)"
        )
        database.execute(
            "DELETE FROM lots_lotevent WHERE pgh_id = (SELECT max(pgh_id) FROM lots_lotevent)"
        )

    out = io.StringIO()
    with pytest.raises(CommandError, match="differs from the backup"):
        backup_verify(backup, restored, out)
    output = out.getvalue()

    assert "[certificate_file_altered] certificate #" in output
    assert damaged in output
    treatments = manifest["row_counts"]["treatments_treatment"]
    assert (
        f"[row_count] table treatments_treatment: {treatments - 1} rows, "
        f"the backup has {treatments}" in output
    )
    assert "[row_count] table lots_lotevent:" in output
    assert "[audit_verify_failed]" in output
    assert "missing_event" in output
