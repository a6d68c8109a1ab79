"""Products, donors with their marker panels, lots with QC results and certificates, and the
signed release of each lot: everything the release gate (DESIGN rule 1) asks for.

The plan table `scale_lot` (one row per lot, dropped at commit) decides each lot's popularity
(its number of treatment lines, by a power law of its rank), the clinics it goes to, its dates
and the window in which it is used; the treatments and stock phases read it.

Time line of lot i, all whole seconds in UTC: made on `manufactured_on` (40 to 1,000 days ago),
QC tested 3 days later, CoA on file after 5, released after 7, received at its clinics after
12, used from day 14 until the day before it expires (730 days after manufacture) or two
hours ago. The donors were collected, tested and found eligible before any lot was made; the
manufacturers' GMP and ISO 13485 certificates run from before the first lot to after today.
"""

from __future__ import annotations

from demo.scale.base import LINES_PER_CLINIC_OF_A_LOT, POPULARITY_EXPONENT, Load
from demo.scale.providers import NETWORK_DAYS, manufacturer_count, quality_manager

SHELF_LIFE_DAYS = 730
DONOR_DAYS = 1010  # donors were collected this many days ago, before the oldest lot

# A passing value for each lot QC test of the default specification (lots/reference_data.py):
# (code, numeric value, outcome).
PASSING_QC_SQL = """
(VALUES ('sterility', NULL::numeric, 'not_detected'),
        ('mycoplasma', NULL, 'not_detected'),
        ('endotoxin', 0.1, ''),
        ('particle_concentration', 5000000000, ''),
        ('particle_size', 110, ''),
        ('ev_marker_membrane', NULL, 'detected'),
        ('ev_marker_cytosolic', NULL, 'detected'),
        ('ev_negative_marker', NULL, 'not_detected')) AS passing(code, numeric_value, outcome)
"""


# The product of manufacturer m and the IND number its lots are made under.
PRODUCT_NAME_SQL = "'Scale serum ' || %(run)s || ' M' || (m + 1)"
REGULATORY_NUMBER_SQL = "'IND ' || lpad((10000 + m)::text, 6, '0')"


