"""How a practitioners CSV gets in: rows -> validated records -> bulk upsert by external id.

Used by ``manage.py import_practitioners``, ``seed_demo`` and the admin import. The file is read
as a stream, a batch of rows at a time, inside one transaction: memory stays flat whatever the
file's size, and by default nothing is written when any row is bad (every bad row is reported
with its line number and reason). Rows sharing an external id are one practitioner with several
clinics, wherever they are in the file.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TextIO

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, URLValidator
from django.db import transaction

from .. import tasks
from ..models import Certification, Location, Practitioner, Profession, npi_check_digit_ok
from ..practice import NewPatients
from ..search import geo
from . import practice_columns
from .bulk import (
    BATCH_SIZE,
    PER_CLINIC_FIELDS,
    ImportReport,
    LocationRecord,
    PractitionerRecord,
    RowError,
    forget_queries,
    small_sqlite_cache,
    write_records,
)
from .first_lines import FirstLines

__all__ = [
    "COLUMNS",
    "OPTIONAL_COLUMNS",
    "ImportProgress",
    "ImportReport",
    "RowError",
    "escape_formula",
    "import_practitioners",
    "unescape_formula",
]

COLUMNS = [
    "external_id",
    "name",
    "credentials",
    "profession",
    "certifications",
    "location_name",
    "address_line1",
    "address_line2",
    "city",
    "state",
    "postal_code",
    "latitude",
    "longitude",
    "phone",
    "website",
    "email",
    "accepting_new_patients",
    "telehealth",
    "bio",
    "status",
]
OPTIONAL_COLUMNS = ["npi", *practice_columns.COLUMNS]
# The admin's export formats this importer reads back (the others are for reading, not editing).
IMPORTED_FORMATS = ("csv",)
REQUIRED_COLUMNS = [
    "external_id",
    "name",
    "profession",
    "address_line1",
    "city",
    "state",
    "postal_code",
]
CLINIC_COLUMNS = [
    "location_name",
    "address_line1",
    "address_line2",
    "city",
    "state",
    "postal_code",
    "latitude",
    "longitude",
]
# Text columns and the model field whose max_length bounds them.
LENGTH_CHECKED = {
    "name": (Practitioner, "name"),
    "credentials": (Practitioner, "credentials"),
    "bio": (Practitioner, "bio"),
    "phone": (Practitioner, "phone"),
    "website": (Practitioner, "website"),
    "email": (Practitioner, "email"),
    "external_id": (Practitioner, "external_id"),
    "location_name": (Location, "name"),
    "address_line1": (Location, "address_line1"),
    "address_line2": (Location, "address_line2"),
    "city": (Location, "city"),
}

TRUE_WORDS = {"true", "yes", "y", "1"}
FALSE_WORDS = {"false", "no", "n", "0"}

# What the export puts before a text cell a spreadsheet would run as a formula (OWASP "CSV
# injection"): an apostrophe, when the cell starts with one of these. The importer removes
# exactly that apostrophe, so an exported file imported back is the data it came from.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_ESCAPE_STARTS = frozenset([*FORMULA_PREFIXES, "'"])

_url_validator = URLValidator(schemes=["http", "https"])
_email_validator = EmailValidator()


def _would_escape(text: str) -> bool:
    """A formula-like text (not a number), or an apostrophe before one: a cell that starts
    with an apostrophe only because its value does must keep it through the round trip."""
    if text.startswith("'"):
        return _would_escape(text[1:])
    return text.startswith(FORMULA_PREFIXES) and not _NUMBER.match(text)


def escape_formula(value):
    """Make a cell inert in Excel, LibreOffice and Google Sheets; numbers (a negative
    longitude) stay numbers."""
    if isinstance(value, str) and value[:1] in _ESCAPE_STARTS and _would_escape(value):
        return "'" + value
    return value


def unescape_formula(value: str) -> str:
    """Undo :func:`escape_formula` exactly: "'=SUM(A1)" -> "=SUM(A1)", "'- note" -> "- note";
    "'tis", "'-5" (a number is never escaped) and "'" stay as they are."""
    if value.startswith("'") and _would_escape(value[1:]):
        return value[1:]
    return value


class ImportAborted(Exception):
    """Raised inside the transaction to roll back a dry run or a file with bad rows."""


class FileUnreadable(Exception):
    """The file itself cannot be read on (not UTF-8, a NUL byte, a field over the limit)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


