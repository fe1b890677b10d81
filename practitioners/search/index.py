"""Copies on every clinic row that let a distance search reject clinics inside its index.

A search for "ART and Graston within 25 miles of 38117" walks the clinics in a bounding box.
Without help, each of those thousands of clinics costs look-ups of its practitioner (is the
listing published?) and of the practitioner's certificates. Copies on the clinic row, read from
the same index as the coordinates, answer those first:

``listed``
    the practitioner is published. Exact: the search trusts it.
``certification_bits``
    one bit per certification the practitioner holds with no expiry date (bit ``id % 63``).
    Exact when no two certifications share a bit (fewer than 63 of them, as in practice): the
    search then trusts it too; otherwise it checks the survivors against the real ids.
``expiring_certification_bits``
    the same for certificates with an expiry date, expired or not: a prefilter only, because
    whether a date has passed depends on the day of the search. Survivors are checked exactly.

``has_other_clinics``
    the practitioner has another clinic. Exact. A search counts each practitioner once, at its
    first clinic in the circle; only clinics with this flag need the look-up that decides it.
``practice_bits``
    the practice filters a clinic row can answer alone: wheelchair-accessible entrance (1),
    open on a weekday evening (2), open on a weekend day (4), from the clinic's opening hours,
    the practitioner's self-pay (8) and sliding scale (16), and a temporary closure date set
    (32). Exact: the distance search trusts them (a three-filter search at 1,000,000 listings
    rejects nineteen clinics in twenty without a look-up); a closure's date is then read only
    for the clinics that have one.
``language_bits``, ``payer_bits``
    one bit per language spoken and per insurance plan taken (bit ``id % 63``), a prefilter
    like ``expiring_certification_bits``: survivors are checked against the real ids.
``latitude_band``
    ``floor(latitude * 10)``: not a copy, but it serves the same index. It lets the index jump
    to the tenth-of-a-degree bands (7 miles) the box spans and read only the box's longitudes
    in each, instead of every clinic at the box's latitudes across the country. Finer bands
    waste less around small circles in dense cities; a 500-mile search seeks 145 bands, which
    costs far less than it saves. A plain column kept by the same triggers, not a generated
    one: SQLite never reads an index holding a generated column as covering, and every
    candidate would then cost a read of its table row.

The database keeps these right on every write path (the ORM, ``bulk_create``,
``QuerySet.update``, raw SQL, the admin, the importers, the geocoder): triggers recompute them
when a clinic is written or moved, a practitioner's status changes, or a certificate is added,
changed or removed. They are installed after every ``migrate``, because SQLite drops a table's
triggers when Django rebuilds the table during a later migration.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from ..practice import EVENING_STARTS, MINUTES_PER_DAY

BITS = 63  # the sign bit stays clear, so every value is a positive BIGINT on both databases

LOCATION = "practitioners_location"
PRACTITIONER = "practitioners_practitioner"
RECORD = "practitioners_practitionercertification"
HOURS = "practitioners_openinghours"
LANGUAGES = "practitioners_practitioner_languages"
PAYERS = "practitioners_practitioner_payers"
PUBLISHED = "published"

# practice_bits
WHEELCHAIR = 1
OPEN_EVENINGS = 2
OPEN_WEEKENDS = 4
SELF_PAY = 8
SLIDING_SCALE = 16
CLOSURE_DATED = 32  # reopens_on is set: whether it has passed depends on the day of the search
# The clinic bits few clinics have, each with a partial copy of the search index
# (Location.Meta): a search that needs one reads only the clinics that have it.
RARE_CLINIC_BITS = {"weekends": OPEN_WEEKENDS, "evenings": OPEN_EVENINGS}


def certification_bit(certification_id: int) -> int:
    return 1 << (certification_id % BITS)


def certification_bits(certification_ids: Iterable[int]) -> int:
    bits = 0
    for certification_id in certification_ids:
        bits |= certification_bit(certification_id)
    return bits


BANDS_PER_DEGREE = 10


def latitude_band(latitude: float | None) -> int | None:
    """What the database stores for this latitude (the same float product, floored)."""
    return None if latitude is None else math.floor(latitude * BANDS_PER_DEGREE)


def latitude_bands(min_latitude: float, max_latitude: float) -> list[int]:
    """The ``latitude_band`` values a latitude range touches."""
    return list(range(latitude_band(min_latitude), latitude_band(max_latitude) + 1))


def shares_bits(ids: Iterable[int], every_id: Iterable[int]) -> bool:
    """Whether a certification outside ``ids`` has a bit of theirs (then bits cannot decide)."""
    wanted = set(ids)
    bits = certification_bits(wanted)
    return any(certification_bit(other) & bits for other in every_id if other not in wanted)


def evening_hours_sql(hours: str = "h") -> str:
    """An opening-hours row ``hours`` that is open after EVENING_STARTS on a weekday."""
    evening = EVENING_STARTS.hour * 60 + EVENING_STARTS.minute
    return (
        f"{hours}.weekday < 5 AND {hours}.end_minute > {hours}.weekday * {MINUTES_PER_DAY} "
        f"+ {evening}"
    )


def weekend_hours_sql(hours: str = "h") -> str:
    """An opening-hours row ``hours`` on a Saturday or a Sunday."""
    return f"{hours}.weekday >= 5"


def practice_bits_sql(owner: str, clinic: str, wheelchair: str, reopens_on: str) -> str:
    """What ``practice_bits`` should hold for clinic ``clinic`` of practitioner ``owner``."""

    def hours_bit(condition: str, bit: int) -> str:
        return (
            f"(CASE WHEN EXISTS (SELECT 1 FROM {HOURS} h WHERE h.location_id = {clinic} "
            f"AND {condition}) THEN {bit} ELSE 0 END)"
        )

    return (
        f"((CASE WHEN {wheelchair} THEN {WHEELCHAIR} ELSE 0 END)"
        f" + (CASE WHEN {reopens_on} IS NULL THEN 0 ELSE {CLOSURE_DATED} END)"
        f" + {hours_bit(evening_hours_sql(), OPEN_EVENINGS)}"
        f" + {hours_bit(weekend_hours_sql(), OPEN_WEEKENDS)}"
        f" + COALESCE((SELECT (CASE WHEN self_pay THEN {SELF_PAY} ELSE 0 END)"
        f" + (CASE WHEN sliding_scale THEN {SLIDING_SCALE} ELSE 0 END)"
        f" FROM {PRACTITIONER} WHERE id = {owner}), 0))"
    )


def _truths(row: str, *, bits_of: str, band: str) -> tuple[str, ...]:
    """SQL for what the clinic row ``row`` (``NEW`` in a trigger) should hold in each of the
    ``COPIED`` columns. ``bits_of`` is the bit-or aggregate of a column ``{}``."""
    owner, latitude, clinic = f"{row}.practitioner_id", f"{row}.latitude", f"{row}.id"
    listed = (
        f"COALESCE((SELECT status = '{PUBLISHED}' FROM {PRACTITIONER} WHERE id = {owner}), FALSE)"
    )
    lasting = (
        f"(SELECT COALESCE({bits_of.format('certification_id')}, 0) FROM {RECORD} "
        f"WHERE practitioner_id = {owner} AND expires_on IS NULL)"
    )
    expiring = (
        f"(SELECT COALESCE({bits_of.format('certification_id')}, 0) FROM {RECORD} "
        f"WHERE practitioner_id = {owner} AND expires_on IS NOT NULL)"
    )
    others = f"EXISTS (SELECT 1 FROM {LOCATION} WHERE practitioner_id = {owner} AND id <> {clinic})"
    languages = (
        f"(SELECT COALESCE({bits_of.format('language_id')}, 0) FROM {LANGUAGES} "
        f"WHERE practitioner_id = {owner})"
    )
    payers = (
        f"(SELECT COALESCE({bits_of.format('payer_id')}, 0) FROM {PAYERS} "
        f"WHERE practitioner_id = {owner})"
    )
    return (
        listed,
        lasting,
        expiring,
        band.format(f"FLOOR({latitude} * {BANDS_PER_DEGREE})"),
        others,
        practice_bits_sql(owner, clinic, f"{row}.wheelchair_entrance", f"{row}.reopens_on"),
        languages,
        payers,
    )


COPIED = (
    "listed",
    "certification_bits",
    "expiring_certification_bits",
    "latitude_band",
    "has_other_clinics",
    "practice_bits",
    "language_bits",
    "payer_bits",
)
_TOUCH = "certification_bits = certification_bits"  # makes the clinic trigger recompute
_RECORD_CHANGES = "practitioner_id, certification_id, expires_on"
_HOURS_CHANGES = "location_id, weekday, end_minute"
# What a clinic's copies read from its own row besides what COPIED names.
_CLINIC_CHANGES = "practitioner_id, latitude, wheelchair_entrance, reopens_on"
# ... and from its practitioner's row.
_PRACTITIONER_CHANGES = ("status", "self_pay", "sliding_scale")
# Tables whose rows change a practitioner's clinics' copies (through practitioner_id).
_PRACTITIONER_TABLES = {"certification": RECORD, "language": LANGUAGES, "payer": PAYERS}


def _sqlite_triggers() -> dict[str, str]:
    # SUM of distinct powers of two is their OR: SQLite has no bit_or aggregate.
    truths = _truths(
        "NEW",
        bits_of=f"SUM(DISTINCT 1 << ({{}} % {BITS}))",
        band="CAST({} AS INTEGER)",
    )
    differs = " OR ".join(
        f"NEW.{column} IS NOT {truth}" for column, truth in zip(COPIED, truths, strict=True)
    )
    assignments = ", ".join(
        f"{column} = {truth}" for column, truth in zip(COPIED, truths, strict=True)
    )
    recompute = f"UPDATE {LOCATION} SET {assignments} WHERE id = NEW.id;"
    triggers = {
        # The WHEN clause keeps a correct row (the importer computes the columns itself)
        # from being written twice, and ends the recursion if recursive triggers are on.
        "location_search_columns_insert": (
            f"AFTER INSERT ON {LOCATION} WHEN {differs} BEGIN {recompute} END"
        ),
        "location_search_columns_update": (
            f"AFTER UPDATE OF {_CLINIC_CHANGES}, {', '.join(COPIED)} ON {LOCATION} "
            f"WHEN {differs} BEGIN {recompute} END"
        ),
        # A practitioner's other clinics learn that one arrived, left or moved.
        "location_insert_to_siblings": (
            f"AFTER INSERT ON {LOCATION} BEGIN UPDATE {LOCATION} SET has_other_clinics = TRUE "
            f"WHERE practitioner_id = NEW.practitioner_id AND id <> NEW.id "
            f"AND NOT has_other_clinics; END"
        ),
        "location_delete_to_siblings": (
            f"AFTER DELETE ON {LOCATION} BEGIN UPDATE {LOCATION} "
            f"SET has_other_clinics = has_other_clinics "
            f"WHERE practitioner_id = OLD.practitioner_id; END"
        ),
        "location_move_to_siblings": (
            f"AFTER UPDATE OF practitioner_id ON {LOCATION} "
            f"WHEN OLD.practitioner_id IS NOT NEW.practitioner_id BEGIN UPDATE {LOCATION} "
            f"SET has_other_clinics = has_other_clinics "
            f"WHERE practitioner_id IN (OLD.practitioner_id, NEW.practitioner_id) "
            f"AND id <> NEW.id; END"
        ),
        "practitioner_status_to_locations": (
            f"AFTER UPDATE OF {', '.join(_PRACTITIONER_CHANGES)} ON {PRACTITIONER} WHEN "
            + " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in _PRACTITIONER_CHANGES)
            + f" BEGIN UPDATE {LOCATION} SET listed = listed WHERE practitioner_id = NEW.id; END"
        ),
        "certification_update_to_locations": (
            f"AFTER UPDATE OF {_RECORD_CHANGES} ON {RECORD} BEGIN UPDATE {LOCATION} "
            f"SET {_TOUCH} WHERE practitioner_id IN (OLD.practitioner_id, NEW.practitioner_id); "
            f"END"
        ),
        "hours_insert_to_location": (
            f"AFTER INSERT ON {HOURS} BEGIN UPDATE {LOCATION} SET {_TOUCH} "
            f"WHERE id = NEW.location_id; END"
        ),
        "hours_delete_to_location": (
            f"AFTER DELETE ON {HOURS} BEGIN UPDATE {LOCATION} SET {_TOUCH} "
            f"WHERE id = OLD.location_id; END"
        ),
        "hours_update_to_location": (
            f"AFTER UPDATE OF {_HOURS_CHANGES} ON {HOURS} BEGIN "
            f"UPDATE {LOCATION} SET {_TOUCH} WHERE id IN (OLD.location_id, NEW.location_id); END"
        ),
    }
    for name, table in _PRACTITIONER_TABLES.items():
        triggers[f"{name}_insert_to_locations"] = (
            f"AFTER INSERT ON {table} BEGIN UPDATE {LOCATION} SET {_TOUCH} "
            f"WHERE practitioner_id = NEW.practitioner_id; END"
        )
        triggers[f"{name}_delete_to_locations"] = (
            f"AFTER DELETE ON {table} BEGIN UPDATE {LOCATION} SET {_TOUCH} "
            f"WHERE practitioner_id = OLD.practitioner_id; END"
        )
    return triggers


def _sqlite_statements() -> list[str]:
    statements = []
    for name, body in _sqlite_triggers().items():
        # Replaced, not kept: an older definition must not survive a change here.
        statements += [f"DROP TRIGGER IF EXISTS {name}", f"CREATE TRIGGER {name} {body}"]
    return statements


def _pg_touch_function(name: str, clinic_column: str, row_column: str) -> str:
    """A trigger function that makes the clinics whose ``clinic_column`` equals the changed
    row's ``row_column`` (before and after the change) recompute their copies."""
    return f"""
        CREATE OR REPLACE FUNCTION {name}() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP <> 'INSERT' THEN
                UPDATE {LOCATION} SET {_TOUCH} WHERE {clinic_column} = OLD.{row_column};
            END IF;
            IF TG_OP <> 'DELETE' THEN
                UPDATE {LOCATION} SET {_TOUCH} WHERE {clinic_column} = NEW.{row_column};
            END IF;
            RETURN NULL;
        END $$"""


