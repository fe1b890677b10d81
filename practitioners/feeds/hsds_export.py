"""HSDS 3.0's tabular form: one CSV per table and a ``datapackage.json`` describing them, as the
Open Referral specification's ``compiled/tabular.json`` lays the tables out.

Streams: listings are read a batch at a time by id and their rows written at once, so memory
stays the same whatever the directory's size (bench/feeds_bench.py measures it). The rows are
the very objects the API serves (``hsds.py``), split into their tables.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path

from ..models import Certification
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


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


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


def export(
    directory: Path,
    *,
    on: dt.date,
    dry_run: bool = False,
    batch: int = 2000,
    progress: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Write every published listing's HSDS rows into ``directory``; returns rows per table.

    ``dry_run`` reads and counts everything, writes nothing."""
    counts = dict.fromkeys(TABLES, 0)
    files, writers = {}, {}
    if not dry_run:
        directory.mkdir(parents=True, exist_ok=True)
        for table in TABLES:
            handle = (directory / file_name(table)).open("w", newline="", encoding="utf-8")
            files[table] = handle
            writers[table] = csv.DictWriter(handle, fieldnames=columns(table), extrasaction="raise")
            writers[table].writeheader()

    def write(table: str, row: dict) -> None:
        counts[table] += 1
        if not dry_run:
            writers[table].writerow({key: _cell(value) for key, value in row.items()})

    try:
        write("taxonomy", hsds.taxonomy())
        for certification in Certification.objects.order_by("pk"):
            write("taxonomy_term", hsds.taxonomy_term(certification))
        for listings in hsds.batched_listings(batch):
            for kind, entity in hsds.entities_for_batch(listings, on):
                for table, row in hsds.split_rows(kind, entity):
                    write(table, row)
            if progress is not None:
                progress(len(listings))
    finally:
        for handle in files.values():
            handle.close()
    if not dry_run:
        (directory / "datapackage.json").write_text(json.dumps(datapackage(), indent=2) + "\n")
    return counts
