"""How the national directory gets in: the NPI registry's monthly file (NPPES) -> listings.

``import_nppes`` streams the main file (``npidata_pfile_*.csv``: ~9.7 million rows, 330 quoted
columns, ~11 GB) in constant memory. Most rows are not ours, so every raw line first goes
through a byte-level pre-filter (does the start of a mapped taxonomy code appear in it at all,
or is its entity type blank, as on a deactivated NPI's row?) and only the few survivors are
decoded and CSV-parsed. Matches are written in batches with bulk queries.

Ownership rules, so that a monthly re-run is safe:

- ``Practitioner.nppes_values`` holds the values last written from the file, per field (and the
  practice location's fields under ``"location"``, the secondary location keys under
  ``"secondary_locations"``). A field whose current value differs from that was corrected by
  staff, and the file never overwrites it.
- Only a row whose ``Last Update Date`` is newer than ``source_updated_on`` changes anything, so
  re-running a file changes nothing and an older file never rolls a listing back.
- Status is set once, at creation; afterwards the file only ever suspends a deactivated NPI.
- Locations staff added (any ``source`` but NPPES) are never touched.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import hashlib
import io
import re
from array import array
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import BinaryIO

from django.conf import settings
from django.db import connection, reset_queries, transaction
from django.db.models import QuerySet
from django.utils import timezone
from simple_history.utils import bulk_update_with_history

from ..models import (
    Location,
    Practitioner,
    Profession,
    TaxonomyMapping,
    listing_slug_base,
    npi_check_digit_ok,
)
from ..practice import Gender
from ..search import geo
from .csv import address_key

BATCH_SIZE = 2000
PROGRESS_EVERY = 50_000
TAXONOMY_SLOTS = range(1, 16)
PRACTICE_KEY = "practice"
SECONDARY_PREFIX = "pl:"

# Our name for a column -> the CMS header. Required columns must be present (a file cut down to
# fewer columns works as long as these remain); optional ones are used when present.
MAIN_REQUIRED = {
    "npi": "NPI",
    "entity_type": "Entity Type Code",
    "last_name": "Provider Last Name (Legal Name)",
    "first_name": "Provider First Name",
    "address_line1": "Provider First Line Business Practice Location Address",
    "city": "Provider Business Practice Location Address City Name",
    "state": "Provider Business Practice Location Address State Name",
    "postal_code": "Provider Business Practice Location Address Postal Code",
    "last_update": "Last Update Date",
    "deactivated_on": "NPI Deactivation Date",
    "reactivated_on": "NPI Reactivation Date",
    "taxonomy_1": "Healthcare Provider Taxonomy Code_1",
}
MAIN_OPTIONAL = {
    "middle_name": "Provider Middle Name",
    "name_prefix": "Provider Name Prefix Text",
    "name_suffix": "Provider Name Suffix Text",
    "credentials": "Provider Credential Text",
    # A search filter only, never shown (docs/filters.md).
    "gender": "Provider Sex Code",
    "address_line2": "Provider Second Line Business Practice Location Address",
    "country": "Provider Business Practice Location Address Country Code (If outside U.S.)",
    "phone": "Provider Business Practice Location Address Telephone Number",
    **{f"taxonomy_{n}": f"Healthcare Provider Taxonomy Code_{n}" for n in TAXONOMY_SLOTS if n > 1},
    **{f"primary_{n}": f"Healthcare Provider Primary Taxonomy Switch_{n}" for n in TAXONOMY_SLOTS},
}
LOCATIONS_REQUIRED = {
    "npi": "NPI",
    "address_line1": "Provider Secondary Practice Location Address- Address Line 1",
    "city": "Provider Secondary Practice Location Address - City Name",
    "state": "Provider Secondary Practice Location Address - State Name",
    "postal_code": "Provider Secondary Practice Location Address - Postal Code",
}
LOCATIONS_OPTIONAL = {
    "address_line2": "Provider Secondary Practice Location Address-  Address Line 2",
    "country": "Provider Secondary Practice Location Address - Country Code (If outside U.S.)",
    "phone": "Provider Secondary Practice Location Address - Telephone Number",
}

PRACTITIONER_FIELDS = ("name", "credentials", "phone", "gender", "profession")
NPPES_GENDERS = {"F": Gender.FEMALE, "M": Gender.MALE}  # "U" (unknown) and empty stay empty
LOCATION_FIELDS = ("address_line1", "address_line2", "city", "state", "postal_code", "phone")
GEOCODE_FIELDS = ("latitude", "longitude", "precision", "geocode_status")
MAX_LENGTH = {
    "name": 200,
    "credentials": 100,
    "phone": 30,
    "address_line1": 200,
    "address_line2": 200,
    "city": 100,
}


class Skip:
    """Why a row of the file did not become a listing (each row counts once, first reason)."""

    BAD_NPI = "bad NPI"
    DEACTIVATED = "deactivated NPI, not listed"
    NO_TAXONOMY = "no mapped taxonomy"
    NOT_INDIVIDUAL = "not an individual"
    OUTSIDE_US = "outside the US"
    OUTSIDE_STATES = "outside the chosen states"
    BAD_ZIP = "bad ZIP"
    INCOMPLETE = "no name or practice address"
    OLDER = "older than the listing"


class NppesFormatError(ValueError):
    """The file cannot be imported as it is (a column is missing); nothing was written."""


class _DryRun(Exception):
    pass


@dataclass
class NppesReport:
    scanned: int = 0
    matched: Counter = field(default_factory=Counter)
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    suspended: int = 0
    skipped: Counter = field(default_factory=Counter)
    locations_created: int = 0
    locations_updated: int = 0
    locations_removed: int = 0
    staff_values_kept: int = 0
    dry_run: bool = False
    written: bool = False

    @property
    def matched_total(self) -> int:
        return sum(self.matched.values())

    def summary_lines(self) -> list[str]:
        verb = "were written" if self.written else "would be written (dry run: nothing written)"
        per_profession = ", ".join(f"{n} {name}" for name, n in sorted(self.matched.items()))
        skipped = ", ".join(f"{n} {reason}" for reason, n in self.skipped.most_common())
        return [
            f"Scanned {self.scanned} rows; matched {self.matched_total}"
            + (f" ({per_profession})" if per_profession else "")
            + ".",
            f"Listings: {self.created} created, {self.updated} updated, {self.unchanged} "
            f"unchanged, {self.suspended} suspended; {self.staff_values_kept} staff-corrected "
            "values kept.",
            f"Locations: {self.locations_created} created (left pending for geocode_locations), "
            f"{self.locations_updated} updated, {self.locations_removed} removed.",
            f"Skipped {sum(self.skipped.values())} rows" + (f": {skipped}." if skipped else "."),
            f"Changes {verb}.",
        ]

    def summary(self) -> str:
        return "\n".join(self.summary_lines())


# --- header and values -------------------------------------------------------------------------


def normalise_header(name: str) -> str:
    """Case, runs of spaces, spacing around hyphens and the dots in "U.S." do not matter:
    CMS writes both "Address- Address Line 1" and "Address - City Name"."""
    name = name.replace("\ufeff", "").replace(".", "").lower()
    name = re.sub(r"\s*-\s*", " - ", name)
    return re.sub(r"\s+", " ", name).strip()


def find_columns(
    header: list[str], required: dict[str, str], optional: dict[str, str], *, file_label: str
) -> dict[str, int]:
    """Our column name -> position in this file. Raises NppesFormatError naming what is missing."""
    positions: dict[str, int] = {}
    for position, name in enumerate(header):
        positions.setdefault(normalise_header(name), position)
    missing = [cms for cms in required.values() if normalise_header(cms) not in positions]
    if missing:
        raise NppesFormatError(
            f"{file_label} is missing required column(s): "
            + ", ".join(f'"{name}"' for name in missing)
            + ". Nothing was written."
        )
    return {
        ours: positions[normalise_header(cms)]
        for ours, cms in {**required, **optional}.items()
        if normalise_header(cms) in positions
    }


def parse_date(text: str) -> dt.date | None:
    """NPPES dates are MM/DD/YYYY; anything else counts as no date."""
    try:
        month, day, year = text.strip().split("/")
        return dt.date(int(year), int(month), int(day))
    except ValueError:
        return None


def format_phone(text: str) -> str:
    digits = re.sub(r"\D", "", text)
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    if len(digits) == 10:
        return f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"
    return text.strip()


_ROMAN = re.compile(r"^(?=[IVX])X{0,3}(?:IX|IV|V?I{0,3})$")
_WORD = re.compile(r"[^\W\d_]+")  # letters, accented ones too (MUÑOZ)


def _title_word(word: str, numerals: bool = False) -> str:
    if numerals and len(word) > 1 and _ROMAN.match(word.upper()):
        return word.upper()  # "III" as a suffix; as a surname "XI" is "Xi"
    lower = word.lower()
    if lower.startswith("mc") and len(lower) > 3:
        return "Mc" + lower[2:].capitalize()
    return lower.capitalize()


def title_case_name(text: str, *, suffix: bool = False) -> str:
    """'O'NEIL' -> "O'Neil", 'MCDONALD' -> 'McDonald', 'SMITH-JONES' -> 'Smith-Jones', and
    in a suffix 'III' stays. A name already in mixed case is kept exactly as written: never
    worse than the source. Ambiguous prefixes ("MAC" in MACK or MACDONALD) are left alone."""
    text = " ".join(text.split())
    if not text or not (text.isupper() or text.islower()):
        return text
    result = _WORD.sub(lambda m: _title_word(m.group(), numerals=suffix), text)
    # Only a one-letter prefix before an apostrophe (O'Neil, D'Angelo) takes a capital after it.
    return re.sub(r"\b([^\W\d_])'([^\W\d_])", lambda m: f"{m[1]}'{m[2].upper()}", result)


# Kept in capitals in an address: directions, PO, and road designations people write that way.
_ADDRESS_CAPITALS = {"N", "S", "E", "W", "NE", "NW", "SE", "SW", "PO", "US", "FM", "MLK", "RR"}
_ADDRESS_WORD = re.compile(r"(?<![^\W\d_])([0-9]*)([^\W\d_]+)")
_ORDINALS = {"ST", "ND", "RD", "TH"}


def title_case_address(text: str) -> str:
    """'5100 POPLAR AVE' -> '5100 Poplar Ave', '123 NW 5TH ST' -> '123 NW 5th St',
    'PO BOX 12' -> 'PO Box 12', 'STE 3B' -> 'Ste 3B'. Mixed case is kept as written."""
    text = " ".join(text.split())
    if not text or not (text.isupper() or text.islower()):
        return text

    def word(match: re.Match) -> str:
        digits, letters = match.groups()
        upper = letters.upper()
        if digits:
            return digits + (letters.lower() if upper in _ORDINALS else upper)
        if upper in _ADDRESS_CAPITALS:
            return upper
        return _title_word(letters)

    return _ADDRESS_WORD.sub(word, text)


def display_name(first: str, middle: str, last: str, suffix: str) -> str:
    name = " ".join(title_case_name(part) for part in (first, middle, last) if part.strip())
    suffix = title_case_name(suffix, suffix=True)
    if suffix:
        name = f"{name} {suffix}"
    return name[: MAX_LENGTH["name"]]


def secondary_key(address_line1: str, postal_code: str) -> str:
    street, zip5 = address_key(address_line1, postal_code)
    return SECONDARY_PREFIX + hashlib.sha1(f"{street}|{zip5}".encode()).hexdigest()[:20]


class TaxonomyMap:
    """Taxonomy code -> profession, from the editable TaxonomyMapping rows; longest prefix wins."""

    def __init__(self, mappings: Iterable[tuple[str, int]]) -> None:
        self.prefixes = {prefix.strip().upper(): pid for prefix, pid in mappings if prefix.strip()}
        self.lengths = sorted({len(p) for p in self.prefixes}, reverse=True)

    @classmethod
    def from_database(cls) -> TaxonomyMap:
        return cls(TaxonomyMapping.objects.values_list("code_prefix", "profession_id"))

    def profession_for_code(self, code: str) -> int | None:
        code = code.strip().upper()
        for length in self.lengths:
            if len(code) >= length:
                found = self.prefixes.get(code[:length])
                if found is not None:
                    return found
        return None

    def profession_for(self, slots: list[tuple[str, bool]]) -> int | None:
        """The primary slot's profession when that code is mapped, else the first mapped slot."""
        first = None
        for code, primary in slots:
            if not code:
                continue
            profession_id = self.profession_for_code(code)
            if profession_id is None:
                continue
            if primary:
                return profession_id
            if first is None:
                first = profession_id
        return first

    def needles(self) -> list[bytes]:
        """Byte strings at least one of which every line holding a mapped code contains.

        Each needle costs one pass over the line, and a longer needle skips faster, so: a
        prefix's first four characters, except that prefixes sharing their first three share
        one needle ("225" for 2251, 2255A2300X, 225700000X and 225X). No quotes: a quote
        character in the needle makes the search stop at every one of the line's ~660 quotes.
        """
        heads: dict[str, set[str]] = {}
        for prefix in self.prefixes:
            heads.setdefault(prefix[:3], set()).add(prefix[:4])
        needles = set()
        for head, longer in heads.items():
            needles.update([head] if len(longer) > 1 else longer)
        return sorted(needle.encode() for needle in needles)


