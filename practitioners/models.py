"""Practitioners, the techniques they are certified in, and the clinics where they practise.

The reusable queries live on :class:`PractitionerQuerySet`: ``published()``, ``holding()``
and ``near()``, the slow general form of a distance search. The search page's own SQL lives in
``search/query.py``; "near" itself (distances, bounding boxes, ZIP centroids) in
``search/geo.py``; the columns that let the index answer it, in ``search/index.py``.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterable, Sequence
from functools import cache

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Exists, F, OuterRef, Q, Subquery
from django.db.models.lookups import Exact
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify
from simple_history.models import HistoricalRecords

from . import icd10
from .practice import ClinicAccess, PracticeDetails
from .search import geo
from .search import index as search_index

zip5_validator = RegexValidator(r"^[0-9]{5}$", "Enter a 5-digit ZIP code.")
state_validator = RegexValidator(r"^[A-Z]{2}$", "Enter a two-letter state code, like TN.")


def npi_check_digit_ok(npi: str) -> bool:
    """NPI check digit: Luhn over the prefix 80840 followed by the first nine digits."""
    if len(npi) != 10 or not npi.isascii() or not npi.isdigit():
        return False
    digits = [int(c) for c in "80840" + npi[:9]]
    total = 0
    for i, digit in enumerate(reversed(digits)):
        if i % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return (10 - total % 10) % 10 == int(npi[9])


def validate_npi(value: str) -> None:
    if not npi_check_digit_ok(value):
        raise ValidationError(
            "%(value)s is not a valid NPI (10 digits with a correct check digit).",
            params={"value": value},
        )


class Profession(models.Model):
    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=100)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Certification(models.Model):
    """A technique (Active Release Techniques) or one of its levels (ART Spine)."""

    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=120)
    issuing_body = models.CharField(max_length=120, blank=True)
    website = models.URLField(blank=True)
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="levels",
        help_text="The technique this is a level of; empty for a technique.",
    )
    description = models.TextField(
        blank=True,
        max_length=1000,
        help_text="What the technique or level is, in two or three neutral sentences (its page).",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_level(self) -> bool:
        return self.parent_id is not None


class TaxonomyMapping(models.Model):
    """NPPES taxonomy code, or a prefix like 111N for every chiropractic specialty -> profession."""

    code_prefix = models.CharField(max_length=10, unique=True)
    profession = models.ForeignKey(Profession, on_delete=models.CASCADE, related_name="taxonomies")
    description = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["code_prefix"]

    def __str__(self) -> str:
        return f"{self.code_prefix} → {self.profession}"


class PractitionerQuerySet(models.QuerySet):
    def published(self) -> PractitionerQuerySet:
        return self.filter(status=Practitioner.Status.PUBLISHED)

    def with_certificates(self, records: models.QuerySet) -> PractitionerQuerySet:
        """Listings holding at least one of these certification records, e.g.
        ``with_certificates(PractitionerCertification.objects.due())``: the work queue."""
        return self.filter(Exists(records.filter(practitioner_id=OuterRef("pk"))))

    def holding(
        self,
        certifications: Sequence[Certification],
        match: str = "all",
        on: dt.date | None = None,
        *,
        every_certification: Iterable[Certification] | None = None,
    ) -> PractitionerQuerySet:
        """Practitioners with a current certificate in these techniques (a level counts for its
        technique). ``match`` is "all" (every one of them) or "any".

        ``every_certification``, when the caller already holds every Certification row (the
        search form does), finds the levels without another query."""
        if not certifications:
            return self
        on = on or timezone.localdate()
        if every_certification is None:
            every_certification = Certification.objects.only("id", "parent_id")
        groups = acceptable_certification_ids(certifications, every_certification)
        if match == "any":
            groups = [sorted({cid for group in groups for cid in group})]
        current = Q(expires_on__isnull=True) | Q(expires_on__gte=on)
        records = PractitionerCertification.objects.all()
        # One filter() call for every group: each call clones and re-resolves the whole query.
        return self.filter(
            *(
                Exists(
                    records.filter(
                        current, practitioner_id=OuterRef("pk"), certification_id__in=ids
                    )
                )
                for ids in groups
            )
        )

    def near(self, origin: geo.Origin, radius_mi: float) -> PractitionerQuerySet:
        """Practitioners with a clinic within ``radius_mi`` of ``origin``, each once, annotated
        with ``distance_mi`` and ``nearest_location_id`` of its nearest clinic, nearest first.

        The slow, general form, for any queryset: the reference the tests hold the search's
        own SQL (``search/query.py``) to."""
        in_range = Location.objects.within(origin, radius_mi)
        nearest = in_range.filter(practitioner_id=OuterRef("pk")).order_by("distance_mi", "pk")
        return (
            self.filter(pk__in=in_range.values("practitioner_id"))
            .annotate(
                distance_mi=Subquery(nearest.values("distance_mi")[:1]),
                nearest_location_id=Subquery(nearest.values("pk")[:1]),
            )
            .order_by("distance_mi", "name", "pk")
        )

    def for_listing(self) -> PractitionerQuerySet:
        """What a result row or profile shows, fetched in a fixed number of queries."""
        return self.select_related("profession").prefetch_related(
            models.Prefetch(
                "certification_records",
                queryset=PractitionerCertification.objects.select_related(
                    "certification", "certification__parent"
                ).order_by("certification__name"),
            )
        )


def acceptable_certification_ids(
    certifications: Iterable[Certification],
    every_certification: Iterable[Certification] | None = None,
) -> list[list[int]]:
    """For each requested certification, the ids that satisfy it: itself and its levels.

    ``every_certification`` (all Certification rows, in their default order) saves the query
    for the levels."""
    requested = list(certifications)
    level_ids: dict[int, list[int]] = {}
    # Plain ids, not instances: a lookup holding model instances is deep-copied on every clone.
    requested_ids = [cert.id for cert in requested]
    if every_certification is None:
        levels = Certification.objects.filter(parent_id__in=requested_ids).values_list(
            "id", "parent_id"
        )
    else:
        wanted = set(requested_ids)
        levels = [(c.id, c.parent_id) for c in every_certification if c.parent_id in wanted]
    for level_id, parent_id in levels:
        level_ids.setdefault(parent_id, []).append(level_id)
    return [[cert.id, *level_ids.get(cert.id, [])] for cert in requested]


# Room left after a slug's readable part for the rule's suffix: "-" and a 10-digit NPI, or "-2".
SLUG_SUFFIX_ROOM = 20


def listing_slug_base(name: str, city: str) -> str:
    """ "Jane Doe" in Memphis -> "jane-doe-memphis": the readable part of a profile URL."""
    return slugify(f"{name} {city}")[: _slug_base_length()].strip("-") or "practitioner"


@cache
def _slug_base_length() -> int:
    return Practitioner._meta.get_field("slug").max_length - SLUG_SUFFIX_ROOM


def unique_listing_slugs(listings: Sequence[tuple[str, str, str]]) -> list[str]:
    """The one slug rule, for new listings given as (name, city, NPI): "jane-doe-memphis"; when
    that is taken, "jane-doe-memphis-<NPI>" for a listing with an NPI (stable across re-imports
    of the registry); otherwise, or when that is taken too, the first free of "-2", "-3", ...

    Every caller (the public form, the CSV import, the NPI registry import) asks here, a batch at
    a time: a few indexed ``slug IN (...)`` look-ups, never a load of every slug in the directory.
    """
    bases = [listing_slug_base(name, city) for name, city, _ in listings]
    first_choices = [
        [base, f"{base}-{npi}"] if npi else [base]
        for base, (_, _, npi) in zip(bases, listings, strict=True)
    ]
    taken = _taken_slugs({slug for choices in first_choices for slug in choices})
    slugs: list[str] = [""] * len(listings)
    numbered: list[int] = []
    for index, choices in enumerate(first_choices):
        free = next((slug for slug in choices if slug not in taken), None)
        if free is None:
            numbered.append(index)
        else:
            slugs[index] = free
            taken.add(free)
    next_number: dict[str, int] = {}
    window = 8
    while numbered:
        wanted: dict[str, int] = {}
        for index in numbered:
            wanted[bases[index]] = wanted.get(bases[index], 0) + 1
        candidates = {
            base: [
                f"{base}-{n}"
                for n in range(next_number.get(base, 2), next_number.get(base, 2) + count + window)
            ]
            for base, count in wanted.items()
        }
        taken |= _taken_slugs({slug for names in candidates.values() for slug in names})
        free = {base: [s for s in names if s not in taken] for base, names in candidates.items()}
        still: list[int] = []
        for index in numbered:
            base = bases[index]
            if free[base]:
                slugs[index] = free[base].pop(0)
                taken.add(slugs[index])
            else:
                still.append(index)
        for base, names in candidates.items():
            next_number[base] = next_number.get(base, 2) + len(names)
        numbered = still
        window *= 4  # a very common name: look further ahead each round
    return slugs


def _taken_slugs(candidates: set[str]) -> set[str]:
    taken: set[str] = set()
    ordered = sorted(candidates)
    for start in range(0, len(ordered), 5000):
        taken.update(
            Practitioner.objects.filter(slug__in=ordered[start : start + 5000])
            .order_by()
            .values_list("slug", flat=True)
        )
    return taken


def same_clinic_key(address_line1: str, postal_code: str) -> tuple[str, str]:
    """The one rule for "this is the same clinic": the same street line, ignoring case,
    punctuation and spacing, in the same ZIP ("5100 Poplar Ave." = "5100 POPLAR AVE").
    The import matches a row to a listed clinic by it, the NPI registry import and a merge
    drop a second copy of a clinic by it. (The geocode cache keys on a different thing, the
    whole normalised address: ``geocoding.normalised_address``.)"""
    return (_NOT_ALPHANUMERIC.sub(" ", address_line1.lower()).strip(), postal_code)


_NOT_ALPHANUMERIC = re.compile(r"[^a-z0-9]+")


def new_external_id() -> str:
    """Every listing has a stable external id from the moment it is created (the public form,
    the admin, the NPI registry import; a CSV gives its own), so an export imported back finds
    it instead of creating a second listing. 64 random bits: no clash in any directory's life."""
    return f"pl-{uuid.uuid4().hex[:16]}"


