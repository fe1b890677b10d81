"""The earth: where a search starts, how far things are, and which rows can possibly be near.

This module knows nothing about practitioners. It turns what a person typed (a ZIP code, a
"City, ST", or a latitude and longitude) into an :class:`Origin`, computes great-circle
distances in Python and as a database expression, and gives the bounding box that lets the
database use its coordinate index before any distance is computed.

ZIP centroids come from the ``zipcodes`` package, whose data ships inside the package, so no
lookup ever leaves the machine.
"""

from __future__ import annotations

import gc
import math
import re
from dataclasses import dataclass
from functools import cache

import zipcodes
from django.db.models import Expression, F, FloatField

# WGS84 ellipsoid. The sphere we compute on takes the Gaussian mean radius at the origin's
# latitude, which keeps the great-circle distance within about 0.3% of the geodesic anywhere in
# the US (a fixed mean radius drifts to 0.45% near Hawaii on north-south paths).
_WGS84_A_MI = 6378.137 / 1.609344
_WGS84_E2 = 0.00669437999014

ZIP_PATTERN = re.compile(r"^([0-9]{5})(?:-?([0-9]{4}))?$")


# Farther than any two points on earth are apart (half the equator is about 12,450 miles): a
# circle this wide holds every clinic, so "the nearest, however far" is a search of this radius.
ANYWHERE_MI = 12_500.0


class OriginError(ValueError):
    """What the person typed cannot be placed on the map; the message says why."""


@dataclass(frozen=True)
class Origin:
    latitude: float
    longitude: float
    label: str
    zip: str | None = None
    city: str | None = None
    state: str | None = None


@dataclass(frozen=True)
class BoundingBox:
    min_latitude: float
    max_latitude: float
    min_longitude: float
    max_longitude: float

    @property
    def crosses_antimeridian(self) -> bool:
        return self.min_longitude > self.max_longitude


def earth_radius_mi(latitude: float) -> float:
    """Gaussian mean radius of curvature of the WGS84 ellipsoid at this latitude."""
    sin2 = math.sin(math.radians(latitude)) ** 2
    return _WGS84_A_MI * math.sqrt(1 - _WGS84_E2) / (1 - _WGS84_E2 * sin2)