# --- reading ----------------------------------------------------------------------------------


def _parse_line(line: bytes) -> list[str]:
    return next(csv.reader([line.decode("utf-8", "replace")]), [])


def _read_header(stream: BinaryIO) -> tuple[list[str], bool]:
    line = stream.readline()
    if not line.strip():
        raise NppesFormatError("The file is empty: no header row. Nothing was written.")
    header = _parse_line(line.removeprefix(b"\xef\xbb\xbf"))
    return header, line.lstrip(b"\xef\xbb\xbf").startswith(b'"')


def scan_lines(
    stream: BinaryIO,
    *,
    needles: list[bytes],
    blank_entity: tuple[slice, bytes] | None,
    report: NppesReport,
    progress: Callable[[int, int, int], None] | None = None,
) -> Iterator[bytes]:
    """The raw lines worth parsing: a needle occurs in them, or their entity type is blank,
    which is how the real file writes a deactivated NPI (blank but for the NPI and the dates).
    Every other line is counted as scanned and dropped without being decoded.

    ``blank_entity`` is where, in the raw line, an empty entity type shows (when NPI and
    Entity Type Code are the first two columns, as in every CMS release); without it, every
    line is parsed (slower, same result)."""
    scanned = kept = 0
    everything = blank_entity is None
    where, blank = blank_entity or (slice(0, 0), b"")
    try:
        for line in stream:
            if len(line) < 3 and not line.strip():
                continue
            scanned += 1
            if progress is not None and scanned % PROGRESS_EVERY == 0:
                report.scanned = scanned
                progress(stream.tell(), scanned, report.matched_total)
            for needle in needles:
                if needle in line:
                    break
            else:
                if not everything and line[where] != blank:
                    continue
            kept += 1
            yield line
    finally:
        report.scanned = scanned
        # A line without any needle has no mapped taxonomy code in any slot.
        report.skipped[Skip.NO_TAXONOMY] += scanned - kept