def _pg_touch_statements(
    name: str, table: str, clinic_column: str, row_column: str, changes: str
) -> list[str]:
    """Triggers on ``table`` that make the clinics whose ``clinic_column`` equals a written
    row's ``row_column`` (before and after the write) recompute their copies, once per
    statement: a bulk insert of a million clinics' hours touches each clinic once, not once
    per hours row (row triggers wrote each clinic five or six times over). An update counts
    only where one of ``changes`` changed."""
    statements = []
    changed = ", ".join(f"o.{column}" for column in changes.split(", "))
    rows = {
        "insert": ("NEW TABLE AS written", f"SELECT {row_column} FROM written"),
        "delete": ("OLD TABLE AS written", f"SELECT {row_column} FROM written"),
        "update": (
            "OLD TABLE AS written_before NEW TABLE AS written_after",
            f"SELECT v.key FROM written_before o JOIN written_after n ON n.id = o.id, "
            f"LATERAL (VALUES (o.{row_column}), (n.{row_column})) v(key) "
            f"WHERE ROW({changed}) IS DISTINCT FROM ROW({changed.replace('o.', 'n.')})",
        ),
    }
    for event, (transition, keys) in rows.items():
        function = f"practitioners_{name}_{event}_to_locations"
        statements += [
            f"""
        CREATE OR REPLACE FUNCTION {function}() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE {LOCATION} SET {_TOUCH} WHERE {clinic_column} IN ({keys});
            RETURN NULL;
        END $$""",
            f"""
        CREATE OR REPLACE TRIGGER {name}_{event}_to_locations
        AFTER {event.upper()} ON {table} REFERENCING {transition}
        FOR EACH STATEMENT EXECUTE FUNCTION {function}()""",
        ]
    return statements


