"""Place pages (/tn/memphis/, /tn/memphis/art/): which cities have a page, and where their
centre is.

A city has a page while at least one published practitioner has a clinic there. Clinics spell
their city as their source did ("MEMPHIS", "Memphis", "St. Louis"); a page's slug is the
slugified spelling, and every spelling with that slug in that state belongs to it. The
``location_place`` index (listed, state, city, ...) answers both "which cities in TN" and
"is there a published clinic in Memphis" without reading the clinics table.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from django.core.cache import cache
from django.db import connections, router
from django.db.models import Avg, Exists, OuterRef, Q
from django.utils import timezone
from django.utils.text import slugify

from .models import Certification, Location, PractitionerCertification
from .search import geo

STATE_NAMES = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California",
    "CO": "Colorado", "CT": "Connecticut", "DE": "Delaware", "DC": "District of Columbia",
    "FL": "Florida", "GA": "Georgia", "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois",
    "IN": "Indiana", "IA": "Iowa", "KS": "Kansas", "KY": "Kentucky", "LA": "Louisiana",
    "ME": "Maine", "MD": "Maryland", "MA": "Massachusetts", "MI": "Michigan", "MN": "Minnesota",
    "MS": "Mississippi", "MO": "Missouri", "MT": "Montana", "NE": "Nebraska", "NV": "Nevada",
    "NH": "New Hampshire", "NJ": "New Jersey", "NM": "New Mexico", "NY": "New York",
    "NC": "North Carolina", "ND": "North Dakota", "OH": "Ohio", "OK": "Oklahoma", "OR": "Oregon",
    "PA": "Pennsylvania", "RI": "Rhode Island", "SC": "South Carolina", "SD": "South Dakota",
    "TN": "Tennessee", "TX": "Texas", "UT": "Utah", "VT": "Vermont", "VA": "Virginia",
    "WA": "Washington", "WV": "West Virginia", "WI": "Wisconsin", "WY": "Wyoming",
    "PR": "Puerto Rico", "GU": "Guam", "VI": "U.S. Virgin Islands", "AS": "American Samoa",
    "MP": "Northern Mariana Islands",
}  # fmt: skip

# A state's cities are read from the index at most this often per process (a page view asks).
CITIES_CACHE_SECONDS = 300


@dataclass(frozen=True)
class Place:
    state: str  # "TN"
    slug: str  # "memphis"
    name: str  # "Memphis"
    spellings: tuple[str, ...]  # as the clinics spell it: ("MEMPHIS", "Memphis")

    @property
    def state_slug(self) -> str:
        return self.state.lower()

    @property
    def state_name(self) -> str:
        return STATE_NAMES.get(self.state, self.state)

    @property
    def label(self) -> str:
        return f"{self.name}, {self.state}"

    def clinics(self):
        """Published clinics in this city (the index answers it)."""
        # listed__in, not listed=True: on SQLite Django writes the latter as a bare "listed",
        # which the index cannot seek on.
        return Location.objects.filter(
            listed__in=[True], state=self.state, city__in=self.spellings
        ).order_by()

    def centre(self) -> geo.Origin:
        """The city's centre: its ZIP codes' average, or else its clinics' (a city spelled in
        a way the ZIP list does not know)."""
        try:
            origin = geo.origin_from_place(f"{self.name}, {self.state}")
        except geo.OriginError:
            average = self.clinics().aggregate(lat=Avg("latitude"), lon=Avg("longitude"))
            origin = geo.origin_from_coordinates(average["lat"] or 0.0, average["lon"] or 0.0)
        # The label the results say "within 25 miles of ..." with is the page's own name.
        return geo.Origin(
            latitude=origin.latitude,
            longitude=origin.longitude,
            label=self.label,
            city=self.name,
            state=self.state,
        )

    def has_technique(self, technique: Certification, on: dt.date | None = None) -> bool:
        """Whether a published practitioner with a clinic here holds a current certificate in
        ``technique`` or one of its levels."""
        ids = technique_ids(technique)
        on = on or timezone.localdate()
        current = PractitionerCertification.objects.filter(
            Q(expires_on__isnull=True) | Q(expires_on__gte=on),
            practitioner_id=OuterRef("practitioner_id"),
            certification_id__in=ids,
        )
        return self.clinics().filter(Exists(current)).exists()

    def techniques(self, on: dt.date | None = None) -> list[Certification]:
        """The techniques (a level counts for its technique) that a published practitioner
        with a clinic here holds a current certificate in, by name: two queries."""
        on = on or timezone.localdate()
        held = set(
            PractitionerCertification.objects.filter(
                Q(expires_on__isnull=True) | Q(expires_on__gte=on),
                practitioner_id__in=self.clinics().values("practitioner_id"),
            )
            .values_list("certification_id", flat=True)
            .distinct()
        )
        every = list(Certification.objects.all())
        technique_ids = {c.parent_id or c.id for c in every if c.id in held}
        return [c for c in every if c.id in technique_ids and c.parent_id is None]


def technique_ids(technique: Certification) -> list[int]:
    return [
        technique.id,
        *Certification.objects.filter(parent=technique).values_list("id", flat=True),
    ]


def cities_in(state: str) -> dict[str, Place]:
    """slug -> Place for every city in ``state`` with a published clinic."""
    state = state.upper()
    key = _cities_key(state)
    found = cache.get(key)
    if found is not None:
        return found
    db = router.db_for_read(Location)
    table = Location._meta.db_table
    sql = f"SELECT city, COUNT(*) FROM {table} WHERE listed IN (%s) AND state = %s GROUP BY city"
    with connections[db].cursor() as cursor:
        cursor.execute(sql, [True, state])
        rows = cursor.fetchall()
    counts = Counter({spelling: n for spelling, n in rows if spelling})
    by_slug: dict[str, list[str]] = {}
    for spelling in counts:
        slug = slugify(spelling)
        if slug:
            by_slug.setdefault(slug, []).append(spelling)
    found = {}
    for slug, spellings in by_slug.items():
        commonest = max(spellings, key=lambda s: (counts[s], s))
        name = _known_name(spellings, state) or (
            commonest.title() if commonest.isupper() else commonest
        )
        found[slug] = Place(state=state, slug=slug, name=name, spellings=tuple(sorted(spellings)))
    cache.set(key, found, CITIES_CACHE_SECONDS)
    return found


def forget_cities() -> None:
    """Drop every state's cached city list (after the place list is refreshed)."""
    cache.delete_many([_cities_key(state) for state in STATE_NAMES])


def _cities_key(state: str) -> str:
    return f"places:cities:{state}"


def _known_name(spellings: Sequence[str], state: str) -> str | None:
    for spelling in spellings:
        try:
            return geo.origin_from_place(f"{spelling}, {state}").city
        except geo.OriginError:
            continue
    return None


def find_place(state_slug: str, city_slug: str) -> Place | None:
    state = state_slug.upper()
    if state not in STATE_NAMES:
        return None
    return cities_in(state).get(city_slug)
