"""The changelist filters: certification, state, the verification work queue, geocoding,
reports and possible duplicates."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from .. import curation
from ..models import (
    Certification,
    ListingReport,
    Location,
    PractitionerCertification,
)


class CertificationFilter(admin.SimpleListFilter):
    title = "certification"
    parameter_name = "certification"

    def lookups(self, request, model_admin):
        return list(Certification.objects.values_list("slug", "name"))

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        return queryset.filter(
            Exists(
                PractitionerCertification.objects.filter(
                    practitioner_id=OuterRef("pk"), certification__slug=self.value()
                )
            )
        )


class StateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        states = Location.objects.order_by("state").values_list("state", flat=True).distinct()
        return [(state, state) for state in states]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        return queryset.filter(
            Exists(Location.objects.filter(practitioner_id=OuterRef("pk"), state=self.value()))
        )


class FreshnessFilter(admin.SimpleListFilter):
    """Listings the public sees as "may be out of date" (``ownership.stale_listing_q``)."""

    title = "freshness"
    parameter_name = "freshness"

    def lookups(self, request, model_admin):
        return [
            ("stale", f"May be out of date ({settings.LISTING_STALE_AFTER_DAYS} days)"),
            ("claimed", "Claimed by the practitioner"),
        ]

    def queryset(self, request, queryset):
        from ..ownership import stale_listing_q

        if self.value() == "stale":
            return queryset.filter(stale_listing_q())
        if self.value() == "claimed":
            return queryset.filter(claimed_by__isnull=False)
        return queryset


class VerificationFilter(admin.SimpleListFilter):
    """The staff work queue: certifications never checked, checked over a year ago, or about to
    expire (the windows are ``PractitionerCertificationQuerySet``'s)."""

    title = "verification"
    parameter_name = "verification"

    def lookups(self, request, model_admin):
        return [
            ("due", "Needs verification (queue)"),
            ("never", "Never verified"),
            ("stale", f"Verified over {settings.VERIFICATION_MAX_AGE_DAYS // 30} months ago"),
            ("expiring", f"Expiring within {settings.CERTIFICATION_EXPIRY_WARNING_DAYS} days"),
        ]

    def records(self, queryset: QuerySet[PractitionerCertification]) -> QuerySet | None:
        today = timezone.localdate()
        windows = {
            "due": lambda: queryset.due(today),
            "never": lambda: queryset.never_verified(),
            "stale": lambda: queryset.stale(today),
            "expiring": lambda: queryset.expiring(today),
        }
        window = windows.get(self.value())
        return window() if window else None

    def queryset(self, request, queryset):
        records = self.records(PractitionerCertification.objects.all())
        return queryset if records is None else queryset.with_certificates(records)


class RecordVerificationFilter(VerificationFilter):
    """The same work queue, on certification records."""

    def queryset(self, request, queryset):
        records = self.records(queryset)
        return queryset if records is None else records


class LocationFieldFilter(admin.SimpleListFilter):
    """Practitioners with at least one clinic whose ``field`` has the chosen value."""

    field = ""

    def lookups(self, request, model_admin):
        return list(Location._meta.get_field(self.field).choices)

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        return queryset.filter(
            Exists(
                Location.objects.filter(
                    practitioner_id=OuterRef("pk"), **{self.field: self.value()}
                )
            )
        )


class GeocodeStatusFilter(LocationFieldFilter):
    title = "geocode status (any clinic)"
    parameter_name = "geocode_status"
    field = "geocode_status"


class PrecisionFilter(LocationFieldFilter):
    title = "position precision (any clinic)"
    parameter_name = "precision"
    field = "precision"


class OpenReportFilter(admin.SimpleListFilter):
    title = "problem reports"
    parameter_name = "reports"

    def lookups(self, request, model_admin):
        return [("open", "Has open reports")]

    def queryset(self, request, queryset):
        if self.value() != "open":
            return queryset
        return queryset.filter(
            Exists(
                ListingReport.objects.filter(
                    practitioner_id=OuterRef("pk"), resolved_at__isnull=True
                )
            )
        )


class DuplicateFilter(admin.SimpleListFilter):
    title = "possible duplicates"
    parameter_name = "duplicates"

    def lookups(self, request, model_admin):
        return [("yes", "Possible duplicate")]

    def queryset(self, request, queryset):
        if self.value() != "yes":
            return queryset
        pairs = curation.find_possible_duplicates()
        ids = {p.first.pk for p in pairs} | {p.second.pk for p in pairs}
        return queryset.filter(pk__in=ids)
