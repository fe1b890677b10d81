"""sitemap.xml and robots.txt, with Django's sitemaps framework.

Sections: the fixed pages, conditions, techniques, places, places by technique, and profiles.
While every section fits in one sitemap (50,000 URLs, the protocol's limit), /sitemap.xml is
that one sitemap; past it, /sitemap.xml is an index of the sections' pages
(/sitemap-<section>.xml?p=N).

No section ever loads every listing: profiles are paged by ranges of 50,000 ids (a page is
one range scan of the primary key, so it never holds more than 50,000 URLs); places are read in
one pass over the ``location_place`` index, which holds each clinic's city, its copied
certification bits and when it last changed.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import cached_property

from django.conf import settings
from django.contrib.sitemaps import Sitemap
from django.contrib.sitemaps import views as sitemap_views
from django.core.paginator import EmptyPage, PageNotAnInteger
from django.db import connections, router
from django.db.models import Max
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify
from django.views.decorators.http import require_GET

from . import places
from .models import Certification, Condition, Location, Practitioner, PractitionerCertification
from .search import index as search_index

LIMIT = 50_000  # URLs per sitemap, the protocol's limit
# slugify without its lazy-text wrapper, which cost more than slugify itself over 30,000 cities.
_slugify = getattr(slugify, "__wrapped__", slugify)
_PLAIN_SLUG = re.compile(r"[-a-zA-Z0-9_]+")  # needs no quoting in a URL
URLSET_TEMPLATE = "sitemaps/urlset.xml"  # Django's elements, written faster (sitemap_xml.py)


class FixedPagesSitemap(Sitemap):
    def items(self) -> list[str]:
        return ["practitioners:home", "practitioners:conditions"]

    def location(self, item: str) -> str:
        return reverse(item)


class ConditionSitemap(Sitemap):
    def items(self):
        return Condition.objects.order_by("pk").only("slug", "updated_at")

    def lastmod(self, condition: Condition) -> dt.datetime:
        return condition.updated_at

    def get_latest_lastmod(self) -> dt.datetime | None:
        return Condition.objects.aggregate(last=Max("updated_at"))["last"]


class TechniqueSitemap(Sitemap):
    def items(self):
        return Certification.objects.filter(parent__isnull=True).order_by("pk").only("slug")

    def location(self, technique: Certification) -> str:
        return reverse("practitioners:technique", args=[technique.slug])


@dataclass(frozen=True)
class PlaceEntry:
    path: str
    lastmod: dt.datetime | str | None


@dataclass(frozen=True)
class _Technique:
    slug: str
    ids: tuple[int, ...]  # the technique and its levels
    bits: int
    exact: bool  # no other certification shares its bits (index.py): the bits decide


def _techniques() -> list[_Technique]:
    """Every technique, with its levels' ids and bits."""
    every = list(Certification.objects.only("id", "slug", "parent_id"))
    every_id = [c.id for c in every]
    found = []
    for technique in every:
        if technique.parent_id is not None:
            continue
        ids = (technique.id, *(c.id for c in every if c.parent_id == technique.id))
        found.append(
            _Technique(
                technique.slug,
                ids,
                search_index.certification_bits(ids),
                not search_index.shares_bits(ids, every_id),
            )
        )
    return found


@dataclass
class _City:
    techniques: list[str]  # held for certain
    doubtful: list[str]  # held only by the index's prefilter (an expiry date, shared bits)
    lastmod: dt.datetime | str | None


def _city_key(state: str, city: str | None) -> tuple[str, str] | None:
    """(state, city slug) of a clinic's spelling of its city, None where it has no page."""
    slug = _slugify(city or "")
    if not slug or state.upper() not in places.STATE_NAMES:
        return None
    return state.lower(), slug


