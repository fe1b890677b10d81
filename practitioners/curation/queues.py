"""The staff work queues and their counts, for the admin's home page."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.core.cache import cache

from ..models import ListingReport, Location, Practitioner
from .duplicates import DUPLICATES_COUNT_KEY, DUPLICATES_COUNT_SECONDS, find_possible_duplicates
from .services import needing_verification


@dataclass
class CurationCounts:
    pending_review: int
    verification_due: int
    open_reports: int
    failed_geocodes: int
    possible_duplicates: int


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
    )
