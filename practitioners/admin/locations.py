"""Clinics: geocoding status, the map link, re-geocoding."""

from __future__ import annotations

from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from ..models import (
    Location,
)
from .common import osm_link, regeocode, save_location_form
from .forms import LocationAdminForm
from .practice import OpeningHoursInline


@admin.register(Location)
class LocationAdmin(SimpleHistoryAdmin):
    form = LocationAdminForm
    inlines = [OpeningHoursInline]
    list_display = [
        "one_line_address",
        "practitioner",
        "geocode_status",
        "precision",
        "geocode_provider",
        "geocoded_at",
        "geocode_error_short",
    ]
    list_filter = ["geocode_status", "precision", "source", "state"]
    list_select_related = ["practitioner"]
    search_fields = ["address_line1", "city", "postal_code", "practitioner__name"]
    raw_id_fields = ["practitioner"]
    readonly_fields = [
        "map_link",
        "precision",
        "geocode_status",
        "geocode_provider",
        "geocoded_at",
        "geocode_error",
        "geocoded_address",
        "nppes_key",
    ]
    actions = ["regeocode_selected"]

    @admin.display(description="Map")
    def map_link(self, location: Location) -> str:
        return osm_link(location.latitude, location.longitude)

    @admin.display(description="Geocode error")
    def geocode_error_short(self, location: Location) -> str:
        return location.geocode_error[:80]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        save_location_form(request, form, obj)

    @admin.action(description="Re-geocode selected clinics", permissions=["change"])
    def regeocode_selected(self, request, queryset):
        regeocode(self, request, queryset)