@dataclass(slots=True)
class Row:
    npi: str
    last_update: dt.date | None
    deactivated_on: dt.date | None
    profession_id: int | None = None
    values: dict = field(default_factory=dict)
    location: dict = field(default_factory=dict)


class RowReader:
    """One parsed line of the main file -> a Row to write, or the reason it is skipped."""

    def __init__(
        self, columns: dict[str, int], taxonomies: TaxonomyMap, states: set[str] | None
    ) -> None:
        self.columns = columns
        self.taxonomies = taxonomies
        self.states = states
        self.slots = [
            (columns[f"taxonomy_{n}"], columns.get(f"primary_{n}"))
            for n in TAXONOMY_SLOTS
            if f"taxonomy_{n}" in columns
        ]
        self.width = max(columns.values()) + 1

    def read(self, values: list[str]) -> Row | str:
        if len(values) < self.width:
            values = values + [""] * (self.width - len(values))
        col = self.columns

        def get(name: str) -> str:
            position = col.get(name)
            return values[position].strip() if position is not None else ""

        npi = get("npi")
        if not npi_check_digit_ok(npi):
            return Skip.BAD_NPI
        deactivated_on = parse_date(get("deactivated_on"))
        reactivated_on = parse_date(get("reactivated_on"))
        if deactivated_on and reactivated_on and reactivated_on >= deactivated_on:
            deactivated_on = None
        row = Row(npi, parse_date(get("last_update")), deactivated_on)
        if deactivated_on:
            return row
        slots = [
            (
                values[code].strip(),
                switch is not None and values[switch].strip().upper() == "Y",
            )
            for code, switch in self.slots
        ]
        row.profession_id = self.taxonomies.profession_for(slots)
        if row.profession_id is None:
            return Skip.NO_TAXONOMY
        if get("entity_type") != "1":
            return Skip.NOT_INDIVIDUAL
        if get("country").upper() not in ("", "US"):
            return Skip.OUTSIDE_US
        state = get("state").upper()
        if self.states is not None and state not in self.states:
            return Skip.OUTSIDE_STATES
        postal_code = geo.normalise_zip(get("postal_code"))
        if postal_code is None:
            return Skip.BAD_ZIP
        name = display_name(
            get("first_name"), get("middle_name"), get("last_name"), get("name_suffix")
        )
        city = title_case_name(get("city"))
        if not get("last_name") or not get("address_line1") or not city or len(state) != 2:
            return Skip.INCOMPLETE
        phone = format_phone(get("phone"))[: MAX_LENGTH["phone"]]
        row.values = {
            "name": name,
            "credentials": get("credentials")[: MAX_LENGTH["credentials"]],
            "phone": phone,
            "gender": NPPES_GENDERS.get(get("gender").upper(), ""),
        }
        row.location = {
            "address_line1": title_case_address(get("address_line1"))[:200],
            "address_line2": title_case_address(get("address_line2"))[:200],
            "city": city[:100],
            "state": state,
            "postal_code": postal_code,
            "phone": phone,
        }
        return row


