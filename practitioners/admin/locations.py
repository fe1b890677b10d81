"""Clinics: geocoding status, the map link, re-geocoding."""

from __future__ import annotations

from django.contrib import admin
from django.utils import timezone
from simple_history.admin import SimpleHistoryAdmin

from .. import practice
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

    def save_formset(self, request, form, formset, change):
        """The hours editor's rows are written by practice.save_clinic_practice, the service
        the owner's hours editor calls: the same checks, the search minutes, the date."""
        if formset.model is not practice.OpeningHours:
            return super().save_formset(request, form, formset, change)
        formset.save(commit=False)  # what the admin's change message lists; written below
        if not formset.has_changed():
            return None
        hours = [
            (data["weekday"], data["opens"], data["closes"])
            for row in formset.forms
            if (data := row.cleaned_data)
            and not formset._should_delete_form(row)
            and data.get("weekday") is not None
        ]
        location = form.instance
        typed = "hours_checked_on" in form.changed_data  # staff typed the date they mean
        practice.save_clinic_practice(
            location=location,
            hours=hours,
            reopens_on=location.reopens_on,
            on=location.hours_checked_on if typed else timezone.localdate(),
            user=request.user,
            author="Staff",
        )
        return None

    @admin.action(description="Re-geocode selected clinics", permissions=["change"])
    def regeocode_selected(self, request, queryset):
        regeocode(self, request, queryset)
