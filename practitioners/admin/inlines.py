"""What a listing's change page shows under it: clinics, certificates and problem reports."""

from __future__ import annotations

from django.contrib import admin

from ..models import (
    ListingReport,
    Location,
    PractitionerCertification,
)
from .common import osm_link
from .forms import LocationAdminForm, ReportResolutionForm


class LocationInline(admin.StackedInline):
    model = Location
    form = LocationAdminForm
    extra = 0
    show_change_link = True
    fields = [
        "name",
        ("address_line1", "address_line2"),
        ("city", "state", "postal_code"),
        "phone",
        ("latitude", "longitude"),
        ("wheelchair_entrance", "accessible_restroom", "parking", "public_transit"),
        ("accessibility_checked_on", "reopens_on", "hours_checked_on"),
        "map_link",
        ("precision", "geocode_status", "geocode_provider", "geocoded_at"),
        "geocode_error",
        "source",
    ]
    readonly_fields = [
        "map_link",
        "precision",
        "geocode_status",
        "geocode_provider",
        "geocoded_at",
        "geocode_error",
        "source",
    ]

    @admin.display(description="Map")
    def map_link(self, location: Location) -> str:
        return osm_link(location.latitude, location.longitude)


class CertificationInline(admin.TabularInline):
    model = PractitionerCertification
    extra = 0
    fields = [
        "certification",
        "credential_number",
        "earned_on",
        "expires_on",
        "verified_on",
        "verified_by",
        "verification_source",
    ]
    readonly_fields = ["verified_by"]
    autocomplete_fields = ["certification"]


class ListingReportInline(admin.TabularInline):
    """Problem reports next to the listing; tick "resolve now" (and add a note) to close one."""

    model = ListingReport
    form = ReportResolutionForm
    extra = 0
    can_delete = False
    fields = [
        "kind",
        "details",
        "contact_email",
        "created_at",
        "resolved_at",
        "resolved_by",
        "resolution_note",
        "resolve",
    ]
    readonly_fields = [
        "kind",
        "details",
        "contact_email",
        "created_at",
        "resolved_at",
        "resolved_by",
    ]
    ordering = ["resolved_at", "-created_at"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False
