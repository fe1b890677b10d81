"""One search, for the page and the API: validated filters in, a page of results out.

The FilterSet validates and builds the queryset (``published().holding().near()``); this module
pages it without counting a huge result set in full, attaches each row's nearest clinic in one
query, and, when nothing matched, finds how far the nearest match is.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

from django.conf import settings
from django.core.paginator import Page, Paginator
from django.db import connections, router
from django.db.models import BooleanField, DateField, DateTimeField, Field, Model, QuerySet
from django.utils import timezone

from ..models import (
    Certification,
    Location,
    NearbyMatch,
    Practitioner,
    PractitionerCertification,
    Profession,
)
from ..practice import apply_details_columns, attach_practice_details, details_columns_sql
from . import geo


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
    ) -> None:
        self.matching = matching  # every filter but the distance
        self.origin = origin
        self.radius_mi = radius_mi
        super().__init__(None, per_page, cap)

    def _check_object_list_is_ordered(self) -> None:
        pass  # nearest() always orders by distance, name and id

    @cached_property
    def _count_up_to_cap_plus_one(self) -> int:
        return self.matching.count_near(self.origin, self.radius_mi, up_to=self.cap + 1)

    def page(self, number: int | str) -> Page:
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top = self.count
        matches = self.matching.nearest(
            self.origin, self.radius_holding(top), offset=bottom, limit=max(0, top - bottom)
        )
        return self._get_page(listings_for(matches), number, self)

    def radius_holding(self, needed: int) -> float:
        """A radius, as small as a few cheap counts can find, within which at least ``needed``
        practitioners match (the full radius when that is already small enough to sort)."""
        radius = self.radius_mi
        counted = self._count_up_to_cap_plus_one
        # Matches within ``radius``: exactly ``known``, or at least ``known`` when capped.
        known, exact = counted, counted <= self.cap
        # Counting more costs more than sorting a few more: twice what is needed, but a deep
        # page (hundreds needed) counts at most 500 past its end.
        up_to = max(min(2 * needed, needed + 500) + 1, 101)
        probes = 0
        # A few hundred matches sort faster than a count costs to build and run.
        enough = max(up_to - 1, self.sort_without_probing)
        while probes < self.max_probes and needed and (not exact or known > enough):
            # Area grows with the square of the radius: aim at about 1.5 times what is needed,
            # as if the density were even (a capped count only bounds it from below).
            aim = (1.5 * needed / known) ** 0.5
            shrink = min(0.8, max(0.3, aim)) if exact else max(0.1, min(0.25, aim))
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


# What a result row shows (templates/practitioners/_result.html, api.py), and nothing more.
RESULT_CLINIC_FIELDS = frozenset(
    {
        "id",
        "practitioner_id",
        "name",
        "address_line1",
        "address_line2",
        "city",
        "state",
        "postal_code",
        "phone",
        "latitude",
        "longitude",
        "precision",
        # practice.ClinicAccess
        "wheelchair_entrance",
        "accessible_restroom",
        "parking",
        "public_transit",
        "accessibility_checked_on",
        "reopens_on",
        "hours_checked_on",
    }
)
RESULT_PRACTITIONER_FIELDS = frozenset(
    {
        "id",
        "profession_id",
        "slug",
        "name",
        "credentials",
        "npi",
        "phone",
        "new_patients",
        "telehealth",
        "status",
        # practice.PracticeDetails (gender is a filter only, never shown)
        "new_patients_checked_on",
        "languages_checked_on",
        "self_pay",
        "self_pay_min",
        "self_pay_max",
        "sliding_scale",
        "hsa_fsa",
        "payment_checked_on",
    }
)
RESULT_PROFESSION_FIELDS = frozenset({"id", "slug", "name"})
RESULT_CERTIFICATE_FIELDS = frozenset(
    {"id", "practitioner_id", "certification_id", "expires_on", "verified_on"}
)


class _Rows:
    """Builds partly loaded model instances from plain SQL rows, as ``only()`` would.

    A result page is 20-100 rows; composing the ORM query for them cost more than running
    it. Values are converted the way Django's converters would for these field types."""

    def __init__(self, model: type[Model], alias: str, wanted: frozenset[str]) -> None:
        self.model = model
        self.fields = [f for f in model._meta.concrete_fields if f.attname in wanted]
        self.names = frozenset(f.attname for f in self.fields)
        self.select = [f"{alias}.{f.column}" for f in self.fields]
        self.converters = [_converter(f) for f in self.fields]

    def build(self, db: str, values: Sequence) -> Model:
        converted = [
            value if convert is None or value is None else convert(value)
            for convert, value in zip(self.converters, values, strict=True)
        ]
        return self.model.from_db(db, self.names, converted)


def _converter(field: Field) -> Callable[[object], object] | None:
    if isinstance(field, BooleanField):
        return bool  # SQLite returns 0 or 1
    if isinstance(field, DateField) and not isinstance(field, DateTimeField):  # SQLite: text
        return lambda value: value if isinstance(value, dt.date) else dt.date.fromisoformat(value)
    return None


_CLINICS = _Rows(Location, "l", RESULT_CLINIC_FIELDS)
_PRACTITIONERS = _Rows(Practitioner, "p", RESULT_PRACTITIONER_FIELDS)
_PROFESSIONS = _Rows(Profession, "f", RESULT_PROFESSION_FIELDS)
_CERTIFICATES = _Rows(PractitionerCertification, "r", RESULT_CERTIFICATE_FIELDS)


def _placeholders(values: Sequence) -> str:
    return ", ".join(["%s"] * len(values))