class RecordSource(models.TextChoices):
    """Where a listing or a clinic came from (shared by practitioners and locations)."""

    STAFF = "staff", "Staff"
    CSV = "csv", "CSV import"
    NPPES = "nppes", "NPI registry (NPPES)"
    SUBMISSION = "submission", "Public submission"
    DEMO = "demo", "Demo data"
    OWNER = "owner", "Listing owner"


class Practitioner(PracticeDetails, models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        PENDING = "pending", "Pending review"
        PUBLISHED = "published", "Published"
        SUSPENDED = "suspended", "Suspended"

    Source = RecordSource

    name = models.CharField(max_length=200)
    credentials = models.CharField(max_length=100, blank=True, help_text='For example "DC, CCSP".')
    profession = models.ForeignKey(
        Profession, null=True, blank=True, on_delete=models.PROTECT, related_name="practitioners"
    )
    bio = models.TextField(
        blank=True, max_length=5000, help_text="Plain text; HTML is shown as typed."
    )
    phone = models.CharField(max_length=30, blank=True)
    website = models.URLField(blank=True, max_length=300)
    email = models.EmailField(blank=True)
    telehealth = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    status_reason = models.CharField(max_length=200, blank=True)
    slug = models.SlugField(max_length=220, unique=True)
    external_id = models.CharField(
        max_length=100,
        blank=True,
        default=new_external_id,
        help_text="The listing's id in CSV files: an export imported back updates this listing.",
    )
    npi = models.CharField("NPI", max_length=10, blank=True, default="", validators=[validate_npi])
    source = models.CharField(max_length=12, choices=Source.choices, default=Source.STAFF)
    source_updated_on = models.DateField(
        null=True,
        blank=True,
        help_text="When the source last changed this record (NPPES: Last Update Date).",
    )
    nppes_values = models.JSONField(
        default=dict,
        blank=True,
        help_text="Values last written from the NPI registry; a field that differs from its value "
        "here was corrected by staff.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Claiming (curation/claims.py): at most one owner, who keeps the listing current.
    claimed_by = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_listing",
        help_text="The practitioner's own account; set only by an approved claim.",
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    owner_confirmed_on = models.DateField("confirmed by the practitioner on", null=True, blank=True)
    # The later of the owner's confirmation and staff's last verification: a listing confirmed
    # longer ago than LISTING_STALE_AFTER_DAYS shows "may be out of date" (ownership.py).
    last_confirmed_on = models.DateField(null=True, blank=True, editable=False)
    licences = models.JSONField(
        default=list,
        blank=True,
        help_text='Licence numbers and states from the NPI registry: [{"number": ..., '
        '"state": "TN"}]; a claim by licence is checked against them.',
    )

    certifications = models.ManyToManyField(
        Certification, through="PractitionerCertification", related_name="practitioners"
    )

    history = HistoricalRecords()
    objects = PractitionerQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["external_id"],
                condition=~Q(external_id=""),
                name="unique_external_id_when_set",
            ),
            models.UniqueConstraint(
                fields=["npi"], condition=~Q(npi=""), name="unique_npi_when_set"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "name"], name="practitioner_status_name"),
            # A roster row's phone, looked up among the listings (ingest/roster_match.py).
            models.Index(fields=["phone"], condition=~Q(phone=""), name="practitioner_phone"),
            # The feeds' incremental pulls (HSDS modified_after, FHIR _lastUpdated): the
            # published listings changed since a moment, without reading every published
            # listing. Partial, not (status, updated_at): SQLite took an index starting with
            # status for "published, in id order" and sorted a million ids for every page.
            models.Index(
                fields=["updated_at"],
                condition=Q(status="published"),
                name="practitioner_published_updated",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name}, {self.credentials}" if self.credentials else self.name

    def save(self, *args, **kwargs) -> None:
        if not self.external_id:  # cleared in the admin: a listing keeps having one
            self.external_id = new_external_id()
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "external_id"}
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse("practitioners:profile", kwargs={"slug": self.slug})

    @property
    def is_public(self) -> bool:
        return self.status == self.Status.PUBLISHED

    @property
    def may_be_out_of_date(self) -> bool:
        """Neither confirmed by its owner nor verified by staff within LISTING_STALE_AFTER_DAYS
        (the same rule as ``ownership.stale_listing_q``, which the staff queue uses)."""
        from .ownership import stale_before

        cutoff = stale_before()
        if self.last_confirmed_on is not None:
            return self.last_confirmed_on < cutoff
        created = self.created_at
        return created is not None and timezone.localdate(created) < cutoff


