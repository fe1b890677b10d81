"""Listings as Open Referral HSDS 3.0: the one place the HSDS mapping is decided, for the API at
/hsds/ (``hsds_views.py``) and the tabular export (``manage.py export_hsds``) alike: the export
writes the same objects the API serves, split into their tables.

- a published listing is an ``organization`` (the practitioner's practice);
- each of its clinics is a ``location`` of that organization, with its ``address`` and phone;
- each current certificate is a ``service`` ("Graston Technique M1" offered by that
  practitioner) at every one of the practitioner's locations (``service_at_locations``); the
  certification itself is an ``attribute`` whose ``taxonomy_term`` is in our published
  taxonomy of techniques and levels (docs/hsds.md), and the day staff verified it is the
  service's ``assured_date``.

Ids are UUIDs that carry our row ids (:func:`hsds_id`), so they are stable across exports and
the API can be asked for one again.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache

from django.conf import settings
from django.db.models import QuerySet, Value
from django.db.models.functions import Coalesce
from django.urls import get_script_prefix, reverse
from django.utils import timezone

from ..models import Certification, Location, Practitioner, PractitionerCertification
from ..practice import Language, OpeningHours, Weekday, clinic_time_zone_name, format_time

HSDS_VERSION = "3.0"
PROFILE_URL = "https://docs.openreferral.org/en/v3.0/hsds/"

# The first 32 bits of an id say what it is; the rest carry our row ids (48 bits each).
_KIND = {
    "organization": 0x0A000001,
    "location": 0x0A000002,
    "service": 0x0A000003,
    "service_at_location": 0x0A000004,
    "address": 0x0A000005,
    "phone": 0x0A000006,
    "attribute": 0x0A000007,
    "taxonomy_term": 0x0A000008,
    "taxonomy": 0x0A000009,
    "schedule": 0x0A00000A,
    "accessibility": 0x0A00000B,
    "language": 0x0A00000C,
}
_PK_BITS = 48


def hsds_id(kind: str, first: int, second: int = 0) -> str:
    # What str(uuid.UUID(int=...)) writes, formatted directly: the export makes ~20 ids per
    # listing, and building a UUID object for each was a tenth of its time.
    digits = f"{(_KIND[kind] << 96) | (first << _PK_BITS) | second:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def row_id(kind: str, value: str) -> int | None:
    """The row id an :func:`hsds_id` of this kind carries, or None if it is not one."""
    try:
        number = uuid.UUID(value).int
    except ValueError:
        return None
    if number >> 96 != _KIND[kind] or number & ((1 << _PK_BITS) - 1):
        return None
    return (number >> _PK_BITS) & ((1 << _PK_BITS) - 1)


def timestamp(value: dt.datetime) -> str:
    """HSDS datetimes "should have millisecond accuracy": UTC, milliseconds, Z."""
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def profile_url(slug: str) -> str:
    """The listing's public page, absolute: ``Practitioner.get_absolute_url`` without a
    ``reverse()`` per row (the URL resolver cost more than the rest of an organization)."""
    before, after = _profile_path_parts(get_script_prefix())
    return f"{settings.SITE_URL.rstrip('/')}{before}{slug}{after}"


@cache
def _profile_path_parts(script_prefix: str) -> tuple[str, str]:
    marker = "slug-marker"
    before, after = reverse("practitioners:profile", kwargs={"slug": marker}).split(marker)
    return before, after


# --- The taxonomy of certifications -------------------------------------------------------------

TAXONOMY_ID = hsds_id("taxonomy", 1)


def taxonomy() -> dict:
    return {
        "id": TAXONOMY_ID,
        "name": "Practitioner Locator certifications",
        "description": "Manual-therapy techniques and their levels that practitioners in this "
        "directory are certified in; a level's parent is its technique. Codes are the "
        "directory's certification slugs.",
        "uri": f"{settings.SITE_URL.rstrip('/')}/hsds/taxonomy/certifications",
        "version": "1",
    }


def taxonomy_term(certification: Certification) -> dict:
    term = {
        "id": hsds_id("taxonomy_term", certification.pk),
        "code": certification.slug,
        "name": certification.name,
        "description": certification.description or certification.name,
        "taxonomy_id": TAXONOMY_ID,
        "taxonomy": "Practitioner Locator certifications",
        "language": "en",
    }
    if certification.parent_id is not None:
        term["parent_id"] = hsds_id("taxonomy_term", certification.parent_id)
    if certification.website:
        term["term_uri"] = certification.website
    return term


def attribute_value(record: PractitionerCertification) -> str:
    """What the directory knows of the certificate: "verified" (staff checked it),
    "self-reported" (the practitioner added it, unchecked) or "listed" (imported, unchecked)."""
    if record.verified_on is not None:
        return "verified"
    return "self-reported" if record.self_reported else "listed"


# --- Entities -----------------------------------------------------------------------------------


def _phones(number: str, owner: str, owner_id: str, phone_id: str) -> list[dict]:
    if not number:
        return []
    return [{"id": phone_id, owner: owner_id, "number": number, "type": "voice"}]


def organization(practitioner: Practitioner) -> dict:
    """``practitioner`` with its ``profession`` loaded."""
    org_id = hsds_id("organization", practitioner.pk)
    profession = practitioner.profession.name if practitioner.profession else "Practitioner"
    result = {
        "id": org_id,
        "name": str(practitioner),
        "description": practitioner.bio or f"{profession} listed in the Practitioner Locator.",
        "uri": profile_url(practitioner.slug),
        "phones": _phones(
            practitioner.phone, "organization_id", org_id, hsds_id("phone", practitioner.pk)
        ),
    }
    if practitioner.email:
        result["email"] = practitioner.email
    if practitioner.website:
        result["website"] = practitioner.website
    return result


_BYDAY = {day.value: day.label[:2].upper() for day in Weekday}  # 0 -> "MO"
_DAY_NAMES = {day.value: str(day.label) for day in Weekday}  # get_weekday_display(), cheaper
_ACCESS = [
    ("wheelchair_entrance", "Wheelchair-accessible entrance"),
    ("accessible_restroom", "Accessible restroom"),
    ("parking", "Parking on site"),
    ("public_transit", "Near public transit"),
]


def schedules(clinic: Location, hours: Sequence[OpeningHours], on: dt.date) -> list[dict]:
    """One weekly schedule per opening interval, in the clinic's local time (HSDS's single
    UTC offset cannot follow daylight saving, so the zone is named in the description). During
    a temporary closure the schedules are valid from the day it reopens."""
    zone = clinic_time_zone_name(clinic.state, clinic.postal_code)
    location_id = hsds_id("location", clinic.pk)
    reopens = clinic.reopens_on if clinic.reopens_on and on < clinic.reopens_on else None
    result = []
    for interval in sorted(hours, key=lambda h: (h.weekday, h.opens)):
        schedule = {
            "id": hsds_id("schedule", interval.pk),
            "location_id": location_id,
            "freq": "WEEKLY",
            "wkst": "MO",
            "byday": _BYDAY[interval.weekday],
            "opens_at": f"{interval.opens.hour:02d}:{interval.opens.minute:02d}",
            "closes_at": f"{interval.closes.hour:02d}:{interval.closes.minute:02d}",
            "description": f"{_DAY_NAMES[interval.weekday]} "
            f"{format_time(interval.opens)}-{format_time(interval.closes)} ({zone} time)",
        }
        if reopens is not None:
            schedule["valid_from"] = reopens.isoformat()
        result.append(schedule)
    return result


def location(
    clinic: Location, hours: Sequence[OpeningHours] = (), on: dt.date | None = None
) -> dict:
    """``hours``: the clinic's OpeningHours rows; ``on``: today, for a temporary closure."""
    on = on or timezone.localdate()
    location_id = hsds_id("location", clinic.pk)
    result: dict = {
        "id": location_id,
        "location_type": "physical",
        "organization_id": hsds_id("organization", clinic.practitioner_id),
        "name": clinic.name or clinic.one_line_address,
        "addresses": [
            {
                "id": hsds_id("address", clinic.pk),
                "location_id": location_id,
                "address_1": clinic.address_line1,
                "address_2": clinic.address_line2,
                "city": clinic.city,
                "state_province": clinic.state,
                "postal_code": clinic.postal_code,
                "country": "US",
                "address_type": "physical",
            }
        ],
        # Phone ids of clinics sit above every listing's: the second half carries the clinic.
        "phones": _phones(clinic.phone, "location_id", location_id, hsds_id("phone", 0, clinic.pk)),
    }
    if clinic.latitude is not None and clinic.longitude is not None:
        result["latitude"] = clinic.latitude
        result["longitude"] = clinic.longitude
    if clinic.reopens_on is not None and on < clinic.reopens_on:
        reopens = clinic.reopens_on
        result["description"] = (
            f"Temporarily closed until {reopens:%B} {reopens.day}, {reopens.year}."
        )
    result["schedules"] = schedules(clinic, hours, on)
    result["accessibility"] = [
        {
            "id": hsds_id("accessibility", clinic.pk, number),
            "location_id": location_id,
            "description": text,
        }
        for number, (flag, text) in enumerate(_ACCESS, start=1)
        if getattr(clinic, flag)
    ]
    return result


