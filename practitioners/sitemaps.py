"""sitemap.xml and robots.txt, with Django's sitemaps framework.

Sections: the fixed pages, conditions, techniques, places, places by technique, and profiles.
While every section fits in one sitemap page (10,000 URLs: a fifth of the protocol's limit, so
that each page renders in well under a second at a million listings), /sitemap.xml is that one
sitemap; past it, /sitemap.xml is an index of the sections' pages (/sitemap-<section>.xml?p=N).

No request loads every listing, and none groups them: a page is one range of a key, read with
one range scan. Profiles: page N is the ids (N-1)*LIMIT .. N*LIMIT-1. Places: page N is
positions (N-1)*LIMIT+1 .. N*LIMIT of the stored place list (``PlacePage``, which
place_pages.refresh works out from the clinics after publishing and imports, and hourly). The
index lists only the pages that hold a URL (a sitemap must hold one), so its page numbers may
skip one whose range emptied.
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
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from .models import Certification, Condition, Location, PlacePage, Practitioner

# URLs per sitemap page. The protocol allows 50,000; a page of 45,000 profiles took 3-18 s to
# render at 1,000,000 listings on this machine (bench/sitemap_bench.py), a page of 10,000 a
# fifth of that.
LIMIT = 10_000
_PLAIN_SLUG = re.compile(r"[-a-zA-Z0-9_]+")  # needs no quoting in a URL
URLSET_TEMPLATE = "sitemaps/urlset.xml"  # Django's elements, written faster (sitemap_xml.py)


def as_datetime(value: dt.datetime | str | None) -> dt.datetime | None:
    """A last change as the database gave it (SQLite: UTC text) as an aware datetime."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value


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


class LeanSitemap(Sitemap):
    """Django's Sitemap, building each URL's entry directly: its generic ``_urls`` looks up
    four optional attributes per URL, which adds up over 10,000 of them."""

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
        self.latest_lastmod = as_datetime(max(lastmods)) if lastmods and all(lastmods) else None
        return urls

    def lastmod(self, entry):
        return None


@dataclass(frozen=True)
class Entry:
    """One URL of a keyed page: its path (profiles: their slug) and last change, as the
    database gives it (SQLite: ISO text, which sorts as the times do; url_elements writes
    either)."""

    key: str
    lastmod: dt.datetime | str | None


@dataclass(frozen=True)
class _KeyedPage:
    object_list: list[Entry]


class _KeyedPages:
    """A paginator whose page N is the Nth range of a key (``width`` keys each): a page
    request reads that range only, and an empty range is an empty page (404)."""

    def __init__(self, width: int) -> None:
        self.width = width

    def filled(self) -> list[tuple[int, dt.datetime | None]]:  # pragma: no cover - abstract
        """(page number, its last change or None) of every page holding a URL, in order."""
        raise NotImplementedError

    def read(self, number: int) -> list[Entry]:  # pragma: no cover - abstract
        raise NotImplementedError

    @cached_property
    def _filled(self) -> list[tuple[int, dt.datetime | None]]:
        return self.filled()

    @property
    def num_pages(self) -> int:  # Django's Sitemap.get_latest_lastmod and friends ask
        return len(self._filled)

    @property
    def count(self) -> int:  # an upper bound: enough to tell one page from several
        return self.num_pages * self.width

    def page(self, number) -> _KeyedPage:
        try:
            number = int(number)
        except (TypeError, ValueError):
            raise PageNotAnInteger("That page number is not an integer") from None
        if number < 1:
            raise EmptyPage("That page contains no results")
        entries = self.read(number)
        if not entries:
            raise EmptyPage("That page contains no results")
        return _KeyedPage(entries)


def _rows(model, sql: str, params: list) -> list[tuple]:
    with connections[router.db_for_read(model)].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