def verification_stale_before(on: dt.date) -> dt.date:
    """A verification older than this (``VERIFICATION_MAX_AGE_DAYS`` before ``on``) is stale."""
    return on - dt.timedelta(days=settings.VERIFICATION_MAX_AGE_DAYS)


def expiry_warning_until(on: dt.date) -> dt.date:
    """A certificate expiring on or before this (``CERTIFICATION_EXPIRY_WARNING_DAYS`` after
    ``on``) goes back to staff."""
    return on + dt.timedelta(days=settings.CERTIFICATION_EXPIRY_WARNING_DAYS)


class PractitionerCertificationQuerySet(models.QuerySet):
    """The verification windows, in one place: the staff work queue, the admin filters and the
    public "verified over a year ago" all ask these."""

    def current(self, on: dt.date | None = None) -> PractitionerCertificationQuerySet:
        on = on or timezone.localdate()
        return self.filter(Q(expires_on__isnull=True) | Q(expires_on__gte=on))

    def never_verified(self) -> PractitionerCertificationQuerySet:
        return self.filter(verified_on__isnull=True)

    def stale(self, on: dt.date | None = None) -> PractitionerCertificationQuerySet:
        """Verified, but longer ago than staff trust a check."""
        return self.filter(verified_on__lt=verification_stale_before(on or timezone.localdate()))

    def expiring(self, on: dt.date | None = None) -> PractitionerCertificationQuerySet:
        """Still current, but lapsing within the warning window."""
        on = on or timezone.localdate()
        return self.filter(expires_on__range=(on, expiry_warning_until(on)))

    def due(self, on: dt.date | None = None) -> PractitionerCertificationQuerySet:
        """What staff must look at: never verified, stale, or expiring soon."""
        on = on or timezone.localdate()
        return self.filter(
            Q(verified_on__isnull=True)
            | Q(verified_on__lt=verification_stale_before(on))
            | Q(expires_on__range=(on, expiry_warning_until(on)))
        )


