"""Conditions people search by, and the techniques their bodies list for them (staff curate)."""

from __future__ import annotations

from django.contrib import admin
from django.db import models
from django.db.models import Count
from django.http import HttpRequest

from ..models import Condition, ConditionTechnique


class ConditionTechniqueInline(admin.TabularInline):
    model = ConditionTechnique
    extra = 1
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    fields = ["certification", "note", "source_url"]


@admin.register(Condition)
class ConditionAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "icd10_codes", "technique_count", "updated_at"]
    search_fields = ["name", "slug", "synonyms", "icd10_codes"]
    list_filter = ["techniques"]
    prepopulated_fields = {"slug": ["name"]}
    fields = ["name", "slug", "synonyms", "icd10_codes", "description"]
    inlines = [ConditionTechniqueInline]

    def get_queryset(self, request: HttpRequest) -> models.QuerySet:
        return super().get_queryset(request).annotate(technique_count=Count("links"))

    @admin.display(description="techniques", ordering="technique_count")
    def technique_count(self, condition: Condition) -> int:
        return condition.technique_count