class _PlacePages(_KeyedPages):
    """Pages of one section of the stored place list, by position; a page whose
    certificates have all lapsed (``until`` passed) is left out from the next day."""

    def __init__(self, section: str, width: int) -> None:
        super().__init__(width)
        self.section = section
        self.today = timezone.localdate()

    def _live(self) -> tuple[str, list]:
        connection = connections[router.db_for_read(PlacePage)]
        return (
            "section = %s AND (until IS NULL OR until >= %s)",
            [self.section, connection.ops.adapt_datefield_value(self.today)],
        )

    def filled(self) -> list[tuple[int, dt.datetime | None]]:
        live, params = self._live()
        rows = _rows(
            PlacePage,
            f"SELECT (position - 1) / %s, MAX(lastmod) FROM {PlacePage._meta.db_table} "
            f"WHERE {live} GROUP BY (position - 1) / %s ORDER BY 1",
            [self.width, *params, self.width],
        )
        return [(int(page) + 1, as_datetime(last)) for page, last in rows]

    def read(self, number: int) -> list[Entry]:
        live, params = self._live()
        rows = _rows(
            PlacePage,
            f"SELECT path, lastmod FROM {PlacePage._meta.db_table} "
            f"WHERE {live} AND position > %s AND position <= %s ORDER BY position",
            [*params, (number - 1) * self.width, number * self.width],
        )
        return [Entry(path, lastmod) for path, lastmod in rows]


class _PlaceSectionSitemap(LeanSitemap):
    section: str = ""

    @cached_property
    def paginator(self) -> _PlacePages:
        return _PlacePages(self.section, self.limit)

    def items(self):  # pragma: no cover - the paginator above reads the list
        raise NotImplementedError

    def location(self, entry: Entry) -> str:
        return entry.key

    def lastmod(self, entry: Entry) -> dt.datetime | str | None:
        return entry.lastmod

    def get_latest_lastmod(self) -> dt.datetime | None:
        lastmods = [last for _, last in self.paginator._filled]
        return max(lastmods) if lastmods and all(lastmods) else None


class PlaceSitemap(_PlaceSectionSitemap):
    """/<state>/<city>/ for every city with a published clinic (at the last refresh)."""

    section = PlacePage.Section.PLACES


class PlaceTechniqueSitemap(_PlaceSectionSitemap):
    """/<state>/<city>/<technique>/ where a published practitioner with a clinic there holds a
    current certificate in the technique or a level of it: the page's own rule
    (places.Place.has_technique), as of the last refresh, and a page whose only certificates
    lapsed since leaves the sitemap as it starts to answer 404."""

    section = PlacePage.Section.PLACE_TECHNIQUES


class _ProfilePages(_KeyedPages):
    """Page N: the published listings of the Nth range of ``width`` ids that holds one."""

    def _ranges(self, most: int) -> list[int]:
        """The first ``most`` ranges holding a published listing (range n: ids n*width ..
        (n+1)*width-1), each found from the one before by the first published id past it: one
        short primary-key seek a range, where grouping every published id read the whole
        table (0.1 s at 100,000 listings)."""
        table = Practitioner._meta.db_table
        first = f"SELECT MIN(id) FROM {table} WHERE status = %s"
        published = Practitioner.Status.PUBLISHED
        rows = _rows(
            Practitioner,
            f"WITH RECURSIVE ranges(n, k) AS (SELECT ({first}) / %s, 1 "
            f"UNION ALL SELECT ({first} AND id >= (n + 1) * %s) / %s, k + 1 FROM ranges "
            f"WHERE n IS NOT NULL AND k < %s) SELECT n FROM ranges WHERE n IS NOT NULL ORDER BY k",
            [published, self.width, published, self.width, self.width, most],
        )
        return [int(n) for (n,) in rows]

    def filled(self) -> list[tuple[int, dt.datetime | None]]:
        return [(number, None) for number, _ in enumerate(self._ranges(2**31 - 1), start=1)]

    def read(self, number: int) -> list[Entry]:
        """The range's published listings, each with the last change to it or its clinics:
        after the seeks that find the range, one query of two range scans, the later of the
        two times chosen by the database (a CASE, which SQLite hands back as text and no
        converter parses: half the page's time went on parsing and comparing 20,000 datetimes
        in Python)."""
        ranges = self._ranges(number)
        if len(ranges) < number:
            return []
        start, stop = ranges[-1] * self.width, (ranges[-1] + 1) * self.width
        rows = _rows(
            Practitioner,
            f"SELECT p.slug, CASE WHEN c.last > p.updated_at THEN c.last ELSE p.updated_at END "
            f"FROM {Practitioner._meta.db_table} p LEFT JOIN ("
            f"SELECT practitioner_id, MAX(updated_at) AS last FROM {Location._meta.db_table} "
            f"WHERE practitioner_id >= %s AND practitioner_id < %s GROUP BY practitioner_id"
            f") c ON c.practitioner_id = p.id "
            f"WHERE p.id >= %s AND p.id < %s AND p.status = %s ORDER BY p.id",
            [start, stop, start, stop, Practitioner.Status.PUBLISHED],
        )
        return [Entry(slug, last) for slug, last in rows]


