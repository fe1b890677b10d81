"""One search, for the page and the API: validated filters in, a page of results out.

The FilterSet validates and builds the queryset (``published().holding().near()``); this module
pages it without counting a huge result set in full, attaches each row's nearest clinic in one
query, and, when nothing matched, finds how far the nearest match is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

from django.conf import settings
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet

from . import geo
from .models import Certification, Location, Practitioner


class CappedPaginator(Paginator):
    """Counts and pages at most ``cap`` matches: in a dense city the exact count costs more
    than the page. ``count_is_capped`` tells the UI to say "more than N"."""

    def __init__(self, object_list: QuerySet, per_page: int, cap: int) -> None:
        super().__init__(object_list, per_page)
        self.cap = cap

    @cached_property
    def _count_up_to_cap_plus_one(self) -> int:
        return self.object_list[: self.cap + 1].count()

    @cached_property
    def count(self) -> int:
        return min(self._count_up_to_cap_plus_one, self.cap)

    @property
    def count_is_capped(self) -> bool:
        return self._count_up_to_cap_plus_one > self.cap


class NearestFirstPaginator(CappedPaginator):
    """Pages a distance search from the smallest circle that holds the page.

    The 20 nearest matches within 10 miles of Manhattan are the 20 nearest within any smaller
    circle that holds at least 20 matches. Sorting the 20,000 listings of the whole circle to
    show 20 of them is what made a dense city slow; a few capped counts (``count_near``, which
    stop as soon as they have counted enough) find a small circle that provably holds the page,
    and only that circle is sorted. Page by page the results are exactly those of
    ``matching.near(origin, radius_mi)``; the count is capped like :class:`CappedPaginator`'s.
    """

    max_probes = 5
    sort_without_probing = 300

    def __init__(
        self,
        matching: QuerySet,
        origin: geo.Origin,
        radius_mi: float,
        per_page: int,
        cap: int,
        prepare: Callable[[QuerySet], QuerySet] = lambda queryset: queryset,
    ) -> None:
        self.matching = matching  # every filter but the distance
        self.origin = origin
        self.radius_mi = radius_mi
        self.prepare = prepare
        # Built on first use: a dense search pages a smaller circle and never needs it.
        self._object_list: QuerySet | None = None
        super().__init__(None, per_page, cap)

    @property
    def object_list(self) -> QuerySet:
        if self._object_list is None:
            self._object_list = self.prepare(self.matching.near(self.origin, self.radius_mi))
        return self._object_list

    @object_list.setter
    def object_list(self, value: QuerySet | None) -> None:
        self._object_list = value

    def _check_object_list_is_ordered(self) -> None:
        pass  # near() always orders by distance, name and id

    @cached_property
    def _count_up_to_cap_plus_one(self) -> int:
        return self.matching.count_near(self.origin, self.radius_mi, up_to=self.cap + 1)

    def page(self, number: int | str) -> Page:
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top = self.count
        radius = self.radius_holding(top)
        queryset = (
            self.object_list
            if radius == self.radius_mi
            else self.prepare(self.matching.near(self.origin, radius))
        )
        return self._get_page(queryset[bottom:top], number, self)

    def radius_holding(self, needed: int) -> float:
        """A radius, as small as a few cheap counts can find, within which at least ``needed``
        practitioners match (the full radius when that is already small enough to sort)."""
        radius = self.radius_mi
        counted = self._count_up_to_cap_plus_one
        # Matches within ``radius``: exactly ``known``, or at least ``known`` when capped.
        known, exact = counted, counted <= self.cap
        up_to = max(2 * needed + 1, 101)  # counting more costs more than sorting a few more
        probes = 0
        # A few hundred matches sort faster than a count costs to build and run.
        enough = max(2 * needed, self.sort_without_probing)
        while probes < self.max_probes and needed and (not exact or known > enough):
            # Area grows with the square of the radius: aim at about 1.5 times what is needed,
            # as if the density were even (a capped count only bounds it from below).
            aim = (1.5 * needed / known) ** 0.5
            shrink = min(0.8, max(0.3, aim)) if exact else max(0.1, min(0.4, aim))
            smaller = radius * shrink
            found = self.matching.count_near(self.origin, smaller, up_to=up_to)
            probes += 1
            if found >= needed:
                radius, known, exact = smaller, found, found < up_to
                continue
            # Overshot: aim between the two circles, from the density just measured.
            guess = smaller * (1.5 * needed / max(found, 1)) ** 0.5
            if guess < radius and probes < self.max_probes:
                found = self.matching.count_near(self.origin, guess, up_to=up_to)
                probes += 1
                if found >= needed:
                    radius = guess
            break
        return radius


def attach_nearest_locations(practitioners: Sequence[Practitioner]) -> None:
    """Give each practitioner on a page its ``nearest_location`` (its first clinic when the
    search had no origin), in one query whatever the page size."""
    nearest_ids = [getattr(p, "nearest_location_id", None) for p in practitioners]
    by_practitioner: dict[int, Location] = {}
    if any(nearest_ids):
        for location in Location.objects.filter(pk__in=[i for i in nearest_ids if i]):
            by_practitioner[location.practitioner_id] = location
    elif practitioners:
        first_clinics = Location.objects.filter(
            practitioner_id__in=[p.pk for p in practitioners]
        ).order_by("-pk")
        for location in first_clinics:
            by_practitioner[location.practitioner_id] = location
    for practitioner in practitioners:
        practitioner.nearest_location = by_practitioner.get(practitioner.pk)


def nearest_match_distance(
    queryset: QuerySet, origin: geo.Origin, radius_mi: float
) -> float | None:
    """How far the nearest match is when none is within the radius (None if none at all).

    Widens the circle step by step so the bounding-box index keeps every probe cheap.
    """
    radius = radius_mi
    while radius < 3000:
        radius = min(radius * 4, 3000)
        first = queryset.near(origin, radius).values_list("distance_mi", flat=True).first()
        if first is not None:
            return first
    return None


def widen_radius(distance_mi: float) -> int:
    """The smallest radius the page offers that reaches ``distance_mi`` (or the API maximum)."""
    for choice in settings.SEARCH_RADIUS_CHOICES_MI:
        if choice >= distance_mi:
            return choice
    return settings.SEARCH_MAX_RADIUS_MI


@dataclass
class SearchResults:
    page: Page
    paginator: CappedPaginator
    origin: geo.Origin | None
    radius_mi: float
    certifications: list[Certification]
    match: str
    nearest_distance_mi: float | None = None

    @property
    def wider_radius(self) -> int | None:
        if self.nearest_distance_mi is None:
            return None
        return widen_radius(self.nearest_distance_mi)


def run_search(
    filterset, page_number: str | int | None, per_page: int | None = None, strict: bool = False
) -> SearchResults:
    """Page the filterset's results. ``filterset`` must already be valid.

    ``strict`` raises InvalidPage for a page that does not exist (the API answers 404); the
    page instead shows the nearest valid page, as people expect of a mistyped link.
    """
    per_page = per_page or settings.SEARCH_PAGE_SIZE
    paginator: CappedPaginator
    unbounded: QuerySet | None = None
    if filterset.origin is not None:
        # The FilterSet's own queryset is filter_without_origin(...).near(origin, radius); the
        # paginator rebuilds it with smaller radii where a smaller circle holds the page.
        unbounded = filterset.filter_without_origin(filterset.queryset)
        paginator = NearestFirstPaginator(
            unbounded,
            filterset.origin,
            filterset.radius_mi,
            per_page,
            cap=settings.SEARCH_COUNT_CAP,
            prepare=lambda queryset: queryset.for_listing(),
        )
    else:
        paginator = CappedPaginator(
            filterset.qs.for_listing(), per_page, cap=settings.SEARCH_COUNT_CAP
        )
    page = paginator.page(page_number) if strict else paginator.get_page(page_number)
    attach_nearest_locations(page.object_list)
    results = SearchResults(
        page=page,
        paginator=paginator,
        origin=filterset.origin,
        radius_mi=filterset.radius_mi,
        certifications=filterset.certifications,
        match=filterset.match_mode,
    )
    if unbounded is not None and paginator.count == 0:
        # The radius is the only thing that excluded everyone: search without it.
        results.nearest_distance_mi = nearest_match_distance(
            unbounded, filterset.origin, filterset.radius_mi
        )
    return results