@dataclass(frozen=True)
class ImportProgress:
    """What a progress callback is told after every batch."""

    rows_read: int
    errors: int
    bytes_read: int | None = None  # known when the import opened the file itself
    bytes_total: int | None = None


def read_csv(stream: TextIO) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    """The header and the rows with their line numbers (line 1 is the header). A file that
    cannot be read on raises :class:`FileUnreadable` naming the line."""
    reader = csv.DictReader(stream)
    try:
        names = reader.fieldnames or []
    except (UnicodeDecodeError, csv.Error) as error:
        raise FileUnreadable(1, _unreadable(error)) from error
    header = [name.strip().lower() for name in names]
    reader.fieldnames = header

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except (UnicodeDecodeError, csv.Error) as error:
                raise FileUnreadable(reader.line_num + 1, _unreadable(error)) from error
            yield reader.line_num, row

    return header, rows()


_NUL_MESSAGE = "the file contains a NUL byte (is it a spreadsheet, not CSV?); nothing was written"


def _unreadable(error: Exception) -> str:
    if isinstance(error, UnicodeDecodeError):
        return "the file is not UTF-8 text (save it as CSV UTF-8); nothing was written"
    text = str(error)
    if "NUL" in text:
        return _NUL_MESSAGE
    if "field larger than field limit" in text:
        return f"a field is longer than {csv.field_size_limit():,} characters; nothing was written"
    return f"the file is not valid CSV ({text}); nothing was written"


def missing_columns(header: list[str]) -> list[str]:
    return [column for column in REQUIRED_COLUMNS if column not in header]


def _parse_bool(value: str, column: str, default: bool) -> bool:
    word = value.strip().lower()
    if not word:
        return default
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(f"{column} must be true or false, not {value!r}")


def _parse_coordinate(value: str, column: str, low: float, high: float) -> float | None:
    if not value.strip():
        return None
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{column} must be a number, not {value!r}") from None
    if not low <= number <= high:  # also rejects NaN
        raise ValueError(f"{column} must be between {low:g} and {high:g}")
    return number


