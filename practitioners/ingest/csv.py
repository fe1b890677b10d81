"""How data gets in: CSV rows -> validated records -> bulk upsert by external id.

Used by ``manage.py import_practitioners``, ``seed_demo``, the benchmark and the admin import.
Every bad row is reported with its line number and reason; by default nothing is written when any
row is bad. Writes are bulk (a handful of queries per thousand rows), so 100,000 rows take seconds.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from operator import attrgetter
from typing import TextIO, TypeVar

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, URLValidator
from django.db import connections, models, router, transaction
from django.db.models.base import ModelState
from django.utils import timezone

from .. import tasks
from ..geocoding import normalised_address, place_at_zip_centroid
from ..models import (
    Certification,
    Location,
    Practitioner,
    PractitionerCertification,
    Profession,
    first_free_slug,
    listing_slug_base,
    npi_check_digit_ok,
)
from ..practice import NewPatients
from ..search import geo
from ..search import index as search_index
from . import practice_columns

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
REQUIRED_COLUMNS = [
    "external_id",
    "name",
    "profession",
    "address_line1",
    "city",
    "state",
    "postal_code",
]

PRACTITIONER_FIELDS = [
    "name",
    "credentials",
    "profession_id",
    "bio",
    "phone",
    "website",
    "email",
    "new_patients",
    "telehealth",
    "status",
    "npi",
]
LOCATION_FIELDS = ["name", "address_line2", "city", "state", "phone"]

TRUE_WORDS = {"true", "yes", "y", "1"}
FALSE_WORDS = {"false", "no", "n", "0"}
BATCH_SIZE = 2000
MAX_FIELD_LENGTH = {
    "name": 200,
    "credentials": 100,
    "bio": 5000,
    "phone": 30,
    "website": 300,
    "email": 254,
    "location_name": 200,
    "address_line1": 200,
    "address_line2": 200,
    "city": 100,
    "external_id": 100,
}

_url_validator = URLValidator(schemes=["http", "https"])
_email_validator = EmailValidator()


class ImportAborted(Exception):
    """Raised inside the transaction to roll back a dry run or a file with bad rows."""


@dataclass
class RowError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass
class LocationRecord:
    line: int
    name: str
    address_line1: str
    address_line2: str
    city: str
    state: str
    postal_code: str
    phone: str
    latitude: float | None
    longitude: float | None
    # The row's optional practice columns (practice_columns.py), when the file has any.
    practice: practice_columns.PracticeRow | None = None

    @property
    def key(self) -> tuple[str, str]:
        return address_key(self.address_line1, self.postal_code)


@dataclass
class PractitionerRecord:
    line: int
    external_id: str
    values: dict
    certification_ids: set[int] = field(default_factory=set)
    locations: list[LocationRecord] = field(default_factory=list)


@dataclass
class ImportReport:
    rows: int = 0
    practitioners_created: int = 0
    practitioners_updated: int = 0
    practitioners_unchanged: int = 0
    locations_created: int = 0
    locations_updated: int = 0
    certifications_added: int = 0
    errors: list[RowError] = field(default_factory=list)
    dry_run: bool = False
    written: bool = False
    pending_geocode_ids: list[int] = field(default_factory=list)
    # geocoding.GeocodeSummary when the new addresses were geocoded at once (the immediate task
    # backend); None when the tasks run in the background (or there was nothing to geocode).
    geocoding: object = None

    def summary(self) -> str:
        verb = "would be" if not self.written else "were"
        return (
            f"{self.rows} rows read; practitioners: {self.practitioners_created} created, "
            f"{self.practitioners_updated} updated, {self.practitioners_unchanged} unchanged; "
            f"locations: {self.locations_created} created, {self.locations_updated} updated; "
            f"certifications added: {self.certifications_added}; {len(self.errors)} bad rows. "
            f"Changes {verb} written."
        )


def address_key(address_line1: str, postal_code: str) -> tuple[str, str]:
    return (re.sub(r"[^a-z0-9]+", " ", address_line1.lower()).strip(), postal_code)


def read_csv(stream: TextIO) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    """The header and the rows with their line numbers (line 1 is the header)."""
    reader = csv.DictReader(stream)
    header = [name.strip().lower() for name in (reader.fieldnames or [])]
    reader.fieldnames = header

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        for row in reader:
            yield reader.line_num, row

    return header, rows()


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

    def parse(self, line: int, row: dict[str, str]) -> tuple[dict, set[int], LocationRecord]:
        get = {k: (v or "").strip() for k, v in row.items() if k is not None}
        problems: list[str] = []
        for column in REQUIRED_COLUMNS:
            if not get.get(column):
                problems.append(f"{column} is required")
        for column, limit in MAX_FIELD_LENGTH.items():
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
            "new_patients": NewPatients.ACCEPTING if accepting else NewPatients.NOT_ACCEPTING,
            "telehealth": telehealth,
            "status": status,
            "npi": npi,
        }
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


def collect_records(
    rows: Iterable[tuple[int, dict[str, str]]], report: ImportReport
) -> dict[str, PractitionerRecord]:
    """Validate every row; rows sharing an external_id become one practitioner."""
    parser = RowParser()
    records: dict[str, PractitionerRecord] = {}
    for line, row in rows:
        report.rows += 1
        try:
            values, certification_ids, location = parser.parse(line, row)
        except ValueError as error:
            report.errors.append(RowError(line, str(error)))
            continue
        external_id = row["external_id"].strip()
        record = records.get(external_id)
        if record is None:
            records[external_id] = PractitionerRecord(
                line, external_id, values, certification_ids, [location]
            )
            continue
        different = [k for k, v in values.items() if v != record.values[k] and k != "phone"]
        if different:
            report.errors.append(
                RowError(
                    line,
                    f"external_id {external_id!r} was first seen on line {record.line} with a "
                    f"different {', '.join(different)}",
                )
            )
            continue
        record.certification_ids |= certification_ids
        if location.key not in {loc.key for loc in record.locations}:
            record.locations.append(location)
    return records


def _chunks(items: list, size: int = BATCH_SIZE) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# Field types whose Python value is already what both databases store; anything else (dates,
# JSON, decimals, fields added later) goes through Django's own conversion.
_PLAIN_FIELDS = (
    models.CharField,
    models.TextField,
    models.BooleanField,
    models.FloatField,
    models.IntegerField,
    models.ForeignKey,
)
_PARAMS_PER_INSERT = 30_000  # under SQLite's 32,766 and PostgreSQL's 65,535 bind parameters


def insert_new(objs: list[models.Model]) -> None:
    """``Model.objects.bulk_create(objs)`` for new rows, several times faster.

    Same rows, same primary keys set on the instances (``INSERT ... RETURNING id``, which both
    databases return in VALUES order, as bulk_create relies on too), same defaults, ``auto_now``
    and JSON handling, no signals (bulk_create sends none either). The speed comes from
    preparing each value once with a converter chosen per field, instead of Django's generic
    per-value path, and from fewer, larger statements: a million listings load in minutes.
    """
    if not objs:
        return
    model = type(objs[0])
    connection = connections[router.db_for_write(model)]
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    getters: list[Callable[[models.Model], object]] = []
    for f in fields:
        if isinstance(f, _PLAIN_FIELDS):
            getters.append(attrgetter(f.attname))
        elif isinstance(f, models.DateTimeField) and (f.auto_now or f.auto_now_add):
            # One timestamp for the whole batch, set on every instance as pre_save() would,
            # and converted for the database once instead of once per row.
            now = timezone.now()
            stored = f.get_db_prep_save(now, connection)
            for obj in objs:
                setattr(obj, f.attname, now)
            getters.append(lambda obj, stored=stored: stored)
        elif type(f) is models.DateField and not (f.auto_now or f.auto_now_add):
            # Most certificate dates are empty: no conversion for them.
            getters.append(
                lambda obj, f=f: (
                    None
                    if (value := getattr(obj, f.attname)) is None
                    else f.get_db_prep_save(value, connection)
                )
            )
        else:
            getters.append(lambda obj, f=f: f.get_db_prep_save(f.pre_save(obj, True), connection))
    qn = connection.ops.quote_name
    columns = ", ".join(qn(f.column) for f in fields)
    row_sql = "(" + ", ".join(["%s"] * len(fields)) + ")"
    per_statement = max(1, _PARAMS_PER_INSERT // len(fields))
    table = qn(model._meta.db_table)
    returning = qn(model._meta.pk.column)
    if connection.vendor == "postgresql":
        # psycopg re-parses a huge multi-row statement on every call (most of the load time);
        # a one-row statement sent through executemany is parsed once and pipelined.
        with connection.cursor() as cursor:
            raw = cursor.cursor
            raw.executemany(
                f"INSERT INTO {table} ({columns}) VALUES {row_sql} RETURNING {returning}",
                [[getter(obj) for getter in getters] for obj in objs],
                returning=True,
            )
            for obj in objs:
                obj.pk = raw.fetchone()[0]
                obj._state.adding = False
                obj._state.db = connection.alias
                raw.nextset()
        return
    with connection.cursor() as cursor:
        for start in range(0, len(objs), per_statement):
            batch = objs[start : start + per_statement]
            params = [getter(obj) for obj in batch for getter in getters]
            cursor.execute(
                f"INSERT INTO {table} ({columns}) VALUES "
                + ", ".join([row_sql] * len(batch))
                + f" RETURNING {returning}",
                params,
            )
            for obj, (pk,) in zip(batch, cursor.fetchall(), strict=True):
                obj.pk = pk
                obj._state.adding = False
                obj._state.db = connection.alias


M = TypeVar("M", bound=models.Model)


@cache
def _row_defaults(model: type[models.Model]) -> tuple[dict[str, object], list, frozenset]:
    static: dict[str, object] = {}
    dynamic = []
    for model_field in model._meta.concrete_fields:
        if model_field.has_default() and callable(model_field.default):
            dynamic.append((model_field.attname, model_field.default))
        else:
            static[model_field.attname] = model_field.get_default()
    return static, dynamic, frozenset(f.attname for f in model._meta.concrete_fields)


def new_row(model: type[M], **values: object) -> M:
    """``model(**values)`` for rows about to be bulk-inserted, without ``Model.__init__``'s
    per-field keyword handling (most of an import's Python time at a million rows): the same
    attributes, defaults included. ``values`` use attribute names (``practitioner_id``);
    no ``pre_init``/``post_init`` signals are sent (no model here listens to them)."""
    static, dynamic, names = _row_defaults(model)
    if not values.keys() <= names:
        raise TypeError(f"{model.__name__} has no field {sorted(values.keys() - names)}")
    row = model.__new__(model)
    attributes = row.__dict__
    attributes.update(static)
    for name, default in dynamic:
        attributes[name] = default()
    attributes.update(values)
    attributes["_state"] = ModelState()
    return row


def _new_location(practitioner_id: int, record: LocationRecord, source: str) -> Location:
    location = new_row(
        Location,
        practitioner_id=practitioner_id,
        name=record.name,
        address_line1=record.address_line1,
        address_line2=record.address_line2,
        city=record.city,
        state=record.state,
        postal_code=record.postal_code,
        phone=record.phone,
        source=source,
    )
    if record.latitude is not None:
        location.latitude, location.longitude = record.latitude, record.longitude
        location.precision = Location.Precision.PROVIDED
        location.geocode_status = Location.GeocodeStatus.OK
        location.geocoded_address = normalised_address(location)  # a later move re-geocodes
    else:
        place_at_zip_centroid(location)
    location.latitude_band = search_index.latitude_band(location.latitude)  # as the trigger would
    return location


def write_records(
    records: dict[str, PractitionerRecord],
    report: ImportReport,
    *,
    source: str,
    progress: Callable[[int], None] | None = None,
) -> list[int]:
    """Upsert practitioners, their locations and certifications; returns new location ids
    that still need a geocode."""
    progress = progress or (lambda n: None)
    external_ids = list(records)
    existing: dict[str, Practitioner] = {}
    for chunk in _chunks(external_ids, 5000):
        existing.update(
            (p.external_id, p) for p in Practitioner.objects.filter(external_id__in=chunk)
        )

    taken_slugs = set(
        Practitioner.objects.values_list("slug", flat=True).iterator(chunk_size=10000)
    )
    to_create: list[Practitioner] = []
    to_update: list[Practitioner] = []
    changed_fields: set[str] = set()
    for external_id, record in records.items():
        practitioner = existing.get(external_id)
        if practitioner is None:
            first = record.locations[0]
            to_create.append(
                new_row(
                    Practitioner,
                    external_id=external_id,
                    slug=first_free_slug(
                        listing_slug_base(record.values["name"], first.city), taken_slugs
                    ),
                    source=source,
                    **record.values,
                )
            )
            continue
        changes = [f for f in PRACTITIONER_FIELDS if getattr(practitioner, f) != record.values[f]]
        if changes:
            for name in changes:
                setattr(practitioner, name, record.values[name])
            changed_fields.update(changes)
            to_update.append(practitioner)
        else:
            report.practitioners_unchanged += 1

    for chunk in _chunks(to_create):
        insert_new(chunk)
        progress(len(chunk))
    report.practitioners_created = len(to_create)
    for chunk in _chunks(to_update):
        Practitioner.objects.bulk_update(chunk, [*changed_fields, "updated_at"])
        progress(len(chunk))
    report.practitioners_updated = len(to_update)
    progress(report.practitioners_unchanged)

    ids = {p.external_id: p.pk for p in (*existing.values(), *to_create)}
    known_ids = [p.pk for p in existing.values()]
    existing_locations: dict[tuple[int, tuple[str, str]], Location] = {}
    existing_certs: set[tuple[int, int]] = set()
    for chunk in _chunks(known_ids, 5000):
        for location in Location.objects.filter(practitioner_id__in=chunk):
            existing_locations[
                (
                    location.practitioner_id,
                    address_key(location.address_line1, location.postal_code),
                )
            ] = location
        existing_certs.update(
            PractitionerCertification.objects.filter(practitioner_id__in=chunk).values_list(
                "practitioner_id", "certification_id"
            )
        )

    new_locations: list[Location] = []
    changed_locations: list[Location] = []
    new_certs: list[PractitionerCertification] = []
    for external_id, record in records.items():
        practitioner_id = ids[external_id]
        for location_record in record.locations:
            current = existing_locations.get((practitioner_id, location_record.key))
            if current is None:
                location = _new_location(practitioner_id, location_record, source)
                if external_id not in existing:
                    # What the database triggers would compute; matching them saves a write.
                    location.listed = record.values.get("status") == Practitioner.Status.PUBLISHED
                    location.certification_bits = search_index.certification_bits(
                        record.certification_ids
                    )
                    location.has_other_clinics = len(record.locations) > 1
                new_locations.append(location)
            elif _update_location(current, location_record):
                changed_locations.append(current)
        for certification_id in sorted(record.certification_ids):
            if (practitioner_id, certification_id) not in existing_certs:
                new_certs.append(
                    new_row(
                        PractitionerCertification,
                        practitioner_id=practitioner_id,
                        certification_id=certification_id,
                    )
                )
    # Certificates before clinics: a new clinic then finds its practitioner's certificates
    # in place, and a new certificate finds no clinic of a new practitioner to update.
    for chunk in _chunks(new_certs):
        insert_new(chunk)
    for chunk in _chunks(new_locations):
        insert_new(chunk)
    for chunk in _chunks(changed_locations):
        Location.objects.bulk_update(
            chunk,
            [
                *LOCATION_FIELDS,
                "latitude",
                "longitude",
                "precision",
                "geocode_status",
                "updated_at",
            ],
        )
    practice_columns.apply_practice_rows(records.values(), ids, address_key=address_key)
    report.locations_created = len(new_locations)
    report.locations_updated = len(changed_locations)
    report.certifications_added = len(new_certs)
    return [loc.pk for loc in new_locations if loc.geocode_status == Location.GeocodeStatus.PENDING]


def _update_location(location: Location, record: LocationRecord) -> bool:
    changed = False
    for name, value in (
        ("name", record.name),
        ("address_line2", record.address_line2),
        ("city", record.city),
        ("state", record.state),
        ("phone", record.phone),
    ):
        if getattr(location, name) != value:
            setattr(location, name, value)
            changed = True
    # Coordinates in the file win over geocoded ones, but never over a pin set by hand.
    if (
        record.latitude is not None
        and location.precision != Location.Precision.MANUAL
        and (location.latitude, location.longitude) != (record.latitude, record.longitude)
    ):
        location.latitude, location.longitude = record.latitude, record.longitude
        location.precision = Location.Precision.PROVIDED
        location.geocode_status = Location.GeocodeStatus.OK
        changed = True
    return changed


def import_practitioners(
    *,
    stream: TextIO,
    source: str = Practitioner.Source.CSV,
    dry_run: bool = False,
    skip_bad_rows: bool = False,
    progress: Callable[[int], None] | None = None,
    geocode: bool = True,
) -> ImportReport:
    """Import a practitioners CSV. Writes nothing if any row is bad (unless ``skip_bad_rows``)
    or on a dry run; the report says what was, or would have been, done. New clinics without
    coordinates are then geocoded (``geocode=False`` leaves them pending for the command)."""
    report = ImportReport(dry_run=dry_run)
    header, rows = read_csv(stream)
    missing = missing_columns(header)
    if missing:
        report.errors.append(RowError(1, f"missing column(s): {', '.join(missing)}"))
        return report
    records = collect_records(rows, report)
    if report.errors and not skip_bad_rows:
        return report
    try:
        with transaction.atomic():
            pending_geocode = write_records(records, report, source=source, progress=progress)
            if dry_run:
                raise ImportAborted
    except ImportAborted:
        return report
    report.written = True
    report.pending_geocode_ids = pending_geocode
    if pending_geocode and geocode:
        # Geocoding tasks after the commit, so the import never waits on the provider. The
        # immediate backend (development) runs them now and the report says how they went;
        # with a worker they run in the background and the clinics wait at their ZIP centroid.
        report.geocoding = tasks.summary_of(
            tasks.geocode_in_background(location_ids=pending_geocode)
        )
    return report


def import_practitioners_from_text(text: str, **options) -> ImportReport:
    return import_practitioners(stream=io.StringIO(text), **options)
