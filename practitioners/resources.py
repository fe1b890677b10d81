"""Export for the admin (django-import-export), in exactly the CSV columns ``import_practitioners``
reads, so an export can be edited and imported back.

One row per clinic (rows sharing ``external_id`` are one practitioner, as the importer expects);
a practitioner with no clinic gets one row with the address columns empty. Text cells that a
spreadsheet would run as a formula (starting with = + - @, a tab or a carriage return) are
prefixed with an apostrophe; numbers such as a negative longitude are left as numbers.
"""

from __future__ import annotations

import re

import tablib
from django.db.models import Prefetch, QuerySet
from import_export import resources
from import_export.fields import Field

from .importing import COLUMNS, OPTIONAL_COLUMNS
from .models import Location, Practitioner, PractitionerCertification

EXPORT_COLUMNS = [*COLUMNS, *OPTIONAL_COLUMNS]
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def escape_formula(value):
    """Make a cell inert in Excel, LibreOffice and Google Sheets (OWASP "CSV injection")."""
    if not isinstance(value, str) or not value.startswith(FORMULA_PREFIXES):
        return value
    if _NUMBER.match(value):
        return value
    return "'" + value


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
    }


def export_rows(practitioner: Practitioner) -> list[list]:
    """The CSV rows for one practitioner, every cell formula-escaped."""
    base = _practitioner_columns(practitioner)
    rows = []
    for location in list(practitioner.locations.all()) or [None]:
        values = {**base, **_location_columns(location)}
        rows.append([escape_formula(values.get(column, "")) for column in EXPORT_COLUMNS])
    return rows


class PractitionerResource(resources.Resource):
    """Declares the importer's columns so the admin's export form can list them."""

    class Meta:
        model = Practitioner
        export_order = EXPORT_COLUMNS

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        for column in EXPORT_COLUMNS:
            self.fields[column] = Field(attribute=None, column_name=column)

    @staticmethod
    def prepare(queryset: QuerySet[Practitioner]) -> QuerySet[Practitioner]:
        """Everything a row needs, in a fixed number of queries per chunk."""
        return (
            queryset.select_related("profession")
            .prefetch_related(
                Prefetch("locations", queryset=Location.objects.order_by("pk")),
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