def donor_count(lots: int) -> int:
    """Each lot is pooled from two donors; each donation goes into about four lots."""
    return max(2, lots // 2)


def at_utc(day: str, hour: int) -> str:
    """SQL for the instant `hour`:00 UTC on the date expression `day`."""
    return f"((({day})::timestamp + interval '{hour} hours') AT TIME ZONE 'UTC')"


def lots_plan(load: Load) -> None:
    """The plan table: per lot its popularity, clinics, dates and window of use (epoch s)."""
    load.reserve("lots_lot", load.sizes.lots)
    load.reserve("lots_product", manufacturer_count(load.sizes.lots))
    load.execute(
        f"""
        CREATE TEMP TABLE scale_lot ON COMMIT DROP AS
        WITH weights AS (
            SELECT i, power(i + 1, -{POPULARITY_EXPONENT}::float8) AS weight
            FROM generate_series(0, %(lots)s - 1) i
        ), shares AS (
            SELECT i, floor(%(treatments)s * weight / sum(weight) OVER ())::bigint AS n
            FROM weights
        ), counted AS (
            -- The treatments the floors left over go one each to the most popular lots.
            SELECT i, n + (i < %(treatments)s - sum(n) OVER ())::int AS n FROM shares
        ), placed AS (
            SELECT i, n,
                   least(%(clinics)s, greatest(1, ceil(n / {LINES_PER_CLINIC_OF_A_LOT}.0)))::int
                       AS k,
                   pg_temp.scale_hash(i, %(seed)s * 100 + 1) %% %(clinics)s AS o,
                   i %% %(manufacturers)s AS m,
                   (%(today)s - 40 - (pg_temp.scale_hash(i, %(seed)s * 100 + 2) %% 960)::int)
                       AS manufactured_on
            FROM counted
        )
        SELECT i, %(lots_lot_first)s + i AS lot_id, n, k, o, least(k, n) AS pairs,
               (sum(least(k, n)) OVER (ORDER BY i) - least(k, n))::bigint AS receipt_start,
               m, %(lots_product_first)s + m AS product_id,
               %(providers_manufacturer_first)s + m AS manufacturer_id,
               'SG' || lpad((i + 1)::text, 7, '0') AS lot_number,
               -- What the patient is told of the product's basis (regulatory_statement).
               {PRODUCT_NAME_SQL} || ' lot SG' || lpad((i + 1)::text, 7, '0') || ': '
                   || {REGULATORY_NUMBER_SQL} AS statement,
               manufactured_on, manufactured_on + {SHELF_LIFE_DAYS} AS expires_on,
               extract(epoch FROM {at_utc("manufactured_on + 14", 8)})::bigint AS window_start,
               extract(epoch FROM least(
                   {at_utc(f"manufactured_on + {SHELF_LIFE_DAYS} - 1", 12)},
                   %(now)s - interval '2 hours'
               ))::bigint AS window_end
        FROM placed
        """,  # noqa: S608 - the SQL is ours
        manufacturers=manufacturer_count(load.sizes.lots),
    )
    load.execute("CREATE UNIQUE INDEX ON scale_lot (i)")
    load.execute("CREATE INDEX ON scale_lot (window_start)")
    load.execute("ANALYZE scale_lot")


def lots_create(load: Load) -> None:
    with load.phase("lots", 8):
        _products(load)
        _donors(load)
        _marker_results(load)
        _lots(load)
        _lot_donors(load)
        _qc_results(load)
        _certificates(load)
        _releases(load)


def _products(load: Load) -> None:
    load.execute(
        f"""
        INSERT INTO lots_product (id, name, gtin, source_kind, tissue, permitted_routes,
                                  storage_min_celsius, storage_max_celsius, created_at,
                                  manufacturer_id)
        SELECT %(lots_product_first)s + m, {PRODUCT_NAME_SQL}, NULL,
               'human', 'adipose', ARRAY['topical', 'microneedling', 'injection'], -80, -60,
               %(now)s - interval '{NETWORK_DAYS} days', %(providers_manufacturer_first)s + m
        FROM generate_series(0, %(count)s - 1) m
        """,  # noqa: S608 - the SQL is ours
        count=manufacturer_count(load.sizes.lots),
    )
    load.progress.advance()


def _donors(load: Load) -> None:
    load.reserve("lots_donor", donor_count(load.sizes.lots))
    load.execute(
        f"""
        INSERT INTO lots_donor (id, code, isbt_din, tissue, collection_date, specimen_date,
                                birth_mother_tested, testing_laboratory, eligibility,
                                eligibility_decided_at, created_at, eligibility_decided_by_id)
        SELECT %(lots_donor_first)s + d, 'SG-' || %(run)s || '-' || (d + 1), NULL, 'adipose',
               %(today)s - {DONOR_DAYS}, %(today)s - {DONOR_DAYS}, false, 'Scale donor lab',
               'eligible', {at_utc(f"%(today)s - {DONOR_DAYS - 5}", 10)},
               {at_utc(f"%(today)s - {DONOR_DAYS}", 12)}, {quality_manager()}
        FROM generate_series(0, %(count)s - 1) d
        """,  # noqa: S608 - the SQL is ours
        count=donor_count(load.sizes.lots),
    )
    load.progress.advance()


REQUIRED_MARKERS_SQL = (
    "SELECT id FROM lots_marker WHERE active AND 'adipose' = ANY(required_for_tissues)"
)


def _marker_results(load: Load) -> None:
    markers = int(load.value(f"SELECT count(*) FROM ({REQUIRED_MARKERS_SQL}) required"))  # noqa: S608
    load.reserve("lots_donormarkerresult", donor_count(load.sizes.lots) * markers)
    load.execute(
        f"""
        INSERT INTO lots_donormarkerresult (id, result, test_method, tested_on, laboratory,
                                            donor_id, marker_id)
        SELECT %(lots_donormarkerresult_first)s
                   + row_number() OVER (ORDER BY d.id, marker.id) - 1,
               'non_reactive', '', d.specimen_date, 'Scale donor lab', d.id, marker.id
        FROM lots_donor d CROSS JOIN ({REQUIRED_MARKERS_SQL}) marker
        WHERE d.id >= %(lots_donor_first)s
        """  # noqa: S608 - the SQL is ours
    )
    load.progress.advance()


def _lots(load: Load) -> None:
    load.execute(
        f"""
        INSERT INTO lots_lot (id, lot_number, manufactured_on, expires_on, quantity, unit,
                              regulatory_basis, regulatory_number, status, status_changed_at,
                              created_at, created_by_id, manufacturer_id, product_id)
        SELECT lot_id, lot_number, manufactured_on, expires_on, 2 * n + 5 * k + 100, 'vial',
               'ind', {REGULATORY_NUMBER_SQL}, 'released',
               {at_utc("manufactured_on + 7", 10)}, {at_utc("manufactured_on + 1", 9)},
               {quality_manager()}, manufacturer_id, product_id
        FROM scale_lot ORDER BY i
        """  # noqa: S608 - the SQL is ours
    )
    load.progress.advance()


def _lot_donors(load: Load) -> None:
    load.reserve("lots_lotdonor", 2 * load.sizes.lots)
    load.execute(
        """
        INSERT INTO lots_lotdonor (id, donor_id, lot_id)
        SELECT %(lots_lotdonor_first)s + 2 * i + pool,
               %(lots_donor_first)s + (2 * i + pool) %% %(donors)s, lot_id
        FROM scale_lot CROSS JOIN generate_series(0, 1) pool
        """,
        donors=donor_count(load.sizes.lots),
    )
    load.progress.advance()


def _qc_results(load: Load) -> None:
    tests = int(
        load.value(
            f"SELECT count(*) FROM lots_qctest t JOIN {PASSING_QC_SQL} ON passing.code = t.code"  # noqa: S608
        )
    )
    load.reserve("lots_lotqcresult", tests * load.sizes.lots)
    load.execute(
        f"""
        INSERT INTO lots_lotqcresult (id, numeric_value, outcome, tested_on, laboratory, method,
                                      lot_id, test_id)
        SELECT %(lots_lotqcresult_first)s + row_number() OVER (ORDER BY p.i, t.id) - 1,
               passing.numeric_value, passing.outcome, p.manufactured_on + 3, 'Scale QC lab', '',
               p.lot_id, t.id
        FROM scale_lot p
        CROSS JOIN lots_qctest t JOIN {PASSING_QC_SQL} ON passing.code = t.code
        """  # noqa: S608 - the SQL is ours
    )
    load.progress.advance()


def _certificates(load: Load) -> None:
    """The manufacturers' GMP and ISO 13485 certificates first, then a CoA per lot."""
    manufacturers = manufacturer_count(load.sizes.lots)
    load.reserve("lots_certificate", 2 * manufacturers + load.sizes.lots)
    load.execute(
        f"""
        INSERT INTO lots_certificate (id, kind, issuer, number, valid_from, valid_until, file,
                                      sha256, size_bytes, original_filename, uploaded_at,
                                      manufacturer_id, supersedes_id, uploaded_by_id, lot_id)
        SELECT id, kind, issuer, number, valid_from, valid_until,
               'certificates/' || left(sha256, 2) || '/' || sha256 || '.pdf', sha256, 1000, '',
               uploaded_at, manufacturer_id, NULL, {quality_manager()}, lot_id
        FROM (
            SELECT %(lots_certificate_first)s + 2 * m + held AS id,
                   (ARRAY['gmp', 'iso13485'])[1 + held] AS kind, 'Notified body' AS issuer,
                   (ARRAY['GMP', 'ISO13485'])[1 + held] || '-' || %(run)s || '-' || (m + 1)
                       AS number,
                   %(today)s - {NETWORK_DAYS} AS valid_from, %(today)s + 500 AS valid_until,
                   encode(sha256(convert_to(%(run)s || '-manufacturer-' || m || '-' || held,
                                            'UTF8')), 'hex') AS sha256,
                   {at_utc(f"%(today)s - {NETWORK_DAYS}", 9)} AS uploaded_at,
                   %(providers_manufacturer_first)s + m AS manufacturer_id, NULL::bigint AS lot_id
            FROM generate_series(0, %(manufacturers)s - 1) m CROSS JOIN generate_series(0, 1) held
            UNION ALL
            SELECT %(lots_certificate_first)s + 2 * %(manufacturers)s + i, 'coa',
                   'Scale manufacturer', 'COA-' || lot_number, manufactured_on + 5, NULL,
                   encode(sha256(convert_to(%(run)s || '-coa-' || i, 'UTF8')), 'hex'),
                   {at_utc("manufactured_on + 5", 9)}, manufacturer_id, lot_id
            FROM scale_lot
        ) certificates
        """,  # noqa: S608 - the SQL is ours
        manufacturers=manufacturers,
    )
    load.progress.advance()


def _releases(load: Load) -> None:
    """The signed release of each lot (its `LotStatusChange`; the signature is `signing`'s).
    `record_digest`, the legacy digest, is the SHA-256 of the lot's identity and the act."""
    load.reserve("lots_lotstatuschange", load.sizes.lots)
    load.execute(
        f"""
        INSERT INTO lots_lotstatuschange (id, action, from_status, to_status, signer_name,
                                          signed_at, meaning, reason, record_digest, lot_id,
                                          signed_by_id)
        SELECT %(lots_lotstatuschange_first)s + p.i, 'release', 'quarantined', 'released',
               u.username, l.status_changed_at, 'approval',
               'Every release requirement met (scale run ' || %(run)s || ')',
               encode(sha256(convert_to(jsonb_build_object(
                   'lot', l.id, 'lot_number', l.lot_number, 'manufacturer', l.manufacturer_id,
                   'product', l.product_id, 'action', 'release', 'to_status', 'released',
                   'signer', u.id, 'signed_at', l.status_changed_at, 'meaning', 'approval'
               )::text, 'UTF8')), 'hex'),
               l.id, u.id
        FROM scale_lot p JOIN lots_lot l ON l.id = p.lot_id
        JOIN auth_user u ON u.id = {quality_manager()}
        """  # noqa: S608 - the SQL is ours
    )
    load.progress.advance()