def _cities(techniques: list[_Technique]) -> dict[tuple[str, str], _City]:
    """(state, city slug) -> which techniques its published clinics' copied bits hold and
    when they last changed: one pass over the ``location_place`` index, one row a city.

    A certificate without an expiry date settles a technique (where its bits are exact); one
    with a date may have lapsed, so a technique held only that way is ``doubtful``, for
    ``_current_in_cities`` to decide."""
    db = router.db_for_read(Location)
    table = Location._meta.db_table
    held = "".join(
        ", MAX(CASE WHEN (certification_bits & %s) <> 0 THEN 1 ELSE 0 END)"
        ", MAX(CASE WHEN ((certification_bits | expiring_certification_bits) & %s) <> 0 "
        "THEN 1 ELSE 0 END)"
        for _ in techniques
    )
    sql = (
        f"SELECT state, city, MAX(updated_at){held} FROM {table} "
        f"WHERE listed IN (%s) GROUP BY state, city"
    )
    params = [bits for t in techniques for bits in (t.bits, t.bits)]
    with connections[db].cursor() as cursor:
        cursor.execute(sql, [*params, True])
        rows = cursor.fetchall()
    cities: dict[tuple[str, str], _City] = {}
    for state, city, last, *flags in rows:
        key = _city_key(state, city)
        if key is None:
            continue
        certain, doubtful = set(), set()
        for technique, lasting, candidate in zip(techniques, flags[0::2], flags[1::2], strict=True):
            if lasting and technique.exact:
                certain.add(technique.slug)
            elif candidate:
                doubtful.add(technique.slug)
        entry = cities.get(key)
        if entry is None:
            entry = cities[key] = _City([], [], last)
        # Another spelling of the same city ("MEMPHIS", "Memphis") shares the one page.
        elif last is not None and (entry.lastmod is None or last > entry.lastmod):
            entry.lastmod = last
        certain |= set(entry.techniques)
        doubtful = (doubtful | set(entry.doubtful)) - certain
        # ``last`` stays as the database gives it (SQLite: ISO text, which sorts as the times
        # do; PostgreSQL: a datetime): url_elements writes either.
        entry.techniques = [t.slug for t in techniques if t.slug in certain]
        entry.doubtful = [t.slug for t in techniques if t.slug in doubtful]
    return cities


def _current_in_cities(
    techniques: list[_Technique], on: dt.date
) -> set[tuple[tuple[str, str], str]]:
    """((state, city slug), technique slug) for every technique that a published clinic's
    practitioner holds a current certificate in: one query, over only the clinics whose bits
    leave it in doubt (those with a dated certificate of an exact technique, or any clinic
    holding a technique whose bits are shared)."""
    if not techniques:
        return set()
    db = router.db_for_read(Location)
    connection = connections[db]
    exact = [t for t in techniques if t.exact]
    shared = [t for t in techniques if not t.exact]
    # A clinic with an exact technique's bit among its undated certificates settled it in
    # _cities already, so only the dated ones need a look.
    doubt = []
    params: list = []
    if exact:
        doubt.append("(l.expiring_certification_bits & %s) <> 0")
        params.append(search_index.certification_bits(i for t in exact for i in t.ids))
    if shared:
        doubt.append("((l.certification_bits | l.expiring_certification_bits) & %s) <> 0")
        params.append(search_index.certification_bits(i for t in shared for i in t.ids))
    ids = sorted({i for t in techniques for i in t.ids})
    sql = (
        f"SELECT DISTINCT l.state, l.city, r.certification_id "
        f"FROM {Location._meta.db_table} l JOIN {PractitionerCertification._meta.db_table} r "
        f"ON r.practitioner_id = l.practitioner_id "
        f"WHERE l.listed IN (%s) AND ({' OR '.join(doubt)}) "
        f"AND r.certification_id IN ({', '.join(['%s'] * len(ids))}) "
        f"AND (r.expires_on IS NULL OR r.expires_on >= %s)"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [True, *params, *ids, connection.ops.adapt_datefield_value(on)])
        rows = cursor.fetchall()
    technique_of = {i: t.slug for t in techniques for i in t.ids}
    current = set()
    for state, city, certification_id in rows:
        key = _city_key(state, city)
        if key is not None:
            current.add((key, technique_of[certification_id]))
    return current


