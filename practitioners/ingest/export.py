"""Export for the admin (django-import-export), in exactly the CSV columns ``import_practitioners``
reads, so an export can be edited and imported back.

One row per clinic (rows sharing ``external_id`` are one practitioner, as the importer expects);
a practitioner with no clinic gets one row with the address columns empty. Text cells that a
spreadsheet would run as a formula (starting with = + - @, a tab or a carriage return) are
prefixed with an apostrophe; numbers such as a negative longitude are left as numbers.
"""

from __future__ import annotations

import tablib
from django.db.models import Prefetch, QuerySet
from import_export import resources
from import_export.fields import Field

from ..models import Location, Practitioner, PractitionerCertification
from . import practice_columns
from .csv import COLUMNS, OPTIONAL_COLUMNS, escape_formula

__all__ = ["EXPORT_COLUMNS", "PractitionerResource", "escape_formula", "export_rows"]

EXPORT_COLUMNS = [*COLUMNS, *OPTIONAL_COLUMNS]


def _practitioner_columns(practitioner: Practitioner) -> dict:
    return {
        "external_id": practitioner.external_id or f"pk-{practitioner.pk}",
        "name": practitioner.name,
        "credentials": practitioner.credentials,
        "profession": practitioner.profession.slug if practitioner.profession else "",
        "certifications": ";".join(
            record.certification.slug for record in practitioner.certification_records.all()
        ),
        "phone": practitioner.phone,
        "website": practitioner.website,
        "email": practitioner.email,
        "accepting_new_patients": "true" if practitioner.accepting_new_patients else "false",
        "telehealth": "true" if practitioner.telehealth else "false",
        "bio": practitioner.bio,
        "status": practitioner.status,
        "npi": practitioner.npi,
        **practice_columns.practitioner_cells(practitioner),
    }


def _location_columns(location: Location | None) -> dict:
    if location is None:
        return {}
    return {
        "location_name": location.name,
        "address_line1": location.address_line1,
        "address_line2": location.address_line2,
        "city": location.city,
        "state": location.state,
        "postal_code": location.postal_code,
        "latitude": location.latitude,
        "longitude": location.longitude,
        # A clinic's own phone, when it has one, is what the row's phone means for it.
        **({"phone": location.phone} if location.phone else {}),
        **practice_columns.clinic_cells(location),
    }


def export_rows(practitioner: Practitioner) -> list[list]:
    """The CSV rows for one practitioner, every cell formula-escaped."""
    base = _practitioner_columns(practitioner)
    rows = []
    for location in list(practitioner.locations.all()) or [None]:
        values = {**base, **_location_columns(location)}
        rows.append([escape_formula(values.get(column, "")) for column in EXPORT_COLUMNS])
    return rows


class PractitionerResource(resources.ModelResource):
    """Declares the importer's columns (so the admin's export form lists them); the rows
    themselves come from :func:`export_rows`."""

    external_id = Field(attribute=None, column_name="external_id")
    name = Field(attribute=None, column_name="name")
    credentials = Field(attribute=None, column_name="credentials")
    profession = Field(attribute=None, column_name="profession")
    certifications = Field(attribute=None, column_name="certifications")
    location_name = Field(attribute=None, column_name="location_name")
    address_line1 = Field(attribute=None, column_name="address_line1")
    address_line2 = Field(attribute=None, column_name="address_line2")
    city = Field(attribute=None, column_name="city")
    state = Field(attribute=None, column_name="state")
    postal_code = Field(attribute=None, column_name="postal_code")
    latitude = Field(attribute=None, column_name="latitude")
    longitude = Field(attribute=None, column_name="longitude")
    phone = Field(attribute=None, column_name="phone")
    website = Field(attribute=None, column_name="website")
    email = Field(attribute=None, column_name="email")
    accepting_new_patients = Field(attribute=None, column_name="accepting_new_patients")
    telehealth = Field(attribute=None, column_name="telehealth")
    bio = Field(attribute=None, column_name="bio")
    status = Field(attribute=None, column_name="status")
    npi = Field(attribute=None, column_name="npi")
    # The optional practice columns (practice_columns.COLUMNS).
    new_patients = Field(attribute=None, column_name="new_patients")
    new_patients_checked_on = Field(attribute=None, column_name="new_patients_checked_on")
    languages = Field(attribute=None, column_name="languages")
    languages_checked_on = Field(attribute=None, column_name="languages_checked_on")
    insurance = Field(attribute=None, column_name="insurance")
    self_pay = Field(attribute=None, column_name="self_pay")
    self_pay_min = Field(attribute=None, column_name="self_pay_min")
    self_pay_max = Field(attribute=None, column_name="self_pay_max")
    sliding_scale = Field(attribute=None, column_name="sliding_scale")
    hsa_fsa = Field(attribute=None, column_name="hsa_fsa")
    payment_checked_on = Field(attribute=None, column_name="payment_checked_on")
    gender = Field(attribute=None, column_name="gender")
    hours = Field(attribute=None, column_name="hours")
    hours_checked_on = Field(attribute=None, column_name="hours_checked_on")
    reopens_on = Field(attribute=None, column_name="reopens_on")
    wheelchair_entrance = Field(attribute=None, column_name="wheelchair_entrance")
    accessible_restroom = Field(attribute=None, column_name="accessible_restroom")
    parking = Field(attribute=None, column_name="parking")
    public_transit = Field(attribute=None, column_name="public_transit")
    accessibility_checked_on = Field(attribute=None, column_name="accessibility_checked_on")

    class Meta:
        model = Practitioner
        fields = EXPORT_COLUMNS
        export_order = EXPORT_COLUMNS

    @staticmethod
    def prepare(queryset: QuerySet[Practitioner]) -> QuerySet[Practitioner]:
        """Everything a row needs, in a fixed number of queries per chunk."""
        return (
            queryset.select_related("profession")
            .prefetch_related(None)  # the admin's own prefetches would clash with these
            .prefetch_related(
                Prefetch(
                    "locations",
                    queryset=Location.objects.order_by("pk").prefetch_related("opening_hours"),
                ),
                "languages",
                "payers",
                Prefetch(
                    "certification_records",
                    queryset=PractitionerCertification.objects.select_related(
                        "certification"
                    ).order_by("certification__slug"),
                ),
            )
            .order_by("pk")
        )

    def export(self, queryset: QuerySet[Practitioner] | None = None, **kwargs) -> tablib.Dataset:
        queryset = self.prepare(queryset if queryset is not None else Practitioner.objects.all())
        selected = kwargs.get("export_fields") or EXPORT_COLUMNS
        indexes = [EXPORT_COLUMNS.index(c) for c in EXPORT_COLUMNS if c in selected]
        dataset = tablib.Dataset(headers=[EXPORT_COLUMNS[i] for i in indexes])
        for practitioner in self.iter_queryset(queryset):
            for row in export_rows(practitioner):
                dataset.append([row[i] for i in indexes])
        return dataset