# --- writing ----------------------------------------------------------------------------------


def _new_location(practitioner_id: int | None, values: dict, key: str) -> Location:
    location = Location(
        practitioner_id=practitioner_id,
        source=Location.Source.NPPES,
        nppes_key=key,
        precision=Location.Precision.ZIP,
        geocode_status=Location.GeocodeStatus.PENDING,
        **values,
    )
    centroid = geo.zip_centroid(values["postal_code"])
    if centroid is not None:
        location.latitude, location.longitude = centroid.latitude, centroid.longitude
    return location


def _merge(current: dict, new: dict, written: dict | None) -> tuple[dict, dict, int]:
    """Per field: take the file's value where the current one is still what the file last
    wrote (or is empty and the file never wrote it); keep staff corrections.
    Returns (changed fields, new written values, staff values kept)."""
    written = dict(written or {})
    changes: dict = {}
    kept = 0
    for name, value in new.items():
        have = current[name]
        if have == value:
            written[name] = value  # in step again, so later changes flow
        elif have == written.get(name, "") or (name not in written and have in ("", None)):
            changes[name] = value
            written[name] = value
        else:
            kept += 1
    return changes, written, kept


def _forget_queries() -> None:
    """With DEBUG on, Django keeps the last 9,000 statements, each bulk one hundreds of KB."""
    if settings.DEBUG:
        reset_queries()


