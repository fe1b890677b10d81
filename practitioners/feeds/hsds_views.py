"""/hsds/: the HSDS 3.0 API's read endpoints over ``hsds`` (the mapping).

``page`` (from 1) and ``per_page`` (1 to 100, default 50) page as the HSDS API says, with its
envelope (total_items, total_pages, ...); ``modified_after`` (an ISO datetime or date) is the
incremental pull, answered through the indexes on ``updated_at``. The total over everything
published is cached for ``HSDS_TOTAL_CACHE_SECONDS`` (:func:`_total`). A parameter we do not
support is a 400 with a JSON ``{"detail": ...}``: a client asking for a filter must not mistake
an unfiltered page for an answer.
"""

from __future__ import annotations

import contextlib
import datetime as dt

from django.conf import settings
from django.core.cache import cache
from django.db.models import QuerySet
from django.http import HttpRequest, JsonResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.views.decorators.http import require_GET

from ..models import Location
from . import hsds

DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 100
PARAMETERS = {"page", "per_page", "modified_after", "format"}


class BadRequest(Exception):
    pass


def _error(message: str, status: int = 400) -> JsonResponse:
    return JsonResponse({"detail": message}, status=status)


def _number(request: HttpRequest, name: str, default: int, top: int | None) -> int:
    raw = request.GET.get(name, "").strip()
    if not raw:
        return default
    if not raw.isascii() or not raw.isdigit() or int(raw) < 1 or (top and int(raw) > top):
        limit = f"from 1 to {top}" if top else "from 1"
        raise BadRequest(f"{name} must be a whole number {limit}.")
    return int(raw)


def _modified_after(request: HttpRequest) -> dt.datetime | None:
    raw = request.GET.get("modified_after", "").strip().replace(" ", "+")
    if not raw:
        return None
    moment = None
    with contextlib.suppress(ValueError):
        moment = parse_datetime(raw)
    if moment is None:
        day = parse_date(raw) if len(raw) == 10 else None
        if day is None:
            raise BadRequest(
                "modified_after must be an ISO date or datetime, e.g. 2026-01-31T12:00:00Z."
            )
        moment = dt.datetime.combine(day, dt.time())
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=dt.UTC)  # HSDS does not say; UTC is the safe reading
    return moment


def _check(request: HttpRequest) -> None:
    unknown = sorted(set(request.GET) - PARAMETERS)
    if unknown:
        raise BadRequest(
            f"Not supported here: {', '.join(unknown)}. Use {', '.join(sorted(PARAMETERS))}."
        )
    if request.GET.get("format", "json").strip().lower() != "json":
        raise BadRequest("format: this API answers json only.")


def _total(kind: str, rows: QuerySet, modified_after: dt.datetime | None) -> int:
    """``total_items``. With ``modified_after`` the few changed rows are counted through an
    index, exactly; without, the count over every published listing (a second or more for a
    million listings' services) is kept ``HSDS_TOTAL_CACHE_SECONDS`` (it may lag that long
    behind an edit; the page's contents never do)."""
    if modified_after is not None:
        return rows.count()
    key = f"hsds:total:{kind}:{timezone.localdate().isoformat()}"  # today: what is current
    total = cache.get(key)
    if total is None:
        total = rows.count()
        cache.set(key, total, settings.HSDS_TOTAL_CACHE_SECONDS)
    return total


def _page(request: HttpRequest, total: int) -> hsds.Pages:
    return hsds.Pages(
        total=total,
        number=_number(request, "page", 1, None),
        per_page=_number(request, "per_page", DEFAULT_PER_PAGE, MAX_PER_PAGE),
    )


@require_GET
def index(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        {
            "version": hsds.HSDS_VERSION,
            "profile": hsds.PROFILE_URL,
            "openapi_url": "https://raw.githubusercontent.com/openreferral/specification/3.0/"
            "schema/openapi.json",
            # Not in the HSDS metadata object, but what a client wants next.
            "endpoints": {
                name: request.build_absolute_uri(reverse(f"hsds-{name}"))
                for name in ("organizations", "services", "locations")
            },
        }
    )


def _listing(request: HttpRequest, build) -> JsonResponse:
    try:
        _check(request)
        modified_after = _modified_after(request)
        return JsonResponse(build(request, modified_after))
    except BadRequest as error:
        return _error(str(error))


@require_GET
def organizations(request: HttpRequest) -> JsonResponse:
    def build(request: HttpRequest, modified_after: dt.datetime | None) -> dict:
        listings = hsds.practitioners(modified_after)
        pages = _page(request, _total("organizations", listings, modified_after))
        rows = listings.select_related("profession").order_by("pk")[
            pages.offset : pages.offset + pages.per_page
        ]
        return pages.envelope([hsds.organization(p) for p in rows])

    return _listing(request, build)


@require_GET
def services(request: HttpRequest) -> JsonResponse:
    def build(request: HttpRequest, modified_after: dt.datetime | None) -> dict:
        records = hsds.current_records(timezone.localdate(), modified_after)
        pages = _page(request, _total("services", records, modified_after))
        rows = list(
            hsds.with_service_rows(records).order_by("pk")[
                pages.offset : pages.offset + pages.per_page
            ]
        )
        return pages.envelope(hsds.services_for(rows))

    return _listing(request, build)


@require_GET
def locations(request: HttpRequest) -> JsonResponse:
    def build(request: HttpRequest, modified_after: dt.datetime | None) -> dict:
        clinics = hsds.clinics(modified_after)
        pages = _page(request, _total("locations", clinics, modified_after))
        rows = list(clinics.order_by("pk")[pages.offset : pages.offset + pages.per_page])
        return pages.envelope(hsds.locations_for(rows, timezone.localdate()))

    return _listing(request, build)


@require_GET
def organization(request: HttpRequest, hsds_id: str) -> JsonResponse:
    pk = hsds.row_id("organization", hsds_id)
    found = list(hsds.practitioners().filter(pk=pk).select_related("profession")) if pk else []
    if not found:
        return _error(f"No organization {hsds_id} here.", status=404)
    return JsonResponse(hsds.organization(found[0]))


@require_GET
def service(request: HttpRequest, hsds_id: str) -> JsonResponse:
    pk = hsds.row_id("service", hsds_id)
    records = hsds.current_records(timezone.localdate()).filter(pk=pk) if pk else None
    found = list(hsds.with_service_rows(records)) if records is not None else []
    if not found:
        return _error(f"No service {hsds_id} here.", status=404)
    return JsonResponse(hsds.services_for(found)[0])


@require_GET
def location(request: HttpRequest, hsds_id: str) -> JsonResponse:
    pk = hsds.row_id("location", hsds_id)
    found: list[Location] = list(hsds.clinics().filter(pk=pk)) if pk else []
    if not found:
        return _error(f"No location {hsds_id} here.", status=404)
    return JsonResponse(hsds.locations_for(found, timezone.localdate())[0])
