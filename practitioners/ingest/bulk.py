"""The bulk writes every import shares: fast inserts of new rows, and the upsert of validated
listing records (one batch at a time) into practitioners, clinics and certificates.

Nothing here reads a file: ``csv.py`` turns rows into :class:`PractitionerRecord` batches and the
benchmark builds them directly. A batch costs a fixed handful of queries whatever its size.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from operator import attrgetter
from typing import TypeVar

from django.conf import settings
from django.db import connection, connections, models, reset_queries, router
from django.db.models.base import ModelState
from django.utils import timezone
from simple_history.utils import bulk_update_with_history

from .. import place_pages
from ..geocoding import normalised_address, place_at_zip_centroid
from ..models import (
    Location,
    Practitioner,
    PractitionerCertification,
    same_clinic_key,
    unique_listing_slugs,
)
from ..search import index as search_index
from . import practice_columns
from .first_lines import FirstLines

BATCH_SIZE = 2000
# What an import may set on a listing, and on a clinic besides its address and coordinates.
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
GEOCODED_FIELDS = ["latitude", "longitude", "precision", "geocode_status"]
# A listing's phone may differ between the rows of its clinics (each row's phone is its clinic's).
PER_CLINIC_FIELDS = {"phone"}


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
        return same_clinic_key(self.address_line1, self.postal_code)


@dataclass
class PractitionerRecord:
    line: int
    external_id: str
    values: dict
    certification_ids: set[int] = field(default_factory=set)
    locations: list[LocationRecord] = field(default_factory=list)
    # The line that first gave this external id, when that was in an earlier batch of the same
    # file: then the listing in the database already holds that row, and this one may only add
    # clinics and certificates to it (values that differ are an error, as within one batch).
    first_line: int | None = None


@dataclass
class ImportReport:
    rows: int = 0
    practitioners_created: int = 0
    practitioners_updated: int = 0
    practitioners_unchanged: int = 0
    locations_created: int = 0
    locations_updated: int = 0
    certifications_added: int = 0
    errors: list[RowError] = field(default_factory=list)  # the first MAX_LISTED_ERRORS
    error_count: int = 0
    file_error: str = ""  # the file itself could not be read on (then nothing is written)
    dry_run: bool = False
    written: bool = False
    # New clinics still waiting for a geocode: how many, and the id range they fall in (every
    # import inserts them in id order, so a range finds them without holding a million ids).
    pending_geocode_count: int = 0
    pending_geocode_range: tuple[int, int] | None = None
    # geocoding.GeocodeSummary when the new addresses were geocoded at once (the immediate task
    # backend); None when the tasks run in the background (or there was nothing to geocode).
    geocoding: object = None

    MAX_LISTED_ERRORS = 1000

    def add_error(self, line: int, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < self.MAX_LISTED_ERRORS:
            self.errors.append(RowError(line, message))

    def forget_writes(self) -> None:
        """Nothing was written after all (a bad row without skip-bad-rows): count no writes."""
        self.practitioners_created = self.practitioners_updated = 0
        self.practitioners_unchanged = self.locations_created = self.locations_updated = 0
        self.certifications_added = self.pending_geocode_count = 0
        self.pending_geocode_range = None

    def summary(self) -> str:
        verb = "would be" if not self.written else "were"
        return (
            f"{self.rows} rows read; practitioners: {self.practitioners_created} created, "
            f"{self.practitioners_updated} updated, {self.practitioners_unchanged} unchanged; "
            f"locations: {self.locations_created} created, {self.locations_updated} updated; "
            f"certifications added: {self.certifications_added}; {self.error_count} bad rows. "
            f"Changes {verb} written."
        )


def chunks(items: list, size: int = BATCH_SIZE) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def forget_queries() -> None:
    """With DEBUG on, Django keeps the last 9,000 statements, each bulk one hundreds of KB."""
    if settings.DEBUG:
        reset_queries()


@contextlib.contextmanager
def small_sqlite_cache(kib: int = 16_384) -> Iterator[None]:
    """SQLite's page cache (64 MB in settings, for the site's reads) fills up during a long
    import and would hold the import above its memory budget; a smaller one costs it little."""
    if connection.vendor != "sqlite":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA cache_size")
        (previous,) = cursor.fetchone()
        cursor.execute(f"PRAGMA cache_size = -{int(kib)}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA cache_size = {int(previous)}")


# --- fast inserts ------------------------------------------------------------------------------

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


# --- the upsert of listing records --------------------------------------------------------------


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


def _by_external_id(external_ids: list[str]):
    # Restating the unique index's condition (external_id <> '') lets the database use that
    # partial index for a long IN list; without it every batch scanned the whole table, so a
    # streamed import slowed down as it grew.
    return (
        Practitioner.objects.exclude(external_id="").filter(external_id__in=external_ids).order_by()
    )


def _differences(practitioner: Practitioner, values: dict) -> list[str]:
    practice_columns.keep_refined_new_patients(practitioner, values)
    return [f for f in PRACTITIONER_FIELDS if getattr(practitioner, f) != values[f]]


def write_records(
    records: dict[str, PractitionerRecord],
    report: ImportReport,
    *,
    source: str,
    change_reason: str = "",
    progress: Callable[[int], None] | None = None,
    first_lines: FirstLines | None = None,
) -> None:
    """Upsert one batch of practitioners, their locations and certifications, adding to the
    report's counts. With ``first_lines`` (one per file, kept across its batches), a record whose
    listing an earlier batch of the same file wrote only adds clinics and certificates; if its
    values differ from that first row's, it is reported as a bad row instead. Changes to
    existing listings are saved with history under ``change_reason``."""
    progress = progress or (lambda n: None)
    existing: dict[str, Practitioner] = {}
    for chunk in chunks(list(records), 5000):
        existing.update((p.external_id, p) for p in _by_external_id(chunk))
    if first_lines is not None:
        for external_id, practitioner in existing.items():
            records[external_id].first_line = first_lines.get(practitioner.pk)

    for external_id, record in list(records.items()):
        if record.first_line is None or external_id not in existing:
            continue
        different = [
            name
            for name in _differences(existing[external_id], record.values)
            if name not in PER_CLINIC_FIELDS
        ]
        if different:
            report.add_error(
                record.line,
                f"external_id {external_id!r} was first seen on line {record.first_line} with a "
                f"different {', '.join(different).replace('profession_id', 'profession')}",
            )
            del records[external_id]

    to_create: list[Practitioner] = []
    to_update: list[Practitioner] = []
    changed_fields: set[str] = set()
    for external_id, record in records.items():
        practitioner = existing.get(external_id)
        if practitioner is None:
            to_create.append(
                new_row(Practitioner, external_id=external_id, source=source, **record.values)
            )
            continue
        if record.first_line is not None:
            continue  # the same listing as an earlier batch's row: counted there
        changes = _differences(practitioner, record.values)
        if changes:
            for name in changes:
                setattr(practitioner, name, record.values[name])
            changed_fields.update(changes)
            to_update.append(practitioner)
        else:
            report.practitioners_unchanged += 1

    slugs = unique_listing_slugs(
        [
            (p.name, _first_city(records[p.external_id]), p.npi)  # type: ignore[misc]
            for p in to_create
        ]
    )
    for practitioner, slug in zip(to_create, slugs, strict=True):
        practitioner.slug = slug
    insert_new(to_create)
    if change_reason:
        _record_creations(to_create, change_reason)
    progress(len(to_create))
    report.practitioners_created += len(to_create)
    if to_update:
        _save_with_history(
            to_update,
            Practitioner,
            [*sorted(changed_fields), "updated_at"],
            change_reason,
        )
        progress(len(to_update))
    report.practitioners_updated += len(to_update)

    ids = {p.external_id: p.pk for p in (*existing.values(), *to_create)}
    if first_lines is not None:
        for external_id, record in records.items():
            first_lines.remember(ids[external_id], record.line)
    known_ids = [p.pk for p in existing.values()]
    existing_locations: dict[tuple[int, tuple[str, str]], Location] = {}
    existing_certs: set[tuple[int, int]] = set()
    for chunk in chunks(known_ids, 5000):
        for location in Location.objects.filter(practitioner_id__in=chunk):
            existing_locations[(location.practitioner_id, location.clinic_key)] = location
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
            elif _update_location(current, location_record, record.values["phone"]):
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
    insert_new(new_certs)
    insert_new(new_locations)
    if changed_locations:
        _save_with_history(
            changed_locations,
            Location,
            [
                *LOCATION_FIELDS,
                "latitude",
                "longitude",
                "precision",
                "geocode_status",
                "updated_at",
            ],
            change_reason,
        )
    if change_reason:
        _record_additions(new_certs, new_locations, known_ids, change_reason)
    practice_columns.apply_practice_rows(records.values(), ids, address_key=same_clinic_key)
    report.locations_created += len(new_locations)
    place_pages.refresh_after_commit()  # new cities, techniques and published listings
    report.locations_updated += len(changed_locations)
    report.certifications_added += len(new_certs)
    pending = [
        loc.pk for loc in new_locations if loc.geocode_status == Location.GeocodeStatus.PENDING
    ]
    if pending:
        report.pending_geocode_count += len(pending)
        low, high = report.pending_geocode_range or (min(pending), max(pending))
        report.pending_geocode_range = (min(low, *pending), max(high, *pending))


def _first_city(record: PractitionerRecord) -> str:
    return record.locations[0].city if record.locations else ""


@cache
def _history_fields(model: type[models.Model]) -> list[str]:
    """The attributes of ``model`` its history rows copy."""
    history = model.history.model  # type: ignore[attr-defined]
    copied = {f.attname for f in history._meta.concrete_fields}
    return [f.attname for f in model._meta.concrete_fields if f.attname in copied]


def _record_creations(created: list[Practitioner], reason: str) -> None:
    """The first history row of every listing the import created ("created", by "CSV import
    <file>"), written the same fast way as the listings themselves."""
    history = Practitioner.history.model  # type: ignore[attr-defined]
    names = _history_fields(Practitioner)
    now = timezone.now()
    insert_new(
        [
            new_row(
                history,
                **{name: getattr(practitioner, name) for name in names},
                history_date=now,
                history_type="+",
                history_change_reason=reason,
                history_user_id=None,
            )
            for practitioner in created
        ]
    )


def _save_with_history(
    objs: list[models.Model], model: type[models.Model], fields: list[str], reason: str
) -> None:
    for chunk in chunks(objs):
        now = timezone.now()
        for obj in chunk:
            obj.updated_at = now  # type: ignore[attr-defined]
        if reason:
            bulk_update_with_history(chunk, model, fields, default_change_reason=reason)
        else:
            model.objects.bulk_update(chunk, fields)


def _record_additions(
    new_certs: list[PractitionerCertification],
    new_locations: list[Location],
    existing_ids: list[int],
    reason: str,
) -> None:
    """History for the clinics and certificates an import added to listings that already
    existed (a new listing's own history starts with the import that created it)."""
    known = set(existing_ids)
    for model, objs in ((PractitionerCertification, new_certs), (Location, new_locations)):
        added = [obj for obj in objs if obj.practitioner_id in known]  # type: ignore[attr-defined]
        if added:
            model.history.bulk_history_create(  # type: ignore[attr-defined]
                added, batch_size=BATCH_SIZE, default_change_reason=reason
            )


def _update_location(location: Location, record: LocationRecord, listing_phone: str) -> bool:
    changed = False
    for name, value in (
        ("name", record.name),
        ("address_line2", record.address_line2),
        ("city", record.city),
        ("state", record.state),
    ):
        if getattr(location, name) != value:
            setattr(location, name, value)
            changed = True
    # The export writes a clinic without a phone of its own with the listing's phone (what its
    # row's phone means for it): that is no change.
    if (location.phone or listing_phone) != record.phone:
        location.phone = record.phone
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
