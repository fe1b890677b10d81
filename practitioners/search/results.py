"""What a result row shows, declared once for the page, the API and the admin, and the
partly loaded model instances ``query.py`` builds from its plain SQL rows.

``templates/practitioners/_result.html`` and ``api.py`` show these fields and nothing more;
the admin's clinic forms list the same address fields.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.core.paginator import EmptyPage, Page, PageNotAnInteger, Paginator
from django.db.models import BooleanField, DateField, DateTimeField, Field, Model

from ..models import Certification, Location, Practitioner, PractitionerCertification, Profession
from ..practice import ACCESSIBILITY_FIELDS, CLINIC_DATE_FIELDS, PAYMENT_FIELDS
from . import geo
from .params import CertificationGroup, MatchMode

# A clinic's postal address, in the order it is written.
CLINIC_ADDRESS_FIELDS = ("address_line1", "address_line2", "city", "state", "postal_code")
# What a result row shows of its clinic (the API's "location" object has these keys).
CLINIC_FIELDS = ("name", *CLINIC_ADDRESS_FIELDS, "phone", "latitude", "longitude", "precision")
# ... of its accessibility (the API's "location" has these too; the admin's address forms not).
CLINIC_ACCESS_FIELDS = ACCESSIBILITY_FIELDS
# ... and for "Temporarily closed until ..." and the "confirmed" dates (practice.ClinicAccess).
CLINIC_CHECKED_FIELDS = CLINIC_DATE_FIELDS
# ... of the practitioner, its profession, and each certificate and its certification.
PRACTITIONER_FIELDS = (
    "slug",
    "name",
    "credentials",
    "npi",
    "phone",
    "new_patients",  # practice.NewPatients; accepting_new_patients is read from it
    "telehealth",
    "status",
    # Payment and when each detail was confirmed (practice.PracticeDetails). The gender is a
    # filter only, never shown; languages and payers come as aggregated columns
    # (practice.details_columns_sql).
    "new_patients_checked_on",
    "languages_checked_on",
    *PAYMENT_FIELDS,
    "payment_checked_on",
    # For "This listing may be out of date" (Practitioner.may_be_out_of_date).
    "last_confirmed_on",
    "created_at",
)
PROFESSION_FIELDS = ("slug", "name")
CERTIFICATE_FIELDS = ("expires_on", "verified_on", "self_reported")
CERTIFICATION_FIELDS = ("slug", "name")


class Rows:
    """Builds partly loaded model instances from plain SQL rows, as ``only()`` would.

    A result page is 20-100 rows; composing the ORM query for them cost more than running
    it. Values are converted the way Django's converters would for these field types."""

    def __init__(self, model: type[Model], alias: str, wanted: Sequence[str]) -> None:
        wanted_set = set(wanted)
        self.model = model
        self.fields = [f for f in model._meta.concrete_fields if f.attname in wanted_set]
        self.names = frozenset(f.attname for f in self.fields)
        self.select = [f"{alias}.{f.column}" for f in self.fields]
        self.converters = [_converter(f) for f in self.fields]

    def __len__(self) -> int:
        return len(self.fields)

    def build(self, db: str, values: Sequence) -> Model:
        converted = [
            value if convert is None or value is None else convert(value)
            for convert, value in zip(self.converters, values, strict=True)
        ]
        return self.model.from_db(db, self.names, converted)


def _converter(field: Field) -> Callable[[object], object] | None:
    if isinstance(field, BooleanField):
        return bool  # SQLite returns 0 or 1
    if isinstance(field, DateTimeField):  # SQLite: naive, in UTC
        return _aware_datetime
    if isinstance(field, DateField):  # SQLite: text
        return lambda value: value if isinstance(value, dt.date) else dt.date.fromisoformat(value)
    return None


def _aware_datetime(value: object) -> dt.datetime | None:
    if value is None:
        return None
    parsed = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


CLINICS = Rows(
    Location,
    "l",
    ("id", "practitioner_id", *CLINIC_FIELDS, *CLINIC_ACCESS_FIELDS, *CLINIC_CHECKED_FIELDS),
)
PRACTITIONERS = Rows(Practitioner, "p", ("id", "profession_id", *PRACTITIONER_FIELDS))
PROFESSIONS = Rows(Profession, "f", ("id", *PROFESSION_FIELDS))
CERTIFICATES = Rows(
    PractitionerCertification,
    "r",
    ("id", "practitioner_id", "certification_id", *CERTIFICATE_FIELDS),
)
CERTIFICATIONS = Rows(Certification, "c", ("id", "parent_id", *CERTIFICATION_FIELDS))
PARENT_CERTIFICATIONS = Rows(Certification, "pc", ("id", "parent_id", *CERTIFICATION_FIELDS))


class CountedPaginator(Paginator):
    """A paginator over a count the search already has: at most ``cap`` matches are counted
    (in a dense city the exact count costs more than the page); ``count_is_capped`` tells
    the UI to say "more than N"."""

    def __init__(self, *, counted: int, per_page: int, cap: int) -> None:
        super().__init__((), per_page)
        self.cap = cap
        self.counted = counted  # up to cap + 1

    @property
    def count(self) -> int:  # type: ignore[override]
        return min(self.counted, self.cap)

    @property
    def count_is_capped(self) -> bool:
        return self.counted > self.cap

    def number_to_show(self, number: int | str | None, *, strict: bool) -> int:
        """The page a request gets: ``strict`` raises InvalidPage for one that does not exist
        (the API answers 404); otherwise the nearest valid page, as people expect of a
        mistyped link (what Paginator.get_page does)."""
        if strict:
            return self.validate_number(number)
        try:
            return self.validate_number(number)
        except PageNotAnInteger:
            return 1
        except EmptyPage:
            return self.num_pages

    def bounds(self, number: int) -> tuple[int, int]:
        """(first, past the last) index of page ``number``'s rows among all matches."""
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top = self.count
        return bottom, top

    def page_of(self, rows: list, number: int) -> Page:
        return Page(rows, number, self)


@dataclass
class SearchResults:
    """What a search returns: the page of practitioners (each with ``nearest_location``,
    ``distance_mi``, ``profession`` and ``certificates``), its paginator and the fallback."""

    page: Page
    paginator: CountedPaginator
    origin: geo.Origin | None
    radius_mi: float
    certifications: tuple[CertificationGroup, ...]
    match: MatchMode
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


def widen_radius(distance_mi: float) -> int | None:
    """The smallest radius the page offers that reaches ``distance_mi``; None when the nearest
    match is beyond the largest (the page then offers the nearest by distance, however far)."""
    for choice in sorted(settings.SEARCH_RADIUS_CHOICES_MI):
        if choice >= distance_mi:
            return choice
    return None
