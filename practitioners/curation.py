"""Curation: the writes staff (and the public forms) make to listings, with their rules.

Every function here is keyword-only and runs in one transaction; the admin, the public views and
the tests all call these rather than saving models by hand, so a rule (a listing needs a clinic
and a profession to be published, a dismissed pair of duplicates stays dismissed...) lives once.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Concat, Lower, Replace, Right, Trim
from django.utils import timezone
from simple_history.utils import bulk_update_with_history

from . import geocoding
from .models import (
    Certification,
    DuplicateDismissal,
    ListingReport,
    Location,
    Practitioner,
    PractitionerCertification,
    Profession,
    first_free_slug,
    listing_slug_base,
)

# A certificate checked more than a year ago, or one about to lapse, goes back to staff.
VERIFICATION_MAX_AGE_DAYS = getattr(settings, "VERIFICATION_MAX_AGE_DAYS", 365)
EXPIRY_WARNING_DAYS = getattr(settings, "CERTIFICATION_EXPIRY_WARNING_DAYS", 60)

User = AbstractBaseUser


# --- Publishing -------------------------------------------------------------------------------


class PublishRefused(Exception):
    def __init__(self, practitioner: Practitioner, reasons: list[str]) -> None:
        self.practitioner = practitioner
        self.reasons = reasons
        super().__init__(f"{practitioner} was not published: {'; '.join(reasons)}")


@dataclass
class PublishOutcome:
    published: list[Practitioner] = field(default_factory=list)
    already_published: list[Practitioner] = field(default_factory=list)
    refused: list[PublishRefused] = field(default_factory=list)


def publish_problems(practitioner: Practitioner, *, has_location: bool | None = None) -> list[str]:
    """Why this listing cannot be shown to the public yet (empty when it can)."""
    if has_location is None:
        has_location = Location.objects.filter(practitioner_id=practitioner.pk).exists()
    problems = []
    if not has_location:
        problems.append("it has no clinic location (add an address first)")
    if practitioner.profession_id is None:
        problems.append("it has no profession")
    return problems


def _with_history_user(instance, user: User | None, reason: str = ""):
    if user is not None and user.is_authenticated:
        instance._history_user = user
    if reason:
        instance._change_reason = reason
    return instance


def _locked(practitioners: QuerySet[Practitioner]) -> QuerySet[Practitioner]:
    """The same listings, locked for the transaction. Re-selected by primary key because the
    caller's queryset may be DISTINCT (an admin search across clinics), which PostgreSQL cannot
    lock."""
    ids = practitioners.order_by().values("pk")
    return Practitioner.objects.filter(pk__in=ids).select_for_update().order_by("pk")


@transaction.atomic
def publish(*, practitioners: QuerySet[Practitioner], user: User | None = None) -> PublishOutcome:
    """Publish every listing that has a clinic and a profession; say why for the others."""
    outcome = PublishOutcome()
    rows = _locked(practitioners).annotate(
        has_location=Exists(Location.objects.filter(practitioner_id=OuterRef("pk")))
    )
    to_update = []
    for practitioner in rows:
        if practitioner.status == Practitioner.Status.PUBLISHED:
            outcome.already_published.append(practitioner)
            continue
        problems = publish_problems(practitioner, has_location=practitioner.has_location)
        if problems:
            outcome.refused.append(PublishRefused(practitioner, problems))
            continue
        practitioner.status = Practitioner.Status.PUBLISHED
        practitioner.status_reason = ""
        practitioner.updated_at = timezone.now()
        to_update.append(practitioner)
    if to_update:
        bulk_update_with_history(
            to_update,
            Practitioner,
            ["status", "status_reason", "updated_at"],
            default_user=user if user is not None and user.is_authenticated else None,
            default_change_reason="Published",
        )
    outcome.published = to_update
    return outcome


def publish_one(*, practitioner: Practitioner, user: User | None = None) -> None:
    """Publish one listing or raise :class:`PublishRefused` saying why."""
    outcome = publish(practitioners=Practitioner.objects.filter(pk=practitioner.pk), user=user)
    if outcome.refused:
        raise outcome.refused[0]
    practitioner.status = Practitioner.Status.PUBLISHED
    practitioner.status_reason = ""


@transaction.atomic
def suspend(*, practitioners: QuerySet[Practitioner], reason: str, user: User | None = None) -> int:
    """Take listings off the public site, recording why. Returns how many changed."""
    reason = reason.strip()[:200]
    rows = list(_locked(practitioners).exclude(status=Practitioner.Status.SUSPENDED))
    for practitioner in rows:
        practitioner.status = Practitioner.Status.SUSPENDED
        practitioner.status_reason = reason
        practitioner.updated_at = timezone.now()
    if rows:
        bulk_update_with_history(
            rows,
            Practitioner,
            ["status", "status_reason", "updated_at"],
            default_user=user if user is not None and user.is_authenticated else None,
            default_change_reason=f"Suspended: {reason}" if reason else "Suspended",
        )
    return len(rows)


# --- Verification -----------------------------------------------------------------------------


def verification_due(on: dt.date | None = None) -> Q:
    """Certification records staff must look at: never verified, verified more than a year ago,
    or expiring within the warning window."""
    on = on or timezone.localdate()
    return (
        Q(verified_on__isnull=True)
        | Q(verified_on__lt=on - dt.timedelta(days=VERIFICATION_MAX_AGE_DAYS))
        | Q(expires_on__range=(on, on + dt.timedelta(days=EXPIRY_WARNING_DAYS)))
    )


def needing_verification(
    practitioners: QuerySet[Practitioner], on: dt.date | None = None
) -> QuerySet[Practitioner]:
    """The staff work queue: listings holding at least one certification record that is due."""
    due = PractitionerCertification.objects.filter(
        verification_due(on), practitioner_id=OuterRef("pk")
    )
    return practitioners.filter(Exists(due))


@transaction.atomic
def verify_certifications(
    *,
    practitioners: QuerySet[Practitioner],
    source: str,
    user: User | None = None,
    on: dt.date | None = None,
) -> int:
    """Mark every certification record of these listings verified on ``on`` (today) by ``user``
    against ``source`` (e.g. "ART provider directory"). Returns how many records changed."""
    source = source.strip()[:200]
    if not source:
        raise ValueError("Say where the certifications were checked (the verification source).")
    on = on or timezone.localdate()
    records = list(
        PractitionerCertification.objects.filter(practitioner__in=practitioners).select_for_update()
    )
    verifier = user if user is not None and user.is_authenticated else None
    for record in records:
        record.verified_on = on
        record.verified_by = verifier
        record.verification_source = source
    if records:
        bulk_update_with_history(
            records,
            PractitionerCertification,
            ["verified_on", "verified_by", "verification_source"],
            default_user=verifier,
            default_change_reason=f"Verified against {source}",
        )
    return len(records)


# --- Possible duplicates ----------------------------------------------------------------------

_PHONE_NOISE = (" ", "-", "(", ")", ".", "+", "/")


def phone_key(phone: str) -> str:
    """The last ten digits of a phone number, the same way :func:`_phone_key_expression` does
    it in SQL (so "+1 (901) 555-0100" and "901.555.0100" match)."""
    digits = phone
    for noise in _PHONE_NOISE:
        digits = digits.replace(noise, "")
    return digits[-10:]


def _phone_key_expression():
    expression = F("phone")
    for noise in _PHONE_NOISE:
        expression = Replace(expression, Value(noise), Value(""))
    return Right(expression, 10)


def name_key(name: str) -> str:
    return name.strip().lower()


@dataclass
class DuplicatePair:
    first: Practitioner
    second: Practitioner
    reasons: list[str]


def _duplicate_groups(queryset: QuerySet, key, id_field: str = "pk") -> list[list[int]]:
    """Ids sharing the same non-empty ``key``, one list per key with at least two ids.
    The database groups, so only the rows that really are shared are fetched."""
    keyed = queryset.annotate(dup_key=key).exclude(dup_key="").exclude(dup_key__isnull=True)
    shared = (
        keyed.order_by()
        .values("dup_key")
        .annotate(n=Count(id_field, distinct=True))
        .filter(n__gt=1)
        .values("dup_key")
    )
    groups: dict[str, set[int]] = defaultdict(set)
    for key_value, row_id in keyed.filter(dup_key__in=shared).values_list("dup_key", id_field):
        groups[key_value].add(row_id)
    return [sorted(ids) for ids in groups.values() if len(ids) > 1]


def _dismissed_pairs(ids: Iterable[int]) -> set[tuple[int, int]]:
    ids = list(ids)
    if not ids:
        return set()
    return set(
        DuplicateDismissal.objects.filter(Q(first_id__in=ids) | Q(second_id__in=ids)).values_list(
            "first_id", "second_id"
        )
    )


def find_possible_duplicates(
    *, practitioners: QuerySet[Practitioner] | None = None
) -> list[DuplicatePair]:
    """Pairs of listings that may be the same practitioner: the same name and a clinic in the
    same ZIP, or the same phone, or the same email. Pairs staff dismissed are left out."""
    practitioners = practitioners if practitioners is not None else Practitioner.objects.all()
    reasons: dict[tuple[int, int], list[str]] = defaultdict(list)
    checks = [
        (
            "same name and ZIP",
            Location.objects.filter(practitioner__in=practitioners.values("pk")),
            Concat(Lower(Trim("practitioner__name")), Value("|"), "postal_code"),
            "practitioner_id",
        ),
        ("same phone", practitioners, _phone_key_expression(), "pk"),
        ("same email", practitioners, Lower(Trim("email")), "pk"),
    ]
    for label, queryset, key, id_field in checks:
        for ids in _duplicate_groups(queryset, key, id_field):
            for pair in itertools.combinations(ids, 2):
                if label not in reasons[pair]:
                    reasons[pair].append(label)
    return _pairs(reasons)


def possible_duplicates_of(practitioner: Practitioner) -> list[DuplicatePair]:
    """The possible duplicates of one listing (for its admin page); a few indexed queries."""
    if practitioner.pk is None:
        return []
    candidates: dict[int, list[str]] = defaultdict(list)
    zips = list(practitioner.locations.values_list("postal_code", flat=True))
    if zips:
        for other in (
            Location.objects.filter(postal_code__in=zips)
            .annotate(name_key=Lower(Trim("practitioner__name")))
            .filter(name_key=name_key(practitioner.name))
            .exclude(practitioner_id=practitioner.pk)
            .values_list("practitioner_id", flat=True)
        ):
            candidates[other].append("same name and ZIP")
    if len(phone_key(practitioner.phone)) >= 7:
        for other in (
            Practitioner.objects.annotate(phone_key=_phone_key_expression())
            .filter(phone_key=phone_key(practitioner.phone))
            .exclude(pk=practitioner.pk)
            .values_list("pk", flat=True)
        ):
            candidates[other].append("same phone")
    if practitioner.email.strip():
        for other in (
            Practitioner.objects.filter(email__iexact=practitioner.email.strip())
            .exclude(pk=practitioner.pk)
            .values_list("pk", flat=True)
        ):
            candidates[other].append("same email")
    reasons = {
        tuple(sorted((practitioner.pk, other))): list(dict.fromkeys(labels))
        for other, labels in candidates.items()
    }
    return _pairs(reasons)


def _pairs(reasons: dict[tuple[int, int], list[str]]) -> list[DuplicatePair]:
    ids = {pk for pair in reasons for pk in pair}
    dismissed = _dismissed_pairs(ids)
    kept = {pair: labels for pair, labels in reasons.items() if pair not in dismissed}
    by_id = Practitioner.objects.select_related("profession").in_bulk(
        {pk for pair in kept for pk in pair}
    )
    pairs = [
        DuplicatePair(by_id[first], by_id[second], labels)
        for (first, second), labels in kept.items()
        if first in by_id and second in by_id
    ]
    pairs.sort(key=lambda p: (p.first.name.lower(), p.first.pk, p.second.pk))
    return pairs


@transaction.atomic
def dismiss_duplicate(
    *, first: Practitioner, second: Practitioner, user: User | None = None
) -> DuplicateDismissal:
    """Record that staff looked at these two listings and they are different practitioners."""
    if first.pk == second.pk:
        raise ValueError("A listing cannot be a duplicate of itself.")
    low, high = sorted((first.pk, second.pk))
    dismissal, _ = DuplicateDismissal.objects.get_or_create(
        first_id=low,
        second_id=high,
        defaults={"dismissed_by": user if user is not None and user.is_authenticated else None},
    )
    return dismissal


MERGE_FILL_FIELDS = [
    "credentials",
    "profession",
    "bio",
    "phone",
    "website",
    "email",
    "npi",
    "external_id",
    "source_updated_on",
]


@transaction.atomic
def merge_practitioners(
    *, keep: Practitioner, remove: Practitioner, user: User | None = None
) -> Practitioner:
    """Fold ``remove`` into ``keep``: its clinics (unless ``keep`` has the same address), its
    certification records (the more complete record wins), its reports, and any field ``keep``
    left blank. ``remove`` is then deleted; both changes stay in the history."""
    if keep.pk == remove.pk:
        raise ValueError("Choose two different listings to merge.")
    keep = Practitioner.objects.select_for_update().get(pk=keep.pk)
    remove = Practitioner.objects.select_for_update().get(pk=remove.pk)

    kept_addresses = {
        (location.address_line1.strip().lower(), location.postal_code)
        for location in keep.locations.all()
    }
    for location in remove.locations.all():
        address = (location.address_line1.strip().lower(), location.postal_code)
        if address in kept_addresses:
            continue
        kept_addresses.add(address)
        location.practitioner = keep
        _with_history_user(location, user, f"Moved from merged listing #{remove.pk}")
        location.save()

    kept_records = {record.certification_id: record for record in keep.certification_records.all()}
    for record in remove.certification_records.all():
        mine = kept_records.get(record.certification_id)
        if mine is None:
            record.practitioner = keep
            _with_history_user(record, user, f"Moved from merged listing #{remove.pk}")
            record.save()
            continue
        changed = False
        for name in ("credential_number", "earned_on", "expires_on", "verification_source"):
            if not getattr(mine, name) and getattr(record, name):
                setattr(mine, name, getattr(record, name))
                changed = True
        if record.verified_on and (
            mine.verified_on is None or record.verified_on > mine.verified_on
        ):
            mine.verified_on, mine.verified_by_id = record.verified_on, record.verified_by_id
            mine.verification_source = record.verification_source or mine.verification_source
            changed = True
        if changed:
            _with_history_user(mine, user, f"Completed from merged listing #{remove.pk}")
            mine.save()

    ListingReport.objects.filter(practitioner=remove).update(practitioner=keep)

    filled = {
        name: getattr(remove, name)
        for name in MERGE_FILL_FIELDS
        if not getattr(keep, name) and getattr(remove, name)
    }
    removed_label = f"#{remove.pk} {remove.name}"
    _with_history_user(remove, user, f"Merged into #{keep.pk}")
    remove.delete()  # first, so the unique NPI / external id can move to ``keep``
    for name, value in filled.items():
        setattr(keep, name, value)
    _with_history_user(keep, user, f"Merged duplicate {removed_label}"[:100])
    keep.save()
    return keep


# --- Public submissions and problem reports ---------------------------------------------------


@dataclass
class ClinicSubmission:
    address_line1: str
    city: str
    state: str
    postal_code: str
    name: str = ""
    address_line2: str = ""
    phone: str = ""


@dataclass
class CertificationClaim:
    certification: Certification
    credential_number: str = ""
    earned_on: dt.date | None = None


@dataclass
class ListingSubmission:
    name: str
    profession: Profession
    clinics: list[ClinicSubmission]
    credentials: str = ""
    certifications: list[CertificationClaim] = field(default_factory=list)
    npi: str = ""
    phone: str = ""
    email: str = ""
    website: str = ""
    bio: str = ""
    accepting_new_patients: bool = True
    telehealth: bool = False


def _unique_slug(name: str, city: str) -> str:
    base = listing_slug_base(name, city)
    taken = set(Practitioner.objects.filter(slug__startswith=base).values_list("slug", flat=True))
    return first_free_slug(base, taken)


def submit_listing(*, submission: ListingSubmission) -> Practitioner:
    """A listing proposed by the public: saved as pending review, never shown until staff
    publish it. Nothing here depends on whether the practitioner is already listed, so the
    caller cannot tell (an NPI already in use is noted for staff, not refused)."""
    if not submission.clinics:
        raise ValueError("A listing needs at least one clinic address.")
    with transaction.atomic():
        note = ""
        npi = submission.npi
        if npi and Practitioner.objects.filter(npi=npi).exists():
            # The NPI is unique; keep the submission and let staff merge it with the listing.
            note = f"Submitted with NPI {npi}, which another listing already has"
            npi = ""
        practitioner = Practitioner.objects.create(
            name=submission.name,
            credentials=submission.credentials,
            profession=submission.profession,
            npi=npi,
            phone=submission.phone,
            email=submission.email,
            website=submission.website,
            bio=submission.bio,
            accepting_new_patients=submission.accepting_new_patients,
            telehealth=submission.telehealth,
            status=Practitioner.Status.PENDING,
            status_reason=note,
            source=Practitioner.Source.SUBMISSION,
            slug=_unique_slug(submission.name, submission.clinics[0].city),
        )
        locations = []
        for clinic in submission.clinics:
            location = Location(
                practitioner=practitioner,
                name=clinic.name,
                address_line1=clinic.address_line1,
                address_line2=clinic.address_line2,
                city=clinic.city,
                state=clinic.state,
                postal_code=clinic.postal_code,
                phone=clinic.phone,
                source=Location.Source.SUBMISSION,
            )
            geocoding.place_at_zip_centroid(location)
            location.save()
            locations.append(location)
        for claim in {c.certification.pk: c for c in submission.certifications}.values():
            PractitionerCertification.objects.create(
                practitioner=practitioner,
                certification=claim.certification,
                credential_number=claim.credential_number,
                earned_on=claim.earned_on,
            )
    for location in locations:
        # After the commit: a slow or failing geocoder never loses the submission.
        geocoding.geocode_location(location=location, force=False)
    return practitioner


def report_problem(
    *, practitioner: Practitioner, kind: str, details: str = "", contact_email: str = ""
) -> ListingReport:
    """A member of the public says something about a published listing is wrong."""
    if kind not in ListingReport.Kind.values:
        raise ValueError(f"Unknown kind of problem {kind!r}.")
    with transaction.atomic():
        return ListingReport.objects.create(
            practitioner=practitioner,
            kind=kind,
            details=details.strip()[:2000],
            contact_email=contact_email.strip(),
        )


@transaction.atomic
def resolve_reports(
    *, reports: QuerySet[ListingReport], user: User | None = None, note: str = ""
) -> int:
    """Close open reports, recording who closed them, when and how. Returns how many."""
    return reports.filter(resolved_at__isnull=True).update(
        resolved_at=timezone.now(),
        resolved_by=user if user is not None and user.is_authenticated else None,
        resolution_note=note.strip()[:500],
    )


def resolve_report(*, report: ListingReport, user: User | None = None, note: str = "") -> None:
    resolve_reports(reports=ListingReport.objects.filter(pk=report.pk), user=user, note=note)
    report.refresh_from_db()


# --- Dashboard --------------------------------------------------------------------------------


@dataclass
class CurationCounts:
    pending_review: int
    verification_due: int
    open_reports: int
    failed_geocodes: int


def curation_counts(on: dt.date | None = None) -> CurationCounts:
    return CurationCounts(
        pending_review=Practitioner.objects.filter(status=Practitioner.Status.PENDING).count(),
        verification_due=needing_verification(Practitioner.objects.all(), on).count(),
        open_reports=ListingReport.objects.filter(resolved_at__isnull=True).count(),
        failed_geocodes=Location.objects.filter(
            geocode_status=Location.GeocodeStatus.FAILED
        ).count(),
    )


def strip_control_characters(text: str) -> str:
    """Plain text as typed, minus control characters other than newlines and tabs."""
    return re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", "", text)