class PractitionerCertification(models.Model):
    # No single-column indexes: one_record_per_certification (practitioner, certification) and
    # cert_practitioner (certification, practitioner) serve both look-ups, and an import of a
    # million listings pays for every index it writes.
    practitioner = models.ForeignKey(
        Practitioner,
        on_delete=models.CASCADE,
        related_name="certification_records",
        db_index=False,
    )
    certification = models.ForeignKey(
        Certification, on_delete=models.PROTECT, related_name="records", db_index=False
    )
    credential_number = models.CharField(max_length=60, blank=True)
    earned_on = models.DateField(null=True, blank=True)
    expires_on = models.DateField(null=True, blank=True)
    verified_on = models.DateField(null=True, blank=True)
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    verification_source = models.CharField(max_length=200, blank=True)
    # Added by the listing's owner: shown as "self-reported" until staff verify it.
    self_reported = models.BooleanField(default=False)

    history = HistoricalRecords()
    objects = PractitionerCertificationQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["practitioner", "certification"], name="one_record_per_certification"
            )
        ]
        indexes = [models.Index(fields=["certification", "practitioner"], name="cert_practitioner")]

    def __str__(self) -> str:
        return f"{self.practitioner} — {self.certification}"

    def is_current(self, on: dt.date | None = None) -> bool:
        return self.expires_on is None or self.expires_on >= (on or timezone.localdate())

    def verification_is_stale(self, on: dt.date | None = None) -> bool:
        """Verified longer ago than staff trust a check (the same window as ``stale()``)."""
        on = on or timezone.localdate()
        return self.verified_on is not None and self.verified_on < verification_stale_before(on)


