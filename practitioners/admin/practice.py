"""Languages and payers (staff-curated lists) and a clinic's weekly hours."""

from __future__ import annotations

from django import forms
from django.contrib import admin

from ..practice import MAX_INTERVALS, Language, OpeningHours, Payer


@admin.register(Language)
class LanguageAdmin(admin.ModelAdmin):
    list_display = ["name", "code"]
    search_fields = ["name", "code"]


@admin.register(Payer)
class PayerAdmin(admin.ModelAdmin):
    list_display = ["name", "slug"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}


class OpeningHoursForm(forms.ModelForm):
    class Meta:
        model = OpeningHours
        fields = ["weekday", "opens", "closes"]
        # The browser's own time picker, in 24-hour steps of 15 minutes.
        widgets = {
            "opens": forms.TimeInput(attrs={"type": "time", "step": 900}, format="%H:%M"),
            "closes": forms.TimeInput(attrs={"type": "time", "step": 900}, format="%H:%M"),
        }


class OpeningHoursInline(admin.TabularInline):
    """The hours editor: one row per interval (a day may have several), in the clinic's own
    time zone; a closing time at or before the opening time runs past midnight."""

    model = OpeningHours
    form = OpeningHoursForm
    extra = 1
    max_num = MAX_INTERVALS  # what practice.save_clinic_practice accepts

    def get_formset(self, request, obj=None, **kwargs):
        # A forged POST with more rows than that is a form error, not the service's refusal.
        kwargs.setdefault("validate_max", True)
        return super().get_formset(request, obj, **kwargs)

    verbose_name = "opening interval"
    verbose_name_plural = "Opening hours (clinic's local time; close ≤ open runs past midnight)"
