"""The CSV import's optional practice columns: languages, payment, new patients, gender, access,
hours, and when each was confirmed (docs/filters.md, example file docs/practice-columns.csv).

Only the columns a file has are written: a file without ``languages`` leaves every listing's
languages as they are; a file with it makes each listing's languages exactly those of its row
(an empty cell: none). Practitioner columns come from a listing's first row; clinic columns
(access, hours, closure) belong to the row's clinic.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..models import Location, Practitioner
from ..practice import (
    ACCESSIBILITY_FIELDS,
    PRACTICE_FIELDS,
    Gender,
    Language,
    NewPatients,
    OpeningHours,
    Payer,
    format_hours,
    interval,
    parse_hours,
)

# The admin's practice fields (practice.PRACTICE_FIELDS), the payers as the insurance column.
PRACTITIONER_COLUMNS = ["insurance" if name == "payers" else name for name in PRACTICE_FIELDS]
CLINIC_COLUMNS = [
    "hours",
    "hours_checked_on",
    "reopens_on",
    *ACCESSIBILITY_FIELDS,
    "accessibility_checked_on",
]
COLUMNS = [*PRACTITIONER_COLUMNS, *CLINIC_COLUMNS]
_BOOLEAN = {"self_pay", "sliding_scale", "hsa_fsa", *ACCESSIBILITY_FIELDS}
_DATES = {c for c in COLUMNS if c.endswith("_on")}
_PRICES = {"self_pay_min", "self_pay_max"}
_TRUE, _FALSE = {"true", "yes", "y", "1"}, {"false", "no", "n", "0", ""}
# The registry's codes are accepted as they come.
_GENDERS = {"f": Gender.FEMALE, "female": Gender.FEMALE, "m": Gender.MALE, "male": Gender.MALE}


class FromYesNo(str):
    """A new-patient status read from the older yes/no column: "no" says only "not
    accepting", which one of Plan-Net's three non-accepting values is unknown."""


def keep_refined_new_patients(practitioner: Practitioner, values: dict) -> None:
    """A file's yes/no "no" leaves a listing's existing_only or existing_and_family as it is
    (an export without the new_patients column imports back unchanged)."""
    given = values.get("new_patients")
    if (
        isinstance(given, FromYesNo)
        and given == NewPatients.NOT_ACCEPTING
        and practitioner.new_patients != NewPatients.ACCEPTING
    ):
        values["new_patients"] = practitioner.new_patients


@dataclass
class PracticeRow:
    """One row's practice columns, parsed: only the columns the file has."""

    practitioner: dict[str, object] = field(default_factory=dict)
    language_ids: list[int] | None = None
    payer_ids: list[int] | None = None
    clinic: dict[str, object] = field(default_factory=dict)
    hours: list[tuple[int, dt.time, dt.time]] | None = None


class PracticeColumns:
    """Parses the practice columns of each row against the languages and payers, read once."""

    def __init__(self) -> None:
        self.languages = dict(Language.objects.values_list("code", "id"))
        self.payers = dict(Payer.objects.values_list("slug", "id"))

    def parse(self, get: dict[str, str], problems: list[str]) -> PracticeRow | None:
        """``get``: the row's stripped cells by column. Problems are appended, one per cell."""
        present = [column for column in COLUMNS if column in get]
        if not present:
            return None
        row = PracticeRow()
        for column in present:
            value = get[column]
            target = row.practitioner if column in PRACTITIONER_COLUMNS else row.clinic
            try:
                if column in _BOOLEAN:
                    word = value.lower()
                    if word not in _TRUE | _FALSE:
                        raise ValueError(f"{column} must be true or false, not {value!r}")
                    target[column] = word in _TRUE
                elif column in _DATES:
                    target[column] = _date(column, value)
                elif column in _PRICES:
                    if value and not (value.isascii() and value.isdigit()):
                        raise ValueError(f"{column} must be whole dollars, like 80, not {value!r}")
                    target[column] = int(value) if value else None
                elif column == "new_patients":
                    if value and value not in NewPatients.values:
                        raise ValueError(
                            f"new_patients must be one of {', '.join(NewPatients.values)}, "
                            f"not {value!r}"
                        )
                    if value:  # empty: the yes/no accepting_new_patients column decides
                        target[column] = value
                elif column == "gender":
                    if value and value.lower() not in _GENDERS:
                        raise ValueError(f"gender must be female or male (or empty), not {value!r}")
                    target[column] = _GENDERS.get(value.lower(), "")
                elif column == "languages":
                    row.language_ids = self._ids(column, value, self.languages, "ISO 639 code")
                elif column == "insurance":
                    row.payer_ids = self._ids(column, value, self.payers, "payer slug")
                elif column == "hours":
                    row.hours = parse_hours(value)
            except ValueError as error:
                message = str(error)
                problems.append(message if message.startswith(column) else f"{column}: {message}")
        low, high = row.practitioner.get("self_pay_min"), row.practitioner.get("self_pay_max")
        if low is not None and high is not None and low > high:
            problems.append("self_pay_max is below self_pay_min")
        return row

    @staticmethod
    def _ids(column: str, value: str, known: dict[str, int], what: str) -> list[int]:
        codes = [code.strip() for code in value.split(";") if code.strip()]
        unknown = [code for code in codes if code not in known]
        if unknown:
            raise ValueError(f"{column}: unknown {what} {', '.join(map(repr, unknown))}")
        return sorted({known[code] for code in codes})