class LocationQuerySet(models.QuerySet):
    def published(self) -> LocationQuerySet:
        """Clinics of published listings, by the copy of the listing's status the database
        keeps on each clinic (``listed``, search/index.py): no join to the listing."""
        return self.filter(listed=True)

    def within(self, origin: geo.Origin, radius_mi: float) -> LocationQuerySet:
        """Clinics within ``radius_mi`` of ``origin``, annotated with ``distance_mi``.

        The bounding box runs first, on the indexed coordinates, so the database computes the
        exact distance only for the few rows that can possibly be inside the circle.
        """
        box = geo.bounding_box(origin, radius_mi)
        longitude = (
            Q(longitude__gte=box.min_longitude) | Q(longitude__lte=box.max_longitude)
            if box.crosses_antimeridian
            else Q(longitude__range=(box.min_longitude, box.max_longitude))
        )
        # One annotate() and one filter(): each call clones and re-resolves the query, which
        # cost more than the indexed SQL itself. The WHERE clause keeps the same order.
        return self.annotate(distance_mi=geo.distance_expression(origin)).filter(
            Q(latitude__range=(box.min_latitude, box.max_latitude)),
            longitude,
            Q(distance_mi__lte=radius_mi),
        )


# The search index's columns (search/index.py): the box, the copies, the ids it returns.
LOCATION_SEARCH_FIELDS = [
    "listed",
    "latitude_band",
    "longitude",
    "latitude",
    "certification_bits",
    "expiring_certification_bits",
    "has_other_clinics",
    "practice_bits",
    "language_bits",
    "payer_bits",
    "practitioner",
    "id",
]