def _by_npi(npis: list[str]) -> QuerySet[Practitioner]:
    # Restating the unique index's condition (npi <> '') lets the database use that partial
    # index for a long IN list, which it cannot prove implies the condition by itself.
    return Practitioner.objects.exclude(npi="").filter(npi__in=npis)


class Writer:
    """Writes batches of rows: a fixed handful of queries per batch, whatever its size."""

    def __init__(
        self, report: NppesReport, *, status: str, track_locations: bool, run_date: dt.date
    ) -> None:
        self.report = report
        self.status = status
        self.track_locations = track_locations
        self.professions = {p.pk: p for p in Profession.objects.only("pk", "slug", "name")}
        self.profession_ids = {p.slug: pk for pk, p in self.professions.items()}
        self.change_reason = f"NPI registry import {run_date:%Y-%m-%d}"
        # NPIs whose secondary locations the --locations pass may sync (matched, not older
        # than the listing), packed 8 bytes each: several hundred thousand in a few MB.
        self.eligible_npis = array("q")
        self.started_at = timezone.now()

    def write(self, rows: list[Row]) -> None:
        report = self.report
        existing = {p.npi: p for p in _by_npi([row.npi for row in rows])}
        locations: dict[int, list[Location]] = {}
        for location in Location.objects.filter(
            practitioner_id__in=[p.pk for p in existing.values()]
        ):
            locations.setdefault(location.practitioner_id, []).append(location)

        now = timezone.now()
        new_practitioners: list[tuple[Practitioner, Row]] = []
        changed: list[Practitioner] = []  # what the public sees changed: saved with history
        touched: list[Practitioner] = []  # only our bookkeeping (file date, nppes_values)
        new_locations: list[Location] = []
        changed_locations: list[Location] = []
        seen: set[str] = set()
        for row in rows:
            if row.npi in seen:  # the file lists each NPI once; never trust that blindly
                continue
            seen.add(row.npi)
            practitioner = existing.get(row.npi)
            if row.deactivated_on:
                if practitioner is None:
                    report.skipped[Skip.DEACTIVATED] += 1
                    continue
                before = practitioner.nppes_values
                if self._suspend(practitioner, row):
                    practitioner.updated_at = now
                    changed.append(practitioner)
                else:
                    report.unchanged += 1
                    if practitioner.nppes_values != before:
                        touched.append(practitioner)
                continue
            profession = self.professions[row.profession_id]
            if practitioner is None:
                report.matched[profession.name] += 1
                new_practitioners.append((self._new_practitioner(row), row))
                continue
            stored = practitioner.source_updated_on
            if stored is not None and (row.last_update is None or row.last_update < stored):
                report.skipped[Skip.OLDER] += 1
                continue
            report.matched[profession.name] += 1
            if self.track_locations:
                self.eligible_npis.append(int(row.npi))
            visible = False
            before = practitioner.nppes_values
            if stored is None or row.last_update > stored:
                visible = self._update(practitioner, row, profession.slug)
                own = locations.get(practitioner.pk, [])
                location = self._update_practice_location(practitioner, row, own)
                if location is not None and location.pk is None:
                    new_locations.append(location)
                elif location is not None:
                    location.updated_at = now
                    changed_locations.append(location)
                visible = visible or location is not None
            if visible:
                practitioner.updated_at = now
                changed.append(practitioner)
                report.updated += 1
                continue
            report.unchanged += 1
            if practitioner.nppes_values != before or practitioner.source_updated_on != stored:
                touched.append(practitioner)

        self._create(new_practitioners, new_locations)
        if changed:
            bulk_update_with_history(
                changed,
                Practitioner,
                [
                    "name",
                    "credentials",
                    "phone",
                    "gender",
                    "profession",
                    "status",
                    "status_reason",
                    "source_updated_on",
                    "nppes_values",
                    "updated_at",
                ],
                default_change_reason=self.change_reason,
            )
        if touched:
            Practitioner.objects.bulk_update(touched, ["source_updated_on", "nppes_values"])
        if changed_locations:
            bulk_update_with_history(
                changed_locations,
                Location,
                [*LOCATION_FIELDS, *GEOCODE_FIELDS, "updated_at"],
                default_change_reason=self.change_reason,
            )
            report.locations_updated += len(changed_locations)

    def _suspend(self, practitioner: Practitioner, row: Row) -> bool:
        """Suspend once per deactivation: if staff later reinstate the listing, the same file
        next month does not suspend it again. True when the listing was suspended now."""
        reason = f"NPI deactivated {row.deactivated_on:%m/%d/%Y}"
        if practitioner.nppes_values.get("status_reason") == reason:
            return False
        practitioner.nppes_values = {**practitioner.nppes_values, "status_reason": reason}
        if practitioner.status == Practitioner.Status.SUSPENDED:
            return False  # staff got there first; their reason stays
        practitioner.status = Practitioner.Status.SUSPENDED
        practitioner.status_reason = reason
        self.report.suspended += 1
        return True

    def _new_practitioner(self, row: Row) -> Practitioner:
        profession = self.professions[row.profession_id]
        return Practitioner(
            npi=row.npi,
            profession_id=row.profession_id,
            status=self.status,
            source=Practitioner.Source.NPPES,
            source_updated_on=row.last_update,
            nppes_values={
                **row.values,
                "profession": profession.slug,
                "location": dict(row.location),
            },
            **row.values,
        )

    def _update(self, practitioner: Practitioner, row: Row, profession_slug: str) -> bool:
        """Apply a newer row to what NPPES owns; True when a value the public sees changed."""
        current = {
            "name": practitioner.name,
            "credentials": practitioner.credentials,
            "phone": practitioner.phone,
            "gender": practitioner.gender,
            "profession": self.professions[practitioner.profession_id].slug
            if practitioner.profession_id in self.professions
            else None,
        }
        new = {**row.values, "profession": profession_slug}
        changes, written, kept = _merge(current, new, practitioner.nppes_values)
        self.report.staff_values_kept += kept
        for name, value in changes.items():
            if name == "profession":
                practitioner.profession_id = self.profession_ids[value]
            else:
                setattr(practitioner, name, value)
        practitioner.nppes_values = {**practitioner.nppes_values, **written}
        practitioner.source_updated_on = row.last_update
        return bool(changes)

    def _update_practice_location(
        self, practitioner: Practitioner, row: Row, own: list[Location]
    ) -> Location | None:
        """The practice location to create or save, if anything changed."""
        written = practitioner.nppes_values.get("location")
        practice = next((loc for loc in own if loc.nppes_key == PRACTICE_KEY), None)
        new_key = address_key(row.location["address_line1"], row.location["postal_code"])
        if practice is None:
            same_as_written = written is not None and new_key == address_key(
                written.get("address_line1", ""), written.get("postal_code", "")
            )
            listed = any(address_key(loc.address_line1, loc.postal_code) == new_key for loc in own)
            practitioner.nppes_values = {
                **practitioner.nppes_values,
                "location": dict(row.location),
            }
            if same_as_written or listed:
                return None  # staff removed it, or already list this address themselves
            return _new_location(practitioner.pk, row.location, PRACTICE_KEY)
        current = {name: getattr(practice, name) for name in LOCATION_FIELDS}
        changes, values, kept = _merge(current, row.location, written)
        self.report.staff_values_kept += kept
        practitioner.nppes_values = {**practitioner.nppes_values, "location": values}
        if not changes:
            return None
        for name, value in changes.items():
            setattr(practice, name, value)
        moved = {"address_line1", "postal_code", "city"} & changes.keys()
        if moved and practice.precision != Location.Precision.MANUAL:
            # A new address: back to its ZIP centroid until geocode_locations places it.
            fresh = _new_location(practice.practitioner_id, values, PRACTICE_KEY)
            practice.latitude, practice.longitude = fresh.latitude, fresh.longitude
            practice.precision = Location.Precision.ZIP
            practice.geocode_status = Location.GeocodeStatus.PENDING
        return practice

    def _create(self, new: list[tuple[Practitioner, Row]], new_locations: list[Location]) -> None:
        if new:
            self._assign_slugs(new)
            practitioners = [p for p, _ in new]
            Practitioner.objects.bulk_create(practitioners)
            if any(p.pk is None for p in practitioners):  # backends that return no ids
                ids = dict(_by_npi([p.npi for p in practitioners]).values_list("npi", "pk"))
                for practitioner in practitioners:
                    practitioner.pk = ids[practitioner.npi]
            for practitioner, row in new:
                new_locations.append(_new_location(practitioner.pk, row.location, PRACTICE_KEY))
                if self.track_locations:
                    self.eligible_npis.append(int(practitioner.npi))
            self.report.created += len(new)
        if new_locations:
            Location.objects.bulk_create(new_locations)
            self.report.locations_created += len(new_locations)

    def _assign_slugs(self, new: list[tuple[Practitioner, Row]]) -> None:
        """ "jane-doe-memphis", or "jane-doe-memphis-<npi>" when that is taken: unique without
        loading every slug in the directory."""
        bases = {}
        for practitioner, row in new:
            bases[practitioner.npi] = listing_slug_base(
                practitioner.name, row.location["city"], max_length=190
            )
        candidates = set(bases.values()) | {f"{b}-{npi}" for npi, b in bases.items()}
        taken = set(Practitioner.objects.filter(slug__in=candidates).values_list("slug", flat=True))
        for practitioner, _ in new:
            base = bases[practitioner.npi]
            slug = base if base not in taken else f"{base}-{practitioner.npi}"
            n = 1
            while slug in taken:  # only if someone typed "<base>-<npi>" by hand
                n += 1
                slug = f"{base}-{practitioner.npi}-{n}"
            taken.add(slug)
            practitioner.slug = slug

    # --- secondary practice locations (pl_pfile) ---

    def sync_secondary_locations(self, by_npi: dict[int, list[tuple[str, ...]]]) -> None:
        """Add the file's secondary locations, remove NPPES ones the file no longer lists
        (unless pinned by hand); a location staff deleted is not added back."""
        npis = self.eligible_npis
        now = timezone.now()
        for start in range(0, len(npis), BATCH_SIZE):
            chunk = npis[start : start + BATCH_SIZE]
            practitioners = list(
                _by_npi([f"{n:010d}" for n in chunk]).only(
                    "pk", "npi", "nppes_values", "updated_at"
                )
            )
            own: dict[int, list[Location]] = {}
            for location in Location.objects.filter(
                practitioner_id__in=[p.pk for p in practitioners]
            ):
                own.setdefault(location.practitioner_id, []).append(location)
            to_create: list[Location] = []
            to_delete: list[int] = []
            changed: list[Practitioner] = []
            for practitioner in practitioners:
                npi = int(practitioner.npi)
                in_file = {}
                for packed in by_npi.get(npi, []):
                    values = dict(zip(LOCATION_FIELDS, packed, strict=True))
                    in_file.setdefault(
                        secondary_key(values["address_line1"], values["postal_code"]), values
                    )
                written = set(practitioner.nppes_values.get("secondary_locations", []))
                if not in_file and not written:
                    continue
                mine = own.get(practitioner.pk, [])
                present = {loc.nppes_key: loc for loc in mine if loc.nppes_key}
                addresses = {address_key(loc.address_line1, loc.postal_code) for loc in mine}
                for key, values in in_file.items():
                    address = address_key(values["address_line1"], values["postal_code"])
                    if key in written or key in present or address in addresses:
                        continue
                    addresses.add(address)
                    to_create.append(_new_location(practitioner.pk, values, key))
                for key in written - in_file.keys():
                    location = present.get(key)
                    if (
                        location is not None
                        and location.source == Location.Source.NPPES
                        and location.precision != Location.Precision.MANUAL
                    ):
                        to_delete.append(location.pk)
                if written != set(in_file):
                    practitioner.nppes_values = {
                        **practitioner.nppes_values,
                        "secondary_locations": sorted(in_file),
                    }
                    if practitioner.updated_at < self.started_at:
                        # Counted unchanged by the main pass (which would have stamped it).
                        self.report.unchanged -= 1
                        self.report.updated += 1
                    practitioner.updated_at = now
                    changed.append(practitioner)
            if to_create:
                Location.objects.bulk_create(to_create)
                self.report.locations_created += len(to_create)
            if to_delete:
                Location.objects.filter(pk__in=to_delete).delete()
                self.report.locations_removed += len(to_delete)
            if changed:
                Practitioner.objects.bulk_update(changed, ["nppes_values", "updated_at"])
            _forget_queries()