class RowParser:
    """Validates one CSV row at a time against the reference data loaded once."""

    def __init__(self) -> None:
        self.professions = dict(Profession.objects.values_list("slug", "id"))
        self.certifications = dict(Certification.objects.values_list("slug", "id"))
        self.statuses = set(Practitioner.Status.values)
        self.practice = practice_columns.PracticeColumns()
        self.max_lengths = {
            column: model._meta.get_field(name).max_length
            for column, (model, name) in LENGTH_CHECKED.items()
        }

    def parse(self, line: int, row: dict[str, str]) -> tuple[dict, set[int], LocationRecord | None]:
        get = {k: (v or "").strip() for k, v in row.items() if k is not None}
        for k, v in get.items():
            if v.startswith("'"):  # rare: only then can it be the export's escaping
                get[k] = unescape_formula(v)
            if "\x00" in v:  # the csv module passes it on; PostgreSQL refuses it in text
                raise FileUnreadable(line, _NUL_MESSAGE)
        problems: list[str] = []
        # A listing without a clinic is one row with every clinic column empty (as the export
        # writes it); otherwise a clinic needs its street, city, state and ZIP.
        has_clinic = any(get.get(column) for column in CLINIC_COLUMNS)
        for column in REQUIRED_COLUMNS:
            if not get.get(column) and (has_clinic or column not in CLINIC_COLUMNS):
                problems.append(f"{column} is required")
        for column, limit in self.max_lengths.items():
            if len(get.get(column, "")) > limit:
                problems.append(f"{column} is longer than {limit} characters")
        profession_id = self.professions.get(get.get("profession", ""))
        if get.get("profession") and profession_id is None:
            problems.append(f"unknown profession {get['profession']!r}")
        certification_ids = set()
        for slug in filter(None, (s.strip() for s in get.get("certifications", "").split(";"))):
            if slug in self.certifications:
                certification_ids.add(self.certifications[slug])
            else:
                problems.append(f"unknown certification {slug!r}")
        state = get.get("state", "").upper()
        if state and not re.fullmatch(r"[A-Z]{2}", state):
            problems.append(f"state must be a two-letter code, not {get['state']!r}")
        postal_code = get.get("postal_code", "")
        if postal_code:
            zip5 = geo.normalise_zip(postal_code)
            if zip5 is None:
                problems.append(f"postal_code must be 5 digits (or ZIP+4), not {postal_code!r}")
            else:
                postal_code = zip5
        status = get.get("status", "").lower() or Practitioner.Status.DRAFT
        if status not in self.statuses:
            problems.append(f"status must be one of {', '.join(sorted(self.statuses))}")
        website = get.get("website", "")
        if website:
            try:
                _url_validator(website)
            except ValidationError:
                problems.append(f"website must be an http:// or https:// address, not {website!r}")
        email = get.get("email", "")
        if email:
            try:
                _email_validator(email)
            except ValidationError:
                problems.append(f"email {email!r} is not a valid address")
        npi = get.get("npi", "")
        if npi and not npi_check_digit_ok(npi):
            problems.append(f"npi {npi!r} is not a valid NPI")
        latitude = longitude = None
        try:
            latitude = _parse_coordinate(get.get("latitude", ""), "latitude", -90, 90)
            longitude = _parse_coordinate(get.get("longitude", ""), "longitude", -180, 180)
            if (latitude is None) != (longitude is None):
                problems.append("give both latitude and longitude, or neither")
            accepting = _parse_bool(
                get.get("accepting_new_patients", ""), "accepting_new_patients", True
            )
            telehealth = _parse_bool(get.get("telehealth", ""), "telehealth", False)
        except ValueError as error:
            problems.append(str(error))
        practice = self.practice.parse(get, problems)
        if problems:
            raise ValueError("; ".join(problems))
        values = {
            "name": get["name"],
            "credentials": get.get("credentials", ""),
            "profession_id": profession_id,
            "bio": get.get("bio", ""),
            "phone": get.get("phone", ""),
            "website": website,
            "email": email,
            "new_patients": practice_columns.FromYesNo(
                NewPatients.ACCEPTING if accepting else NewPatients.NOT_ACCEPTING
            ),
            "telehealth": telehealth,
            "status": status,
            "npi": npi,
        }
        if not has_clinic:
            return values, certification_ids, None
        location = LocationRecord(
            line=line,
            name=get.get("location_name", ""),
            address_line1=get["address_line1"],
            address_line2=get.get("address_line2", ""),
            city=get["city"],
            state=state,
            postal_code=postal_code,
            phone=get.get("phone", ""),
            latitude=latitude,
            longitude=longitude,
            practice=practice,
        )
        if practice is not None and "new_patients" in practice.practitioner:
            # The four values win over the older yes/no column when a file has both.
            values["new_patients"] = practice.practitioner.pop("new_patients")
        return values, certification_ids, location


class _Batcher:
    """Collects validated rows into batches of practitioner records.

    Within a batch, later rows of an external id add clinics and certificates to the first
    (values that differ, but for the per-clinic phone, are a bad row). Across batches the
    writer compares a repeated listing with the database, which holds the first row by then,
    and ``first_lines`` names that row's line (4 bytes a listing).
    """

    def __init__(self, report: ImportReport) -> None:
        self.report = report
        self.parser = RowParser()
        self.first_lines = FirstLines()
        self.batch: dict[str, PractitionerRecord] = {}

    def add(self, line: int, row: dict[str, str]) -> None:
        self.report.rows += 1
        try:
            values, certification_ids, location = self.parser.parse(line, row)
        except ValueError as error:
            self.report.add_error(line, str(error))
            return
        external_id = unescape_formula((row.get("external_id") or "").strip())
        record = self.batch.get(external_id)
        if record is None:
            self.batch[external_id] = PractitionerRecord(
                line,
                external_id,
                values,
                certification_ids,
                [location] if location is not None else [],
            )
            return
        different = [
            k for k, v in values.items() if v != record.values[k] and k not in PER_CLINIC_FIELDS
        ]
        if different:
            self.report.add_error(
                line,
                f"external_id {external_id!r} was first seen on line {record.line} with a "
                f"different {', '.join(different).replace('profession_id', 'profession')}",
            )
            return
        record.certification_ids |= certification_ids
        if location is not None and location.key not in {loc.key for loc in record.locations}:
            record.locations.append(location)

    def take(self) -> dict[str, PractitionerRecord]:
        batch, self.batch = self.batch, {}
        return batch