def service(
    record: PractitionerCertification,
    practitioner: Practitioner,
    clinic_ids: Sequence[int],
    languages: Sequence[Language] = (),
) -> dict:
    """``record`` with its ``certification``: that technique offered by that practitioner at
    each of its clinics, in the languages spoken at the practice."""
    certification = record.certification
    service_id = hsds_id("service", record.pk)
    result: dict = {
        "id": service_id,
        "organization_id": hsds_id("organization", practitioner.pk),
        "name": certification.name,
        "description": f"{certification.name}, offered by {practitioner}.",
        "url": profile_url(practitioner.slug),
        "status": "active",
        "last_modified": timestamp(practitioner.updated_at),
        "attributes": [
            {
                "id": hsds_id("attribute", record.pk),
                "link_id": service_id,
                "link_type": "certification",
                "link_entity": "service",
                "taxonomy_term_id": hsds_id("taxonomy_term", certification.pk),
                "value": attribute_value(record),
                "taxonomy_term": taxonomy_term(certification),
            }
        ],
        "service_at_locations": [
            {
                "id": hsds_id("service_at_location", record.pk, clinic_id),
                "service_id": service_id,
                "location_id": hsds_id("location", clinic_id),
            }
            for clinic_id in clinic_ids
        ],
    }
    result["languages"] = [
        {
            "id": hsds_id("language", record.pk, language.pk),
            "service_id": service_id,
            "name": language.name,
            "code": language.code,
        }
        for language in sorted(languages, key=lambda language: language.name)
    ]
    if record.verified_on is not None:
        result["assured_date"] = record.verified_on.isoformat()
    if certification.issuing_body:
        result["accreditations"] = f"Certified by {certification.issuing_body}"
    return result


