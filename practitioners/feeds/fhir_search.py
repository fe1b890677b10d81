"""FHIR search and read over published listings: parameters -> querysets -> one page.

Every search pages by id (``_cursor``, the last id of the page before), so page 10,000 costs what
page 1 does; ``Location?near=`` is the exception: it is the search page's own distance search
(``search/query.py``), paged as the page pages it (``_page``), at most ``SEARCH_COUNT_CAP``
matches deep. A parameter we do not support is a 400, never silently ignored: a client that
asked for a filter must not mistake an unfiltered list for an answer.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from django.core.paginator import InvalidPage
from django.db.models import Q, QuerySet
from django.http import QueryDict
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from ..models import Certification, Location, Practitioner, PractitionerCertification
from ..practice import Language, OpeningHours
from ..search.filters import PractitionerFilter
from ..search.query import search_practitioners
from . import fhir, hsds

DEFAULT_COUNT = 20
MAX_COUNT = 100
KM_PER_MILE = 1.609344
TYPES = ("Practitioner", "PractitionerRole", "Location", "Organization")
# Parameters any search takes; the view reads _format itself.
COMMON = {"_count", "_cursor", "_lastUpdated", "_id", "_format"}


class FhirError(Exception):
    """Answered as an OperationOutcome with this HTTP status and IssueType code."""

    def __init__(self, status: int, code: str, diagnostics: str) -> None:
        super().__init__(diagnostics)
        self.status = status
        self.code = code
        self.diagnostics = diagnostics


def invalid(message: str) -> FhirError:
    return FhirError(400, "invalid", message)


@dataclass
class Page:
    matches: list[dict]
    included: list[dict] = field(default_factory=list)
    next_params: dict[str, str] | None = None
    total: int | None = None


# --- Parameter values ---------------------------------------------------------------------------


def _one(query: QueryDict, name: str) -> str | None:
    values = query.getlist(name)
    if not values:
        return None
    if len(values) > 1:
        raise invalid(f"Give {name} once.")
    value = values[0].strip()
    if not value:
        raise invalid(f"{name} is empty.")
    return value


def count(query: QueryDict) -> int:
    raw = _one(query, "_count")
    if raw is None:
        return DEFAULT_COUNT
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_COUNT:
        raise invalid(f"_count must be a whole number from 1 to {MAX_COUNT}.")
    return int(raw)


def _positive_int(name: str, raw: str) -> int:
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise invalid(f"{name} must be a whole number, not {raw!r}.")
    return int(raw)


def token(raw: str) -> tuple[str | None, str]:
    """``system|code`` or ``code`` -> (system or None, code)."""
    if "|" in raw:
        system, _, code = raw.partition("|")
        return system or None, code
    return None, raw


def reference_id(name: str, raw: str, kind: str) -> int:
    """``Kind/12``, ``12`` or an absolute URL ending in ``Kind/12`` -> 12."""
    match = re.fullmatch(rf"(?:.*/)?(?:{kind}/)?(\d{{1,18}})", raw)
    if match is None:
        raise invalid(f"{name} must be a {kind} reference like {kind}/123, not {raw!r}.")
    return int(match.group(1))


_PREFIX = re.compile(r"^(eq|gt|ge|lt|le)?(.+)$")


def last_updated(values: list[str], fields: list[str]) -> Q:
    """``_lastUpdated`` (repeatable, e.g. ``ge2026-01-01&_lastUpdated=lt2026-02-01``) over the
    resource's last change, which is the latest of ``fields``."""
    condition = Q()
    for raw in values:
        prefix, text = _PREFIX.match(raw.strip()).groups()  # type: ignore[union-attr]
        low, high = _interval(text)
        any_at_or_after = lambda moment, op: _any(fields, op, moment)  # noqa: E731
        if prefix == "gt":
            condition &= any_at_or_after(high, "gte")
        elif prefix == "ge":
            condition &= any_at_or_after(low, "gte")
        elif prefix == "lt":
            condition &= _all(fields, "lt", low)
        elif prefix == "le":
            condition &= _all(fields, "lt", high)
        else:  # eq, or no prefix
            condition &= any_at_or_after(low, "gte") & _all(fields, "lt", high)
    return condition


def _any(fields: list[str], op: str, moment: dt.datetime) -> Q:
    result = Q()
    for name in fields:
        result |= Q(**{f"{name}__{op}": moment})
    return result


def _all(fields: list[str], op: str, moment: dt.datetime) -> Q:
    return Q(**{f"{name}__{op}": moment for name in fields})


def changed_since(values: list[str]) -> dt.datetime | None:
    """The moment every resource ``_lastUpdated`` matches changed at or after (gt, ge and eq
    have one; lt and le alone do not), for the index on ``updated_at`` to narrow the search."""
    bounds = []
    for raw in values:
        prefix, text = _PREFIX.match(raw.strip()).groups()  # type: ignore[union-attr]
        low, high = _interval(text)
        if prefix == "gt":
            bounds.append(high)
        elif prefix in (None, "eq", "ge"):
            bounds.append(low)
    return max(bounds, default=None)


