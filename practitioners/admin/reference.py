"""Reference data: professions, certifications, taxonomy codes, the geocode cache, dismissed
duplicate pairs."""

from __future__ import annotations

from django.contrib import admin
from django.db import models

from ..models import (
    Certification,
    DuplicateDismissal,
    GeocodeCacheEntry,
    Profession,
    TaxonomyMapping,
)


@admin.register(Profession)
class ProfessionAdmin(admin.ModelAdmin):
    list_display = ["name", "slug"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Certification)
class CertificationAdmin(admin.ModelAdmin):
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = ["name", "slug", "parent", "issuing_body"]
    list_select_related = ["parent"]
    list_filter = ["issuing_body"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(TaxonomyMapping)
class TaxonomyMappingAdmin(admin.ModelAdmin):
    """NPPES taxonomy code (or prefix) -> profession, used by ``import_nppes``."""

    list_display = ["code_prefix", "profession", "description"]
    list_editable = ["profession", "description"]
    list_select_related = ["profession"]
    list_filter = ["profession"]
    search_fields = ["code_prefix", "description"]


@admin.register(GeocodeCacheEntry)
class GeocodeCacheEntryAdmin(admin.ModelAdmin):
    list_display = ["address_key", "provider", "outcome", "latitude", "longitude", "created_at"]
    list_filter = ["provider", "outcome"]
    search_fields = ["address_key"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(DuplicateDismissal)
class DuplicateDismissalAdmin(admin.ModelAdmin):
    list_display = ["first", "second", "dismissed_by", "dismissed_at"]
    list_select_related = ["first", "second", "dismissed_by"]
    raw_id_fields = ["first", "second"]