# --- What is published, a page at a time ---------------------------------------------------------


def changed_listings(since: dt.datetime) -> QuerySet:
    """Ids of the published listings changed at or after ``since``: a range of the partial
    index on published listings' ``updated_at``, for ``pk__in`` (the page then seeks those rows
    in id order instead of reading every listing to find them)."""
    return Practitioner.objects.published().filter(updated_at__gte=since).values("pk")


def changed_clinics(since: dt.datetime) -> QuerySet:
    """Ids of the published clinics changed at or after ``since``, from the partial index on
    listed clinics' ``updated_at``."""
    return Location.objects.published().filter(updated_at__gte=since).values("pk")


def practitioners(modified_after: dt.datetime | None = None) -> QuerySet[Practitioner]:
    if modified_after is not None:
        # Published is in the subquery: said again outside, SQLite would read every published
        # listing to test each against the list.
        return Practitioner.objects.filter(pk__in=changed_listings(modified_after))
    return Practitioner.objects.published()


def clinics(modified_after: dt.datetime | None = None) -> QuerySet[Location]:
    if modified_after is not None:
        # Published is in the subquery (as in practitioners()).
        return Location.objects.filter(pk__in=changed_clinics(modified_after))
    return Location.objects.published()


def current_records(
    on: dt.date, modified_after: dt.datetime | None = None
) -> QuerySet[PractitionerCertification]:
    """Current certificates of published listings: the services. A service changes when its
    listing does (verification moves the listing's updated_at)."""
    records = PractitionerCertification.objects.current(on)
    if modified_after is not None:
        # The changed listings from their index, then their certificates.
        return records.filter(practitioner_id__in=changed_listings(modified_after))
    # The listing's status through COALESCE, which no index answers: SQLite otherwise reads
    # every published listing from its status index and sorts all their certificates by id to
    # serve the first hundred; this way it reads certificates in id order, looking up each
    # one's listing, and stops at the page.
    return records.alias(listing_status=Coalesce("practitioner__status", Value(""))).filter(
        listing_status=Practitioner.Status.PUBLISHED
    )


