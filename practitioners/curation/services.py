"""Curation: the writes staff (and the public forms) make to listings, with their rules.

Every function here is keyword-only and runs in one transaction; the admin, the public views and
the tests all call these rather than saving models by hand, so a rule (a listing needs a clinic
and a profession to be published, a dismissed pair of duplicates stays dismissed...) lives once.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.urls import reverse
from django.utils import timezone
from simple_history.utils import bulk_update_with_history

from .. import geocoding, place_pages, tasks
from ..models import (
    Certification,
    ListingReport,
    Location,
    Practitioner,
    PractitionerCertification,
    Profession,
    unique_listing_slugs,
)

User = AbstractBaseUser
# The reason recorded on what the public forms create (the timeline shows it as the author).
PUBLIC_FORM = "Public form"


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
        # Their cities (and techniques there) join the sitemap's place list.
        place_pages.refresh_after_commit()
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
        place_pages.refresh_after_commit()  # a city left with nobody leaves the sitemap
    return len(rows)


# --- Verification -----------------------------------------------------------------------------


def needing_verification(
    practitioners: QuerySet[Practitioner], on: dt.date | None = None
) -> QuerySet[Practitioner]:
    """The staff work queue: listings holding at least one certification record that is due."""
    return practitioners.with_certificates(PractitionerCertification.objects.due(on))


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
        # Staff checked the listing: it is not "may be out of date" (ownership.stale_listing_q).
        # Its certificates changed, so the listing did: the FHIR and HSDS feeds' incremental
        # pulls (_lastUpdated, modified_after) go by updated_at.
        Practitioner.objects.filter(pk__in={record.practitioner_id for record in records}).update(
            last_confirmed_on=on, updated_at=timezone.now()
        )
    return len(records)


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

    def new_location(self, *, practitioner: Practitioner, source: str) -> Location:
        """The clinic, unsaved, waiting at its ZIP centroid (marked approximate) for the
        geocoding task, as every clinic a person types in does."""
        location = Location(
            practitioner=practitioner,
            name=self.name,
            address_line1=self.address_line1,
            address_line2=self.address_line2,
            city=self.city,
            state=self.state,
            postal_code=self.postal_code,
            phone=self.phone,
            source=source,
        )
        geocoding.place_at_zip_centroid(location)
        return location


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
        practitioner = Practitioner(
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
            slug=unique_listing_slugs([(submission.name, submission.clinics[0].city, npi)])[0],
        )
        # The timeline names the public form as the author of everything it created.
        _with_history_user(practitioner, None, PUBLIC_FORM)
        practitioner.save()
        locations = []
        for clinic in submission.clinics:
            location = clinic.new_location(
                practitioner=practitioner, source=Location.Source.SUBMISSION
            )
            _with_history_user(location, None, PUBLIC_FORM)
            location.save()
            locations.append(location)
        for claim in {c.certification.pk: c for c in submission.certifications}.values():
            record = PractitionerCertification(
                practitioner=practitioner,
                certification=claim.certification,
                credential_number=claim.credential_number,
                earned_on=claim.earned_on,
            )
            _with_history_user(record, None, PUBLIC_FORM)
            record.save()
        # Each clinic sits at its ZIP centroid ("approximate location") until a task places it,
        # after the commit: a slow or failing geocoder never holds or loses the submission.
        tasks.geocode_after_commit(location_ids=[location.pk for location in locations])
        tasks.notify_staff(
            subject=f"New listing to review: {practitioner.name}",
            body=_staff_mail_body(
                "A listing was submitted through the public form and waits for review.",
                practitioner,
                note,
            ),
        )
    return practitioner


def _staff_mail_body(headline: str, practitioner: Practitioner, *details: str) -> str:
    """What staff need to find it; everything else (and anything personal) stays in the admin."""
    admin_path = reverse("admin:practitioners_practitioner_change", args=[practitioner.pk])
    lines = [headline, "", f"Listing: {practitioner.name}", *filter(None, details)]
    lines += ["", f"Open it in the admin: {tasks.site_url(admin_path)}"]
    return "\n".join(lines)


def report_problem(
    *, practitioner: Practitioner, kind: str, details: str = "", contact_email: str = ""
) -> ListingReport:
    """A member of the public says something about a published listing is wrong."""
    if kind not in ListingReport.Kind.values:
        raise ValueError(f"Unknown kind of problem {kind!r}.")
    with transaction.atomic():
        report = ListingReport.objects.create(
            practitioner=practitioner,
            kind=kind,
            details=details.strip()[:2000],
            contact_email=contact_email.strip(),
        )
        tasks.notify_staff(
            subject=f"Problem reported: {practitioner.name}",
            body=_staff_mail_body(
                "Someone reported a problem with a listing.",
                practitioner,
                f"Problem: {report.get_kind_display()}",
            ),
        )
    return report


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


def strip_control_characters(text: str) -> str:
    """Plain text as typed, minus control characters other than newlines and tabs."""
    return re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", "", text)
