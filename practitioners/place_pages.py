"""The stored list of place pages the sitemap serves: /<state>/<city>/ and
/<state>/<city>/<technique>/, one ``PlacePage`` row each, numbered in path order.

Working the list out groups every published clinic by city (a pass over the ``location_place``
index, plus the dated certificates of the cities the copied bits leave in doubt): 2-3 s at a
million listings, far too slow for every sitemap request. So it is worked out once, by
:func:`refresh`, and the sitemap reads ranges of ``position`` (one page: one range scan of the
``place_page_position`` index).

When it runs: after a commit that publishes or suspends listings (curation/services.py) or
imports them (ingest/bulk.py), as the ``refresh_place_pages`` task; and hourly
(``manage.py refresh_place_pages``, deploy/systemd) for every other write path (a clinic's city
edited in the admin, a merge). Between a change and the refresh the sitemap may list a page
that has just gone or miss one that has just come; the pages themselves never read this list
(places.py decides their 200/404 from the clinics), so they are right at once.

A page that exists only through certificates with expiry dates stores the last of those dates
(``until``), and the sitemap leaves it out from the next day: a lapsed certificate takes its
page out of the sitemap on the day the page starts to answer 404, with no refresh.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import NamedTuple

from django.db import connections, router, transaction
from django.utils import timezone
from django.utils.text import slugify

from . import places
from .models import Certification, Location, PlacePage, PractitionerCertification
from .search import index as search_index

logger = logging.getLogger(__name__)

# slugify without its lazy-text wrapper, which cost more than slugify itself over 30,000 cities.
_slugify = getattr(slugify, "__wrapped__", slugify)
INSERT_BATCH = 5000


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
    techniques: set[str] = field(default_factory=set)  # held for certain, with no end date
    doubtful: set[str] = field(default_factory=set)  # held only by the index's prefilter
    lastmod: dt.datetime | str | None = None


def _as_date(value: dt.date | str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if isinstance(value, str) else value


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
    ``_dated_in_cities`` to decide."""
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
        # Another spelling of the same city ("MEMPHIS", "Memphis") shares the one page.
        entry = cities.setdefault(key, _City())
        # ``last`` stays as the database gives it (SQLite: UTC text, which sorts as the times
        # do and is what its column holds; PostgreSQL: a datetime), to be stored as it is.
        if last is not None and (entry.lastmod is None or last > entry.lastmod):
            entry.lastmod = last
        for technique, lasting, candidate in zip(techniques, flags[0::2], flags[1::2], strict=True):
            if lasting and technique.exact:
                entry.techniques.add(technique.slug)
            elif candidate:
                entry.doubtful.add(technique.slug)
    for entry in cities.values():
        entry.doubtful -= entry.techniques
    return cities


def _dated_in_cities(
    techniques: list[_Technique], on: dt.date
) -> dict[tuple[tuple[str, str], str], dt.date | None]:
    """((state, city slug), technique slug) -> until when a published clinic's practitioner
    holds a current certificate in it there (None: one without an end date), for every
    technique held on ``on``: one query, over only the clinics whose bits leave it in doubt
    (those with a dated certificate of an exact technique, or any clinic holding a technique
    whose bits are shared)."""
    if not techniques:
        return {}
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
        f"SELECT l.state, l.city, r.certification_id, "
        f"MAX(CASE WHEN r.expires_on IS NULL THEN 1 ELSE 0 END), MAX(r.expires_on) "
        f"FROM {Location._meta.db_table} l JOIN {PractitionerCertification._meta.db_table} r "
        f"ON r.practitioner_id = l.practitioner_id "
        f"WHERE l.listed IN (%s) AND ({' OR '.join(doubt)}) "
        f"AND r.certification_id IN ({', '.join(['%s'] * len(ids))}) "
        f"AND (r.expires_on IS NULL OR r.expires_on >= %s) "
        f"GROUP BY l.state, l.city, r.certification_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [True, *params, *ids, connection.ops.adapt_datefield_value(on)])
        rows = cursor.fetchall()
    technique_of = {i: t.slug for t in techniques for i in t.ids}
    held: dict[tuple[tuple[str, str], str], dt.date | None] = {}
    for state, city, certification_id, undated, last in rows:
        key = _city_key(state, city)
        if key is None:
            continue
        found = (key, technique_of[certification_id])
        until = None if undated else _as_date(last)
        if found in held:
            before = held[found]
            until = None if before is None or until is None else max(before, until)
        held[found] = until
    return held


