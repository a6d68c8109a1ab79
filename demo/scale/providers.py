"""Users and their roles, manufacturers, clinics, practitioners with their clinics and licences.

Ids are arithmetic from each table's reserved first id: clinic c is `providers_clinic_first + c`,
practitioner p is `providers_practitioner_first + p`, and so on, so later phases need no lookups.
Clinic c's practitioners are those with p = c (mod clinics) (the clinic c mod practitioners when
there are fewer practitioners than clinics); each holds a licence in each state it practises in,
renewed once: the two terms cover every day of the history and a year beyond.
"""

from __future__ import annotations

from demo.scale.base import Load

# (jurisdiction, IANA zone): clinic c is in STATES[c mod 5], judged on that zone's calendar.
STATES = (
    ("US-TX", "America/Chicago"),
    ("US-CA", "America/Los_Angeles"),
    ("US-FL", "America/New_York"),
    ("US-NY", "America/New_York"),
    ("US-AZ", "America/Phoenix"),
)
JURISDICTIONS_SQL = "ARRAY[" + ", ".join(f"'{code}'" for code, _ in STATES) + "]"
ZONES_SQL = "ARRAY[" + ", ".join(f"'{zone}'" for _, zone in STATES) + "]"
# How far back the network goes: clinics, people and certificates exist from then on.
NETWORK_DAYS = 1100

# Users: the network's quality manager and auditor, then each clinic's administrator (who
# receives stock) and clinician (who records treatments).
QUALITY_MANAGER, AUDITOR, FIRST_CLINIC_USER = 0, 1, 2


