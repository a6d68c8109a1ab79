"""`manage.py history_import`: a progress bar on stderr, the report printed (and written as CSV
with --report) and a failing exit status on problems, nothing written; and the audit chain still
verifies after an import written set-based."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.management import CommandError, call_command

from audit.models import ChainLink
from tests.history.conftest import csv_bytes, days_ago, treatment_row
from treatments.models import Treatment


def import_file(ready, tmp_path, rows, *options):
    path = tmp_path / "chart.csv"
    path.write_bytes(csv_bytes(rows))
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "history_import",
        "treatments",
        str(path),
        "--clinic",
        ready.clinic.name,
        "--user",
        ready.administrator.username,
        *options,
        stdout=out,
        stderr=err,
    )
    return out.getvalue(), err.getvalue()


@pytest.mark.django_db
def test_the_command_imports_with_a_progress_bar(ready, lot, tmp_path):
    rows = [treatment_row(ready, lot, patient=f"EMR-{n}") for n in range(3)]
    out, err = import_file(ready, tmp_path, rows)
    assert out.strip() == f"imported 3 treatments into {ready.clinic.name}"
    assert "checking [" in err and "writing  [" in err and "3/3" in err
    assert Treatment.objects.count() == 3


@pytest.mark.django_db
def test_a_dry_run_says_what_it_would_import_and_writes_nothing(ready, lot, tmp_path):
    out, _err = import_file(ready, tmp_path, [treatment_row(ready, lot)], "--dry-run")
    assert out.strip() == f"would import 1 treatments into {ready.clinic.name}"
    assert Treatment.objects.count() == 0


@pytest.mark.django_db
def test_problems_fail_the_command_and_are_written_to_the_report(ready, lot, tmp_path):
    rows = [
        treatment_row(ready, lot),
        treatment_row(ready, lot, performed_at=days_ago(5).isoformat()),
    ]
    report = tmp_path / "report.csv"
    with pytest.raises(CommandError, match=r"2 problem\(s\) in 2 row\(s\); nothing was written"):
        import_file(ready, tmp_path, rows, "--report", str(report))
    with report.open(encoding="utf-8") as written:
        lines = list(csv.DictReader(written))
    assert [(r["line"], r["column"], r["code"]) for r in lines] == [
        ("3", "lot_number", "lot_expired"),
        ("3", "practitioner", "practitioner_not_licensed"),
    ]
    assert Treatment.objects.count() == 0


@pytest.mark.django_db
def test_the_clinic_is_named_by_id_or_name_and_the_user_must_exist(ready, lot, tmp_path):
    path = tmp_path / "chart.csv"
    path.write_bytes(csv_bytes([treatment_row(ready, lot)]))
    with pytest.raises(CommandError, match="No clinic"):
        call_command(
            "history_import", "treatments", str(path), "--clinic", "Nowhere", "--user", "x"
        )
    with pytest.raises(CommandError, match="No user"):
        call_command(
            "history_import",
            "treatments",
            str(path),
            "--clinic",
            str(ready.clinic.pk),
            "--user",
            "x",
        )
    with pytest.raises(CommandError, match="clinic administrator role"):
        call_command(
            "history_import",
            "treatments",
            str(path),
            "--clinic",
            str(ready.clinic.pk),
            "--user",
            ready.clinician.username,
        )


@pytest.mark.django_db(transaction=True)
def test_the_audit_chain_verifies_after_an_import(reference_data, ready, lot, tmp_path):
    rows = [treatment_row(ready, lot, patient=f"EMR-{n}") for n in range(20)]
    import_file(ready, tmp_path, rows)
    out = io.StringIO()
    call_command("audit_verify", stdout=out)
    # (Links the migrations wrote, before later ones added columns, are named first when this runs
    # on a fresh database: notes, not failures.)
    assert "Audit chain intact" in out.getvalue()
    # Every event the import's triggers wrote is a link of the chain.
    assert ChainLink.objects.filter(table_name="treatments_treatmentevent").count() == 20
    assert ChainLink.objects.filter(table_name="treatments_treatmentlineevent").count() == 20


@pytest.mark.django_db
def test_the_benchmark_imports_its_receipts_and_treatments():
    out = io.StringIO()
    call_command("benchmark_history_import", "--rows", "60", stdout=out)
    lines = out.getvalue().splitlines()
    assert [line.split(":")[0] for line in lines] == ["receipts", "treatments"]
    assert lines[1].startswith("treatments: 60 rows in ") and "rows/s" in lines[1]
    assert Treatment.objects.count() == 60


@pytest.mark.django_db
@pytest.mark.parametrize("rows", ["0", "-5"])
def test_the_benchmark_refuses_rows_below_one_before_writing_anything(rows):
    with pytest.raises(CommandError, match="--rows must be at least 1"):
        call_command("benchmark_history_import", "--rows", rows, stdout=io.StringIO())
    assert not Treatment.objects.exists()