class PageRow(NamedTuple):
    section: str
    position: int
    path: str
    lastmod: dt.datetime | str | None
    until: dt.date | None


def work_out(on: dt.date | None = None) -> list[PageRow]:
    """Every place page as of ``on`` (today), in the sitemap's order, numbered per section:
    two queries over the clinics, nothing stored."""
    on = on or timezone.localdate()
    techniques = _techniques()
    cities = sorted(_cities(techniques).items())
    doubtful = [t for t in techniques if any(t.slug in c.doubtful for _, c in cities)]
    dated = _dated_in_cities(doubtful, on)
    places_section = PlacePage.Section.PLACES.value
    techniques_section = PlacePage.Section.PLACE_TECHNIQUES.value
    rows = [
        PageRow(places_section, number, f"/{state}/{slug}/", city.lastmod, None)
        for number, ((state, slug), city) in enumerate(cities, start=1)
    ]
    number = 0
    for (state, slug), city in cities:
        for technique in techniques:
            if technique.slug in city.techniques:
                until = None
            elif technique.slug in city.doubtful and ((state, slug), technique.slug) in dated:
                until = dated[(state, slug), technique.slug]
            else:
                continue
            number += 1
            path = f"/{state}/{slug}/{technique.slug}/"
            rows.append(PageRow(techniques_section, number, path, city.lastmod, until))
    return rows


@dataclass(frozen=True)
class RefreshSummary:
    places: int
    place_techniques: int
    added: int  # paths not listed before
    removed: int  # paths listed before and gone now


def refresh(*, dry_run: bool = False, on: dt.date | None = None) -> RefreshSummary:
    """Work the list out again and store it in place of the old one, in one transaction (a
    sitemap request meanwhile reads the old list whole). ``dry_run`` stores nothing.

    Rows go in with plain INSERTs of the values as read: the ORM's bulk_create spent 8 of 10
    s preparing 100,000 model instances (100,000 listings)."""
    rows = work_out(on)
    db = router.db_for_write(PlacePage)
    connection = connections[db]
    table = PlacePage._meta.db_table
    with transaction.atomic(using=db), connection.cursor() as cursor:
        cursor.execute(f"SELECT path FROM {table}")
        before = {path for (path,) in cursor.fetchall()}
        if not dry_run:
            cursor.execute(f"DELETE FROM {table}")
            insert = (
                f"INSERT INTO {table} (section, position, path, lastmod, until) "
                f"VALUES (%s, %s, %s, %s, %s)"
            )
            adapt = connection.ops.adapt_datefield_value
            for start in range(0, len(rows), INSERT_BATCH):
                cursor.executemany(
                    insert,
                    [
                        (*row[:4], adapt(row.until) if row.until else None)
                        for row in rows[start : start + INSERT_BATCH]
                    ],
                )
            # The pages' own lists of a state's cities (places.cities_in) start again too, so a
            # city just published answers at once rather than when its cache entry expires.
            transaction.on_commit(places.forget_cities, using=db)
    after = {row.path for row in rows}
    places_count = sum(1 for row in rows if row.section == PlacePage.Section.PLACES.value)
    return RefreshSummary(
        places=places_count,
        place_techniques=len(rows) - places_count,
        added=len(after - before),
        removed=len(before - after),
    )


def refresh_after_commit() -> None:
    """Refresh the list (a task) once the current transaction commits, once however many
    times a transaction asks (an import asks once a batch)."""
    connection = transaction.get_connection(router.db_for_write(PlacePage))
    if connection.in_atomic_block and any(
        callback is _after_commit for _, callback, _ in connection.run_on_commit
    ):
        return
    transaction.on_commit(_after_commit, using=connection.alias)


def _after_commit() -> None:
    from . import tasks  # tasks imports the geocoder, which the sitemap does not need

    # The pages decide their 200/404 from the clinics at once; only their cached city lists
    # (places.cities_in) stand between, so those go now, not when the task has run.
    places.forget_cities()
    tasks.refresh_place_pages.enqueue()
