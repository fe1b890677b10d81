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
from collections.abc import Iterator
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
from django.utils.text import slugify
from django.views.decorators.http import require_GET

from . import places
from .models import Certification, Condition, Location, Practitioner
from .search import index as search_index

LIMIT = 50_000  # URLs per sitemap, the protocol's limit


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
    lastmod: dt.datetime | None


def _place_rows() -> Iterator[tuple[str, str, int, int, dt.datetime | None]]:
    """(state, UPPER(city), certification bits, expiring bits, last change) for every group
    of published clinics, from the ``location_place`` index alone."""
    db = router.db_for_read(Location)
    table = Location._meta.db_table
    sql = (
        f"SELECT state, UPPER(city), certification_bits, expiring_certification_bits, "
        f"MAX(updated_at) FROM {table} WHERE listed IN (%s) "
        f"GROUP BY state, UPPER(city), certification_bits, expiring_certification_bits"
    )
    connection = connections[db]
    with connection.cursor() as cursor:
        cursor.execute(sql, [True])
        for state, city, bits, expiring, last in cursor.fetchall():
            if isinstance(last, str):  # SQLite returns MAX() of a datetime as text
                last = dt.datetime.fromisoformat(last)
                if settings.USE_TZ and last.tzinfo is None:
                    last = last.replace(tzinfo=dt.UTC)
            yield state, city, bits, expiring, last


@dataclass
class _City:
    bits: int = 0
    lastmod: dt.datetime | None = None


def _cities() -> dict[tuple[str, str], _City]:
    cities: dict[tuple[str, str], _City] = {}
    for state, city, bits, expiring, last in _place_rows():
        slug = slugify(city or "")
        if not slug or state.upper() not in places.STATE_NAMES:
            continue
        entry = cities.setdefault((state.lower(), slug), _City())
        entry.bits |= bits | expiring
        if last is not None and (entry.lastmod is None or last > entry.lastmod):
            entry.lastmod = last
    return cities


class _EntrySitemap(Sitemap):
    limit = LIMIT

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
        return max((e.lastmod for e in self.entries if e.lastmod), default=None)


class PlaceSitemap(_EntrySitemap):
    """/<state>/<city>/ for every city with a published clinic."""

    @cached_property
    def entries(self) -> list[PlaceEntry]:
        return [
            PlaceEntry(f"/{state}/{slug}/", city.lastmod)
            for (state, slug), city in sorted(_cities().items())
        ]


class PlaceTechniqueSitemap(_EntrySitemap):
    """/<state>/<city>/<technique>/ where a published clinic's copied bits hold the technique
    or a level of it. The bits count a certificate with an expiry date even once it has
    expired, so a page whose only certificate lapsed stays listed (and answers 404) until that
    clinic's listing changes; deciding it exactly would cost a look-up per clinic."""

    @cached_property
    def entries(self) -> list[PlaceEntry]:
        every = list(Certification.objects.only("id", "slug", "parent_id"))
        masks = []
        for technique in every:
            if technique.parent_id is None:
                ids = [technique.id, *(c.id for c in every if c.parent_id == technique.id)]
                masks.append((technique.slug, search_index.certification_bits(ids)))
        return [
            PlaceEntry(f"/{state}/{slug}/{technique}/", city.lastmod)
            for (state, slug), city in sorted(_cities().items())
            for technique, mask in masks
            if city.bits & mask
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
    lastmod: dt.datetime


class _IdRangePage:
    def __init__(self, start: int, stop: int) -> None:
        self.start, self.stop = start, stop

    @cached_property
    def object_list(self) -> list[ProfileEntry]:
        """The range's published listings, each with the last change to it or its clinics."""
        in_range = {"pk__gte": self.start, "pk__lt": self.stop}
        clinics = dict(
            Location.objects.filter(practitioner_id__gte=self.start, practitioner_id__lt=self.stop)
            .order_by()
            .values("practitioner_id")
            .annotate(last=Max("updated_at"))
            .values_list("practitioner_id", "last")
        )
        rows = (
            Practitioner.objects.published()
            .filter(**in_range)
            .order_by("pk")
            .values_list("pk", "slug", "updated_at")
        )
        entries = []
        for pk, slug, updated_at in rows.iterator(chunk_size=5000):
            clinic_change = clinics.get(pk)
            last = max(updated_at, clinic_change) if clinic_change else updated_at
            entries.append(ProfileEntry(slug, last))
        return entries


class ProfileSitemap(Sitemap):
    limit = LIMIT

    @cached_property
    def paginator(self) -> _IdRangePages:
        return _IdRangePages(self.limit)

    def items(self):  # pragma: no cover - the paginator above reads the listings
        raise NotImplementedError

    def location(self, entry: ProfileEntry) -> str:
        return reverse("practitioners:profile", kwargs={"slug": entry.slug})

    def lastmod(self, entry: ProfileEntry) -> dt.datetime:
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
            return sitemap_views.sitemap(request, sections)
    return sitemap_views.index(request, sections, sitemap_url_name="sitemap-section")


@require_GET
def sitemap_section(request: HttpRequest, section: str) -> HttpResponse:
    if section not in SITEMAPS:
        raise Http404("No such sitemap section")
    return sitemap_views.sitemap(request, {section: SITEMAPS[section]()}, section=section)


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