def languages_of(practitioner_ids: Sequence[int]) -> dict[int, list[Language]]:
    """Every language spoken at these practices: one statement."""
    spoken: dict[int, list[Language]] = {pk: [] for pk in practitioner_ids}
    if spoken:
        links = Practitioner.languages.through.objects.filter(practitioner_id__in=list(spoken))
        for link in links.select_related("language"):
            spoken[link.practitioner_id].append(link.language)
    return spoken


def hours_of(clinic_ids: Sequence[int]) -> dict[int, list[OpeningHours]]:
    """Every opening interval of these clinics: one statement."""
    hours: dict[int, list[OpeningHours]] = {pk: [] for pk in clinic_ids}
    if hours:
        for interval in OpeningHours.objects.filter(location_id__in=list(hours)):
            hours[interval.location_id].append(interval)
    return hours


def services_for(records: Sequence[PractitionerCertification]) -> list[dict]:
    """``records`` with certification and practitioner loaded; one statement for the clinics,
    one for the languages."""
    clinic_ids: dict[int, list[int]] = {record.practitioner_id: [] for record in records}
    if clinic_ids:
        for pk, owner in (
            Location.objects.filter(practitioner_id__in=list(clinic_ids))
            .order_by("pk")
            .values_list("pk", "practitioner_id")
        ):
            clinic_ids[owner].append(pk)
    spoken = languages_of(list(clinic_ids))
    return [
        service(r, r.practitioner, clinic_ids[r.practitioner_id], spoken[r.practitioner_id])
        for r in records
    ]


def locations_for(clinics: Sequence[Location], on: dt.date) -> list[dict]:
    hours = hours_of([clinic.pk for clinic in clinics])
    return [location(clinic, hours[clinic.pk], on) for clinic in clinics]


def with_service_rows(records: QuerySet) -> QuerySet:
    return records.select_related("certification", "practitioner")


@dataclass(frozen=True)
class Pages:
    """HSDS's page envelope over ``total`` items."""

    total: int
    number: int
    per_page: int

    @property
    def count(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.per_page

    def envelope(self, contents: list[dict]) -> dict:
        return {
            "total_items": self.total,
            "total_pages": self.count,
            "page_number": self.number,
            "size": len(contents),
            "first_page": self.number == 1,
            "last_page": self.number >= self.count,
            "empty": not contents,
            "contents": contents,
        }


# --- The tabular form ---------------------------------------------------------------------------

# Each table of the export and the nested lists its rows come from.
NESTED = {
    "organization": {"phones": "phone"},
    "location": {
        "addresses": "address",
        "phones": "phone",
        "schedules": "schedule",
        "accessibility": "accessibility",
    },
    "service": {
        "attributes": "attribute",
        "service_at_locations": "service_at_location",
        "languages": "language",
    },
}


# Objects the API expands inside a row that the tabular form links by id instead.
EXPANDED = {"attribute": ("taxonomy_term",)}


def split_rows(table: str, entity: dict) -> Iterator[tuple[str, dict]]:
    """One API object as (table, flat row) pairs: itself, then its nested lists' rows."""
    row = {k: v for k, v in entity.items() if not isinstance(v, list | dict)}
    yield table, row
    for key, child_table in NESTED.get(table, {}).items():
        for child in entity.get(key, []):
            yield from split_rows(child_table, child)