def read_secondary_locations(
    stream: BinaryIO,
    columns: dict[str, int],
    eligible: Sequence[int],
    states: set[str] | None,
) -> dict[int, list[tuple[str, ...]]]:
    """The pl_pfile rows of the NPIs this run matched (``eligible``, sorted), grouped by NPI,
    each a tuple in LOCATION_FIELDS order (compact: the file is ~1M rows, ours a fraction)."""
    npi_column = columns["npi"]
    width = max(columns.values()) + 1
    by_npi: dict[int, list[tuple[str, ...]]] = {}
    for line in stream:
        if not line.strip():
            continue
        values = _parse_line(line)
        if len(values) < width:
            values += [""] * (width - len(values))
        npi = values[npi_column].strip()
        if not (npi.isascii() and npi.isdigit() and _contains(eligible, int(npi))):
            continue

        def get(name: str, values: list[str] = values) -> str:
            position = columns.get(name)
            return values[position].strip() if position is not None else ""

        postal_code = geo.normalise_zip(get("postal_code"))
        state = get("state").upper()
        if (
            postal_code is None
            or get("country").upper() not in ("", "US")
            or len(state) != 2
            or (states is not None and state not in states)
            or not get("address_line1")
            or not get("city")
        ):
            continue
        by_npi.setdefault(int(npi), []).append(
            (
                title_case_address(get("address_line1"))[:200],
                title_case_address(get("address_line2"))[:200],
                title_case_name(get("city"))[:100],
                state,
                postal_code,
                format_phone(get("phone"))[: MAX_LENGTH["phone"]],
            )
        )
    return by_npi


