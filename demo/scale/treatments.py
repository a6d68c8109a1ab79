"""Patients, and the treatments with their lines, stock draws and adverse events.

Line k of lot i (k < its planned count n) falls at a time spread evenly over the lot's window of
use, with a random offset within its share; it is given at the lot's clinic (o + k mod its
clinic count) mod clinics, to a patient of that clinic by one of the clinic's practitioners,
and recorded by the clinic's clinician. The treatments are written in time slices, each sorted
by time, so ids grow with the time of treatment as they do in a clinic's own records; each
treatment draws its units from the clinic's accepted stock (one ledger row, which its line
points at), and about one in a thousand has an adverse event reported.
"""

from __future__ import annotations

import math

from demo.scale.base import TREATMENTS_PER_CHUNK, Load
from demo.scale.providers import ZONES_SQL, clinician, practitioner_of

PATIENTS_REGISTERED_DAYS = 1000  # before the first lot could be used

# Patients of clinic c: indexes [first_patient(c), first_patient(c + 1)).
FIRST_PATIENT_SQL = "(({c}) * %(patients)s + %(clinics)s - 1) / %(clinics)s"


def first_patient(clinic: str) -> str:
    return FIRST_PATIENT_SQL.format(c=clinic)


def patients_create(load: Load) -> None:
    load.reserve("treatments_patient", load.sizes.patients)
    with load.phase("patients", 1):
        load.execute(
            f"""
            INSERT INTO treatments_patient (id, reference, created_at, clinic_id)
            SELECT %(treatments_patient_first)s + idx, 'P-' || %(run)s || '-' || (idx + 1),
                   ((%(today)s - {PATIENTS_REGISTERED_DAYS})::timestamp + interval '8 hours')
                       AT TIME ZONE 'UTC',
                   %(providers_clinic_first)s + idx * %(clinics)s / %(patients)s
            FROM generate_series(0, %(patients)s - 1) idx
            """  # noqa: S608 - the SQL is ours
        )
        load.progress.advance()


# One treatment line per row, for the time slice [%(t0)s, %(t1)s) in epoch seconds.
CHUNK_SQL = f"""
INSERT INTO scale_chunk
SELECT %(done)s + row_number() OVER (ORDER BY at, lot_index, k) - 1 AS s,
       lot_index, lot_id, c, at, statement,
       %(treatments_patient_first)s + {first_patient("c")}
           + pg_temp.scale_hash(line, %(seed)s * 100 + 3)
             %% ({first_patient("c + 1")} - {first_patient("c")}) AS patient_id,
       {practitioner_of("c", "pg_temp.scale_hash(line, %(seed)s * 100 + 4)")} AS practitioner_id,
       1 + (pg_temp.scale_hash(line, %(seed)s * 100 + 5) %% 8 = 0)::int AS units,
       pg_temp.scale_hash(line, %(seed)s * 100 + 6) %% 10 AS purpose,
       pg_temp.scale_hash(line, %(seed)s * 100 + 7) %% 1000 = 0 AS adverse,
       pg_temp.scale_hash(line, %(seed)s * 100 + 8) %% 3 AS onset_days
FROM (
    SELECT p.i AS lot_index, p.lot_id, p.statement, x.k, p.i * 4294967296 + x.k AS line,
           (p.o + x.k %% p.k) %% %(clinics)s AS c,
           p.window_start + floor(
               (p.window_end - p.window_start)
               * (x.k + pg_temp.scale_hash(p.i * 4294967296 + x.k, %(seed)s * 100 + 9)
                        / 2147483648.0)
               / p.n
           )::bigint AS at
    FROM scale_lot p
    CROSS JOIN LATERAL generate_series(
        greatest(0, floor((%(t0)s - p.window_start)::float8 * p.n
                          / (p.window_end - p.window_start))::bigint - 1),
        least(p.n - 1, ceil((%(t1)s - p.window_start)::float8 * p.n
                            / (p.window_end - p.window_start))::bigint + 1)
    ) x(k)
    WHERE p.n > 0 AND p.window_start < %(t1)s AND p.window_end >= %(t0)s
) line
WHERE at >= %(t0)s AND at < %(t1)s
"""  # noqa: S608 - the SQL is ours

# What each kind of treatment is: (indication, route, site), by `purpose` (0-9).
PURPOSE_SQL = {
    "indication": "(ARRAY['skin_rejuvenation', 'skin_rejuvenation', 'skin_rejuvenation', "
    "'skin_rejuvenation', 'skin_rejuvenation', 'hair', 'hair', 'skin_rejuvenation', 'wound', "
    "'wound'])[1 + purpose]",
    "route": "(ARRAY['microneedling', 'microneedling', 'microneedling', 'microneedling', "
    "'microneedling', 'injection', 'injection', 'topical', 'topical', 'topical'])[1 + purpose]",
    "site": "(ARRAY['face', 'face', 'face', 'face', 'face', 'scalp', 'scalp', 'neck', "
    "'forearm', 'lower leg'])[1 + purpose]",
}