def distance_mi(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Haversine distance on the sphere fitted at the first point (the search origin)."""
    half_dlat = math.radians(lat2 - lat1) / 2
    half_dlon = math.radians(lon2 - lon1) / 2
    h = (
        math.sin(half_dlat) ** 2
        + math.cos(math.radians(lat1)) * math.cos(math.radians(lat2)) * math.sin(half_dlon) ** 2
    )
    return 2 * earth_radius_mi(lat1) * math.asin(min(1.0, math.sqrt(h)))


class GreatCircleDistance(Expression):
    """The haversine of :func:`distance_mi` as one SQL expression, in miles.

    Constants are folded in Python so the database computes one sine per coordinate and one
    cosine, nothing more; SQLite 3.35+ and PostgreSQL both have these functions built in. It is
    a single node rather than a tree of ``Sin``/``Power``/``Value`` objects because a search
    uses it several times per query, and Django copies and resolves every node of a tree on
    every use: the tree cost about a millisecond a request in Python alone.
    """

    def __init__(self, origin: Origin, latitude: str = "latitude", longitude: str = "longitude"):
        super().__init__(output_field=FloatField())
        self.origin = origin
        self.latitude: Expression = F(latitude)
        self.longitude: Expression = F(longitude)

    def get_source_expressions(self) -> list[Expression]:
        return [self.latitude, self.longitude]

    def set_source_expressions(self, expressions: list[Expression]) -> None:
        self.latitude, self.longitude = expressions

    def as_sql(self, compiler, connection) -> tuple[str, list]:
        lat_sql, lat_params = compiler.compile(self.latitude)
        lon_sql, lon_params = compiler.compile(self.longitude)
        if lat_params or lon_params:  # pragma: no cover - columns never carry parameters
            raise ValueError("coordinates must be plain columns")
        return distance_sql(self.origin, lat_sql, lon_sql)


def distance_sql(origin: Origin, latitude_sql: str, longitude_sql: str) -> tuple[str, list]:
    """The haversine of :func:`distance_mi` as SQL over two coordinate columns, in miles."""
    half_radian = math.pi / 360  # degrees -> half-angle radians
    sql = (
        f"(%s * ASIN(SQRT((POWER(SIN((({latitude_sql} - %s) * %s)), 2) + "
        f"((%s * COS(({latitude_sql} * %s))) * POWER(SIN((({longitude_sql} - %s) * %s)), 2))))))"
    )
    params = [
        2 * earth_radius_mi(origin.latitude),
        origin.latitude,
        half_radian,
        math.cos(math.radians(origin.latitude)),
        math.pi / 180,
        origin.longitude,
        half_radian,
    ]
    return sql, params


def circle_sql(
    origin: Origin, radius_mi: float, latitude_sql: str, longitude_sql: str
) -> tuple[str, list]:
    """SQL condition "within ``radius_mi`` of ``origin``": the bounding box first (what an index
    on the coordinates can use), then the exact distance."""
    box = bounding_box(origin, radius_mi)
    if box.crosses_antimeridian:
        longitude = f"({longitude_sql} >= %s OR {longitude_sql} <= %s)"
    else:
        longitude = f"{longitude_sql} BETWEEN %s AND %s"
    distance, distance_params = distance_sql(origin, latitude_sql, longitude_sql)
    sql = f"{latitude_sql} BETWEEN %s AND %s AND {longitude} AND {distance} <= %s"
    params = [
        box.min_latitude,
        box.max_latitude,
        box.min_longitude,
        box.max_longitude,
        *distance_params,
        radius_mi,
    ]
    return sql, params


def degrees_per_mile(latitude: float) -> float:
    """Degrees of latitude a mile spans here, 1% over (for boxes the database scales)."""
    return math.degrees(1 / earth_radius_mi(latitude)) * 1.01


BOX_COLUMNS = ("min_latitude", "max_latitude", "min_longitude", "max_longitude")


def scaled_box_sql(origin: Origin, largest_mi: float, radius_sql: str) -> list[tuple[str, list]]:
    """SQL for the :data:`BOX_COLUMNS` of the box of a circle whose radius the database
    computes (``radius_sql``, at most ``largest_mi``): the largest circle's box scaled to the
    radius, 1% wider. Scaling is on the safe side: a circle's box grows no faster than its
    radius (asin is convex). Where longitudes cannot scale (the box wraps the antimeridian or
    the globe), they are the largest box's."""
    box = bounding_box(origin, largest_mi)
    height = degrees_per_mile(origin.latitude)
    columns = [
        (f"%s - {radius_sql} * %s", [origin.latitude, height]),
        (f"%s + {radius_sql} * %s", [origin.latitude, height]),
    ]
    if _scales(box):
        width = (box.max_longitude - origin.longitude) / largest_mi * 1.01
        columns += [
            (f"%s - {radius_sql} * %s", [origin.longitude, width]),
            (f"%s + {radius_sql} * %s", [origin.longitude, width]),
        ]
    else:
        columns += [("%s", [box.min_longitude]), ("%s", [box.max_longitude])]
    return columns


def _scales(box: BoundingBox) -> bool:
    return not box.crosses_antimeridian and box.min_longitude > -180 and box.max_longitude < 180


def circle_in_box_sql(
    origin: Origin,
    largest_mi: float,
    radius_sql: str,
    box_sql: tuple[str, str, str, str],
    latitude_sql: str,
    longitude_sql: str,
) -> tuple[str, list]:
    """Like :func:`circle_sql`, for a radius and box the database has computed (columns
    filled from :func:`scaled_box_sql`), so each clinic compares with values, not sums."""
    min_lat, max_lat, min_lon, max_lon = box_sql
    if bounding_box(origin, largest_mi).crosses_antimeridian:
        longitude = f"({longitude_sql} >= {min_lon} OR {longitude_sql} <= {max_lon})"
    else:
        longitude = f"{longitude_sql} BETWEEN {min_lon} AND {max_lon}"
    distance, distance_params = distance_sql(origin, latitude_sql, longitude_sql)
    sql = (
        f"{latitude_sql} BETWEEN {min_lat} AND {max_lat} AND {longitude} "
        f"AND {distance} <= {radius_sql}"
    )
    return sql, distance_params


def distance_expression(
    origin: Origin, latitude: str = "latitude", longitude: str = "longitude"
) -> Expression:
    """The same haversine as :func:`distance_mi`, as an expression the database evaluates."""
    return GreatCircleDistance(origin, latitude, longitude)


def bounding_box(origin: Origin, radius_mi: float) -> BoundingBox:
    """Smallest latitude/longitude box that holds every point within ``radius_mi``.

    The longitude half-width is ``asin(sin(d) / cos(lat))``: the simpler ``d / cos(lat)``
    is slightly too narrow far north and would drop real matches near Anchorage.
    """
    angular = radius_mi / earth_radius_mi(origin.latitude)
    # A hair of slack so points exactly on the circle survive float rounding; the exact
    # distance filter runs afterwards anyway.
    angular_deg = math.degrees(angular) * 1.000001 + 1e-9
    min_lat = origin.latitude - angular_deg
    max_lat = origin.latitude + angular_deg
    if max_lat >= 90 or min_lat <= -90:
        return BoundingBox(max(min_lat, -90), min(max_lat, 90), -180.0, 180.0)
    ratio = math.sin(angular) / math.cos(math.radians(origin.latitude))
    if ratio >= 1:
        return BoundingBox(min_lat, max_lat, -180.0, 180.0)
    half_width = math.degrees(math.asin(ratio)) * 1.000001 + 1e-9
    min_lon = origin.longitude - half_width
    max_lon = origin.longitude + half_width
    # Alaska's Aleutians sit on both sides of the antimeridian: wrap instead of clipping.
    if min_lon < -180:
        min_lon += 360
    if max_lon > 180:
        max_lon -= 360
    return BoundingBox(min_lat, max_lat, min_lon, max_lon)


# --- ZIP codes and places -------------------------------------------------------------------


@dataclass(frozen=True)
class ZipCentroid:
    zip: str
    city: str
    state: str
    latitude: float
    longitude: float


def _kept_for_good(table: dict) -> dict:
    """A ZIP table just built, which lives as long as the process: everything alive now (it,
    and the zipcodes package's own copy of the data) leaves the cyclic garbage collector's
    sight. Otherwise each full collection re-walks those ~300,000 objects: a 0.3-0.45 s
    pause every ~80 searches, the p99 of a search at 1,000,000 listings
    (bench/results/filters-1m.md)."""
    gc.freeze()
    return table


@cache
def _zip_index() -> dict[str, ZipCentroid]:
    index: dict[str, ZipCentroid] = {}
    for row in zipcodes.list_all():
        try:
            lat, lon = float(row["lat"]), float(row["long"])
        except (TypeError, ValueError):
            continue
        index[row["zip_code"]] = ZipCentroid(row["zip_code"], row["city"], row["state"], lat, lon)
    return _kept_for_good(index)


@cache
def _place_index() -> dict[tuple[str, str], tuple[float, float, str]]:
    """(city, state) -> average of its standard ZIP centroids, with the city's own spelling."""
    sums: dict[tuple[str, str], list] = {}
    for row in zipcodes.list_all():
        if row.get("zip_code_type") not in ("STANDARD", None) or not row.get("lat"):
            continue
        names = [row["city"], *row.get("acceptable_cities", [])]
        for name in names:
            key = (_normalise_city(name), row["state"].upper())
            # The name as matched: a ZIP of Burke, VA also accepts "Springfield".
            entry = sums.setdefault(key, [0.0, 0.0, 0, name])
            entry[0] += float(row["lat"])
            entry[1] += float(row["long"])
            entry[2] += 1
    return _kept_for_good(
        {key: (lat / n, lon / n, city) for key, (lat, lon, n, city) in sums.items()}
    )


def _normalise_city(name: str) -> str:
    name = re.sub(r"[.\s]+", " ", name.lower()).strip()
    return re.sub(r"^saint ", "st ", re.sub(r"^st\.? ", "st ", name))


def normalise_zip(text: str) -> str | None:
    """'38117', '38117-1234' or '381171234' -> '38117' (text, so leading zeros stay); None for
    anything that is not a US ZIP format. Every reader of ZIP codes (search, forms, imports)
    uses this one rule and words its own message."""
    match = ZIP_PATTERN.match(text.strip())
    return match.group(1) if match else None


# Generous (south, north, west, east) boxes around the US states and territories. The ZIP
# distance check of the geocoder does the fine work; these only catch points on the wrong
# continent or coordinates typed the wrong way round.
US_BOXES = (
    (24.0, 49.6, -125.1, -66.8),  # contiguous states, Florida Keys to Lake of the Woods
    (51.0, 71.7, -180.0, -129.5),  # Alaska
    (51.0, 53.2, 172.0, 180.0),  # the Aleutians west of the antimeridian
    (18.5, 28.6, -178.5, -154.5),  # Hawaii, with the Northwestern islands
    (17.5, 18.7, -68.0, -64.4),  # Puerto Rico and the US Virgin Islands
    (13.1, 20.7, 144.5, 146.2),  # Guam and the Northern Mariana Islands
    (-14.7, -10.9, -171.2, -168.0),  # American Samoa
)


def inside_us(latitude: float, longitude: float) -> bool:
    """Whether a point lies in or near the US, its states and territories."""
    return any(s <= latitude <= n and w <= longitude <= e for s, n, w, e in US_BOXES)


def outside_us_message(latitude: float, longitude: float) -> str:
    return (
        f"{latitude:g}, {longitude:g} is outside the United States. "
        "Are latitude and longitude the right way round?"
    )


def zip_centroid(zip_code: str) -> ZipCentroid | None:
    return _zip_index().get(zip_code)


def origin_from_zip(text: str) -> Origin:
    zip5 = normalise_zip(text)
    if zip5 is None:
        raise OriginError("Enter a 5-digit ZIP code, like 38117 (ZIP+4 such as 38117-1234 works).")
    centroid = zip_centroid(zip5)
    if centroid is None:
        raise OriginError(f"ZIP code {zip5} was not found. Check the number and try again.")
    return Origin(
        latitude=centroid.latitude,
        longitude=centroid.longitude,
        label=f"{zip5} ({centroid.city.title()}, {centroid.state})",
        zip=zip5,
        city=centroid.city.title(),
        state=centroid.state,
    )


def _pairs(words: str) -> list[str]:
    """'n h n mex' -> ['n h', 'n mex']; 'calif cal' -> ['calif', 'cal']: a one-letter word
    belongs with the word after it ("N.H." normalises to "n h")."""
    out: list[str] = []
    pending = ""
    for word in words.split():
        if len(word) == 1 and not pending:
            pending = word
            continue
        out.append(f"{pending} {word}" if pending else word)
        pending = ""
    return out


# What people type after a city: the USPS code or the name, any case.
STATE_NAMES = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California",
    "CO": "Colorado", "CT": "Connecticut", "DE": "Delaware", "DC": "District of Columbia",
    "FL": "Florida", "GA": "Georgia", "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois",
    "IN": "Indiana", "IA": "Iowa", "KS": "Kansas", "KY": "Kentucky", "LA": "Louisiana",
    "ME": "Maine", "MD": "Maryland", "MA": "Massachusetts", "MI": "Michigan", "MN": "Minnesota",
    "MS": "Mississippi", "MO": "Missouri", "MT": "Montana", "NE": "Nebraska", "NV": "Nevada",
    "NH": "New Hampshire", "NJ": "New Jersey", "NM": "New Mexico", "NY": "New York",
    "NC": "North Carolina", "ND": "North Dakota", "OH": "Ohio", "OK": "Oklahoma",
    "OR": "Oregon", "PA": "Pennsylvania", "RI": "Rhode Island", "SC": "South Carolina",
    "SD": "South Dakota", "TN": "Tennessee", "TX": "Texas", "UT": "Utah", "VT": "Vermont",
    "VA": "Virginia", "WA": "Washington", "WV": "West Virginia", "WI": "Wisconsin",
    "WY": "Wyoming", "PR": "Puerto Rico", "VI": "Virgin Islands", "GU": "Guam",
    "AS": "American Samoa", "MP": "Northern Mariana Islands",
}  # fmt: skip
_STATE_CODES = {
    **{code.lower(): code for code in STATE_NAMES},
    **{name.lower(): code for code, name in STATE_NAMES.items()},
    "washington dc": "DC",
    "d c": "DC",
    "us virgin islands": "VI",
    # The newspaper (AP) abbreviations, which many people still write.
    **{
        abbreviation: code
        for code, abbreviations in {
            "AL": "ala",
            "AZ": "ariz",
            "AR": "ark",
            "CA": "calif cal",
            "CO": "colo",
            "CT": "conn",
            "DE": "del",
            "FL": "fla",
            "GA": "ga",
            "IL": "ill",
            "IN": "ind",
            "KS": "kan kans",
            "KY": "ky",
            "LA": "la",
            "MD": "md",
            "MA": "mass",
            "MI": "mich",
            "MN": "minn",
            "MS": "miss",
            "MO": "mo",
            "MT": "mont",
            "NE": "neb nebr",
            "NV": "nev",
            "NH": "n h",
            "NJ": "n j",
            "NM": "n m n mex",
            "NY": "n y",
            "NC": "n c",
            "ND": "n d n dak",
            "OK": "okla",
            "OR": "ore oreg",
            "PA": "pa penn",
            "RI": "r i",
            "SC": "s c",
            "SD": "s d s dak",
            "TN": "tenn",
            "TX": "tex",
            "VT": "vt",
            "VA": "va",
            "WA": "wash",
            "WV": "w va",
            "WI": "wis wisc",
            "WY": "wyo",
        }.items()
        for abbreviation in _pairs(abbreviations)
    },
}
# "New Hampshire" and "District of Columbia" are several words: try the longest ending first.
_STATE_WORDS = max(len(name.split()) for name in _STATE_CODES)