def manufacturer_count(lots: int) -> int:
    """A manufacturer per thousand lots, at most twenty."""
    return max(1, min(20, lots // 1000))


def clinic_administrator(clinic: str = "c") -> str:
    """SQL for the user id of clinic `clinic`'s administrator."""
    return f"(%(auth_user_first)s + {FIRST_CLINIC_USER} + {clinic})"


def clinician(clinic: str = "c") -> str:
    """SQL for the user id of clinic `clinic`'s clinician."""
    return f"(%(auth_user_first)s + {FIRST_CLINIC_USER} + %(clinics)s + {clinic})"


def quality_manager() -> str:
    return f"(%(auth_user_first)s + {QUALITY_MANAGER})"


def practitioner_of(clinic: str, draw: str) -> str:
    """SQL for a practitioner of clinic `clinic` (an index), chosen by `draw` (a number)."""
    return f"""(%(providers_practitioner_first)s + CASE
        WHEN {clinic} < %(practitioners)s
        THEN {clinic}
             + %(clinics)s * ({draw} %% ((%(practitioners)s - 1 - {clinic}) / %(clinics)s + 1))
        ELSE {clinic} %% %(practitioners)s END)"""


def providers_create(load: Load) -> None:
    sizes = load.sizes
    users = FIRST_CLINIC_USER + 2 * sizes.clinics
    load.reserve("auth_user", users)
    load.reserve("providers_manufacturer", manufacturer_count(sizes.lots))
    load.reserve("providers_clinic", sizes.clinics)
    load.reserve("providers_practitioner", sizes.practitioners)
    load.reserve("providers_membership", users)
    # Clinic links: every practitioner at its clinic, and, when there are fewer practitioners
    # than clinics, every clinic past them to one practitioner.
    links = sizes.practitioners + max(0, sizes.clinics - sizes.practitioners)
    load.reserve("providers_clinicpractitioner", links)
    with load.phase("providers", 7):
        _users(load, users)
        _manufacturers(load)
        _clinics(load)
        _practitioners(load)
        _memberships(load)
        _clinic_practitioners(load)
        _licences(load)


def _users(load: Load, count: int) -> None:
    load.execute(
        f"""
        INSERT INTO auth_user (id, password, last_login, is_superuser, username, first_name,
                               last_name, email, is_staff, is_active, date_joined)
        SELECT %(auth_user_first)s + u,
               '!' || md5(%(run)s || u),
               NULL, false,
               CASE WHEN u = {QUALITY_MANAGER} THEN 'scale-qm-' || %(run)s
                    WHEN u = {AUDITOR} THEN 'scale-auditor-' || %(run)s
                    WHEN u < {FIRST_CLINIC_USER} + %(clinics)s
                    THEN 'scale-admin-' || %(run)s || '-' || (u - {FIRST_CLINIC_USER})
                    ELSE 'scale-clinician-' || %(run)s || '-'
                         || (u - {FIRST_CLINIC_USER} - %(clinics)s) END,
               '', '', '', false, true,
               %(now)s - interval '{NETWORK_DAYS} days'
        FROM generate_series(0, %(count)s - 1) u
        """,  # noqa: S608 - the SQL is ours
        count=count,
    )
    load.progress.advance()


def _manufacturers(load: Load) -> None:
    load.execute(
        f"""
        INSERT INTO providers_manufacturer (id, legal_name, country, registration_number,
                                            created_at)
        SELECT %(providers_manufacturer_first)s + m,
               'Scale manufacturer ' || %(run)s || ' #' || (m + 1), 'US',
               (3000000000 + m)::text, %(now)s - interval '{NETWORK_DAYS} days'
        FROM generate_series(0, %(count)s - 1) m
        """,  # noqa: S608 - the SQL is ours
        count=manufacturer_count(load.sizes.lots),
    )
    load.progress.advance()


def _clinics(load: Load) -> None:
    load.execute(
        f"""
        INSERT INTO providers_clinic (id, name, address, jurisdiction, created_at,
                                      consent_required, time_zone, language)
        SELECT %(providers_clinic_first)s + c,
               'Scale clinic ' || %(run)s || ' #' || (c + 1),
               (c + 1) || ' Clinic Way',
               ({JURISDICTIONS_SQL})[1 + c %% 5],
               %(now)s - interval '{NETWORK_DAYS} days', false,
               ({ZONES_SQL})[1 + c %% 5], 'en'
        FROM generate_series(0, %(clinics)s - 1) c
        """  # noqa: S608 - the SQL is ours
    )
    load.progress.advance()


def _practitioners(load: Load) -> None:
    load.execute(
        f"""
        INSERT INTO providers_practitioner (id, name, profession, created_at, user_id)
        SELECT %(providers_practitioner_first)s + p,
               'Practitioner ' || %(run)s || '-' || (p + 1),
               (ARRAY['physician', 'nurse_practitioner', 'registered_nurse',
                      'physician_assistant'])[1 + p %% 4],
               %(now)s - interval '{NETWORK_DAYS} days', NULL
        FROM generate_series(0, %(practitioners)s - 1) p
        """  # noqa: S608 - the SQL is ours
    )
    load.progress.advance()


def _memberships(load: Load) -> None:
    load.execute(
        f"""
        INSERT INTO providers_membership (id, role, active, created_at, clinic_id, user_id)
        SELECT %(providers_membership_first)s + u,
               CASE WHEN u = {QUALITY_MANAGER} THEN 'quality_manager'
                    WHEN u = {AUDITOR} THEN 'auditor'
                    WHEN u < {FIRST_CLINIC_USER} + %(clinics)s THEN 'clinic_administrator'
                    ELSE 'clinician' END,
               true, %(now)s - interval '{NETWORK_DAYS} days',
               CASE WHEN u < {FIRST_CLINIC_USER} THEN NULL
                    ELSE %(providers_clinic_first)s
                         + (u - {FIRST_CLINIC_USER}) %% %(clinics)s END,
               %(auth_user_first)s + u
        FROM generate_series(0, {FIRST_CLINIC_USER} + 2 * %(clinics)s - 1) u
        """  # noqa: S608 - the SQL is ours
    )
    load.progress.advance()


def _clinic_practitioners(load: Load) -> None:
    load.execute(
        f"""
        INSERT INTO providers_clinicpractitioner (id, active, since, clinic_id, practitioner_id)
        SELECT %(providers_clinicpractitioner_first)s + row_number() OVER (ORDER BY c, p) - 1,
               true, %(today)s - {NETWORK_DAYS},
               %(providers_clinic_first)s + c, %(providers_practitioner_first)s + p
        FROM (
            SELECT p %% %(clinics)s AS c, p FROM generate_series(0, %(practitioners)s - 1) p
            UNION ALL
            SELECT c, c %% %(practitioners)s
            FROM generate_series(%(practitioners)s, %(clinics)s - 1) c
        ) links
        """  # noqa: S608 - the SQL is ours
    )
    load.progress.advance()


def _licences(load: Load) -> None:
    """Two terms per practitioner and state: one ending a year ago, its renewal running two
    years ahead."""
    count = load.value(
        """
        SELECT count(*) * 2 FROM (
            SELECT DISTINCT cp.practitioner_id, c.jurisdiction
            FROM providers_clinicpractitioner cp JOIN providers_clinic c ON c.id = cp.clinic_id
            WHERE cp.id >= %(providers_clinicpractitioner_first)s
        ) held
        """
    )
    load.reserve("providers_licence", int(count))
    load.execute(
        f"""
        INSERT INTO providers_licence (id, number, jurisdiction, valid_from, valid_until,
                                       practitioner_id)
        SELECT %(providers_licence_first)s + 2 * n + term,
               'L-' || %(run)s || '-' || practitioner_id || '-' || (term + 1),
               jurisdiction,
               CASE term WHEN 0 THEN %(today)s - {NETWORK_DAYS} ELSE %(today)s - 365 END,
               CASE term WHEN 0 THEN %(today)s - 366 ELSE %(today)s + 730 END,
               practitioner_id
        FROM (
            SELECT practitioner_id, jurisdiction,
                   row_number() OVER (ORDER BY practitioner_id, jurisdiction) - 1 AS n
            FROM (
                SELECT DISTINCT cp.practitioner_id, c.jurisdiction
                FROM providers_clinicpractitioner cp
                JOIN providers_clinic c ON c.id = cp.clinic_id
                WHERE cp.id >= %(providers_clinicpractitioner_first)s
            ) distinct_held
        ) held
        CROSS JOIN generate_series(0, 1) term
        """  # noqa: S608 - the SQL is ours
    )
    load.progress.advance()
