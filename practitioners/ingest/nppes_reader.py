"""Reading the NPI registry's monthly file (NPPES): which rows are ours, and what they say.

The main file (``npidata_pfile_*.csv``: ~9.7 million rows, 330 quoted columns, ~11 GB) is
streamed in constant memory. Most rows are not ours, so every raw line first goes through a
byte-level pre-filter (does the start of a mapped taxonomy code appear in it at all, or is its
entity type blank, as on a deactivated NPI's row?) and only the few survivors are decoded and
CSV-parsed into a :class:`Row`, or the :class:`Skip` reason it is not one. Nothing here writes:
``nppes_writer`` turns rows into listings, ``nppes.import_nppes`` joins the two.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import BinaryIO

from ..models import Location, Practitioner, TaxonomyMapping, npi_check_digit_ok
from ..practice import Gender
from ..search import geo

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
    # Each taxonomy slot has a licence: a claim by licence is checked against these.
    **{f"licence_{n}": f"Provider License Number_{n}" for n in TAXONOMY_SLOTS},
    **{f"licence_state_{n}": f"Provider License Number State Code_{n}" for n in TAXONOMY_SLOTS},
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


def _clipped(value: str, name: str) -> str:
    return value[: max_length(name)]


@cache
def max_length(name: str) -> int:
    """The longest value the listing's field ``name`` holds (a clinic's for address fields)."""
    model = Location if name in ("address_line1", "address_line2", "city") else Practitioner
    return model._meta.get_field(name).max_length


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
    return name[: max_length("name")]


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


def parse_line(line: bytes) -> list[str]:
    return next(csv.reader([line.decode("utf-8", "replace")]), [])


def read_header(stream: BinaryIO) -> tuple[list[str], bool]:
    line = stream.readline()
    if not line.strip():
        raise NppesFormatError("The file is empty: no header row. Nothing was written.")
    header = parse_line(line.removeprefix(b"\xef\xbb\xbf"))
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
    licences: list = field(default_factory=list)


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

    @staticmethod
    def licences(get) -> list[dict[str, str]]:
        """The licence numbers and states of the taxonomy slots, each once, in slot order."""
        found: list[dict[str, str]] = []
        for n in TAXONOMY_SLOTS:
            number = get(f"licence_{n}")[:40]
            if number:
                licence = {"number": number, "state": get(f"licence_state_{n}").upper()[:2]}
                if licence not in found:
                    found.append(licence)
        return found

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
        phone = format_phone(get("phone"))[: max_length("phone")]
        row.values = {
            "name": name,
            "credentials": get("credentials")[: max_length("credentials")],
            "phone": phone,
            "gender": NPPES_GENDERS.get(get("gender").upper(), ""),
        }
        row.licences = self.licences(get)
        row.location = {
            "address_line1": title_case_address(get("address_line1"))[
                : max_length("address_line1")
            ],
            "address_line2": title_case_address(get("address_line2"))[
                : max_length("address_line2")
            ],
            "city": city[: max_length("city")],
            "state": state,
            "postal_code": postal_code,
            "phone": phone,
        }
        return row


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
        values = parse_line(line)
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
                title_case_address(get("address_line1"))[: max_length("address_line1")],
                title_case_address(get("address_line2"))[: max_length("address_line2")],
                title_case_name(get("city"))[: max_length("city")],
                state,
                postal_code,
                format_phone(get("phone"))[: max_length("phone")],
            )
        )
    return by_npi


def _contains(sorted_values: Sequence[int], value: int) -> bool:
    position = bisect_left(sorted_values, value)
    return position < len(sorted_values) and sorted_values[position] == value
