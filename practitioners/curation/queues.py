"""The staff work queues and their counts, for the admin's home page."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.core.cache import cache

from ..models import (
    CertificationEvidence,
    ListingClaim,
    ListingReport,
    Location,
    OwnerRequest,
    Practitioner,
)
from ..ownership import stale_listing_q
from .duplicates import DUPLICATES_COUNT_KEY, DUPLICATES_COUNT_SECONDS, find_possible_duplicates
from .services import needing_verification


@dataclass
class CurationCounts:
    pending_review: int
    verification_due: int
    open_reports: int
    failed_geocodes: int
    possible_duplicates: int
    claims_to_review: int = 0
    disputes: int = 0
    evidence_to_review: int = 0
    change_requests: int = 0
    hide_requests: int = 0
    stale_listings: int = 0


# Counting stale listings reads every published listing: the home page shows a count at most
# this old (the changelist filter itself is always exact).
STALE_COUNT_KEY = "curation:stale-listings-count"
STALE_COUNT_SECONDS = 300


def stale_listings(on: dt.date | None = None):
    """Published listings neither confirmed by their owner nor verified by staff within
    LISTING_STALE_AFTER_DAYS: the public sees "This listing may be out of date"."""
    return Practitioner.objects.published().filter(stale_listing_q(on))


def stale_listings_count() -> int:
    count = cache.get(STALE_COUNT_KEY)
    if count is None:
        count = stale_listings().count()
        cache.set(STALE_COUNT_KEY, count, STALE_COUNT_SECONDS)
    return count


def possible_duplicates_count() -> int:
    count = cache.get(DUPLICATES_COUNT_KEY)
    if count is None:
        count = len(find_possible_duplicates())
        cache.set(DUPLICATES_COUNT_KEY, count, DUPLICATES_COUNT_SECONDS)
    return count


def curation_counts(on: dt.date | None = None) -> CurationCounts:
    return CurationCounts(
        pending_review=Practitioner.objects.filter(status=Practitioner.Status.PENDING).count(),
        verification_due=needing_verification(Practitioner.objects.all(), on).count(),
        open_reports=ListingReport.objects.filter(resolved_at__isnull=True).count(),
        failed_geocodes=Location.objects.filter(
            geocode_status=Location.GeocodeStatus.FAILED
        ).count(),
        possible_duplicates=possible_duplicates_count(),
        claims_to_review=ListingClaim.objects.filter(
            status__in=ListingClaim.OPEN_FOR_STAFF
        ).count(),
        disputes=ListingClaim.objects.filter(status=ListingClaim.Status.DISPUTE).count(),
        evidence_to_review=CertificationEvidence.objects.filter(
            status=CertificationEvidence.Status.PENDING
        ).count(),
        change_requests=OwnerRequest.objects.filter(
            kind=OwnerRequest.Kind.CHANGE, status=OwnerRequest.Status.OPEN
        ).count(),
        hide_requests=OwnerRequest.objects.filter(
            kind=OwnerRequest.Kind.HIDE, status=OwnerRequest.Status.OPEN
        ).count(),
        stale_listings=stale_listings_count(),
    )