def _postgresql_statements() -> list[str]:
    listed, lasting, expiring, band, others, practice, languages, payers = _truths(
        "NEW",
        bits_of=f"bit_or(1::bigint << ({{}} % {BITS})::integer)",
        band="({})::integer",
    )
    practitioner_changes = ", ".join(_PRACTITIONER_CHANGES)
    practitioner_changed = " OR ".join(
        f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in _PRACTITIONER_CHANGES
    )
    return [
        f"""
        CREATE OR REPLACE FUNCTION practitioners_location_search_columns() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            NEW.listed := {listed};
            NEW.certification_bits := {lasting};
            NEW.expiring_certification_bits := {expiring};
            NEW.latitude_band := {band};
            NEW.has_other_clinics := {others};
            NEW.practice_bits := {practice};
            NEW.language_bits := {languages};
            NEW.payer_bits := {payers};
            RETURN NEW;
        END $$""",
        f"""
        CREATE OR REPLACE TRIGGER location_search_columns
        BEFORE INSERT OR UPDATE OF {_CLINIC_CHANGES}, {", ".join(COPIED)} ON {LOCATION}
        FOR EACH ROW EXECUTE FUNCTION practitioners_location_search_columns()""",
        f"""
        CREATE OR REPLACE FUNCTION practitioners_location_to_siblings() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                UPDATE {LOCATION} SET has_other_clinics = TRUE
                WHERE practitioner_id = NEW.practitioner_id AND id <> NEW.id
                AND NOT has_other_clinics;
                RETURN NULL;
            END IF;
            UPDATE {LOCATION} SET has_other_clinics = has_other_clinics
            WHERE practitioner_id = OLD.practitioner_id AND id <> OLD.id;
            IF TG_OP = 'UPDATE' THEN
                UPDATE {LOCATION} SET has_other_clinics = has_other_clinics
                WHERE practitioner_id = NEW.practitioner_id AND id <> NEW.id;
            END IF;
            RETURN NULL;
        END $$""",
        f"""
        CREATE OR REPLACE TRIGGER location_to_siblings
        AFTER INSERT OR DELETE OR UPDATE OF practitioner_id ON {LOCATION}
        FOR EACH ROW EXECUTE FUNCTION practitioners_location_to_siblings()""",
        f"""
        CREATE OR REPLACE FUNCTION practitioners_status_to_locations() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE {LOCATION} SET listed = listed WHERE practitioner_id = NEW.id;
            RETURN NULL;
        END $$""",
        f"""
        CREATE OR REPLACE TRIGGER practitioner_status_to_locations
        AFTER UPDATE OF {practitioner_changes} ON {PRACTITIONER}
        FOR EACH ROW WHEN ({practitioner_changed})
        EXECUTE FUNCTION practitioners_status_to_locations()""",
        _pg_touch_function(
            "practitioners_certifications_to_locations", "practitioner_id", "practitioner_id"
        ),
        f"""
        CREATE OR REPLACE TRIGGER certifications_to_locations
        AFTER INSERT OR DELETE OR UPDATE OF {_RECORD_CHANGES} ON {RECORD}
        FOR EACH ROW EXECUTE FUNCTION practitioners_certifications_to_locations()""",
        # Per row, unlike the hours below: a practitioner has about one row per language,
        # payer or certificate, and per statement (tried) made both one clinic's save and a
        # bulk insert slower (docs/search.md). The same function serves the languages and
        # payers (their rows name the practitioner the same way; Django only inserts and
        # deletes them).
        *(
            f"""
        CREATE OR REPLACE TRIGGER {name}s_to_locations
        AFTER INSERT OR DELETE OR UPDATE ON {table}
        FOR EACH ROW EXECUTE FUNCTION practitioners_certifications_to_locations()"""
            for name, table in _PRACTITIONER_TABLES.items()
            if name != "certification"
        ),
        *_pg_touch_statements("hours", HOURS, "id", "location_id", _HOURS_CHANGES),
        # The hours' row trigger these replace, and the per-statement ones tried for the
        # other tables.
        f"DROP TRIGGER IF EXISTS hours_to_location ON {HOURS}",
        "DROP FUNCTION IF EXISTS practitioners_hours_to_location()",
        *(
            f"DROP TRIGGER IF EXISTS {name}_{event}_to_locations ON {table}"
            for name, table in _PRACTITIONER_TABLES.items()
            for event in ("insert", "delete", "update")
        ),
        *(
            f"DROP FUNCTION IF EXISTS practitioners_{name}_{event}_to_locations()"
            for name in _PRACTITIONER_TABLES
            for event in ("insert", "delete", "update")
        ),
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


def drop_sqlite_triggers(connection) -> None:
    """Before migrations run on SQLite: Django rebuilds a table by dropping and renaming it,
    which SQLite refuses while a trigger on another table still names it."""
    if connection.vendor != "sqlite":
        return
    with connection.cursor() as cursor:
        for name in _sqlite_triggers():
            cursor.execute(f"DROP TRIGGER IF EXISTS {name}")


def recompute_all(connection) -> None:
    """Bring every clinic's copies up to date (the triggers decide which rows change)."""
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {LOCATION} SET listed = listed")