class Location(ClinicAccess, models.Model):
    class Precision(models.TextChoices):
        PROVIDED = "provided", "Provided with the data"
        ADDRESS = "address", "Geocoded address"
        ZIP = "zip", "ZIP centroid (approximate)"
        MANUAL = "manual", "Set by hand"

    class GeocodeStatus(models.TextChoices):
        PENDING = "pending", "Pending"
        OK = "ok", "OK"
        FAILED = "failed", "Failed (will retry)"
        MANUAL = "manual", "Manual"

    Source = RecordSource

    # Indexed by location_owner_search, which starts with it.
    practitioner = models.ForeignKey(
        Practitioner, on_delete=models.CASCADE, related_name="locations", db_index=False
    )
    name = models.CharField("clinic name", max_length=200, blank=True)
    address_line1 = models.CharField(max_length=200)
    address_line2 = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=100)
    state = models.CharField(max_length=2, validators=[state_validator])
    postal_code = models.CharField("ZIP code", max_length=5, validators=[zip5_validator])
    phone = models.CharField(max_length=30, blank=True)
    latitude = models.FloatField(null=True, blank=True)
    longitude = models.FloatField(null=True, blank=True)
    precision = models.CharField(max_length=10, choices=Precision.choices, default=Precision.ZIP)
    geocode_status = models.CharField(
        max_length=10, choices=GeocodeStatus.choices, default=GeocodeStatus.PENDING
    )
    geocode_provider = models.CharField(max_length=30, blank=True)
    geocoded_at = models.DateTimeField(null=True, blank=True)
    geocode_error = models.TextField(blank=True)
    geocoded_address = models.CharField(
        max_length=500, blank=True, help_text="The normalised address the coordinates belong to."
    )
    source = models.CharField(max_length=12, choices=Source.choices, default=Source.STAFF)
    nppes_key = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Copies of the practitioner's status and certificates, kept right by database triggers,
    # and a coarse latitude, so a distance search filters clinics inside one index
    # (search_index.py says how).
    listed = models.BooleanField(default=False, editable=False)
    certification_bits = models.BigIntegerField(default=0, editable=False)
    expiring_certification_bits = models.BigIntegerField(default=0, editable=False)
    latitude_band = models.IntegerField(null=True, editable=False)
    has_other_clinics = models.BooleanField(default=False, editable=False)
    practice_bits = models.BigIntegerField(default=0, editable=False)
    language_bits = models.BigIntegerField(default=0, editable=False)
    payer_bits = models.BigIntegerField(default=0, editable=False)

    history = HistoricalRecords(excluded_fields=list(search_index.COPIED))
    objects = LocationQuerySet.as_manager()

    class Meta:
        ordering = ["practitioner", "pk"]
        indexes = [
            # A distance search reads only this index for the clinics in its bounding box:
            # coordinates for the distance, the copies that reject most clinics before any
            # look-up, and the practitioner and clinic ids it returns.
            models.Index(
                fields=LOCATION_SEARCH_FIELDS,
                name="location_search",
            ),
            # The same for the few clinics open on weekends or weekday evenings: a search for
            # them reads these instead (a tenth and a fifth of the clinics in the benchmark's
            # data), so a dense city's count no longer walks every clinic of its box.
            *(
                models.Index(
                    fields=LOCATION_SEARCH_FIELDS,
                    name=f"location_search_{name}",
                    condition=Q(Exact(F("practice_bits").bitand(bit), bit)),
                )
                for name, bit in search_index.RARE_CLINIC_BITS.items()
            ),
            # ... and this one for a practitioner's other clinics in the circle (each
            # practitioner is counted once, at its first clinic that passes the clinic
            # filters, which its practice bits answer), without reading the table.
            models.Index(
                fields=["practitioner", "id", "latitude", "longitude", "practice_bits"],
                name="location_owner_search",
            ),
            models.Index(fields=["geocode_status"], name="location_geocode_status"),
            # The place pages and their sitemap section: which cities of a state have a
            # published clinic, with what techniques (the copied bits) and when they last
            # changed, all read from this index alone (places.py).
            # Plain columns, not UPPER(city): SQLite reads an expression from the table, not
            # the index, which made the sitemap's pass over a million clinics random reads.
            models.Index(
                fields=[
                    "listed",
                    "state",
                    "city",
                    "certification_bits",
                    "expiring_certification_bits",
                    "updated_at",
                ],
                name="location_place",
            ),
            # Roster blocking (ingest/roster_match.py): a state's clinics with their ZIP and
            # listing, read from the index alone, one pass per state; and a row's phone.
            models.Index(
                fields=["state", "postal_code", "practitioner"], name="location_roster_block"
            ),
            models.Index(fields=["phone"], condition=~Q(phone=""), name="location_phone"),
            # The feeds' incremental pulls of clinics (HSDS locations?modified_after, FHIR
            # Location?_lastUpdated), and the count of published clinics from a narrow index.
            # Partial (WHERE listed), not (listed, updated_at): only a query saying "listed"
            # as Django writes listed=True can use it, so the distance search and the place
            # pages (listed = %s, listed IN (%s)) keep the indexes made for them.
            models.Index(
                fields=["updated_at"], condition=Q(listed=True), name="location_listed_updated"
            ),
        ]

    def __str__(self) -> str:
        return self.one_line_address

    @property
    def one_line_address(self) -> str:
        street = ", ".join(part for part in (self.address_line1, self.address_line2) if part)
        return f"{street}, {self.city}, {self.state} {self.postal_code}"

    @property
    def is_approximate(self) -> bool:
        return self.precision == self.Precision.ZIP

    @property
    def clinic_key(self) -> tuple[str, str]:
        """Which clinic this is, by :func:`same_clinic_key`."""
        return same_clinic_key(self.address_line1, self.postal_code)


