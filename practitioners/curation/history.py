"""One timeline per listing: every recorded change to the listing, its clinics and its
certificates, newest first, with who made it ("public form", "CSV import <file>", "NPI registry
<date>" or the staff member) and what changed."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from ..models import (
    Certification,
    CertificationEvidence,
    ListingClaim,
    ListingMerge,
    Location,
    OwnerRequest,
    Practitioner,
    PractitionerCertification,
)
from .services import PUBLIC_FORM

# Reasons the writers record when no person is signed in; the timeline shows them as the author.
AUTHOR_REASONS = ("CSV import", "NPI registry", PUBLIC_FORM, "Owner", "Roster")
# Bookkeeping that changes on every save and says nothing to a curator.
IGNORED_FIELDS = {
    "updated_at",
    "nppes_values",
    "geocoded_at",
    "geocoded_address",
    "last_confirmed_on",
}
KINDS = {"+": "created", "~": "changed", "-": "deleted"}


@dataclass
class Change:
    field: str
    old: object
    new: object


@dataclass
class TimelineEntry:
    when: dt.datetime
    subject: str  # "Listing", "Clinic 5100 Poplar Ave, Memphis", "Certificate ART Spine"
    kind: str  # created / changed / deleted
    author: str
    reason: str
    changes: list[Change] = field(default_factory=list)
    history_id: int | None = None  # the listing's own version, for "revert to this"
    merge: ListingMerge | None = None


def author_of(record) -> str:
    """Who made a recorded change: the signed-in person, or the source the reason names."""
    user = record.history_user
    if user is not None:
        return user.get_full_name() or user.get_username()
    reason = record.history_change_reason or ""
    for prefix in AUTHOR_REASONS:
        if reason.startswith(prefix):
            return reason if prefix != PUBLIC_FORM else "public form"
    return "system"


def _label(model_field_name: str, model) -> str:
    try:
        return str(model._meta.get_field(model_field_name).verbose_name)
    except Exception:  # a field that no longer exists on the model
        return model_field_name


def _entries(records, subject_of, model) -> list[TimelineEntry]:
    by_object: dict[int, list] = defaultdict(list)
    for record in records:
        by_object[record.id].append(record)
    entries = []
    for versions in by_object.values():
        versions.sort(key=lambda version: (version.history_date, version.history_id))
        previous = None
        for version in versions:
            changes = []
            if previous is not None and version.history_type == "~":
                delta = version.diff_against(previous)
                changes = [
                    Change(_label(change.field, model), change.old, change.new)
                    for change in delta.changes
                    if change.field not in IGNORED_FIELDS
                ]
            entries.append(
                TimelineEntry(
                    when=version.history_date,
                    subject=subject_of(version),
                    kind=KINDS.get(version.history_type, version.history_type),
                    author=author_of(version),
                    reason=version.history_change_reason or "",
                    changes=changes,
                    history_id=version.history_id if model is Practitioner else None,
                )
            )
            previous = version
    return entries


def listing_timeline(practitioner_id: int, *, limit: int = 500) -> list[TimelineEntry]:
    """The listing's history with its clinics' and certificates' (a clinic or certificate that
    was merged in shows its whole life), newest first, in a fixed number of queries."""
    listing = Practitioner.history.filter(id=practitioner_id).select_related("history_user")
    clinic_ids = Location.history.filter(practitioner_id=practitioner_id).values("id")
    record_ids = PractitionerCertification.history.filter(practitioner_id=practitioner_id).values(
        "id"
    )
    certificate_names = dict(Certification.objects.values_list("id", "name"))
    entries = _entries(listing, lambda version: "Listing", Practitioner)
    entries += _entries(
        Location.history.filter(id__in=clinic_ids).select_related("history_user"),
        lambda version: f"Clinic {version.address_line1}, {version.city}",
        Location,
    )
    entries += _entries(
        PractitionerCertification.history.filter(id__in=record_ids).select_related("history_user"),
        lambda version: f"Certificate {certificate_names.get(version.certification_id, '?')}",
        PractitionerCertification,
    )
    for merge in ListingMerge.objects.filter(kept_id=practitioner_id).select_related(
        "merged_by", "undone_by"
    ):
        entries.append(
            TimelineEntry(
                when=merge.merged_at,
                subject="Merge",
                kind="merged",
                author=(merge.merged_by.get_username() if merge.merged_by else "system"),
                reason=f"#{merge.removed_id} {merge.removed_name} merged into this listing"
                + (" (undone)" if merge.is_undone else ""),
                merge=merge,
            )
        )
    entries += _ownership_entries(practitioner_id)
    entries.sort(key=lambda entry: entry.when, reverse=True)
    return entries[:limit]


def _person(user) -> str:
    if user is None:
        return "system"
    return user.get_full_name() or user.email or user.get_username()


def _claim_started(claim: ListingClaim) -> str:
    if claim.method == ListingClaim.Method.EMAIL_CODE:
        local, _, domain = claim.code_sent_to.partition("@")
        return f"Asked for a code at the listing's e-mail ({local[:1]}•••@{domain})"
    if claim.method == ListingClaim.Method.LICENCE:
        return (
            f"Claimed with NPI {claim.npi} and licence {claim.licence_number} "
            f"({claim.licence_state})"
        )
    return f"Disputes the owner: {claim.message[:300]}"


def _ownership_entries(practitioner_id: int) -> list[TimelineEntry]:
    """Claims (asked, decided), owners' requests and certificate evidence, which live in their
    own tables: each asking and each decision is a step in the timeline."""
    entries = []
    claims = ListingClaim.objects.filter(practitioner_id=practitioner_id).select_related(
        "claimant", "decided_by"
    )
    for claim in claims:
        entries.append(
            TimelineEntry(
                when=claim.created_at,
                subject="Claim",
                kind="claimed",
                author=_person(claim.claimant),
                reason=_claim_started(claim),
            )
        )
        if claim.decided_at is not None:
            by_code = claim.method == ListingClaim.Method.EMAIL_CODE and claim.decided_by is None
            entries.append(
                TimelineEntry(
                    when=claim.decided_at,
                    subject="Claim",
                    kind=claim.get_status_display().lower(),
                    author=_person(claim.claimant if by_code else claim.decided_by),
                    reason=claim.decision_reason
                    or (
                        "the right code was entered"
                        if claim.status == ListingClaim.Status.APPROVED
                        else "the code expired or was mistyped too often"
                        if by_code
                        else ""
                    ),
                )
            )
    requests = OwnerRequest.objects.filter(practitioner_id=practitioner_id).select_related(
        "requested_by", "resolved_by"
    )
    for request in requests:
        entries.append(
            TimelineEntry(
                when=request.created_at,
                subject="Owner request",
                kind="requested",
                author=_person(request.requested_by),
                reason=str(request) + (f": {request.note}" if request.note else ""),
            )
        )
        if request.resolved_at is not None:
            entries.append(
                TimelineEntry(
                    when=request.resolved_at,
                    subject="Owner request",
                    kind=request.get_status_display().lower(),
                    author=_person(request.resolved_by),
                    reason=request.resolution_note,
                )
            )
    evidence = CertificationEvidence.objects.filter(practitioner_id=practitioner_id).select_related(
        "certification", "uploaded_by", "reviewed_by"
    )
    for item in evidence:
        entries.append(
            TimelineEntry(
                when=item.created_at,
                subject=f"Evidence {item.certification.name}",
                kind="uploaded",
                author=_person(item.uploaded_by),
                reason=f"{item.original_name} ({item.content_type})",
            )
        )
        if item.reviewed_at is not None:
            entries.append(
                TimelineEntry(
                    when=item.reviewed_at,
                    subject=f"Evidence {item.certification.name}",
                    kind=item.get_status_display().lower(),
                    author=_person(item.reviewed_by),
                    reason=item.rejection_reason,
                )
            )
    return entries