def _interval(text: str) -> tuple[dt.datetime, dt.datetime]:
    """A date is the whole day in UTC; an instant is that instant: [low, high)."""
    day = parse_date(text) if len(text) == 10 else None
    if day is not None:
        low = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
        return low, low + dt.timedelta(days=1)
    try:
        moment = parse_datetime(text.replace(" ", "+"))  # a "+" arrives as a space if unquoted
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise invalid(
            f"_lastUpdated takes a date (2026-01-31) or an instant with its time zone "
            f"(2026-01-31T12:00:00Z), with an optional gt, ge, lt, le or eq; not {text!r}."
        )
    return moment, moment + dt.timedelta(microseconds=1)


def _string_start(column: str, value: str) -> Q:
    """FHIR string search: any word of the column starts with the value, any case."""
    return Q(**{f"{column}__istartswith": value}) | Q(**{f"{column}__icontains": f" {value}"})


# --- Each type's search ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    parameters: frozenset[str]
    queryset: Callable[[], QuerySet]
    # What _lastUpdated compares: the resource's last change is the latest of these.
    updated_fields: list[str]
    filter: Callable[[QuerySet, QueryDict], QuerySet]
    build: Callable[[list, dt.date], list[dict]]


def _practitioners() -> QuerySet:
    return Practitioner.objects.published()


def _filter_practitioners(queryset: QuerySet, query: QueryDict) -> QuerySet:
    for raw in query.getlist("identifier"):
        system, value = token(raw)
        if system not in (None, fhir.NPI_SYSTEM):
            return queryset.none()  # we hold no identifier of another system
        queryset = queryset.filter(npi=value)
    for raw in query.getlist("name"):
        queryset = queryset.filter(_string_start("name", raw.strip()))
    for raw in query.getlist("given"):
        queryset = queryset.filter(name__istartswith=raw.strip())
    for raw in query.getlist("family"):
        # The family name is the name's last word (human_name() says so too).
        queryset = queryset.filter(name__iregex=rf"(^|\s){re.escape(raw.strip())}\S*$")
    for raw in query.getlist("qualification-code"):
        codes = raw.split(",")  # a comma is "or" in FHIR
        wanted = []
        for code_token in codes:
            system, code = token(code_token.strip())
            if system in (None, fhir.certification_system()):
                wanted.append(code)
        certifications = list(Certification.objects.filter(slug__in=wanted))
        if not certifications:
            return queryset.none()
        queryset = queryset.holding(certifications, match="any")
    return queryset


def build_practitioners(practitioners: list[Practitioner], on: dt.date) -> list[dict]:
    """Two statements for the page: every certificate (with its certification), every
    language."""
    records: dict[int, list[PractitionerCertification]] = {p.pk: [] for p in practitioners}
    languages: dict[int, list[Language]] = {p.pk: [] for p in practitioners}
    if records:
        for record in PractitionerCertification.objects.filter(
            practitioner_id__in=list(records)
        ).select_related("certification"):
            records[record.practitioner_id].append(record)
        spoken = Practitioner.languages.through.objects.filter(practitioner_id__in=list(records))
        for link in spoken.select_related("language"):
            languages[link.practitioner_id].append(link.language)
    return [
        fhir.practitioner_resource(p, records[p.pk], on, languages[p.pk]) for p in practitioners
    ]


def hours_of(locations: list[Location]) -> dict[int, list[OpeningHours]]:
    """Every opening-hours row of these clinics: one statement."""
    hours: dict[int, list[OpeningHours]] = {location.pk: [] for location in locations}
    if hours:
        for interval in OpeningHours.objects.filter(location_id__in=list(hours)):
            hours[interval.location_id].append(interval)
    return hours


def build_locations(locations: list[Location], on: dt.date) -> list[dict]:
    hours = hours_of(locations)
    return [fhir.location_resource(loc, hours[loc.pk], on) for loc in locations]


def _clinics() -> QuerySet:
    return Location.objects.published()


def _filter_locations(queryset: QuerySet, query: QueryDict) -> QuerySet:
    for raw in query.getlist("address-postalcode"):
        queryset = queryset.filter(postal_code__startswith=raw.strip())
    for raw in query.getlist("address-city"):
        queryset = queryset.filter(city__istartswith=raw.strip())
    for raw in query.getlist("address-state"):
        queryset = queryset.filter(state__iexact=raw.strip())
    for raw in query.getlist("organization"):
        queryset = queryset.filter(pk=reference_id("organization", raw, "Organization")).exclude(
            name=""
        )
    return queryset