class GeocodeCacheEntry(models.Model):
    """One provider answer per normalised address, so the same address is never sent twice.
    An empty or implausible answer is cached too (latitude/longitude null, ``outcome`` says why)."""

    class Outcome(models.TextChoices):
        FOUND = "found", "Found"
        EMPTY = "empty", "No result"
        IMPLAUSIBLE = "implausible", "Rejected as implausible"

    address_key = models.CharField(max_length=500)
    provider = models.CharField(max_length=30)
    outcome = models.CharField(max_length=12, choices=Outcome.choices)
    latitude = models.FloatField(null=True, blank=True)
    longitude = models.FloatField(null=True, blank=True)
    detail = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "geocode cache entries"
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "address_key"], name="one_answer_per_address"
            )
        ]

    def __str__(self) -> str:
        return f"{self.address_key} ({self.outcome})"


class ListingReport(models.Model):
    """ "Report a problem with this listing", from a profile page."""

    class Kind(models.TextChoices):
        WRONG_ADDRESS = "wrong_address", "Wrong address"
        CLOSED = "closed", "Practice closed"
        CERTIFICATION_DOUBT = "certification", "Certification claim in doubt"
        OTHER = "other", "Other"

    practitioner = models.ForeignKey(Practitioner, on_delete=models.CASCADE, related_name="reports")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    details = models.TextField(max_length=2000, blank=True)
    contact_email = models.EmailField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolution_note = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} — {self.practitioner}"


class DuplicateDismissal(models.Model):
    """Staff looked at two listings flagged as possible duplicates and said they are different."""

    first = models.ForeignKey(Practitioner, on_delete=models.CASCADE, related_name="+")
    second = models.ForeignKey(Practitioner, on_delete=models.CASCADE, related_name="+")
    dismissed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    dismissed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["first", "second"], name="one_dismissal_per_pair"),
            models.CheckConstraint(condition=Q(first__lt=models.F("second")), name="pair_ordered"),
        ]

    def __str__(self) -> str:
        return f"{self.first_id} ≠ {self.second_id}"


class ListingMerge(models.Model):
    """Staff merged one listing into another. ``snapshot`` holds everything the merge changed or
    removed (the removed listing, its clinics and certificates, what moved and what was filled
    in), so staff can undo it from the kept listing's history."""

    kept = models.ForeignKey(Practitioner, on_delete=models.CASCADE, related_name="merges")
    removed_id = models.BigIntegerField(help_text="The id the removed listing had (and gets back).")
    removed_name = models.CharField(max_length=Practitioner._meta.get_field("name").max_length)
    snapshot = models.JSONField()
    merged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    merged_at = models.DateTimeField(auto_now_add=True)
    undone_at = models.DateTimeField(null=True, blank=True)
    undone_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-merged_at"]

    def __str__(self) -> str:
        return f"#{self.removed_id} {self.removed_name} merged into #{self.kept_id}"

    @property
    def is_undone(self) -> bool:
        return self.undone_at is not None