class AmbiguousPlace(OriginError):
    """A city name alone that several states have: ``choices`` lists them, biggest first."""

    def __init__(self, message: str, choices: list[Origin]) -> None:
        super().__init__(message)
        self.choices = choices


def state_code(text: str) -> str | None:
    """'tn', 'Tennessee' or 'TENNESSEE' -> 'TN'; None when it names no state."""
    return _STATE_CODES.get(_normalise_city(text))


@cache
def _city_index() -> dict[str, list[tuple[int, str]]]:
    """A city name -> the states that have it, as (standard ZIP codes, state), most first."""
    counts: dict[str, dict[str, int]] = {}
    for row in zipcodes.list_all():
        if row.get("zip_code_type") not in ("STANDARD", None) or not row.get("lat"):
            continue
        for name in {_normalise_city(n) for n in [row["city"], *row.get("acceptable_cities", [])]}:
            by_state = counts.setdefault(name, {})
            by_state[row["state"].upper()] = by_state.get(row["state"].upper(), 0) + 1
    return _kept_for_good(
        {
            name: sorted(((n, state) for state, n in by_state.items()), key=lambda c: (-c[0], c[1]))
            for name, by_state in counts.items()
        }
    )


def _place_origin(city_key: str, state: str) -> Origin | None:
    found = _place_index().get((city_key, state))
    if found is None:
        return None
    lat, lon, city = found
    return Origin(
        latitude=lat,
        longitude=lon,
        label=f"{city.title()}, {state}",
        city=city.title(),
        state=state,
    )