def _organizations() -> QuerySet:
    return Location.objects.published().exclude(name="")


def _filter_organizations(queryset: QuerySet, query: QueryDict) -> QuerySet:
    for raw in query.getlist("name"):
        queryset = queryset.filter(_string_start("name", raw.strip()))
    for raw in query.getlist("address-postalcode"):
        queryset = queryset.filter(postal_code__startswith=raw.strip())
    return queryset


def _roles() -> QuerySet:
    return Location.objects.published().select_related("practitioner")


def _filter_roles(queryset: QuerySet, query: QueryDict) -> QuerySet:
    for raw in query.getlist("practitioner"):
        queryset = queryset.filter(
            practitioner_id=reference_id("practitioner", raw, "Practitioner")
        )
    for raw in query.getlist("location"):
        queryset = queryset.filter(pk=reference_id("location", raw, "Location"))
    for raw in query.getlist("organization"):
        queryset = queryset.filter(pk=reference_id("organization", raw, "Organization")).exclude(
            name=""
        )
    for raw in query.getlist("specialty"):
        wanted = set()
        for code_token in raw.split(","):
            system, code = token(code_token.strip())
            if system in (None, fhir.NUCC_SYSTEM):
                wanted.add(code)
        professions = [
            profession_id
            for profession_id, (code, _) in fhir.specialty_codes().items()
            if code in wanted
        ]
        queryset = queryset.filter(practitioner__profession_id__in=professions)
    return queryset


def _build_roles(locations: list[Location], on: dt.date) -> list[dict]:
    specialties = fhir.specialty_codes()
    return [fhir.role_resource(location, specialties) for location in locations]


KINDS: dict[str, Kind] = {
    "Practitioner": Kind(
        parameters=frozenset({"identifier", "name", "given", "family", "qualification-code"}),
        queryset=_practitioners,
        updated_fields=["updated_at"],
        filter=_filter_practitioners,
        build=build_practitioners,
    ),
    "PractitionerRole": Kind(
        parameters=frozenset({"practitioner", "location", "organization", "specialty", "_include"}),
        queryset=_roles,
        updated_fields=["updated_at", "practitioner__updated_at"],
        filter=_filter_roles,
        build=_build_roles,
    ),
    "Location": Kind(
        parameters=frozenset(
            {"address-postalcode", "address-city", "address-state", "organization", "near"}
        ),
        queryset=_clinics,
        updated_fields=["updated_at"],
        filter=_filter_locations,
        build=build_locations,
    ),
    "Organization": Kind(
        parameters=frozenset({"name", "address-postalcode"}),
        queryset=_organizations,
        updated_fields=["updated_at"],
        filter=_filter_organizations,
        build=lambda locations, on: [fhir.organization_resource(loc) for loc in locations],
    ),
}


def _changed(kind_name: str, since: dt.datetime) -> Q:
    if kind_name == "Practitioner":
        return Q(pk__in=hsds.changed_listings(since))
    clinics = Q(pk__in=hsds.changed_clinics(since))
    if kind_name == "PractitionerRole":  # a role changes with its clinic or its listing
        return clinics | Q(practitioner_id__in=hsds.changed_listings(since))
    return clinics


def _kind(name: str) -> Kind:
    try:
        return KINDS[name]
    except KeyError:
        raise FhirError(
            404, "not-supported", f"This server serves {', '.join(TYPES)}; not {name!r}."
        ) from None


def read(kind_name: str, resource_id: str) -> dict:
    kind = _kind(kind_name)
    if not resource_id.isascii() or not resource_id.isdigit() or len(resource_id) > 18:
        raise FhirError(404, "not-found", f"{kind_name}/{resource_id} is not known here.")
    found = list(kind.queryset().filter(pk=int(resource_id)))
    if not found:
        raise FhirError(404, "not-found", f"{kind_name}/{resource_id} is not known here.")
    return kind.build(found, timezone.localdate())[0]


def _check_parameters(kind_name: str, kind: Kind, query: QueryDict) -> None:
    for name in query:
        base = name.split(":", 1)[0]
        if base in kind.parameters or base in COMMON or (name == "_page" and "near" in query):
            if ":" in name:
                raise invalid(f"Search modifiers are not supported ({name}).")
            continue
        raise invalid(
            f"{kind_name} cannot be searched by {name!r}; it can by "
            f"{', '.join(sorted(kind.parameters | (COMMON - {'_format'})))}."
        )