def _as_datetime(value: dt.datetime | str | None) -> dt.datetime | None:
    """A last change as the database gave it (SQLite: UTC text) as an aware datetime."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value


class LeanSitemap(Sitemap):
    """Django's Sitemap, building each URL's entry directly: its generic ``_urls`` looks up
    four optional attributes per URL, which adds up over 50,000 of them."""

    limit = LIMIT

    def _urls(self, page, protocol: str, domain: str) -> list[dict]:
        prefix = f"{protocol}://{domain}"
        entries = self.paginator.page(page).object_list
        urls = [
            {"location": prefix + self.location(entry), "lastmod": self.lastmod(entry)}
            for entry in entries
        ]
        lastmods = [url["lastmod"] for url in urls]
        # What the sitemap view sends as Last-Modified.
        self.latest_lastmod = _as_datetime(max(lastmods)) if lastmods and all(lastmods) else None
        return urls

    def lastmod(self, entry):
        return None


class _EntrySitemap(LeanSitemap):
    @cached_property
    def entries(self) -> list[PlaceEntry]:
        return []

    def items(self) -> list[PlaceEntry]:
        return self.entries

    def location(self, entry: PlaceEntry) -> str:
        return entry.path

    def lastmod(self, entry: PlaceEntry) -> dt.datetime | None:
        return entry.lastmod

    def get_latest_lastmod(self) -> dt.datetime | None:
        return _as_datetime(max((e.lastmod for e in self.entries if e.lastmod), default=None))


class PlaceSitemap(_EntrySitemap):
    """/<state>/<city>/ for every city with a published clinic."""

    @cached_property
    def entries(self) -> list[PlaceEntry]:
        return [
            PlaceEntry(f"/{state}/{slug}/", city.lastmod)
            for (state, slug), city in sorted(_cities([]).items())
        ]


class PlaceTechniqueSitemap(_EntrySitemap):
    """/<state>/<city>/<technique>/ where a published practitioner with a clinic there holds a
    current certificate in the technique or a level of it: the page's own rule
    (places.Place.has_technique), so a page whose only certificate expired leaves the sitemap
    as it starts to answer 404. Two queries: the index decides most cities; the dated
    certificates of the rest are looked up in one more."""

    @cached_property
    def entries(self) -> list[PlaceEntry]:
        techniques = _techniques()
        cities = _cities(techniques)
        doubtful = [t for t in techniques if any(t.slug in c.doubtful for c in cities.values())]
        current = _current_in_cities(doubtful, timezone.localdate())
        return [
            PlaceEntry(f"/{state}/{slug}/{technique.slug}/", city.lastmod)
            for (state, slug), city in sorted(cities.items())
            for technique in techniques
            if technique.slug in city.techniques
            or (technique.slug in city.doubtful and ((state, slug), technique.slug) in current)
        ]


class _IdRangePages:
    """A paginator over ranges of ``width`` ids: page N is the Nth range holding a published
    listing, read with one range scan of the primary key."""

    def __init__(self, width: int) -> None:
        self.width = width

    @cached_property
    def ranges(self) -> list[int]:
        db = router.db_for_read(Practitioner)
        table = Practitioner._meta.db_table
        sql = f"SELECT DISTINCT id / %s FROM {table} WHERE status = %s ORDER BY 1"
        with connections[db].cursor() as cursor:
            cursor.execute(sql, [self.width, Practitioner.Status.PUBLISHED])
            return [int(row[0]) for row in cursor.fetchall()]

    @property
    def num_pages(self) -> int:
        return len(self.ranges)

    @property
    def count(self) -> int:  # an upper bound: enough to tell one page from several
        return self.num_pages * self.width

    def page(self, number) -> _IdRangePage:
        try:
            number = int(number)
        except (TypeError, ValueError):
            raise PageNotAnInteger("That page number is not an integer") from None
        if not 1 <= number <= self.num_pages:
            raise EmptyPage("That page contains no results")
        start = self.ranges[number - 1] * self.width
        return _IdRangePage(start, start + self.width)


@dataclass(frozen=True)
class ProfileEntry:
    slug: str
    lastmod: dt.datetime | str


class _IdRangePage:
    def __init__(self, start: int, stop: int) -> None:
        self.start, self.stop = start, stop

    @cached_property
    def object_list(self) -> list[ProfileEntry]:
        """The range's published listings, each with the last change to it or its clinics:
        two range scans, rows read as the database gives them (no ORM per row)."""
        db = router.db_for_read(Practitioner)
        clinics_sql = (
            f"SELECT practitioner_id, MAX(updated_at) FROM {Location._meta.db_table} "
            f"WHERE practitioner_id >= %s AND practitioner_id < %s GROUP BY practitioner_id"
        )
        listings_sql = (
            f"SELECT id, slug, updated_at FROM {Practitioner._meta.db_table} "
            f"WHERE id >= %s AND id < %s AND status = %s ORDER BY id"
        )
        with connections[db].cursor() as cursor:
            cursor.execute(clinics_sql, [self.start, self.stop])
            clinics = dict(cursor.fetchall())
            cursor.execute(listings_sql, [self.start, self.stop, Practitioner.Status.PUBLISHED])
            rows = cursor.fetchall()
        entries = []
        for pk, slug, updated_at in rows:
            # SQLite gives the column as a datetime and its MAX() as text.
            last = _as_datetime(updated_at)
            clinic_change = _as_datetime(clinics.get(pk))
            if clinic_change is not None and clinic_change > last:
                last = clinic_change
            entries.append(ProfileEntry(slug, last))
        return entries


class ProfileSitemap(LeanSitemap):
    @cached_property
    def paginator(self) -> _IdRangePages:
        return _IdRangePages(self.limit)

    def items(self):  # pragma: no cover - the paginator above reads the listings
        raise NotImplementedError

    @cached_property
    def _around_slug(self) -> tuple[str, str]:
        # reverse() once, not once a URL (it cost more than everything else together).
        marker = "slug-marker"
        before, _, after = reverse("practitioners:profile", kwargs={"slug": marker}).rpartition(
            marker
        )
        return before, after

    def location(self, entry: ProfileEntry) -> str:
        if _PLAIN_SLUG.fullmatch(entry.slug):
            before, after = self._around_slug
            return f"{before}{entry.slug}{after}"
        return reverse("practitioners:profile", kwargs={"slug": entry.slug})

    def lastmod(self, entry: ProfileEntry) -> dt.datetime | str:
        return entry.lastmod

    def get_latest_lastmod(self) -> dt.datetime | None:
        return None  # the index says when each section changed only where it is cheap


SITEMAPS: dict[str, type[Sitemap]] = {
    "pages": FixedPagesSitemap,
    "conditions": ConditionSitemap,
    "techniques": TechniqueSitemap,
    "places": PlaceSitemap,
    "place-techniques": PlaceTechniqueSitemap,
    "profiles": ProfileSitemap,
}


def _sections() -> dict[str, Sitemap]:
    return {name: sitemap() for name, sitemap in SITEMAPS.items()}


@require_GET
def sitemap_xml(request: HttpRequest) -> HttpResponse:
    """One sitemap while every section fits in one; else the index of the sections' pages
    (empty sections left out: a sitemap must hold at least one URL)."""
    sections = {name: sitemap for name, sitemap in _sections().items() if _has_urls(sitemap)}
    if all(sitemap.paginator.num_pages <= 1 for sitemap in sections.values()):
        total = sum(_count(sitemap) for sitemap in sections.values())
        if total <= LIMIT:
            if request.GET.get("p", "1") != "1":
                raise Http404("The sitemap has one page")
            return sitemap_views.sitemap(request, sections, template_name=URLSET_TEMPLATE)
    return sitemap_views.index(request, sections, sitemap_url_name="sitemap-section")


@require_GET
def sitemap_section(request: HttpRequest, section: str) -> HttpResponse:
    if section not in SITEMAPS:
        raise Http404("No such sitemap section")
    return sitemap_views.sitemap(
        request, {section: SITEMAPS[section]()}, section=section, template_name=URLSET_TEMPLATE
    )


def _has_urls(sitemap: Sitemap) -> bool:
    if isinstance(sitemap, ProfileSitemap):
        return sitemap.paginator.num_pages > 0
    return sitemap.paginator.count > 0


def _count(sitemap: Sitemap) -> int:
    """URLs in a one-page section (profiles: those of its one id range)."""
    if isinstance(sitemap, ProfileSitemap):
        pages = sitemap.paginator
        return len(pages.page(1).object_list) if pages.num_pages else 0
    return sitemap.paginator.count


@require_GET
def robots_txt(request: HttpRequest) -> HttpResponse:
    """Crawlers may read every public page; the admin, the API and the forms stay out."""
    lines = [
        "User-agent: *",
        f"Disallow: /{settings.ADMIN_URL}/",
        "Disallow: /api/",
        f"Disallow: {reverse('practitioners:submit')}",
        "Disallow: /practitioners/*/report/",
        "",
        f"Sitemap: {request.build_absolute_uri(reverse('sitemap'))}",
        "",
    ]
    return HttpResponse("\n".join(lines), content_type="text/plain; charset=utf-8")