def _city_and_state(text: str) -> list[tuple[str, str | None]]:
    """The readings of what was typed, most specific first: (city, state code) for "Memphis, TN",
    "memphis tn" or "Memphis Tennessee"; (city, None) for a city name alone."""
    if "," in text:
        city, _, state = text.rpartition(",")
        code = state_code(state)
        return [(_normalise_city(city), code)] if code else []
    words = _normalise_city(text).split()
    readings: list[tuple[str, str | None]] = []
    for n in range(min(_STATE_WORDS, len(words) - 1), 0, -1):
        code = state_code(" ".join(words[-n:]))
        if code:
            readings.append((" ".join(words[:-n]), code))
    return [*readings, (" ".join(words), None)]


def origin_from_place(text: str) -> Origin:
    """Where a city is, from what a person typed in the city box: "Memphis, TN", "memphis tn",
    "Memphis Tennessee", "Memphis" (when one state has it; else :class:`AmbiguousPlace`), or a
    ZIP code typed there by mistake, which is used as a ZIP."""
    typed = " ".join(text.split())
    # "38117", or "Memphis, TN 38117" as on an envelope: the ZIP is the more precise.
    trailing_zip = re.search(r"(?:^|[\s,])([0-9]{5}(?:-[0-9]{4})?)$", typed)
    if trailing_zip:
        return origin_from_zip(trailing_zip.group(1))
    if not typed.strip(" ,"):
        raise OriginError('Enter a city and state like "Memphis, TN".')
    readings = _city_and_state(typed)
    if not readings:
        state = typed.rpartition(",")[2].strip()
        raise OriginError(
            f'We could not find "{typed}": "{state}" is not a US state. '
            'Enter a city and state like "Memphis, TN".'
        )
    for city_key, code in readings:
        if code is not None:
            origin = _place_origin(city_key, code)
            if origin is not None:
                return origin
            continue
        choices = [
            origin
            for _, state in _city_index().get(city_key, [])
            if (origin := _place_origin(city_key, state)) is not None
        ]
        if len(choices) == 1:
            return choices[0]
        if choices:
            raise AmbiguousPlace(
                f"There is a {choices[0].city} in {len(choices)} states. Choose one, or add "
                f'the state, like "{choices[0].label}".',
                choices,
            )
    if readings[0][1] is not None:
        raise OriginError(
            f'We could not find "{typed}" in {STATE_NAMES.get(readings[0][1], readings[0][1])}. '
            "Check the spelling, or use a ZIP code."
        )
    raise OriginError(
        f'We could not find "{typed}". Enter a city and state like "Memphis, TN", or a ZIP code.'
    )


def place_choices(text: str) -> list[Origin]:
    """The places a city name alone could mean (several states have it), biggest first; empty
    when the text names one place or none."""
    try:
        origin_from_place(text)
    except AmbiguousPlace as ambiguous:
        return ambiguous.choices
    except OriginError:
        return []
    return []


def origin_from_coordinates(latitude: float, longitude: float) -> Origin:
    if not (-90 <= latitude <= 90) or not (-180 <= longitude <= 180):
        raise OriginError("Latitude must be between -90 and 90 and longitude between -180 and 180.")
    return Origin(latitude=latitude, longitude=longitude, label="your location")
