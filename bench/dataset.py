"""A synthetic national directory for the search benchmark: N practitioners at real US ZIP
centroids, as many listings in a city as its density suggests, and a realistic certification mix.

The ``zipcodes`` package has no population, so the weight of a ZIP is a proxy, stated plainly.
Drawing every standard (street-delivery) ZIP equally already makes cities dense, because city ZIPs
are small; but a city ZIP also holds more people than a rural one. So each ZIP is weighted by
``k ** 0.3``, where ``k`` is the number of standard ZIP centroids within 5 miles (itself included).
The exponent is calibrated on one fact, not fitted to the benchmark: it puts about 2% of listings
within 10 miles of Midtown Manhattan, where about 2% of the US population lives (uniform ZIPs give
0.8%, ``k ** 1`` gives 14%). ``describe()`` prints the figures it produced.

Listings are jittered inside a disc whose radius shrinks with the local ZIP spacing (5 miles in
the country, half a mile in Manhattan), so nobody sits exactly on a centroid.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

import zipcodes

NEIGHBOUR_MI = 5.0
DENSITY_EXPONENT = 0.3
# Status mix of a live directory: most published, some waiting for review or taken down.
STATUSES = [("published", 90), ("pending", 5), ("draft", 3), ("suspended", 2)]
# 1-3 clinics; most practitioners have one.
CLINIC_COUNTS = [(1, 70), (2, 22), (3, 8)]
MIDDLE = "ABCDEFGHJKLMNPRSTW"


@dataclass(frozen=True)
class Zip:
    code: str
    city: str
    state: str
    latitude: float
    longitude: float
    neighbours: int
    weight: float
    jitter_mi: float


def _miles(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    h = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * 3958.8 * math.asin(min(1.0, math.sqrt(h)))


@cache
def weighted_zips() -> tuple[Zip, ...]:
    """Standard ZIPs with a centroid, each weighted by its standard neighbours within 5 miles."""
    rows = [
        (r["zip_code"], r["city"].title(), r["state"], float(r["lat"]), float(r["long"]))
        for r in zipcodes.list_all()
        if r["zip_code_type"] == "STANDARD" and r.get("lat") and r.get("long")
    ]
    cell = 0.1  # degrees; a 5-mile search looks at the 3x3 (or wider in longitude) cells around
    grid: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, (_, _, _, lat, lon) in enumerate(rows):
        grid[(int(lat // cell), int(lon // cell))].append(i)
    out = []
    for code, city, state, lat, lon in rows:
        lat_span = 1
        lon_span = math.ceil(NEIGHBOUR_MI / 69.0 / max(0.05, math.cos(math.radians(lat))) / cell)
        cy, cx = int(lat // cell), int(lon // cell)
        neighbours = 0
        for dy in range(-lat_span, lat_span + 1):
            for dx in range(-lon_span, lon_span + 1):
                for j in grid.get((cy + dy, cx + dx), ()):
                    _, _, _, lat2, lon2 = rows[j]
                    if _miles(lat, lon, lat2, lon2) <= NEIGHBOUR_MI:
                        neighbours += 1
        jitter = max(0.5, 5.0 / math.sqrt(neighbours))
        out.append(
            Zip(code, city, state, lat, lon, neighbours, neighbours**DENSITY_EXPONENT, jitter)
        )
    return tuple(out)


def _jitter(rng: random.Random, z: Zip) -> tuple[float, float]:
    distance = z.jitter_mi * math.sqrt(rng.random())
    bearing = rng.random() * 2 * math.pi
    lat = z.latitude + distance * math.cos(bearing) / 69.0
    lon = z.longitude + distance * math.sin(bearing) / (69.0 * math.cos(math.radians(z.latitude)))
    if lon > 180:
        lon -= 360
    elif lon < -180:
        lon += 360
    return round(max(-90.0, min(90.0, lat)), 6), round(lon, 6)


@dataclass
class Listing:
    """One practitioner as the CSV import would see it (values keyed like importing.py's)."""

    external_id: str
    values: dict
    certification_slugs: list[str]
    clinics: list[dict]


def listings(n: int, seed: int = 38117) -> Iterator[Listing]:
    """``n`` fictional practitioners; the same seed always gives the same directory."""
    from practitioners.ingest.demo import BUNDLES, CLINICS, FIRST, LAST, PROFESSIONS, STREETS

    rng = random.Random(seed)
    zips = weighted_zips()
    by_prefix: dict[str, list[Zip]] = defaultdict(list)
    for z in zips:
        by_prefix[z.code[:3]].append(z)
    cumulative = []
    total = 0
    for z in zips:
        total += z.weight
        cumulative.append(total)
    prefix_cumulative = {}
    for prefix, members in by_prefix.items():
        running, sums = 0, []
        for z in members:
            running += z.weight
            sums.append(running)
        prefix_cumulative[prefix] = sums
    profession_weights = [p[2] for p in PROFESSIONS]
    bundle_weights = [b[1] for b in BUNDLES]
    status_names = [s for s, _ in STATUSES]
    status_weights = [w for _, w in STATUSES]
    clinic_counts = [c for c, _ in CLINIC_COUNTS]
    clinic_weights = [w for _, w in CLINIC_COUNTS]
    for number in range(1, n + 1):
        home = rng.choices(zips, cum_weights=cumulative)[0]
        slug, credentials, _ = rng.choices(PROFESSIONS, profession_weights)[0]
        bundle = rng.choices(BUNDLES, bundle_weights)[0][0]
        name = f"{rng.choice(FIRST)} {rng.choice(MIDDLE)}. {rng.choice(LAST)}"
        clinics = []
        for c in range(rng.choices(clinic_counts, clinic_weights)[0]):
            # A second or third clinic is in the same area (same 3-digit ZIP prefix).
            if c == 0:
                z = home
            else:
                members = by_prefix[home.code[:3]]
                z = rng.choices(members, cum_weights=prefix_cumulative[home.code[:3]])[0]
            lat, lon = _jitter(rng, z)
            clinics.append(
                {
                    "name": rng.choice(CLINICS),
                    "address_line1": f"{rng.randint(100, 9999)} {rng.choice(STREETS)}",
                    "address_line2": "Suite 200" if rng.random() < 0.2 else "",
                    "city": z.city,
                    "state": z.state,
                    "postal_code": z.code,
                    "phone": f"({rng.randint(201, 989)}) 555-{rng.randint(0, 9999):04d}",
                    "latitude": lat,
                    "longitude": lon,
                }
            )
        yield Listing(
            external_id=f"bench-{number:07d}",
            values={
                "name": name,
                "credentials": credentials,
                "profession": slug,
                "bio": f"{name} treats sports injuries, back pain and repetitive strain "
                "with hands-on soft-tissue work.",
                "phone": clinics[0]["phone"],
                "website": f"https://example.com/p/{number}",
                "email": f"office{number}@example.com",
                "new_patients": "accepting" if rng.random() < 0.8 else "not_accepting",
                "telehealth": rng.random() < 0.25,
                "status": rng.choices(status_names, status_weights)[0],
                "npi": "",
            },
            certification_slugs=bundle,
            clinics=clinics,
        )


def describe() -> str:
    """How city-heavy the proxy is, to compare with reality."""
    zips = weighted_zips()
    total = sum(z.weight for z in zips)
    manhattan = next(z for z in zips if z.code == "10001")
    near = sum(
        z.weight
        for z in zips
        if _miles(manhattan.latitude, manhattan.longitude, z.latitude, z.longitude) <= 10
    )
    return (
        f"{len(zips)} standard ZIPs, weight = (standard ZIPs within {NEIGHBOUR_MI:g} mi) ** "
        f"{DENSITY_EXPONENT}; within 10 mi of 10001: {100 * near / total:.1f}% of listings "
        "(about 2% of the US population lives there)"
    )