def treatments_create(load: Load) -> None:
    sizes = load.sizes
    receipts = int(load.value("SELECT coalesce(sum(pairs), 0) FROM scale_lot"))
    load.reserve("treatments_treatment", sizes.treatments)
    load.reserve("treatments_treatmentline", sizes.treatments)
    # Receipt movements first: they happened before the lot's first use at the clinic.
    load.reserve("stock_stockmovement", receipts + sizes.treatments)
    load.mark("treatments_adverseevent")
    load.execute(
        """
        CREATE TEMP TABLE scale_chunk (
            s bigint, lot_index bigint, lot_id bigint, c bigint, at bigint, statement text,
            patient_id bigint, practitioner_id bigint, units int, purpose bigint,
            adverse boolean, onset_days bigint
        ) ON COMMIT DROP;
        CREATE TEMP TABLE scale_used (
            lot_id bigint, clinic_id bigint, used bigint, PRIMARY KEY (lot_id, clinic_id)
        ) ON COMMIT DROP
        """
    )
    start, end = (
        int(value)
        for value in load.value(
            "SELECT ARRAY[min(window_start), max(window_end) + 1] FROM scale_lot WHERE n > 0"
        )
    )
    slices = max(1, math.ceil(sizes.treatments / TREATMENTS_PER_CHUNK))
    step = math.ceil((end - start) / slices)
    done = 0
    with load.phase("treatments", sizes.treatments):
        for t0 in range(start, end, step):
            done += _slice(load, t0=t0, t1=min(end, t0 + step), done=done, receipts=receipts)
    if done != sizes.treatments:
        raise AssertionError(f"planned {sizes.treatments} treatments, wrote {done}")


def _slice(load: Load, *, t0: int, t1: int, done: int, receipts: int) -> int:
    load.execute("TRUNCATE scale_chunk")
    rows = load.execute(CHUNK_SQL, t0=t0, t1=t1, done=done)
    if rows == 0:
        return 0
    movement_first = "(%(stock_stockmovement_first)s + %(receipts)s)"
    load.execute(
        f"""
        INSERT INTO treatments_treatment (id, performed_at, indication, route, anatomical_site,
                                          notes, consent_taken_at, consent_regulatory_statement,
                                          recorded_at, clinic_id, consent_taken_by_id,
                                          consent_text_id, patient_id, practitioner_id,
                                          recorded_by_id)
        SELECT %(treatments_treatment_first)s + s, to_timestamp(at), {PURPOSE_SQL["indication"]},
               {PURPOSE_SQL["route"]}, {PURPOSE_SQL["site"]}, '', NULL, statement,
               to_timestamp(at) + interval '5 minutes', %(providers_clinic_first)s + c, NULL,
               NULL, patient_id, practitioner_id, {clinician()}
        FROM scale_chunk ORDER BY s
        """,  # noqa: S608 - the SQL is ours
        receipts=receipts,
    )
    load.execute(
        f"""
        INSERT INTO stock_stockmovement (id, state, delta, kind, reason, occurred_at, actor_id,
                                         clinic_id, counterpart_clinic_id, lot_id, receipt_id)
        SELECT {movement_first} + s, 'accepted', -units, 'treatment',
               'treatment ' || (%(treatments_treatment_first)s + s), to_timestamp(at),
               {clinician()}, %(providers_clinic_first)s + c, NULL, lot_id, NULL
        FROM scale_chunk ORDER BY s
        """,  # noqa: S608 - the SQL is ours
        receipts=receipts,
    )
    load.execute(
        f"""
        INSERT INTO treatments_treatmentline (id, units, lot_id, treatment_id, stock_movement_id,
                                              performed_at, clinic_id, patient_id,
                                              practitioner_id)
        SELECT %(treatments_treatmentline_first)s + s, units, lot_id,
               %(treatments_treatment_first)s + s, {movement_first} + s, to_timestamp(at),
               %(providers_clinic_first)s + c, patient_id, practitioner_id
        FROM scale_chunk ORDER BY s
        """,  # noqa: S608 - the SQL is ours
        receipts=receipts,
    )
    load.execute(
        f"""
        INSERT INTO treatments_adverseevent (onset_on, description, results_in_death,
                                             life_threatening, hospitalisation, disability,
                                             intervention_required, reported_at, lot_id,
                                             reported_by_id, treatment_id)
        SELECT least((to_timestamp(at) AT TIME ZONE zone)::date + onset_days::int,
                     (%(now)s AT TIME ZONE zone)::date),
               'Erythema and swelling at the treated site', false, false, false, false, false,
               least(to_timestamp(at) + (onset_days + 1) * interval '1 day', %(now)s), lot_id,
               {clinician()}, %(treatments_treatment_first)s + s
        FROM (SELECT *, ({ZONES_SQL})[1 + c %% 5] AS zone FROM scale_chunk WHERE adverse) reported
        ORDER BY s
        """  # noqa: S608 - the SQL is ours
    )
    load.execute(
        """
        INSERT INTO scale_used
        SELECT lot_id, %(providers_clinic_first)s + c, sum(units) FROM scale_chunk GROUP BY 1, 2
        ON CONFLICT (lot_id, clinic_id) DO UPDATE SET used = scale_used.used + EXCLUDED.used
        """
    )
    load.progress.advance(rows)
    return rows
