"""The admin's forms: a listing, a clinic, resolving a report, uploading a CSV."""

from __future__ import annotations

from django import forms
from django.db import models
from django.utils import timezone

from .. import geocoding, imports
from ..forms import HttpURLField
from ..models import (
    ListingReport,
    Location,
    Practitioner,
)
from ..practice import (
    ACCESSIBILITY_FIELDS,
    CLINIC_DATE_FIELDS,
    PRACTICE_FIELDS,
    date_changed_groups,
)
from ..search import geo
from ..search.results import CLINIC_FIELDS
from .common import ADDRESS_FIELDS

# The clinic's accessibility, temporary closure and "confirmed" dates (practice.ClinicAccess).
CLINIC_ACCESS_FIELDS = [*ACCESSIBILITY_FIELDS, *CLINIC_DATE_FIELDS]


def https_formfield(field: models.Field, **kwargs) -> forms.Field | None:
    if isinstance(field, models.URLField):
        kwargs["assume_scheme"] = "https"
    return field.formfield(**kwargs)


class PractitionerAdminForm(forms.ModelForm):
    website = HttpURLField(max_length=300, required=False, assume_scheme="https")

    class Meta:
        model = Practitioner
        formfield_callback = https_formfield
        fields = [
            "name",
            "credentials",
            "profession",
            "npi",
            "slug",
            "status",
            "status_reason",
            "phone",
            "email",
            "website",
            "telehealth",
            "bio",
            "external_id",
            *PRACTICE_FIELDS,
        ]

    def save(self, commit: bool = True) -> Practitioner:
        # Staff who change a detail have checked it: its group is dated today unless they
        # typed the date themselves (the same rule as the owner's and the import's dates).
        date_changed_groups(self.instance, changed=self.changed_data, on=timezone.localdate())
        return super().save(commit)


class LocationAdminForm(forms.ModelForm):
    class Meta:
        model = Location
        # What a result row shows of a clinic (search/results.py), less what the geocoder sets.
        fields = [
            "practitioner",
            *(name for name in CLINIC_FIELDS if name != "precision"),
            *CLINIC_ACCESS_FIELDS,
        ]

    def save(self, commit: bool = True) -> Location:
        # A new clinic, or a new address, which makes the old pin wrong: at the (new) ZIP
        # centroid, marked approximate and pending, until the geocoding task places it.
        typed = {"latitude", "longitude"} & set(self.changed_data)
        moved = self.instance.pk and ADDRESS_FIELDS & set(self.changed_data)
        if not typed and (moved or self.instance.latitude is None):
            geocoding.place_at_zip_centroid(self.instance)
        date_changed_groups(self.instance, changed=self.changed_data, on=timezone.localdate())
        return super().save(commit)

    def clean(self) -> dict:
        cleaned = super().clean()
        latitude, longitude = cleaned.get("latitude"), cleaned.get("longitude")
        typed = {"latitude", "longitude"} & set(self.changed_data)
        if typed and (latitude is None) != (longitude is None):
            raise forms.ValidationError("Give both latitude and longitude, or neither.")
        if typed and latitude is not None and not geo.inside_us(latitude, longitude):
            raise forms.ValidationError(geo.outside_us_message(latitude, longitude))
        return cleaned


class ReportResolutionForm(forms.ModelForm):
    resolve = forms.BooleanField(required=False, label="Resolve now")

    class Meta:
        model = ListingReport
        fields = ["resolution_note"]


class ImportUploadForm(forms.Form):
    file = forms.FileField(label="CSV file", help_text="The columns of import_practitioners.")

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > imports.max_upload_bytes():
            raise forms.ValidationError(imports.too_big_message(upload.size))
        return upload