def listings_for(matches: Sequence[NearbyMatch]) -> list[Practitioner]:
    """The practitioners of a page of matches, in order, as ``near()`` annotates them
    (``distance_mi``, ``nearest_location_id``), with ``nearest_location`` and the profession
    attached: clinics, practitioners and professions come in one query."""
    if not matches:
        return []
    db = router.db_for_read(Location)
    ids = [match.location_id for match in matches]
    vendor = connections[db].vendor
    columns = [
        *_CLINICS.select,
        *_PRACTITIONERS.select,
        *_PROFESSIONS.select,
        *details_columns_sql(vendor),
    ]
    sql = (
        f"SELECT {', '.join(columns)} FROM {Location._meta.db_table} l "
        f"JOIN {Practitioner._meta.db_table} p ON p.id = l.practitioner_id "
        f"LEFT JOIN {Profession._meta.db_table} f ON f.id = p.profession_id "
        f"WHERE l.id IN ({_placeholders(ids)})"
    )
    with connections[db].cursor() as cursor:
        cursor.execute(sql, ids)
        rows = cursor.fetchall()
    first_practitioner = len(_CLINICS.fields)
    first_profession = first_practitioner + len(_PRACTITIONERS.fields)
    first_detail = first_profession + len(_PROFESSIONS.fields)
    clinics = {}
    now = timezone.now()
    for row in rows:
        clinic = _CLINICS.build(db, row[:first_practitioner])
        practitioner = _PRACTITIONERS.build(db, row[first_practitioner:first_profession])
        profession = row[first_profession:first_detail]
        practitioner.profession = (
            None if profession[0] is None else _PROFESSIONS.build(db, profession)
        )
        apply_details_columns(practitioner, clinic, row[first_detail:], now=now)
        clinic.practitioner = practitioner
        clinics[clinic.pk] = clinic
    listings = []
    for match in matches:
        clinic = clinics[match.location_id]
        practitioner = clinic.practitioner
        practitioner.distance_mi = match.distance_mi
        practitioner.nearest_location_id = match.location_id
        practitioner.nearest_location = clinic
        listings.append(practitioner)
    return listings


def attach_certificates(
    practitioners: Sequence[Practitioner], every_certification: Sequence[Certification]
) -> None:
    """Give each practitioner on a page its ``certificates`` (every record, expired ones
    too, by certification name) in one query, reusing the Certification rows the search
    already read instead of joining them into every record."""
    by_id = {certification.id: certification for certification in every_certification}
    for certification in every_certification:
        if certification.parent_id is not None:
            certification.parent = by_id[certification.parent_id]
    records: dict[int, list[PractitionerCertification]] = {p.pk: [] for p in practitioners}
    if records:
        db = router.db_for_read(PractitionerCertification)
        ids = list(records)
        sql = (
            f"SELECT {', '.join(_CERTIFICATES.select)} "
            f"FROM {PractitionerCertification._meta.db_table} r "
            f"WHERE r.practitioner_id IN ({_placeholders(ids)})"
        )
        with connections[db].cursor() as cursor:
            cursor.execute(sql, ids)
            rows = cursor.fetchall()
        for row in rows:
            record = _CERTIFICATES.build(db, row)
            record.certification = by_id[record.certification_id]
            records[record.practitioner_id].append(record)
    for practitioner in practitioners:
        practitioner.certificates = sorted(
            records[practitioner.pk], key=lambda record: record.certification.name
        )


def attach_first_clinics(practitioners: Sequence[Practitioner]) -> None:
    """Without an origin there is no nearest clinic: show each practitioner's first one, for
    the whole page in one query."""
    first_clinics: dict[int, Location] = {}
    if practitioners:
        clinics = Location.objects.filter(
            practitioner_id__in=[p.pk for p in practitioners]
        ).order_by("-pk")
        first_clinics = {clinic.practitioner_id: clinic for clinic in clinics}
    for practitioner in practitioners:
        practitioner.nearest_location = first_clinics.get(practitioner.pk)


def nearest_match_distance(
    queryset: QuerySet, origin: geo.Origin, radius_mi: float
) -> float | None:
    """How far the nearest match is when none is within the radius (None if none at all).

    Widens the circle step by step so the bounding-box index keeps every probe cheap.
    """
    radius = radius_mi
    # Guam is 7,000 miles from Memphis: the last step takes in the whole earth.
    while radius < geo.ANYWHERE_MI:
        radius = min(radius * 4, geo.ANYWHERE_MI)
        first = queryset.nearest(origin, radius, limit=1)
        if first:
            return first[0].distance_mi
    return None


def widen_radius(distance_mi: float) -> int | None:
    """The smallest radius the page offers that reaches ``distance_mi``; None when the nearest
    match is beyond the largest (the page then offers the nearest by distance, however far)."""
    for choice in sorted(settings.SEARCH_RADIUS_CHOICES_MI):
        if choice >= distance_mi:
            return choice
    return None


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

    @property
    def any_distance(self) -> bool:
        """Nearest first however far ("radius=any"): the page says so instead of a radius."""
        return self.radius_mi >= geo.ANYWHERE_MI

    @property
    def largest_radius(self) -> int:
        return max(settings.SEARCH_RADIUS_CHOICES_MI)


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
        )
    else:
        paginator = CappedPaginator(
            filterset.qs.select_related("profession"), per_page, cap=settings.SEARCH_COUNT_CAP
        )
    page = paginator.page(page_number) if strict else paginator.get_page(page_number)
    page.object_list = list(page.object_list)
    if filterset.origin is None:
        attach_first_clinics(page.object_list)
    attach_certificates(page.object_list, filterset.every_certification)
    if filterset.origin is None:  # with an origin, the rows came with them
        attach_practice_details(
            page.object_list,
            [getattr(p, "nearest_location", None) for p in page.object_list],
            db=router.db_for_read(Location),
            now=timezone.now(),
        )
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
