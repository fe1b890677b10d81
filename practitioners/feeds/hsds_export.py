"""HSDS 3.0's tabular form: one CSV per table and a ``datapackage.json`` describing them, as the
Open Referral specification's ``compiled/tabular.json`` lays the tables out.

Streams: listings are read a batch at a time by id (plain values, not model instances) and
their rows written at once, so memory and the statements per batch stay the same whatever the
directory's size (bench/feeds_bench.py measures it). The rows are the very objects the API
serves, built by the same functions (``hsds.py``) and split into their tables.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, fields
from functools import cache
from pathlib import Path
from typing import TextIO

from ..models import Certification, Location, Practitioner, PractitionerCertification, Profession
from ..practice import Language, OpeningHours
from . import hsds

SCHEMA_DIR = Path(__file__).resolve().parent / "hsds_schema"
# The tables we fill, in the order the specification lists them.
TABLES = (
    "organization",
    "service",
    "attribute",
    "service_at_location",
    "location",
    "phone",
    "address",
    "schedule",
    "accessibility",
    "language",
    "taxonomy_term",
    "taxonomy",
)


@cache
def table_schemas() -> dict[str, dict]:
    """Each table's row schema (flat: the CSV's columns) from the vendored tabular.json."""
    tabular = json.loads((SCHEMA_DIR / "compiled" / "tabular.json").read_text())
    return {name: tabular["properties"][name]["items"] for name in TABLES}


def columns(table: str) -> list[str]:
    properties = table_schemas()[table]["properties"]
    return [
        name for name, spec in properties.items() if spec.get("type") not in ("array", "object")
    ]


def file_name(table: str) -> str:
    return table_schemas()[table]["path"]


_FIELD_FORMATS = {"uuid", "email", "uri"}


def datapackage() -> dict:
    resources = []
    for table in TABLES:
        schema = table_schemas()[table]
        fields = []
        for name in columns(table):
            spec = schema["properties"][name]
            field = {
                "name": name,
                "type": spec.get("datapackage_type", spec.get("type", "string")),
                "description": spec.get("description", ""),
            }
            if spec.get("format") in _FIELD_FORMATS:
                field["format"] = spec["format"]
            fields.append(field)
        resources.append(
            {
                "name": table,
                "path": file_name(table),
                "profile": "tabular-data-resource",
                "format": "csv",
                "mediatype": "text/csv",
                "encoding": "utf-8",
                "schema": {
                    "fields": fields,
                    "primaryKey": "id",
                },
            }
        )
    return {
        "name": "practitioner-locator-hsds",
        "title": "Practitioner Locator in Open Referral HSDS 3.0",
        "profile": "tabular-data-package",
        "hsds_version": hsds.HSDS_VERSION,
        "licenses": [{"name": "CC-BY-SA-4.0", "title": "HSDS schema: CC BY-SA 4.0"}],
        "resources": resources,
    }


# --- Rows read for the export: plain values, not model instances -----------------------------
# Each has the attributes (and the one property or __str__) the mapping in ``hsds`` reads from
# the model it stands for, so the export and the API build their objects with the same code.
# Creating a model instance per clinic and per opening interval was a third of the export.


@dataclass(slots=True)
class _Listing:
    pk: int
    name: str
    credentials: str
    profession_id: int | None
    bio: str
    phone: str
    email: str
    website: str
    slug: str
    updated_at: dt.datetime
    profession: Profession | None = None

    __str__ = Practitioner.__str__


_LISTING_FIELDS = [f.name for f in fields(_Listing)][:-1]


@dataclass(slots=True)
class _Clinic:
    pk: int
    practitioner_id: int
    name: str
    address_line1: str
    address_line2: str
    city: str
    state: str
    postal_code: str
    phone: str
    latitude: float | None
    longitude: float | None
    reopens_on: dt.date | None
    wheelchair_entrance: bool
    accessible_restroom: bool
    parking: bool
    public_transit: bool

    one_line_address = Location.one_line_address


_CLINIC_FIELDS = [f.name for f in fields(_Clinic)]


@dataclass(slots=True)
class _Interval:
    pk: int
    location_id: int
    weekday: int
    opens: dt.time
    closes: dt.time


@dataclass(slots=True)
class _Record:
    pk: int
    practitioner_id: int
    certification_id: int
    verified_on: dt.date | None
    self_reported: bool
    certification: Certification | None = None


_RECORD_FIELDS = [f.name for f in fields(_Record)][:-1]


def _in_batch(ids: Sequence[int]) -> dict:
    """The id range of a batch of listings: one indexed range read per table, where a list of
    thousands of ids would be as many parameters."""
    return {"gte": ids[0], "lte": ids[-1]}


def _listing_batches(batch: int) -> Iterator[list[_Listing]]:
    """Every published listing, ``batch`` at a time by id (keyset: each batch is one indexed
    range read however deep)."""
    professions = {p.pk: p for p in Profession.objects.all()}
    last = 0
    while True:
        rows = list(
            hsds.practitioners()
            .filter(pk__gt=last)
            .order_by("pk")
            .values_list(*_LISTING_FIELDS)[:batch]
        )
        if not rows:
            return
        listings = [_Listing(*row) for row in rows]
        for listing in listings:
            listing.profession = professions.get(listing.profession_id)
        yield listings
        last = listings[-1].pk


def _entities(
    listings: list[_Listing],
    on: dt.date,
    certifications: dict[int, Certification],
    languages: dict[int, Language],
) -> Iterator[tuple[str, dict]]:
    """Every HSDS object of these listings, as ``hsds`` builds it for the API: organizations,
    then locations, then services (four statements: clinics, their hours, certificates,
    languages spoken)."""
    ids = [listing.pk for listing in listings]
    published = set(ids)
    span = _in_batch(ids)
    for listing in listings:
        yield "organization", hsds.organization(listing)  # type: ignore[arg-type]
    clinics = [
        _Clinic(*row)
        for row in Location.objects.filter(
            practitioner_id__gte=span["gte"], practitioner_id__lte=span["lte"]
        )
        .order_by("pk")
        .values_list(*_CLINIC_FIELDS)
        if row[1] in published
    ]
    hours: dict[int, list[_Interval]] = {clinic.pk: [] for clinic in clinics}
    for row in OpeningHours.objects.filter(
        location__practitioner_id__gte=span["gte"], location__practitioner_id__lte=span["lte"]
    ).values_list("pk", "location_id", "weekday", "opens", "closes"):
        if row[1] in hours:
            hours[row[1]].append(_Interval(*row))
    clinic_ids: dict[int, list[int]] = {pk: [] for pk in ids}
    for clinic in clinics:
        clinic_ids[clinic.practitioner_id].append(clinic.pk)
        yield "location", hsds.location(clinic, hours[clinic.pk], on)  # type: ignore[arg-type]
    spoken: dict[int, list[Language]] = {pk: [] for pk in ids}
    through = Practitioner.languages.through.objects
    for owner, language_id in through.filter(
        practitioner_id__gte=span["gte"], practitioner_id__lte=span["lte"]
    ).values_list("practitioner_id", "language_id"):
        if owner in spoken:
            spoken[owner].append(languages[language_id])
    by_id = {listing.pk: listing for listing in listings}
    for row in (
        PractitionerCertification.objects.current(on)
        .filter(practitioner_id__gte=span["gte"], practitioner_id__lte=span["lte"])
        .order_by("pk")
        .values_list(*_RECORD_FIELDS)
    ):
        record = _Record(*row)
        if record.practitioner_id not in published:
            continue
        record.certification = certifications[record.certification_id]
        owner = record.practitioner_id
        yield (
            "service",
            hsds.service(record, by_id[owner], clinic_ids[owner], spoken[owner]),  # type: ignore[arg-type]
        )


def _cell(value: object) -> object:
    # csv.writer writes None as an empty cell and str()s the rest; only booleans differ.
    if value is True:
        return "true"
    if value is False:
        return "false"
    return value


class _Tables:
    """The CSV files, one per table, each row in the column order of its table's schema.

    ``write(table, entity)`` writes an API object and the rows of its nested lists into their
    tables: what ``hsds.split_rows`` describes, without the intermediate dicts (a quarter of
    the export's time). A flat key the table has no column for is a mapping error and stops
    the export, as DictWriter's extrasaction="raise" did."""

    def __init__(self, handles: dict[str, TextIO | None]) -> None:
        self.columns = {table: columns(table) for table in TABLES}
        self.writers = {
            table: csv.writer(handle) if handle is not None else None
            for table, handle in handles.items()
        }
        self.rows = dict.fromkeys(TABLES, 0)
        self.nested = {table: hsds.NESTED.get(table, {}) for table in TABLES}
        # What a row may carry besides its columns: its nested lists, and the objects the API
        # expands (an attribute's taxonomy_term) that the tabular form links by id instead.
        self.known = {
            table: frozenset(self.columns[table])
            | frozenset(self.nested[table])
            | frozenset(hsds.EXPANDED.get(table, ()))
            for table in TABLES
        }
        self.booleans = {
            table: [
                index
                for index, name in enumerate(self.columns[table])
                if table_schemas()[table]["properties"][name].get("type") == "boolean"
            ]
            for table in TABLES
        }
        for table, writer in self.writers.items():
            if writer is not None:
                writer.writerow(self.columns[table])

    def write(self, table: str, entity: dict) -> None:
        self.rows[table] += 1
        if not self.known[table].issuperset(entity):
            unknown = sorted(set(entity) - self.known[table])
            raise ValueError(f"{table} has no column for {', '.join(unknown)}")
        writer = self.writers[table]
        if writer is not None:
            values = list(map(entity.get, self.columns[table]))
            for index in self.booleans[table]:
                values[index] = _cell(values[index])
            writer.writerow(values)
        for key, child_table in self.nested[table].items():
            for child in entity.get(key, ()):
                self.write(child_table, child)


def export(
    directory: Path,
    *,
    on: dt.date,
    dry_run: bool = False,
    batch: int = 5000,
    progress: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Write every published listing's HSDS rows into ``directory``; returns rows per table.

    Statements: three for the reference tables, then five per ``batch`` listings whatever the
    directory's size; memory holds one batch. ``dry_run`` reads and counts everything, writes
    nothing."""
    handles: dict[str, TextIO | None] = dict.fromkeys(TABLES)
    if not dry_run:
        directory.mkdir(parents=True, exist_ok=True)
    try:
        if not dry_run:
            for table in TABLES:
                handles[table] = (directory / file_name(table)).open(
                    "w", newline="", encoding="utf-8"
                )
        tables = _Tables(handles)
        tables.write("taxonomy", hsds.taxonomy())
        certifications = {c.pk: c for c in Certification.objects.order_by("pk")}
        for certification in certifications.values():
            tables.write("taxonomy_term", hsds.taxonomy_term(certification))
        languages = {language.pk: language for language in Language.objects.all()}
        for listings in _listing_batches(batch):
            for kind, entity in _entities(listings, on, certifications, languages):
                tables.write(kind, entity)
            if progress is not None:
                progress(len(listings))
    finally:
        for handle in handles.values():
            if handle is not None:
                handle.close()
    if not dry_run:
        (directory / "datapackage.json").write_text(json.dumps(datapackage(), indent=2) + "\n")
    return dict(tables.rows)