def import_practitioners(
    *,
    stream: TextIO | None = None,
    path: str | os.PathLike | None = None,
    file_name: str = "",
    source: str = Practitioner.Source.CSV,
    dry_run: bool = False,
    skip_bad_rows: bool = False,
    progress: Callable[[ImportProgress], None] | None = None,
    geocode: bool = True,
    batch_size: int = BATCH_SIZE,
) -> ImportReport:
    """Import a practitioners CSV, from ``stream`` (text) or ``path`` (opened here as UTF-8).

    Writes nothing if any row is bad (unless ``skip_bad_rows``) or on a dry run; the report says
    what was, or would have been, done, with every bad row's line. ``progress`` is called with
    an :class:`ImportProgress` after every batch. Every change to an existing listing is in its
    history as "CSV import <file_name>". New clinics without coordinates are then geocoded
    (``geocode=False`` leaves them pending for ``manage.py geocode_locations``).
    """
    if (stream is None) == (path is None):
        raise TypeError("import_practitioners needs exactly one of stream= or path=")
    if path is not None:
        raw = Path(path).open("rb")  # noqa: SIM115 (closed below)
        with raw, io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as text:
            return _import(
                text,
                raw=raw,
                file_name=file_name or Path(path).name,
                source=source,
                dry_run=dry_run,
                skip_bad_rows=skip_bad_rows,
                progress=progress,
                geocode=geocode,
                batch_size=batch_size,
            )
    assert stream is not None
    return _import(
        stream,
        raw=None,
        file_name=file_name or getattr(stream, "name", "") or "",
        source=source,
        dry_run=dry_run,
        skip_bad_rows=skip_bad_rows,
        progress=progress,
        geocode=geocode,
        batch_size=batch_size,
    )


def _import(
    stream: TextIO,
    *,
    raw: BinaryIO | None,
    file_name: str,
    source: str,
    dry_run: bool,
    skip_bad_rows: bool,
    progress: Callable[[ImportProgress], None] | None,
    geocode: bool,
    batch_size: int,
) -> ImportReport:
    report = ImportReport(dry_run=dry_run)
    reason = f"CSV import {file_name}".strip()
    total = os.fstat(raw.fileno()).st_size if raw is not None else None

    def tell() -> None:
        if progress is not None:
            done = raw.tell() if raw is not None else None
            progress(ImportProgress(report.rows, report.error_count, done, total))

    try:
        header, rows = read_csv(stream)
        missing = missing_columns(header)
        if missing:
            raise FileUnreadable(1, f"missing column(s): {', '.join(missing)}")
        with transaction.atomic(), small_sqlite_cache():
            batcher = _Batcher(report)
            for line, row in rows:
                batcher.add(line, row)
                if len(batcher.batch) >= batch_size:
                    write_records(
                        batcher.take(),
                        report,
                        source=source,
                        change_reason=reason,
                        first_lines=batcher.first_lines,
                    )
                    forget_queries()
                    tell()
            write_records(
                batcher.take(),
                report,
                source=source,
                change_reason=reason,
                first_lines=batcher.first_lines,
            )
            tell()
            if report.error_count and not skip_bad_rows:
                raise ImportAborted
            if dry_run:
                raise ImportAborted
    except FileUnreadable as error:
        report.add_error(error.line, error.message)
        report.file_error = str(RowError(error.line, error.message))
        report.forget_writes()
        return report
    except ImportAborted:
        if report.error_count and not skip_bad_rows:
            report.forget_writes()
        _sort_errors(report)
        return report
    _sort_errors(report)
    report.written = True
    if report.pending_geocode_range and geocode:
        # Geocoding tasks after the commit, so the import never waits on the provider. The
        # immediate backend (development) runs them now and the report says how they went;
        # with a worker they run in the background and the clinics wait at their ZIP centroid.
        # The new clinics are one id range (bulk inserts in one transaction).
        waiting = Location.objects.filter(
            pk__range=report.pending_geocode_range,
            geocode_status=Location.GeocodeStatus.PENDING,
        ).values_list("pk", flat=True)
        report.geocoding = tasks.summary_of(
            tasks.geocode_in_background(location_ids=waiting.iterator(chunk_size=10_000))
        )
    return report


def _sort_errors(report: ImportReport) -> None:
    # The writer finds a repeated external id's conflicts a batch later than the reader finds
    # the rest: list them all in file order.
    report.errors.sort(key=lambda error: error.line)


def import_practitioners_from_text(text: str, **options) -> ImportReport:
    return import_practitioners(stream=io.StringIO(text, newline=""), **options)