class Condition(models.Model):
    """A problem people search by ("piriformis syndrome"), and the techniques whose own bodies
    name it. Staff curate these; the directory describes, it never advises."""

    name = models.CharField(max_length=120, unique=True)
    slug = models.SlugField(max_length=80, unique=True)
    synonyms = models.TextField(
        blank=True,
        help_text="What people type, one per line: tennis elbow, pain on the outside of the elbow.",
    )
    icd10_codes = models.CharField(
        "ICD-10-CM codes",
        max_length=200,
        blank=True,
        validators=[icd10.validate_codes],
        help_text="Optional, comma-separated, e.g. M77.1; each is checked against ICD-10-CM.",
    )
    description = models.TextField(
        max_length=1000, help_text="Two or three neutral sentences: what it is, where it hurts."
    )
    techniques = models.ManyToManyField(
        Certification, through="ConditionTechnique", related_name="conditions"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("practitioners:condition", kwargs={"slug": self.slug})

    def clean(self) -> None:
        try:
            self.icd10_codes = icd10.normalise_codes(self.icd10_codes)
        except ValidationError as error:
            raise ValidationError({"icd10_codes": error.messages}) from None
        self.synonyms = "\n".join(self.synonym_list)

    @property
    def synonym_list(self) -> list[str]:
        lines = (line.strip() for line in self.synonyms.splitlines())
        return list(dict.fromkeys(line for line in lines if line))

    @property
    def code_list(self) -> list[str]:
        return icd10.split_codes(self.icd10_codes)


class ConditionTechnique(models.Model):
    """One technique listed for a condition, with why (a line) and where its body says so."""

    condition = models.ForeignKey(Condition, on_delete=models.CASCADE, related_name="links")
    certification = models.ForeignKey(
        Certification,
        on_delete=models.PROTECT,
        related_name="condition_links",
        limit_choices_to={"parent__isnull": True},
        verbose_name="technique",
        help_text="The technique (its levels count too).",
    )
    note = models.CharField(
        max_length=200,
        help_text='One neutral line, e.g. "Graston Technique, LLC lists plantar fasciitis among '
        'the conditions its clinicians address."',
    )
    source_url = models.URLField(
        "source", max_length=300, help_text="The certifying body's own page that names it."
    )

    class Meta:
        ordering = ["certification__name"]
        verbose_name = "technique listed for this condition"
        verbose_name_plural = "techniques listed for this condition"
        constraints = [
            models.UniqueConstraint(
                fields=["condition", "certification"], name="one_link_per_technique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.condition} — {self.certification}"

    def clean(self) -> None:
        if self.certification_id and self.certification.parent_id is not None:
            raise ValidationError(
                {"certification": "Choose the technique, not one of its levels: levels count."}
            )


class PlacePage(models.Model):
    """A place page the sitemap lists (/tn/memphis/, /tn/memphis/art/): the stored list that
    place_pages.refresh works out from the clinics, so that no sitemap request groups a
    million of them. The pages themselves never read it."""

    class Section(models.TextChoices):
        PLACES = "places", "places"
        PLACE_TECHNIQUES = "place-techniques", "places by technique"

    section = models.CharField(max_length=20, choices=Section.choices)
    # 1, 2, ... within the section in path order: sitemap page N is positions
    # (N-1)*limit+1 .. N*limit, one range scan of the unique index below.
    position = models.PositiveIntegerField()
    path = models.CharField(max_length=300)
    lastmod = models.DateTimeField(null=True)  # the last change to a published clinic there
    # The last day of the certificates the page exists by, when all of them have one: the
    # sitemap leaves the page out after it (the page answers 404 from then).
    until = models.DateField(null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["section", "position"], name="place_page_position")
        ]

    def __str__(self) -> str:
        return self.path


class ImportJob(models.Model):
    """One CSV file uploaded in the admin, previewed and imported by tasks (practitioners/
    imports.py). The file itself is kept in ``IMPORT_UPLOAD_DIR`` under ``stored_name`` until the
    job expires; the row holds the progress the admin page shows and the reports."""

    class State(models.TextChoices):
        PREVIEWING = "previewing", "checking the file"
        PREVIEWED = "previewed", "checked, waiting for confirmation"
        IMPORTING = "importing", "importing"
        IMPORTED = "imported", "imported"
        FAILED = "failed", "stopped by an error"

    class Kind(models.TextChoices):
        PRACTITIONERS = "practitioners", "listings"
        ROSTER = "roster", "certifying body's roster"

    RUNNING = (State.PREVIEWING, State.IMPORTING)

    file_name = models.CharField(max_length=255)
    stored_name = models.CharField(max_length=100, unique=True)
    size_bytes = models.BigIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    expires_at = models.DateTimeField(db_index=True)
    state = models.CharField(max_length=20, choices=State.choices, default=State.PREVIEWING)
    skip_bad_rows = models.BooleanField(default=False)
    rows_total = models.IntegerField(null=True, blank=True)
    rows_read = models.IntegerField(default=0)
    errors_count = models.IntegerField(default=0)
    # The dry run's and the import's reports: counts, the summary line, the first bad rows.
    preview = models.JSONField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True)
    # A problem with the file as a whole, or what stopped a task.
    message = models.TextField(blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    # What the file is: listings (ingest/csv.py) or a certifying body's roster
    # (ingest/roster_import.py, with the technique and date in ``options``).
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.PRACTITIONERS)
    options = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.file_name} ({self.get_state_display()})"

    @property
    def is_running(self) -> bool:
        return self.state in self.RUNNING


# The owner side of the data (claims, requests, evidence, reminders) has its own module.
from .ownership import (  # noqa: E402, F401
    CertificationEvidence,
    ConfirmationReminder,
    ListingClaim,
    OwnerRequest,
)

# A certifying body's roster: what was imported, who was on it, what staff must decide.
from .rosters import RosterEntry, RosterImport, RosterReview  # noqa: E402, F401