def search(kind_name: str, query: QueryDict) -> Page:
    kind = _kind(kind_name)
    _check_parameters(kind_name, kind, query)
    per_page = count(query)
    on = timezone.localdate()
    if kind_name == "Location" and "near" in query:
        return _near(query, per_page)
    queryset = kind.filter(kind.queryset(), query)
    if "_id" in query:
        ids = [
            _positive_int("_id", value) for raw in query.getlist("_id") for value in raw.split(",")
        ]
        queryset = queryset.filter(pk__in=ids)
    if "_lastUpdated" in query:
        values = query.getlist("_lastUpdated")
        queryset = queryset.filter(last_updated(values, kind.updated_fields))
        since = changed_since(values)
        if since is not None:
            # Implied by the condition above, and answered by the updated_at indexes: an
            # incremental pull reads what changed, not every published row.
            queryset = queryset.filter(_changed(kind_name, since))
    cursor = _one(query, "_cursor")
    if cursor is not None:
        queryset = queryset.filter(pk__gt=_positive_int("_cursor", cursor))
    rows = list(queryset.order_by("pk")[: per_page + 1])
    has_next = len(rows) > per_page
    rows = rows[:per_page]
    page = Page(matches=kind.build(rows, on))
    if kind_name == "PractitionerRole":
        page.included = _included(rows, query.getlist("_include"), on)
    if has_next:
        page.next_params = {"_cursor": str(rows[-1].pk)}
    return page


def _included(locations: list[Location], includes: list[str], on: dt.date) -> list[dict]:
    wanted: set[str] = set()
    for raw in includes:
        for value in raw.split(","):
            value = value.strip()
            if value in ("*", "PractitionerRole:*"):
                wanted |= {"practitioner", "location", "organization"}
            elif value in fhir.INCLUDES["PractitionerRole"]:
                wanted.add(value.split(":", 1)[1])
            else:
                raise invalid(
                    f"_include takes {', '.join(fhir.INCLUDES['PractitionerRole'])} or *; "
                    f"not {value!r}."
                )
    included: list[dict] = []
    if "practitioner" in wanted:
        practitioners = list({loc.practitioner_id: loc.practitioner for loc in locations}.values())
        included += build_practitioners(practitioners, on)
    if "location" in wanted:
        included += build_locations(locations, on)
    if "organization" in wanted:
        included += [fhir.organization_resource(loc) for loc in locations if loc.name]
    return included


# --- Location?near= -----------------------------------------------------------------------------

_NEAR_ALONE = {"near", "_count", "_page", "_format"}
_UNITS = {"mi": 1.0, "[mi_i]": 1.0, "km": 1 / KM_PER_MILE, "m": 1 / (KM_PER_MILE * 1000)}


def near_radius_mi(raw: str) -> tuple[str, str, str | None]:
    """``lat|lon|distance|unit`` -> (lat, lon, radius in miles as text or None)."""
    parts = raw.split("|")
    if len(parts) not in (2, 3, 4) or not all(part.strip() for part in parts):
        raise invalid("near takes latitude|longitude|distance|unit, e.g. 35.11|-89.90|25|mi.")
    lat, lon = parts[0].strip(), parts[1].strip()
    if len(parts) == 2:
        return lat, lon, None
    unit = parts[3].strip() if len(parts) == 4 else "mi"
    if unit not in _UNITS:
        raise invalid(f"near's distance unit is mi or km, not {unit!r}.")
    try:
        distance = float(parts[2])
    except ValueError:
        raise invalid(f"near's distance must be a number, not {parts[2]!r}.") from None
    return lat, lon, f"{distance * _UNITS[unit]:.6f}"


def _near(query: QueryDict, per_page: int) -> Page:
    """The search page's own distance search, for its clinics: each matching practitioner's
    nearest clinic, nearest first, exactly the rows /search/?lat=&lon=&radius= shows."""
    others = set(query) - _NEAR_ALONE
    if others:
        raise invalid(
            f"near is answered by the directory's distance search and combines only with "
            f"_count and _page; not with {', '.join(sorted(others))}."
        )
    lat, lon, radius = near_radius_mi(_one(query, "near") or "")
    data = QueryDict(mutable=True)
    data.update({"lat": lat, "lon": lon})
    if radius is not None:
        data["radius"] = radius
    filterset = PractitionerFilter(data)
    if not filterset.is_valid():
        messages = [
            f"{name}: {message}" for name, errors in filterset.errors.items() for message in errors
        ]
        raise invalid("near: " + " ".join(messages))
    number = _one(query, "_page") or "1"
    try:
        results = search_practitioners(
            filterset.params, page=number, per_page=per_page, strict=True
        )
    except InvalidPage as error:
        raise invalid(f"_page: {error}") from error
    ids = [p.nearest_location.pk for p in results.page.object_list]
    by_id = {location.pk: location for location in Location.objects.filter(pk__in=ids)}
    page = Page(
        matches=build_locations([by_id[pk] for pk in ids if pk in by_id], filterset.params.on)
    )
    if results.page.has_next():
        page.next_params = {"_page": str(results.page.next_page_number())}
    if not results.paginator.count_is_capped:
        page.total = results.paginator.count
    return page