class ProfileSitemap(LeanSitemap):
    @cached_property
    def paginator(self) -> _ProfilePages:
        return _ProfilePages(self.limit)

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

    def location(self, entry: Entry) -> str:
        if _PLAIN_SLUG.fullmatch(entry.key):
            before, after = self._around_slug
            return f"{before}{entry.key}{after}"
        return reverse("practitioners:profile", kwargs={"slug": entry.key})

    def lastmod(self, entry: Entry) -> dt.datetime | str:
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


def _filled_pages(sitemap: Sitemap) -> list[tuple[int, dt.datetime | None]]:
    """(page number, last change) of each of a section's pages that holds a URL."""
    if isinstance(sitemap.paginator, _KeyedPages):
        return sitemap.paginator._filled
    last = sitemap.get_latest_lastmod()
    return [(number, last) for number in sitemap.paginator.page_range]


@require_GET
def sitemap_xml(request: HttpRequest) -> HttpResponse:
    """One sitemap while every section fits in one page and all of them in LIMIT URLs; else
    the index of the sections' pages that hold a URL."""
    sections = {name: sitemap() for name, sitemap in SITEMAPS.items()}
    filled = {name: _filled_pages(sitemap) for name, sitemap in sections.items()}
    # (A place page whose certificates all lapsed can leave a section with only its page 2.)
    if all(not pages or [number for number, _ in pages] == [1] for pages in filled.values()):
        one = {name: sections[name] for name, pages in filled.items() if pages}
        if sum(len(sitemap.paginator.page(1).object_list) for sitemap in one.values()) <= LIMIT:
            if request.GET.get("p", "1") != "1":
                raise Http404("The sitemap has one page")
            return sitemap_views.sitemap(request, one, template_name=URLSET_TEMPLATE)
    return _index(request, filled)


@sitemap_views.x_robots_tag
def _index(request: HttpRequest, filled: dict[str, list[tuple[int, dt.datetime | None]]]):
    """Django's sitemap index (its template), listing only the pages that hold a URL."""
    prefix = f"{request.scheme}://{request.get_host()}"
    items = []
    for name, pages in filled.items():
        url = prefix + reverse("sitemap-section", kwargs={"section": name})
        for number, last in pages:
            location = url if number == 1 else f"{url}?p={number}"
            items.append(sitemap_views.SitemapIndexItem(location, last))
    return TemplateResponse(
        request, "sitemap_index.xml", {"sitemaps": items}, content_type="application/xml"
    )


@require_GET
def sitemap_section(request: HttpRequest, section: str) -> HttpResponse:
    if section not in SITEMAPS:
        raise Http404("No such sitemap section")
    return sitemap_views.sitemap(
        request, {section: SITEMAPS[section]()}, section=section, template_name=URLSET_TEMPLATE
    )


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