def _date(column: str, value: str) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{column} must be a date like 2026-05-31, not {value!r}") from None


def apply_practice_rows(records: Iterable, ids: dict[str, int], *, address_key) -> None:
    """Write the parsed practice columns of these import records (``csv.PractitionerRecord``
    with their ``LocationRecord.practice``), after the listings and clinics are written.

    A handful of statements per batch: one update per column set, the join rows and the
    hours replaced for the listings and clinics whose file gave them."""
    practitioners: dict[int, PracticeRow] = {}
    clinics: dict[tuple[int, tuple[str, str]], PracticeRow] = {}
    for record in records:
        practitioner_id = ids[record.external_id]
        for location in record.locations:
            practice = getattr(location, "practice", None)
            if practice is None:
                continue
            practitioners.setdefault(practitioner_id, practice)
            clinics[(practitioner_id, location.key)] = practice
    if not practitioners:
        return
    _write_practitioners(practitioners)
    by_key = {}
    owners = list(practitioners)
    for start in range(0, len(owners), 5000):
        for location in Location.objects.filter(
            practitioner_id__in=owners[start : start + 5000]
        ).only("id", "practitioner_id", "address_line1", "postal_code"):
            key = address_key(location.address_line1, location.postal_code)
            by_key[(location.practitioner_id, key)] = location.pk
    _write_clinics({by_key[key]: practice for key, practice in clinics.items() if key in by_key})


def _write_practitioners(rows: dict[int, PracticeRow]) -> None:
    listings = []
    columns: set[str] = set()
    for pk, practice in rows.items():
        listing = Practitioner(pk=pk, **practice.practitioner)
        columns.update(practice.practitioner)
        listings.append(listing)
    if columns:
        Practitioner.objects.bulk_update(listings, sorted(columns), batch_size=1000)
    for relation, attribute, column in (
        (Practitioner.languages.through, "language_ids", "language_id"),
        (Practitioner.payers.through, "payer_ids", "payer_id"),
    ):
        given = {
            pk: getattr(practice, attribute)
            for pk, practice in rows.items()
            if getattr(practice, attribute) is not None
        }
        if not given:
            continue
        owners = list(given)
        for start in range(0, len(owners), 5000):
            relation.objects.filter(practitioner_id__in=owners[start : start + 5000]).delete()
        relation.objects.bulk_create(
            [
                relation(practitioner_id=pk, **{column: chosen_id})
                for pk, chosen in given.items()
                for chosen_id in chosen
            ],
            batch_size=2000,
        )


def _write_clinics(rows: dict[int, PracticeRow]) -> None:
    clinics = []
    columns: set[str] = set()
    for pk, practice in rows.items():
        clinics.append(Location(pk=pk, **practice.clinic))
        columns.update(practice.clinic)
    if columns:
        Location.objects.bulk_update(clinics, sorted(columns), batch_size=1000)
    given = {pk: p.hours for pk, p in rows.items() if p.hours is not None}
    if given:
        owners = list(given)
        for start in range(0, len(owners), 5000):
            OpeningHours.objects.filter(location_id__in=owners[start : start + 5000]).delete()
        OpeningHours.objects.bulk_create(
            [interval(pk, *row) for pk, hours in given.items() for row in hours], batch_size=2000
        )


# --- Export: the same columns, written back --------------------------------------------------


def _cell(value: object) -> object:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date):
        return value.isoformat()
    return "" if value is None else value


def practitioner_cells(practitioner: Practitioner) -> dict[str, object]:
    """The practitioner columns of an export row (``languages`` and ``payers`` prefetched)."""
    cells = {
        column: _cell(getattr(practitioner, column))
        for column in PRACTITIONER_COLUMNS
        if column not in ("languages", "insurance")
    }
    cells["languages"] = ";".join(sorted(g.code for g in practitioner.languages.all()))
    cells["insurance"] = ";".join(sorted(y.slug for y in practitioner.payers.all()))
    return cells


def clinic_cells(location: Location) -> dict[str, object]:
    """The clinic columns of an export row (``opening_hours`` prefetched)."""
    cells = {
        column: _cell(getattr(location, column)) for column in CLINIC_COLUMNS if column != "hours"
    }
    cells["hours"] = format_hours(location.opening_hours.all())
    return cells