@contextlib.contextmanager
def _small_sqlite_cache(kib: int = 16_384) -> Iterator[None]:
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


def _contains(sorted_values: Sequence[int], value: int) -> bool:
    position = bisect_left(sorted_values, value)
    return position < len(sorted_values) and sorted_values[position] == value


# --- the service ------------------------------------------------------------------------------


def import_nppes(
    *,
    stream: BinaryIO,
    locations_stream: BinaryIO | None = None,
    states: Iterable[str] | None = None,
    status: str = Practitioner.Status.PUBLISHED,
    dry_run: bool = False,
    progress: Callable[[int, int, int], None] | None = None,
) -> NppesReport:
    """Import the NPPES main file (binary stream) and optionally the practice location file.

    Raises NppesFormatError, before writing anything, when a required column is missing.
    ``progress(bytes_read, rows_scanned, rows_matched)`` is called every 50,000 rows.
    On a dry run everything happens inside a transaction that is rolled back, so the report's
    counts are exactly what a real run would do.
    """
    if status not in Practitioner.Status.values:
        raise ValueError(f"status must be one of {', '.join(Practitioner.Status.values)}")
    state_set = {s.strip().upper() for s in states if s.strip()} if states is not None else None
    report = NppesReport(dry_run=dry_run)

    header, quoted = _read_header(stream)
    columns = find_columns(header, MAIN_REQUIRED, MAIN_OPTIONAL, file_label="The NPPES file")
    location_columns = None
    if locations_stream is not None:
        location_header, _ = _read_header(locations_stream)
        location_columns = find_columns(
            location_header,
            LOCATIONS_REQUIRED,
            LOCATIONS_OPTIONAL,
            file_label="The practice location file",
        )

    taxonomies = TaxonomyMap.from_database()
    reader = RowReader(columns, taxonomies, state_set)
    blank_entity = None
    if (columns["npi"], columns["entity_type"]) == (0, 1):
        # '"1234567893","",' (quoted) or '1234567893,,' (not): NPIs are always 10 digits.
        blank_entity = (slice(12, 16), b',"",') if quoted else (slice(10, 12), b",,")
    try:
        with transaction.atomic(), _small_sqlite_cache():
            writer = Writer(
                report,
                status=status,
                track_locations=location_columns is not None,
                run_date=timezone.localdate(),
            )
            batch: list[Row] = []
            for line in scan_lines(
                stream,
                needles=taxonomies.needles(),
                blank_entity=blank_entity,
                report=report,
                progress=progress,
            ):
                outcome = reader.read(_parse_line(line))
                if isinstance(outcome, str):
                    report.skipped[outcome] += 1
                    continue
                batch.append(outcome)
                if len(batch) >= BATCH_SIZE:
                    writer.write(batch)
                    batch = []
                    _forget_queries()
            if batch:
                writer.write(batch)
            if progress is not None:
                progress(stream.tell(), report.scanned, report.matched_total)
            if locations_stream is not None and location_columns is not None:
                eligible = writer.eligible_npis
                if any(a > b for a, b in pairwise(eligible)):  # CMS sorts by NPI already
                    writer.eligible_npis = eligible = array("q", sorted(eligible))
                by_npi = read_secondary_locations(
                    locations_stream, location_columns, eligible, state_set
                )
                writer.sync_secondary_locations(by_npi)
            if dry_run:
                raise _DryRun
    except _DryRun:
        return report
    report.written = True
    return report


def import_nppes_from_text(text: str, locations: str | None = None, **options) -> NppesReport:
    """For tests and the admin: the same import from in-memory text."""
    return import_nppes(
        stream=io.BytesIO(text.encode()),
        locations_stream=io.BytesIO(locations.encode()) if locations is not None else None,
        **options,
    )
