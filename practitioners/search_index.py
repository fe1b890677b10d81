"""Two columns on every clinic that let a distance search reject rows inside the index.

A search for "ART and Graston within 25 miles of 38117" walks the clinics in a bounding box.
Without help, each of those thousands of clinics costs a look-up of its practitioner (is the
listing published?) and of the practitioner's certificates. Two copies on the clinic row, read
from the same index as the coordinates, answer both first:

``listed``
    the practitioner is published. Exact: the search trusts it.
``certification_bits``
    one bit per certification the practitioner has a record of (bit ``id % 63``, so two
    certifications may share a bit), expired ones included. A prefilter only: a clinic whose
    bits miss a requested technique is certainly out; one whose bits match is checked exactly
    (expiry dates, the real ids) by the search. A value too wide is slow, never wrong.

The database keeps both columns right on every write path (the ORM, ``bulk_create``,
``QuerySet.update``, raw SQL, the admin, the importers): triggers recompute them when a clinic
is written, a practitioner's status changes, or a certificate is added, moved or removed. The
triggers live here, installed by migration 0005 and again after every ``migrate`` (SQLite drops
a table's triggers when Django rebuilds the table during a later migration).
"""

from __future__ import annotations

from collections.abc import Iterable

BITS = 63  # the sign bit stays clear, so every value is a positive BIGINT on both databases

LOCATION = "practitioners_location"
PRACTITIONER = "practitioners_practitioner"
RECORD = "practitioners_practitionercertification"
PUBLISHED = "published"


def certification_bit(certification_id: int) -> int:
    return 1 << (certification_id % BITS)


def certification_bits(certification_ids: Iterable[int]) -> int:
    bits = 0
    for certification_id in certification_ids:
        bits |= certification_bit(certification_id)
    return bits


def _truth(owner: str, *, shift: str) -> tuple[str, str]:
    """SQL for what ``listed`` and ``certification_bits`` should be for practitioner ``owner``."""
    listed = (
        f"COALESCE((SELECT status = '{PUBLISHED}' FROM {PRACTITIONER} WHERE id = {owner}), FALSE)"
    )
    bits = f"(SELECT COALESCE({shift}, 0) FROM {RECORD} WHERE practitioner_id = {owner})"
    return listed, bits


def _sqlite_statements() -> list[str]:
    # SUM of distinct powers of two is their OR: SQLite has no bit_or aggregate.
    listed, bits = _truth(
        "NEW.practitioner_id", shift=f"SUM(DISTINCT 1 << (certification_id % {BITS}))"
    )
    differs = f"NEW.listed IS NOT {listed} OR NEW.certification_bits IS NOT {bits}"
    recompute = (
        f"UPDATE {LOCATION} SET listed = {listed}, certification_bits = {bits} WHERE id = NEW.id;"
    )
    return [
        # The WHEN clause keeps a correct row (the importer computes the columns itself)
        # from being written twice, and ends the recursion if recursive triggers are on.
        f"CREATE TRIGGER IF NOT EXISTS location_search_columns_insert AFTER INSERT ON {LOCATION} "
        f"WHEN {differs} BEGIN {recompute} END",
        f"CREATE TRIGGER IF NOT EXISTS location_search_columns_update "
        f"AFTER UPDATE OF practitioner_id, listed, certification_bits ON {LOCATION} "
        f"WHEN {differs} BEGIN {recompute} END",
        f"CREATE TRIGGER IF NOT EXISTS practitioner_status_to_locations "
        f"AFTER UPDATE OF status ON {PRACTITIONER} WHEN OLD.status IS NOT NEW.status "
        f"BEGIN UPDATE {LOCATION} SET listed = listed WHERE practitioner_id = NEW.id; END",
        f"CREATE TRIGGER IF NOT EXISTS certification_insert_to_locations AFTER INSERT ON {RECORD} "
        f"BEGIN UPDATE {LOCATION} SET certification_bits = certification_bits "
        f"WHERE practitioner_id = NEW.practitioner_id; END",
        f"CREATE TRIGGER IF NOT EXISTS certification_delete_to_locations AFTER DELETE ON {RECORD} "
        f"BEGIN UPDATE {LOCATION} SET certification_bits = certification_bits "
        f"WHERE practitioner_id = OLD.practitioner_id; END",
        f"CREATE TRIGGER IF NOT EXISTS certification_update_to_locations "
        f"AFTER UPDATE OF practitioner_id, certification_id ON {RECORD} "
        f"BEGIN UPDATE {LOCATION} SET certification_bits = certification_bits "
        f"WHERE practitioner_id IN (OLD.practitioner_id, NEW.practitioner_id); END",
    ]


def _postgresql_statements() -> list[str]:
    listed, bits = _truth(
        "NEW.practitioner_id", shift=f"bit_or(1::bigint << (certification_id % {BITS})::integer)"
    )
    return [
        f"""
        CREATE OR REPLACE FUNCTION practitioners_location_search_columns() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            NEW.listed := {listed};
            NEW.certification_bits := {bits};
            RETURN NEW;
        END $$""",
        f"""
        CREATE OR REPLACE TRIGGER location_search_columns
        BEFORE INSERT OR UPDATE OF practitioner_id, listed, certification_bits ON {LOCATION}
        FOR EACH ROW EXECUTE FUNCTION practitioners_location_search_columns()""",
        f"""
        CREATE OR REPLACE FUNCTION practitioners_status_to_locations() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE {LOCATION} SET listed = listed WHERE practitioner_id = NEW.id;
            RETURN NULL;
        END $$""",
        f"""
        CREATE OR REPLACE TRIGGER practitioner_status_to_locations
        AFTER UPDATE OF status ON {PRACTITIONER}
        FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
        EXECUTE FUNCTION practitioners_status_to_locations()""",
        f"""
        CREATE OR REPLACE FUNCTION practitioners_certifications_to_locations() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP <> 'INSERT' THEN
                UPDATE {LOCATION} SET certification_bits = certification_bits
                WHERE practitioner_id = OLD.practitioner_id;
            END IF;
            IF TG_OP <> 'DELETE' THEN
                UPDATE {LOCATION} SET certification_bits = certification_bits
                WHERE practitioner_id = NEW.practitioner_id;
            END IF;
            RETURN NULL;
        END $$""",
        f"""
        CREATE OR REPLACE TRIGGER certifications_to_locations
        AFTER INSERT OR DELETE OR UPDATE OF practitioner_id, certification_id ON {RECORD}
        FOR EACH ROW EXECUTE FUNCTION practitioners_certifications_to_locations()""",
    ]


def install_triggers(connection) -> None:
    """Create the triggers if missing (idempotent; safe on every migrate)."""
    if connection.vendor == "postgresql":
        statements = _postgresql_statements()
    elif connection.vendor == "sqlite":
        statements = _sqlite_statements()
    else:  # pragma: no cover - the project supports SQLite and PostgreSQL only
        raise NotImplementedError(f"no search-column triggers for {connection.vendor}")
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def recompute_all(connection) -> None:
    """Bring every clinic's columns up to date (the triggers do the work)."""
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {LOCATION} SET listed = listed")
