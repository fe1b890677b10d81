"""SearchParams -> SQL: the page of results, the capped count and the nearest-match fallback.

The only search SQL, built from the values in :class:`~.params.SearchParams` and nothing else.
A first page runs three statements here (docs/search.md shows them):

1. the count, capped at ``SEARCH_COUNT_CAP``, and, in the same statement, the few capped counts
   of smaller circles that find one provably holding the page (a dense city is sorted from that
   small circle instead of from its 20,000 listings);
2. the page: the nearest practitioners with their nearest clinic and profession;
3. the page's certificates.

When nothing is within the radius, one more statement finds how far the nearest match is.
Without an origin the same three run by name. ``PractitionerQuerySet.near()`` is the slow,
general form of the same question; the tests hold this module to it and to a brute force.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import connections, router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from ..models import Certification, Location, Practitioner, PractitionerCertification, Profession
from ..practice import Language, NewPatients, Payer, apply_details_columns, details_columns_sql
from . import geo
from . import index as search_index
from .params import CertificationGroup, SearchParams
from .results import (
    CERTIFICATES,
    CERTIFICATIONS,
    CLINICS,
    PARENT_CERTIFICATIONS,
    PRACTITIONERS,
    PROFESSIONS,
    CountedPaginator,
    SearchResults,
)

LOCATION = Location._meta.db_table
PRACTITIONER = Practitioner._meta.db_table
PROFESSION = Profession._meta.db_table
RECORD = PractitionerCertification._meta.db_table
CERTIFICATION = Certification._meta.db_table
LANGUAGE = Language._meta.db_table
PAYER = Payer._meta.db_table

# Sizing the circle a page is sorted from (count_and_size): at most MAX_PROBES counts after the
# whole circle's, none when a circle holds fewer matches than SORT_WITHOUT_PROBING (a few
# hundred rows sort faster than a count costs); each aims at AIM times the matches needed.
MAX_PROBES = 5
SORT_WITHOUT_PROBING = 300
AIM = 1.5
# "The nearest match is N miles away" widens the circle this much each time, up to the limit.
WIDEN = 4
WIDEST_MI = geo.ANYWHERE_MI  # the whole earth: Guam is 7,000 miles from Memphis


@dataclass(frozen=True)
class NearbyMatch:
    practitioner_id: int
    location_id: int
    distance_mi: float


def _placeholders(values: Sequence) -> str:
    return ", ".join(["%s"] * len(values))


def _connection() -> tuple[str, BaseDatabaseWrapper]:
    db = router.db_for_read(Practitioner)
    return db, connections[db]


def _fetch(sql: str, params: Sequence) -> tuple[str, list[tuple]]:
    db, connection = _connection()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return db, cursor.fetchall()


# --- What the form offers -------------------------------------------------------------------


@dataclass(frozen=True)
class Choices:
    """What the form offers and validates against, from one statement."""

    certifications: list[Certification]
    professions: list[Profession]
    languages: list[Language]
    payers: list[Payer]


def choice_rows() -> Choices:
    """Every certification, profession, language and payer (id, slug or code, name, and a
    certification's parent), in one statement: the form's choices, its validation and the
    certifications' levels all come from these few dozen rows. Plain SQL: composing the ORM
    union cost more than running it."""
    sql = (
        f"SELECT 'c', id, slug, name, parent_id FROM {CERTIFICATION} "
        f"UNION ALL SELECT 'p', id, slug, name, NULL FROM {PROFESSION} "
        f"UNION ALL SELECT 'g', id, code, name, NULL FROM {LANGUAGE} "
        f"UNION ALL SELECT 'y', id, slug, name, NULL FROM {PAYER} ORDER BY 1, 4"
    )
    db, rows = _fetch(sql, ())
    choices = Choices(certifications=[], professions=[], languages=[], payers=[])
    for kind, *values in rows:
        if kind == "c":
            choices.certifications.append(Certification.from_db(db, _CHOICE_CERTIFICATION, values))
        elif kind == "p":
            choices.professions.append(Profession.from_db(db, _CHOICE_SLUG_NAME, values[:3]))
        elif kind == "g":
            choices.languages.append(Language.from_db(db, _CHOICE_CODE_NAME, values[:3]))
        else:
            choices.payers.append(Payer.from_db(db, _CHOICE_SLUG_NAME, values[:3]))
    return choices


_CHOICE_CERTIFICATION = ["id", "slug", "name", "parent_id"]
_CHOICE_SLUG_NAME = ["id", "slug", "name"]
_CHOICE_CODE_NAME = ["id", "code", "name"]


# --- The filters, as SQL ----------------------------------------------------------------------


def practitioner_conditions(
    params: SearchParams, connection: BaseDatabaseWrapper, *, copied: bool = False
) -> list[tuple[str, list]]:
    """Every filter on the practitioner's own row, as SQL conditions on ``p``.

    The one place a new filter's SQL goes: both the distance search and the search by name
    apply exactly these (see docs/search.md, "Adding a filter")."""
    conditions: list[tuple[str, list]] = []
    if params.profession_id is not None:
        conditions.append(("p.profession_id = %s", [params.profession_id]))
    if params.accepting_new_patients is not None:
        # The yes/no from before the four values: "no" is any of the other three.
        operator = "=" if params.accepting_new_patients else "<>"
        conditions.append((f"p.new_patients {operator} %s", [NewPatients.ACCEPTING.value]))
    if params.telehealth is not None:
        conditions.append(("p.telehealth = %s", [params.telehealth]))
    if params.name:
        # What the ORM writes for name__icontains on this database.
        column = connection.ops.lookup_cast("icontains", "CharField") % "p.name"
        operator = connection.operators["icontains"] % "%s"
        pattern = f"%{connection.ops.prep_for_like_query(params.name)}%"
        conditions.append((f"{column} {operator}", [pattern]))
    if params.verified_only and not params.required_groups:
        conditions.append(
            (
                f"EXISTS (SELECT 1 FROM {RECORD} r WHERE r.practitioner_id = p.id "
                "AND r.verified_on IS NOT NULL AND (r.expires_on IS NULL OR r.expires_on >= %s))",
                [connection.ops.adapt_datefield_value(params.on)],
            )
        )
    conditions += params.practice.practitioner_conditions("p", copied=copied)
    return conditions


def clinic_conditions(
    params: SearchParams, connection: BaseDatabaseWrapper, alias: str, *, copied: bool = False
) -> list[tuple[str, list]]:
    """Every filter on a clinic's own row (access, hours, a temporary closure), as SQL
    conditions on ``alias``: the one place for them. They decide which clinic a row shows
    (the nearest that passes), not only whether the practitioner matches. ``copied``: the
    clinic's practice bits were tested already and settle what they copy exactly."""
    return params.practice.clinic_conditions(connection, clinic=alias, copied=copied)


def _joined(conditions: list[tuple[str, list]]) -> tuple[str, list]:
    return (
        " AND ".join(condition for condition, _ in conditions),
        [value for _, values in conditions for value in values],
    )


def _current_certificate_sql(
    group: CertificationGroup, owner: str, params: SearchParams, connection: BaseDatabaseWrapper
) -> tuple[str, list]:
    """EXISTS a certificate in ``group`` of practitioner ``owner`` that has not expired."""
    sql = (
        f"EXISTS (SELECT 1 FROM {RECORD} r WHERE r.practitioner_id = {owner} "
        f"AND r.certification_id IN ({_placeholders(group.ids)}) "
        f"AND (r.expires_on IS NULL OR r.expires_on >= %s)"
        f"{' AND r.verified_on IS NOT NULL' if params.verified_only else ''})"
    )
    return sql, [*group.ids, connection.ops.adapt_datefield_value(params.on)]


def _holding_sql(
    group: CertificationGroup, params: SearchParams, connection: BaseDatabaseWrapper
) -> tuple[str, list]:
    """Clinic ``l``'s practitioner holds a current certificate in ``group``, decided by the
    clinic's copies (``index.py``) wherever they can."""
    current, current_params = _current_certificate_sql(
        group, "l.practitioner_id", params, connection
    )
    # A condition of its own, without a look-up, so that PostgreSQL (which orders the
    # conditions by cost) rejects most clinics before any subquery runs.
    candidate = "((l.certification_bits | l.expiring_certification_bits) & %s) <> 0"
    if not group.exact or params.verified_only:
        # The copies do not know who verified what: each candidate's certificate is looked up.
        return f"{candidate} AND {current}", [group.bits, *current_params]
    # A certificate without an expiry date settles it; one with a date is looked up.
    sql = (
        f"{candidate} AND ((l.certification_bits & %s) <> 0 OR "
        f"((l.expiring_certification_bits & %s) <> 0 AND {current}))"
    )
    return sql, [group.bits, group.bits, group.bits, *current_params]


def clinics_in_circle(
    params: SearchParams,
    radius_mi: float,
    connection: BaseDatabaseWrapper,
    *,
    radius_sql: str | None = None,
) -> tuple[str, list]:
    """WHERE clause (and its parameters) for the matching clinics ``l`` in the circle: the
    index decides the status, the box and the certificates; the clinic's own filters and then
    the practitioner's are checked on the survivors only. With ``radius_sql`` the circle's
    radius is that SQL expression (at most ``radius_mi``), worked out by the statement itself."""
    assert params.origin is not None
    box = geo.bounding_box(params.origin, radius_mi)
    bands = search_index.latitude_bands(box.min_latitude, box.max_latitude)
    band_sql, band_params = _placeholders(bands), list(bands)
    if radius_sql is not None:
        band_sql, band_params = _bands_within(bands)
    circle, circle_params = _circle(params, radius_mi, radius_sql, "l")
    sql = f"l.listed = %s AND l.latitude_band IN ({band_sql})"
    sql_params: list = [True, *band_params]
    # The practice filters the index's copies answer: a bit test, cheaper than the distance
    # (SQLite tests the terms in this order), before the exact look-ups below.
    for condition, values in params.practice.index_conditions("l"):
        sql += f" AND {condition}"
        sql_params += values
    sql += f" AND {circle}"
    sql_params += circle_params
    for group in params.required_groups:
        holding, holding_params = _holding_sql(group, params, connection)
        sql += f" AND {holding}"
        sql_params += holding_params
    on_clinic, on_clinic_params = _joined(clinic_conditions(params, connection, "l", copied=True))
    if on_clinic:
        sql += f" AND {on_clinic}"
        sql_params += on_clinic_params
    conditions = practitioner_conditions(params, connection, copied=True)
    if conditions:
        sql += (
            f" AND EXISTS (SELECT 1 FROM {PRACTITIONER} p WHERE p.id = l.practitioner_id AND "
            + " AND ".join(condition for condition, _ in conditions)
            + ")"
        )
        sql_params += [value for _, values in conditions for value in values]
    return sql, sql_params


def _listed_practitioners(
    params: SearchParams, connection: BaseDatabaseWrapper
) -> tuple[str, list]:
    """WHERE clause for the matching published practitioners ``p`` (the search by name)."""
    sql = "p.status = %s"
    sql_params: list = [Practitioner.Status.PUBLISHED]
    for group in params.required_groups:
        holding, holding_params = _current_certificate_sql(group, "p.id", params, connection)
        sql += f" AND {holding}"
        sql_params += holding_params
    for condition, values in practitioner_conditions(params, connection):
        sql += f" AND {condition}"
        sql_params += values
    on_clinic, on_clinic_params = _joined(clinic_conditions(params, connection, "s"))
    if on_clinic:
        sql += (
            f" AND EXISTS (SELECT 1 FROM {LOCATION} s WHERE s.practitioner_id = p.id "
            f"AND {on_clinic})"
        )
        sql_params += on_clinic_params
    return sql, sql_params


# --- Counting ---------------------------------------------------------------------------------


def _bands_within(bands: list[int]) -> tuple[str, list]:
    """The IN list of the latitude bands the ladder's box (count_and_size) touches, out of
    the largest circle's ``bands``: the others are NULL, which the index seeks in no time.
    (Each band the list keeps costs a walk along the circle's longitudes, however far.)"""
    min_lat, max_lat = LADDER_BOX[0], LADDER_BOX[1]
    items, values = [], []
    for band in bands:
        items.append(f"CASE WHEN %s <= {max_lat} AND %s >= {min_lat} THEN {int(band)} END")
        values += [
            band / search_index.BANDS_PER_DEGREE,
            (band + 1) / search_index.BANDS_PER_DEGREE,
        ]
    return ", ".join(items), values


# The columns of count_and_size's recursive query that hold a probe's box.
LADDER_BOX = ("lat_lo", "lat_hi", "lon_lo", "lon_hi")


def _circle(
    params: SearchParams, radius_mi: float, radius_sql: str | None, alias: str
) -> tuple[str, list]:
    assert params.origin is not None
    latitude, longitude = f"{alias}.latitude", f"{alias}.longitude"
    if radius_sql is None:
        return geo.circle_sql(params.origin, radius_mi, latitude, longitude)
    return geo.circle_in_box_sql(
        params.origin, radius_mi, radius_sql, LADDER_BOX, latitude, longitude
    )


def _count_near_sql(
    params: SearchParams,
    radius_mi: float,
    up_to: int,
    connection: BaseDatabaseWrapper,
    *,
    radius_sql: str | None = None,
) -> tuple[str, list]:
    """A scalar subquery: ``min(up_to, matches within radius_mi)`` (or within ``radius_sql``,
    see clinics_in_circle), at the cost of ``up_to`` matches rather than of every clinic in
    the circle.

    It walks the clinics in the circle and counts each practitioner at its first one (no
    clinic of theirs in the circle has a smaller id), so no DISTINCT is needed and the
    database stops as soon as it has counted ``up_to``."""
    assert params.origin is not None
    where, where_params = clinics_in_circle(params, radius_mi, connection, radius_sql=radius_sql)
    sibling, sibling_params = _circle(params, radius_mi, radius_sql, "s")
    # A practitioner is counted at its first clinic that matches: a sibling that fails the
    # clinic filters does not take that place. The sibling's copied bits settle them as the
    # clinic's own do (location_owner_search holds them, so no sibling row is read).
    on_clinic, on_clinic_params = _joined(
        [
            *params.practice.clinic_bit_conditions("s"),
            *clinic_conditions(params, connection, "s", copied=True),
        ]
    )
    if on_clinic:
        sibling, sibling_params = f"{sibling} AND {on_clinic}", [*sibling_params, *on_clinic_params]
    sql = (
        f"(SELECT COUNT(*) FROM (SELECT 1 FROM {LOCATION} l WHERE {where} "
        f"AND (NOT l.has_other_clinics OR NOT EXISTS ("
        f"SELECT 1 FROM {LOCATION} s WHERE s.practitioner_id = l.practitioner_id "
        f"AND s.id < l.id AND {sibling})) LIMIT %s) firsts)"
    )
    return sql, [*where_params, *sibling_params, up_to]


def count_near(params: SearchParams, *, up_to: int) -> int:
    """``min(up_to, practitioners matching within params.radius_mi)``, in one statement."""
    _, connection = _connection()
    sql, sql_params = _count_near_sql(params, params.radius_mi, up_to, connection)
    return _fetch(f"SELECT {sql}", sql_params)[1][0][0]


@dataclass(frozen=True)
class Circle:
    """A circle around the origin and how many matches it holds: exactly ``counted``, or at
    least that many when ``counted`` reached ``limit``."""

    radius_mi: float
    counted: int
    limit: int


def count_and_size(params: SearchParams, *, needed: int, cap: int) -> list[Circle]:
    """The capped count of the whole circle, then (in the same statement) capped counts of
    smaller circles, looking for a small one that still holds ``needed`` matches.

    The 20 nearest matches within 10 miles of Manhattan are the 20 nearest within any smaller
    circle that holds at least 20; sorting only that circle is what keeps a dense city fast.
    Each smaller radius is worked out by the statement from the count before it: area grows
    with the square of the radius, so it aims at AIM times what is needed as if the density
    were even, shrinking to a tenth to a quarter after a capped count (a lower bound only)
    and to 0.3-0.8 after an exact one. A circle that turns out to hold too few gets one more
    try between it and the last that held enough. The statement is recursive: a row per
    step, alternately a radius and its count, and each count runs only when its row asks for
    it, so a sparse search pays for one count."""
    _, connection = _connection()
    up_to = max(min(2 * needed, needed + 500) + 1, 101)
    enough = max(up_to - 1, SORT_WITHOUT_PROBING)
    needed = max(needed, 1)
    first, sql_params = _count_near_sql(params, params.radius_mi, cap + 1, connection)
    probe, probe_params = _count_near_sql(
        params, params.radius_mi, up_to, connection, radius_sql="r"
    )

    def clamp(sql: str, low: float, high: float) -> str:
        return (
            f"(CASE WHEN {sql} < {low} THEN {low} WHEN {sql} > {high} THEN {high} ELSE {sql} END)"
        )

    # Numbers written into the SQL are ours (counts, not the request's). The radius stays a
    # double on PostgreSQL, whose recursive queries need the same type in every row.
    holds = f"n >= {needed}"
    capped = f"n >= (CASE WHEN k = 0 THEN {cap + 1} ELSE {up_to} END)"
    aim = f"SQRT({AIM * needed!r} / (CASE WHEN n < 1 THEN 1 ELSE n END))"
    shrink = f"(CASE WHEN {capped} THEN {clamp(aim, 0.1, 0.25)} ELSE {clamp(aim, 0.3, 0.8)} END)"
    following = f"CAST(r * (CASE WHEN {holds} THEN {shrink} ELSE {aim} END) AS DOUBLE PRECISION)"
    go_on = (
        f"k < {MAX_PROBES} AND guess = 0 AND (({holds} AND ({capped} OR n > {enough})) "
        f"OR (NOT ({holds}) AND k > 0 AND r * {aim} < best))"
    )
    # A sizing row also works out its circle's box, once, for the count in the row after it.
    box_columns, box_params = [], []
    for column, (expression, values) in zip(
        LADDER_BOX, geo.scaled_box_sql(params.origin, params.radius_mi, following), strict=True
    ):
        box_columns.append(f"CASE WHEN n IS NULL THEN {column} ELSE {expression} END")
        box_params += values
    no_box = ", ".join(["CAST(NULL AS DOUBLE PRECISION)"] * len(LADDER_BOX))
    sql = (
        f"WITH RECURSIVE ladder(k, r, n, best, guess, {', '.join(LADDER_BOX)}) AS ("
        f"SELECT 0, CAST(%s AS DOUBLE PRECISION), {first}, CAST(%s AS DOUBLE PRECISION), 0, "
        f"{no_box} UNION ALL SELECT "
        f"CASE WHEN n IS NULL THEN k + 1 ELSE k END, "
        f"CASE WHEN n IS NULL THEN r ELSE {following} END, "
        f"CASE WHEN n IS NULL THEN {probe} ELSE NULL END, "
        f"CASE WHEN n IS NULL OR NOT ({holds}) THEN best ELSE r END, "
        f"CASE WHEN n IS NULL OR {holds} THEN guess ELSE 1 END, "
        f"{', '.join(box_columns)} "
        f"FROM ladder WHERE n IS NULL OR ({go_on})) "
        f"SELECT k, r, n FROM ladder WHERE n IS NOT NULL ORDER BY k"
    )
    sql_params = [params.radius_mi, *sql_params, params.radius_mi, *probe_params, *box_params]
    rows = _fetch(sql, sql_params)[1]
    return [Circle(radius_mi=r, counted=n, limit=cap + 1 if k == 0 else up_to) for k, r, n in rows]


def radius_holding(circles: Sequence[Circle], needed: int) -> float:
    """The smallest of these circles known to hold ``needed`` matches (the first, the whole
    search, always holds every match it counted)."""
    holding = [circle.radius_mi for circle in circles[1:] if circle.counted >= needed]
    return min(holding, default=circles[0].radius_mi)


# --- The page -----------------------------------------------------------------------------


def _nearest_sql(
    params: SearchParams, radius_mi: float, connection: BaseDatabaseWrapper
) -> tuple[str, list]:
    """Each matching practitioner's nearest clinic in the circle: (practitioner_id, id,
    distance), unordered."""
    assert params.origin is not None
    where, where_params = clinics_in_circle(params, radius_mi, connection)
    distance, distance_params = geo.distance_sql(params.origin, "l.latitude", "l.longitude")
    # The distance is named in a subquery so the ranking below reuses it instead of
    # computing the trigonometry a second time for every clinic.
    in_circle = (
        f"SELECT l.practitioner_id, l.id, {distance} AS distance FROM {LOCATION} l WHERE {where}"
    )
    sql = (
        f"SELECT practitioner_id, id, distance FROM ("
        f"SELECT practitioner_id, id, distance, ROW_NUMBER() OVER ("
        f"PARTITION BY practitioner_id ORDER BY distance, id) AS nth "
        f"FROM ({in_circle}) d) c WHERE nth = 1"
    )
    return sql, [*distance_params, *where_params]


def nearest(
    params: SearchParams, *, offset: int = 0, limit: int | None = None
) -> list[NearbyMatch]:
    """``near(origin, radius)[offset:offset + limit]`` as (practitioner, clinic, distance)
    triples, nearest first: what the page shows, without its rows."""
    _, connection = _connection()
    nearest_clinics, sql_params = _nearest_sql(params, params.radius_mi, connection)
    sql = (
        f"SELECT c.practitioner_id, c.id, c.distance FROM ({nearest_clinics}) c "
        f"JOIN {PRACTITIONER} p ON p.id = c.practitioner_id ORDER BY c.distance, p.name, p.id"
    )
    if limit is not None:
        sql += " LIMIT %s OFFSET %s"
        sql_params += [limit, offset]
    elif offset:
        raise ValueError("an offset needs a limit")
    return [NearbyMatch(*row) for row in _fetch(sql, sql_params)[1]]


def _row_columns(connection: BaseDatabaseWrapper) -> str:
    """A result row's columns: its clinic, practitioner and profession, then the
    practitioner's languages and payers and the clinic's hours as three aggregated columns
    (``practice.details_columns_sql``), so a page needs no statement more for them."""
    return ", ".join(
        [
            *CLINICS.select,
            *PRACTITIONERS.select,
            *PROFESSIONS.select,
            *details_columns_sql(connection.vendor),
        ]
    )


_FIRST_PRACTITIONER = len(CLINICS)
_FIRST_PROFESSION = _FIRST_PRACTITIONER + len(PRACTITIONERS)
_FIRST_DETAIL = _FIRST_PROFESSION + len(PROFESSIONS)


def _practitioners_from_rows(
    db: str, rows: Sequence[Sequence], *, with_distance: bool
) -> list[Practitioner]:
    """Practitioners with ``nearest_location`` and ``profession`` attached, from rows of
    ``[distance,] clinic columns, practitioner columns, profession columns``."""
    practitioners = []
    now = timezone.now()
    for full_row in rows:
        distance, row = (full_row[0], full_row[1:]) if with_distance else (None, full_row)
        clinic_values = row[:_FIRST_PRACTITIONER]
        practitioner_values = row[_FIRST_PRACTITIONER:_FIRST_PROFESSION]
        profession_values = row[_FIRST_PROFESSION:_FIRST_DETAIL]
        practitioner = PRACTITIONERS.build(db, practitioner_values)
        practitioner.profession = (
            None if profession_values[0] is None else PROFESSIONS.build(db, profession_values)
        )
        clinic = None
        if clinic_values[0] is not None:
            clinic = CLINICS.build(db, clinic_values)
            clinic.practitioner = practitioner
        apply_details_columns(practitioner, clinic, row[_FIRST_DETAIL:], now=now)
        practitioner.nearest_location = clinic
        if with_distance:
            practitioner.distance_mi = distance
            practitioner.nearest_location_id = clinic.pk
        practitioners.append(practitioner)
    return practitioners


def _page_near(
    params: SearchParams, radius_mi: float, *, offset: int, limit: int
) -> list[Practitioner]:
    """Rows ``offset`` to ``offset + limit`` of the distance search, sorted from the circle of
    ``radius_mi`` (which must hold them), with their clinics and professions: one statement."""
    if limit <= 0:
        return []
    _, connection = _connection()
    nearest_clinics, sql_params = _nearest_sql(params, radius_mi, connection)
    # Names break ties in distance only: practitioners farther than the last one the page can
    # show are never joined to their rows (the circle may hold thousands), and only the page's
    # own rows are joined to their clinic and profession.
    sql = (
        f"WITH c AS MATERIALIZED ({nearest_clinics}) "
        f"SELECT m.distance, {_row_columns(connection)} FROM ("
        f"SELECT c.practitioner_id, c.id, c.distance FROM c "
        f"JOIN {PRACTITIONER} p ON p.id = c.practitioner_id "
        f"WHERE c.distance <= COALESCE(("
        f"SELECT distance FROM c ORDER BY distance LIMIT 1 OFFSET %s), %s) "
        f"ORDER BY c.distance, p.name, p.id LIMIT %s OFFSET %s) m "
        f"JOIN {LOCATION} l ON l.id = m.id "
        f"JOIN {PRACTITIONER} p ON p.id = m.practitioner_id "
        f"LEFT JOIN {PROFESSION} f ON f.id = p.profession_id "
        f"ORDER BY m.distance, p.name, p.id"
    )
    sql_params += [offset + limit - 1, radius_mi, limit, offset]
    db, rows = _fetch(sql, sql_params)
    return _practitioners_from_rows(db, rows, with_distance=True)


def _count_by_name(params: SearchParams, *, up_to: int) -> int:
    _, connection = _connection()
    where, sql_params = _listed_practitioners(params, connection)
    sql = f"SELECT COUNT(*) FROM (SELECT 1 FROM {PRACTITIONER} p WHERE {where} LIMIT %s) x"
    return _fetch(sql, [*sql_params, up_to])[1][0][0]


def _page_by_name(params: SearchParams, *, offset: int, limit: int) -> list[Practitioner]:
    """Without an origin there is no nearest clinic: each practitioner shows its first one."""
    if limit <= 0:
        return []
    _, connection = _connection()
    where, sql_params = _listed_practitioners(params, connection)
    # With clinic filters, the first clinic that passes them.
    on_clinic, on_clinic_params = _joined(clinic_conditions(params, connection, "s"))
    sql = (
        f"SELECT {_row_columns(connection)} FROM ("
        f"SELECT p.id FROM {PRACTITIONER} p WHERE {where} "
        f"ORDER BY p.name, p.id LIMIT %s OFFSET %s) page "
        f"JOIN {PRACTITIONER} p ON p.id = page.id "
        f"LEFT JOIN {PROFESSION} f ON f.id = p.profession_id "
        f"LEFT JOIN {LOCATION} l ON l.id = ("
        f"SELECT MIN(s.id) FROM {LOCATION} s WHERE s.practitioner_id = p.id"
        f"{f' AND {on_clinic}' if on_clinic else ''}) "
        f"ORDER BY p.name, p.id"
    )
    db, rows = _fetch(sql, [*sql_params, limit, offset, *on_clinic_params])
    return _practitioners_from_rows(db, rows, with_distance=False)


def attach_certificates(practitioners: Sequence[Practitioner]) -> None:
    """Give each practitioner on a page its ``certificates`` (every record, expired ones too,
    by certification name), with each certification and its technique: one statement."""
    records: dict[int, list[PractitionerCertification]] = {p.pk: [] for p in practitioners}
    if records:
        ids = list(records)
        columns = [*CERTIFICATES.select, *CERTIFICATIONS.select, *PARENT_CERTIFICATIONS.select]
        sql = (
            f"SELECT {', '.join(columns)} FROM {RECORD} r "
            f"JOIN {CERTIFICATION} c ON c.id = r.certification_id "
            f"LEFT JOIN {CERTIFICATION} pc ON pc.id = c.parent_id "
            f"WHERE r.practitioner_id IN ({_placeholders(ids)})"
        )
        db, rows = _fetch(sql, ids)
        certifications: dict[int, Certification] = {}
        first_certification = len(CERTIFICATES)
        first_parent = first_certification + len(CERTIFICATIONS)
        for row in rows:
            record = CERTIFICATES.build(db, row[:first_certification])
            certification = certifications.get(record.certification_id)
            if certification is None:
                certification = CERTIFICATIONS.build(db, row[first_certification:first_parent])
                parent = row[first_parent:]
                certification.parent = (
                    None if parent[0] is None else PARENT_CERTIFICATIONS.build(db, parent)
                )
                certifications[certification.pk] = certification
            record.certification = certification
            records[record.practitioner_id].append(record)
    for practitioner in practitioners:
        practitioner.certificates = sorted(
            records[practitioner.pk], key=lambda record: record.certification.name
        )


# --- Nothing within the radius ------------------------------------------------------------


def nearest_match_distance(params: SearchParams) -> float | None:
    """How far the nearest match is when none is within the radius (None if none at all).

    Widens the circle step by step, in one statement, so the bounding-box index keeps every
    step cheap; each step runs only when the one before found nothing."""
    assert params.origin is not None
    _, connection = _connection()
    radii = []
    radius = params.radius_mi
    while radius < WIDEST_MI:
        radius = min(radius * WIDEN, WIDEST_MI)
        radii.append(radius)
    if not radii:
        return None
    steps, sql_params = [], []
    for radius in radii:
        where, where_params = clinics_in_circle(params, radius, connection)
        distance, distance_params = geo.distance_sql(params.origin, "l.latitude", "l.longitude")
        steps.append(f"(SELECT MIN({distance}) FROM {LOCATION} l WHERE {where})")
        sql_params += [*distance_params, *where_params]
    branches = " ".join(f"WHEN {k} THEN {step}" for k, step in enumerate(steps[1:], start=1))
    recursive = (
        f" UNION ALL SELECT k + 1, CASE k + 1 {branches} END FROM widen WHERE d IS NULL AND k < %s"
        if branches
        else ""
    )
    sql = (
        f"WITH RECURSIVE widen(k, d) AS (SELECT 0, {steps[0]}{recursive}) "
        f"SELECT d FROM widen WHERE d IS NOT NULL"
    )
    if branches:
        sql_params.append(len(steps) - 1)
    rows = _fetch(sql, sql_params)[1]
    return rows[0][0] if rows else None


# --- The search ---------------------------------------------------------------------------


def _requested_top(page: int | str | None, per_page: int) -> int:
    """How many matches the requested page reaches, before the count says whether it exists."""
    try:
        number = int(page) if page not in (None, "") else 1
    except (TypeError, ValueError):
        number = 1
    return max(number, 1) * per_page

    @property
    def any_distance(self) -> bool:
        """Nearest first however far ("radius=any"): the page says so instead of a radius."""
        return self.radius_mi >= geo.ANYWHERE_MI

    @property
    def largest_radius(self) -> int:
        return max(settings.SEARCH_RADIUS_CHOICES_MI)


def search_practitioners(
    params: SearchParams,
    *,
    page: int | str | None,
    per_page: int | None = None,
    strict: bool = False,
) -> SearchResults:
    """One page of the search: nearest first from an origin, by name without one.

    ``strict`` raises InvalidPage for a page that does not exist (the API answers 404); the
    page instead shows the nearest valid page, as people expect of a mistyped link."""
    per_page = per_page or settings.SEARCH_PAGE_SIZE
    cap = settings.SEARCH_COUNT_CAP
    if params.origin is None:
        paginator = CountedPaginator(
            counted=_count_by_name(params, up_to=cap + 1), per_page=per_page, cap=cap
        )
        number = paginator.number_to_show(page, strict=strict)
        bottom, top = paginator.bounds(number)
        listings = _page_by_name(params, offset=bottom, limit=top - bottom)
    else:
        circles = count_and_size(params, needed=_requested_top(page, per_page), cap=cap)
        paginator = CountedPaginator(counted=circles[0].counted, per_page=per_page, cap=cap)
        number = paginator.number_to_show(page, strict=strict)
        bottom, top = paginator.bounds(number)
        radius = radius_holding(circles, top)
        listings = _page_near(params, radius, offset=bottom, limit=top - bottom)
    attach_certificates(listings)
    results = SearchResults(
        page=paginator.page_of(listings, number),
        paginator=paginator,
        origin=params.origin,
        radius_mi=params.radius_mi,
        certifications=params.certifications,
        match=params.match,
    )
    if params.origin is not None and paginator.count == 0:
        # The radius is the only thing that excluded everyone: search without it.
        results.nearest_distance_mi = nearest_match_distance(params)
    return results
