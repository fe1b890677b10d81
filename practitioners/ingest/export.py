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


# One export field per importer column, made from the column list itself so the two cannot drift
# (django-import-export collects declared fields from base classes as well).
_ImporterColumns = type(
    "_ImporterColumns",
    (resources.Resource,),
    {column: Field(attribute=None, column_name=column) for column in EXPORT_COLUMNS},
)


class PractitionerResource(_ImporterColumns, resources.ModelResource):
    """Declares the importer's columns (so the admin's export form lists them); the rows
    themselves come from :func:`export_rows`."""

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
