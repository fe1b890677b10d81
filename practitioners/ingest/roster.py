"""Reconcile a certifying body's roster (a spreadsheet of everyone it certified) with the listings.

Three steps, each a plain function so the tests and the benchmark can call them alone:

1. :func:`read_roster` finds the columns by header name (forgiving the usual variants) and turns
   each line into a :class:`RosterRow`, or refuses the whole file with line-numbered messages:
   a half-read roster would make everyone on the unread lines look as if they had dropped off.
2. :func:`match_rows` finds each row's listing: an NPI on the row settles it; otherwise the
   candidates come from blocking (same state and the first letters of the last name, the same
   ZIP, the same phone) and are scored on names (nicknames, initials, hyphenated and maiden
   names, with rapidfuzz and nameparser), city, ZIP, phone, e-mail and credentials. Pairs are
   assigned best first, so each row gets at most one listing and each listing at most one row.
3. :func:`import_roster` records what a confident match proves (the certificate, verified on the
   roster's date against "<body> roster, <date>"), queues the doubtful ones for staff, and flags
   the listings an earlier roster of the same body confirmed that this one no longer lists.

A wrong match puts a false certificate on a stranger's listing, the worst error the directory can
make, so anything short of a clear winner goes to staff rather than being guessed.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from nameparser import HumanName
from rapidfuzz import fuzz
from simple_history.utils import bulk_update_with_history

from ..models import (
    Certification,
    Location,
    Practitioner,
    PractitionerCertification,
    unique_listing_slugs,
)
from ..rosters import RosterEntry, RosterImport, RosterReview

# --- Columns ----------------------------------------------------------------------------------

# Our field -> the header spellings taken for it (compared lower-case, without spaces, dots,
# dashes and underscores, so "First Name", "first_name" and "FIRST-NAME" are one).
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "name": ("name", "fullname", "providername", "practitioner", "practitionername"),
    "first_name": ("firstname", "first", "givenname", "fname", "forename"),
    "middle_name": ("middlename", "middle", "mi", "middleinitial"),
    "last_name": ("lastname", "last", "surname", "familyname", "lname"),
    "credentials": ("credentials", "credential", "degree", "degrees", "suffix", "designations"),
    "city": ("city", "town"),
    "state": ("state", "st", "province", "stateprovince"),
    "postal_code": ("zip", "zipcode", "postalcode", "postcode", "zip5", "postal"),
    "phone": ("phone", "phonenumber", "telephone", "tel", "officephone"),
    "email": ("email", "emailaddress", "mail"),
    "level": ("level", "certification", "certificationlevel", "certlevel", "course", "module"),
    "certified_on": ("certifiedon", "certified", "certificationdate", "datecertified", "issued"),
    "expires_on": ("expireson", "expires", "expiration", "expirationdate", "expiry", "validuntil"),
    "npi": ("npi", "npinumber"),
    "address": ("address", "address1", "addressline1", "street", "streetaddress"),
}
REQUIRED_HELP = (
    "a name (either a `name` column, or `first_name` and `last_name`) and at least one of "
    "`state`, `zip`/`postal_code` or `phone`, or an `npi` column"
)


class RosterError(Exception):
    """The file cannot be used; ``messages`` say why, line by line where a line is at fault."""

    def __init__(self, messages: list[str]) -> None:
        self.messages = messages
        super().__init__("; ".join(messages[:5]))


def _header_key(header: str) -> str:
    return re.sub(r"[\s._\-/#]+", "", header.strip().lower().lstrip("\ufeff"))


def find_columns(headers: Iterable[str]) -> dict[str, str]:
    """Our field -> the file's header, for the headers we recognise."""
    found: dict[str, str] = {}
    for header in headers:
        key = _header_key(header or "")
        for field_name, aliases in COLUMN_ALIASES.items():
            if key in aliases and field_name not in found:
                found[field_name] = header
    return found


def check_layout(columns: dict[str, str], headers: list[str]) -> None:
    has_name = "name" in columns or {"first_name", "last_name"} <= columns.keys()
    has_place = bool({"state", "postal_code", "phone"} & columns.keys())
    if (has_name and has_place) or "npi" in columns:
        return
    shown = ", ".join(repr(h) for h in headers) or "none"
    raise RosterError(
        [
            f"This file's columns are not a roster we can read (found: {shown}). "
            f"A roster needs {REQUIRED_HELP}. Optional: email, credentials, city, level, "
            "certified_on, expires_on."
        ]
    )


# --- Rows -------------------------------------------------------------------------------------


@dataclass
class RosterRow:
    line: int
    name: str
    first: str = ""
    middle: str = ""
    last: str = ""
    credentials: str = ""
    city: str = ""
    state: str = ""
    postal_code: str = ""
    phone: str = ""
    email: str = ""
    level: str = ""
    certified_on: dt.date | None = None
    expires_on: dt.date | None = None
    npi: str = ""
    address: str = ""

    @property
    def key(self) -> str:
        """What identifies the row across re-runs of the file (its content, not its line)."""
        parts = [self.name, self.credentials, self.city, self.state, self.postal_code]
        parts += [digits(self.phone), self.email.lower(), self.npi, self.level]
        return hashlib.sha256("|".join(parts).lower().encode()).hexdigest()[:32]

    def shown(self) -> dict[str, str]:
        """The row as staff see it in the review queue."""
        return {
            k: (v.isoformat() if isinstance(v, dt.date) else str(v))
            for k, v in asdict(self).items()
            if v
        }


DATE_FORMATS = (
    "%Y-%m-%d",
    "%m/%d/%Y",
    "%m/%d/%y",
    "%Y/%m/%d",
    "%d %B %Y",
    "%B %d, %Y",
    "%b %d, %Y",
)


def parse_date(text: str) -> dt.date | None:
    text = text.strip()
    if not text:
        return None
    for fmt in DATE_FORMATS:
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError(f"{text!r} is not a date (use YYYY-MM-DD)")


def digits(text: str) -> str:
    only = re.sub(r"\D", "", text or "")
    return only[1:] if len(only) == 11 and only.startswith("1") else only


def fold(text: str) -> str:
    """Lower case, accents off, letters, spaces and hyphens only: how names are compared."""
    text = unicodedata.normalize("NFKD", text or "").encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z\- ]+", "", text.lower().replace(".", " ")).strip()


def read_roster(stream: io.TextIOBase | Iterable[str]) -> list[RosterRow]:
    """Every row of the file, or :class:`RosterError` with line-numbered messages."""
    reader = csv.DictReader(stream)
    headers = [h for h in (reader.fieldnames or []) if h is not None]
    columns = find_columns(headers)
    check_layout(columns, headers)
    rows: list[RosterRow] = []
    errors: list[str] = []
    for raw in reader:
        line = reader.line_num
        values = {f: (raw.get(h) or "").strip() for f, h in columns.items()}
        if not any(values.values()):
            continue
        problems: list[str] = []
        name = values.get("name", "")
        first, middle, last = (
            values.get(k, "") for k in ("first_name", "middle_name", "last_name")
        )
        if name and not (first or last):
            parsed = HumanName(name)
            first, middle, last = parsed.first, parsed.middle, parsed.last
            if not values.get("credentials") and parsed.suffix:
                values["credentials"] = parsed.suffix
        if not name:
            name = " ".join(p for p in (first, middle, last) if p)
        if not last and not values.get("npi"):
            problems.append("no last name")
        state = values.get("state", "").upper()
        if state and not re.fullmatch(r"[A-Z]{2}", state):
            problems.append(f"state {values['state']!r} is not a two-letter code")
        zip_code = values.get("postal_code", "")
        if zip_code:
            zip_code = (
                re.sub(r"\D", "", zip_code)[:5].zfill(5) if re.search(r"\d", zip_code) else ""
            )
            if not zip_code:
                problems.append(f"ZIP {values['postal_code']!r} is not a ZIP code")
        npi = re.sub(r"\D", "", values.get("npi", ""))
        if values.get("npi") and len(npi) != 10:
            problems.append(f"NPI {values['npi']!r} is not 10 digits")
        dates: dict[str, dt.date | None] = {}
        for key in ("certified_on", "expires_on"):
            try:
                dates[key] = parse_date(values.get(key, ""))
            except ValueError as error:
                problems.append(f"{key}: {error}")
                dates[key] = None
        if problems:
            errors.append(f"line {line}: " + "; ".join(problems))
            continue
        rows.append(
            RosterRow(
                line=line,
                name=name,
                first=first,
                middle=middle,
                last=last,
                credentials=values.get("credentials", ""),
                city=values.get("city", ""),
                state=state,
                postal_code=zip_code,
                phone=values.get("phone", ""),
                email=values.get("email", "").lower(),
                level=values.get("level", ""),
                certified_on=dates["certified_on"],
                expires_on=dates["expires_on"],
                npi=npi,
                address=values.get("address", ""),
            )
        )
    if errors:
        raise RosterError(errors)
    return rows


# --- Names ------------------------------------------------------------------------------------

# Each group is one given name and the short forms people go by; small on purpose (the common
# English ones), since a nickname only lifts a candidate that the rest of the evidence supports.
NICKNAME_GROUPS = [
    ("robert", "bob", "bobby", "rob", "robbie", "bert"),
    ("william", "bill", "billy", "will", "willie", "liam"),
    ("elizabeth", "liz", "lizzie", "beth", "betsy", "eliza", "libby", "betty"),
    ("richard", "rick", "ricky", "dick", "rich"),
    ("james", "jim", "jimmy", "jamie"),
    ("john", "jack", "johnny", "jon"),
    ("jonathan", "jon", "jonny"),
    ("michael", "mike", "mikey", "mick"),
    ("joseph", "joe", "joey"),
    ("thomas", "tom", "tommy"),
    ("charles", "charlie", "chuck", "chas"),
    ("christopher", "chris", "kit"),
    ("christine", "chris", "chrissy", "tina"),
    ("daniel", "dan", "danny"),
    ("david", "dave", "davey"),
    ("edward", "ed", "eddie", "ted", "ned"),
    ("anthony", "tony"),
    ("andrew", "andy", "drew"),
    ("matthew", "matt"),
    ("nicholas", "nick", "nicky"),
    ("steven", "steve"),
    ("stephen", "steve"),
    ("timothy", "tim", "timmy"),
    ("benjamin", "ben", "benny"),
    ("samuel", "sam", "sammy"),
    ("alexander", "alex", "al", "xander"),
    ("alexandra", "alex", "lexi", "sandra"),
    ("gregory", "greg"),
    ("patrick", "pat", "paddy"),
    ("patricia", "pat", "patty", "tricia"),
    ("katherine", "kate", "katie", "kathy", "kat", "kit"),
    ("catherine", "cathy", "kate", "katie", "cat"),
    ("margaret", "maggie", "meg", "peggy", "marge"),
    ("jennifer", "jen", "jenny"),
    ("rebecca", "becky", "becca"),
    ("susan", "sue", "susie"),
    ("deborah", "deb", "debbie"),
    ("kimberly", "kim"),
    ("jessica", "jess", "jessie"),
    ("victoria", "vicky", "tori"),
    ("abigail", "abby"),
    ("samantha", "sam", "sammy"),
    ("kenneth", "ken", "kenny"),
    ("ronald", "ron", "ronnie"),
    ("donald", "don", "donnie"),
    ("raymond", "ray"),
    ("lawrence", "larry"),
    ("gerald", "jerry"),
    ("peter", "pete"),
    ("frederick", "fred", "freddie"),
    ("zachary", "zach", "zack"),
    ("joshua", "josh"),
    ("jacob", "jake"),
    ("nathaniel", "nate", "nat"),
    ("nathan", "nate"),
]
NICKNAMES: dict[str, set[str]] = {}
for _group in NICKNAME_GROUPS:
    for _name in _group:
        NICKNAMES.setdefault(_name, set()).update(_group)


@dataclass(frozen=True)
class PersonName:
    first: str
    middle: str
    lasts: frozenset[str]  # the last name, each part of a hyphenated one, and the whole
    last: str

    @classmethod
    def parse(
        cls, full: str = "", *, first: str = "", middle: str = "", last: str = ""
    ) -> PersonName:
        if full and not (first or last):
            parsed = HumanName(full)
            first, middle, last = parsed.first, parsed.middle, parsed.last
        first, middle, last = fold(first), fold(middle), fold(last)
        parts = {p for p in re.split(r"[\s\-]+", last) if len(p) > 1}
        return cls(first.split(" ")[0] if first else "", middle, frozenset(parts | {last}), last)

    @property
    def block_key(self) -> str:
        return re.sub(r"[^a-z]", "", self.last)[:3]


def first_name_score(a: str, b: str) -> tuple[float, str]:
    """How well two given names agree, from 1 (the same) down to -1 (two different people)."""
    if not a or not b:
        return 0.0, "no first name to compare"
    if a == b:
        return 1.0, "same first name"
    if len(a) == 1 or len(b) == 1:
        if a[0] == b[0]:
            return 0.5, "first initial agrees"
        return -1.0, "first initial differs"
    if b in NICKNAMES.get(a, ()):
        return 0.85, f"nickname ({a} / {b})"
    ratio = fuzz.ratio(a, b)
    if ratio >= 85:
        return 0.7, f"first name nearly the same ({ratio:.0f}%)"
    return -1.0, "different first name"


def last_name_score(row: PersonName, listing: PersonName) -> tuple[float, str]:
    if row.last and row.last == listing.last:
        return 1.0, "same last name"
    if row.lasts & listing.lasts:
        return 0.9, "shares a part of a hyphenated last name"
    # A maiden name kept as a middle name on one side.
    if row.last and (row.last == listing.middle or listing.last == row.middle):
        return 0.8, "last name matches the other's middle (maiden) name"
    ratio = fuzz.ratio(row.last, listing.last)
    if ratio >= 88:
        return 0.8, f"last name nearly the same ({ratio:.0f}%)"
    return 0.0, "different last name"


def credential_set(text: str) -> set[str]:
    return {c for c in re.split(r"[^A-Z]+", (text or "").upper().replace(".", "")) if len(c) > 1}


# --- Candidates and scores --------------------------------------------------------------------


@dataclass
class Listing:
    """What matching needs to know about one listing (one query loads them all)."""

    pk: int
    name: str
    person: PersonName
    credentials: set[str]
    email: str
    phones: set[str]
    places: list[tuple[str, str, str]]  # (city, state, zip) of each clinic
    npi: str


@dataclass
class Candidate:
    listing: Listing
    score: float
    evidence: list[str]

    def shown(self) -> dict:
        return {
            "practitioner_id": self.listing.pk,
            "name": self.listing.name,
            "score": round(self.score, 3),
            "evidence": self.evidence,
            "places": [", ".join(p for p in place if p) for place in self.listing.places],
        }


# A confident match scores at least this and beats the row's next candidate by MARGIN; from
# REVIEW_AT up it goes to staff. Scores are points over 100 (see score_pair).
CONFIDENT_AT = 0.80
MARGIN = 0.15
REVIEW_AT = 0.50


def score_pair(row: RosterRow, person: PersonName, listing: Listing) -> Candidate:
    """Points for each piece of evidence, over 100: a same-name, same-ZIP, same-city pair scores
    95; a nickname or an initial needs a phone, an e-mail or the ZIP besides; a first name that
    differs or a clinic in another state sinks the pair, whatever else agrees."""
    evidence: list[str] = []
    last, why = last_name_score(person, listing.person)
    evidence.append(why)
    if last == 0:
        return Candidate(listing, 0.0, evidence)
    points = 40 * last
    first, why = first_name_score(person.first, listing.person.first)
    evidence.append(why)
    points += 30 * first if first > 0 else 40 * first
    if row.email and row.email == listing.email:
        points += 30
        evidence.append("same e-mail")
    phone = digits(row.phone)
    if phone and phone in listing.phones:
        points += 20
        evidence.append("same phone")
    states = {state for _, state, _ in listing.places}
    if row.postal_code and any(z == row.postal_code for _, _, z in listing.places):
        points += 15
        evidence.append("same ZIP")
    city = fold(row.city)
    if city and any(fold(c) == city and s == (row.state or s) for c, s, _ in listing.places):
        points += 10
        evidence.append("same city")
    if row.state and states and row.state not in states:
        points -= 40
        evidence.append(f"clinic in another state ({', '.join(sorted(states))})")
    row_credentials = credential_set(row.credentials)
    if row_credentials and row_credentials & listing.credentials:
        points += 5
        evidence.append("a credential in common")
    return Candidate(listing, max(points, 0.0) / 100, evidence)


def _phone_forms(phone: str) -> list[str]:
    """The ways a phone number is written in the listings, for an exact look-up by index."""
    d = digits(phone)
    if len(d) != 10:
        return []
    a, b, c = d[:3], d[3:6], d[6:]
    return [d, f"{a}-{b}-{c}", f"({a}) {b}-{c}", f"{a}.{b}.{c}", f"{a} {b} {c}", f"1{d}"]


def _load_listings(ids: set[int]) -> dict[int, Listing]:
    listings: dict[int, Listing] = {}
    for pk, name, credentials, email, phone, npi in Practitioner.objects.filter(
        pk__in=ids
    ).values_list("pk", "name", "credentials", "email", "phone", "npi"):
        listings[pk] = Listing(
            pk=pk,
            name=name,
            person=PersonName.parse(name),
            credentials=credential_set(credentials),
            email=(email or "").lower(),
            phones={digits(phone)} - {""},
            places=[],
            npi=npi,
        )
    for pk, city, state, zip_code, phone in Location.objects.filter(
        practitioner_id__in=ids
    ).values_list("practitioner_id", "city", "state", "postal_code", "phone"):
        listing = listings.get(pk)
        if listing is not None:
            listing.places.append((city, state, zip_code))
            if digits(phone):
                listing.phones.add(digits(phone))
    return listings


def candidate_ids(row: RosterRow, person: PersonName) -> set[int]:
    """Blocking: the listings worth scoring for this row (never the whole directory)."""
    where = Q()
    if row.state and person.block_key:
        where |= Q(state=row.state, practitioner__name__icontains=person.block_key)
    if row.postal_code:
        where |= Q(postal_code=row.postal_code)
    forms = _phone_forms(row.phone)
    if forms:
        where |= Q(phone__in=forms)
    ids = (
        set(Location.objects.filter(where).values_list("practitioner_id", flat=True))
        if where
        else set()
    )
    if forms:
        ids |= set(Practitioner.objects.filter(phone__in=forms).values_list("pk", flat=True))
    return ids


@dataclass
class RowOutcome:
    row: RosterRow
    how: str  # "npi", "confident", "staff" (decided earlier), "review", "unmatched"
    listing_id: int | None = None
    candidates: list[Candidate] = field(default_factory=list)


def match_rows(
    rows: list[RosterRow], *, decided: dict[str, int | None] | None = None
) -> list[RowOutcome]:
    """Each row's listing, one-to-one. ``decided`` holds staff decisions from an earlier run of
    the same roster (row key -> listing id, or None for "none of them"): they stand."""
    decided = decided or {}
    outcomes: dict[int, RowOutcome] = {}
    taken: set[int] = set()
    # 1. Staff decisions, then NPIs: both settle a row before any scoring.
    for row in rows:
        if row.key in decided:
            pk = decided[row.key]
            if pk is None or pk in taken:
                outcomes[row.line] = RowOutcome(row, "unmatched")
            else:
                outcomes[row.line] = RowOutcome(row, "staff", pk)
                taken.add(pk)
    npis = {row.npi for row in rows if row.npi and row.line not in outcomes}
    by_npi = (
        dict(Practitioner.objects.filter(npi__in=npis).values_list("npi", "pk")) if npis else {}
    )
    for row in rows:
        pk = by_npi.get(row.npi)
        if row.line not in outcomes and pk is not None and pk not in taken:
            outcomes[row.line] = RowOutcome(row, "npi", pk)
            taken.add(pk)
    # 2. Everyone else: block, score, then assign the best pairs first.
    pending = [row for row in rows if row.line not in outcomes]
    people = {
        row.line: PersonName.parse(row.name, first=row.first, middle=row.middle, last=row.last)
        for row in pending
    }
    blocks = {row.line: candidate_ids(row, people[row.line]) - taken for row in pending}
    listings = _load_listings(set().union(*blocks.values()) if blocks else set())
    scored: dict[int, list[Candidate]] = {}
    for row in pending:
        found = [
            score_pair(row, people[row.line], listings[pk])
            for pk in blocks[row.line]
            if pk in listings
        ]
        # A listing with its own NPI that differs from the row's is someone else.
        found = [c for c in found if not (row.npi and c.listing.npi and c.listing.npi != row.npi)]
        scored[row.line] = sorted(
            (c for c in found if c.score >= REVIEW_AT), key=lambda c: (-c.score, c.listing.pk)
        )
    pairs = sorted(
        ((c.score, row.line, c) for row in pending for c in scored[row.line]),
        key=lambda p: (-p[0], p[1], p[2].listing.pk),
    )
    by_line = {row.line: row for row in pending}
    for score, line, candidate in pairs:
        if line in outcomes or candidate.listing.pk in taken:
            continue
        row = by_line[line]
        others = [c.score for c in scored[line] if c is not candidate]
        # The best rival for the listing among the other rows not matched elsewhere counts too
        # (including rows already sent to staff): two roster rows wanting one listing is as
        # doubtful as one row with two listings.
        rivals = [
            c.score
            for other in pending
            if other.line != line
            and outcomes.get(other.line, RowOutcome(other, "")).listing_id is None
            for c in scored[other.line]
            if c.listing.pk == candidate.listing.pk
        ]
        runner_up = max(others + rivals, default=0.0)
        if score >= CONFIDENT_AT and score - runner_up >= MARGIN:
            outcomes[line] = RowOutcome(row, "confident", candidate.listing.pk, scored[line])
            taken.add(candidate.listing.pk)
        else:
            outcomes[line] = RowOutcome(row, "review", None, scored[line])
    for row in pending:
        if row.line not in outcomes:
            # Its candidates went to better pairs: staff look if any was close, else no match.
            how = "review" if scored[row.line] else "unmatched"
            outcomes[row.line] = RowOutcome(row, how, None, scored[row.line])
    return [outcomes[row.line] for row in rows]


# --- Recording --------------------------------------------------------------------------------


@dataclass
class RosterSummary:
    rows_read: int = 0
    matched_by_npi: int = 0
    matched_confidently: int = 0
    matched_by_staff: int = 0
    sent_to_review: int = 0
    unmatched: int = 0
    certifications_added: int = 0
    reconfirmed: int = 0
    unchanged: int = 0
    flagged: int = 0
    created: int = 0
    unmatched_rows: list[RosterRow] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"{self.rows_read} rows read: {self.matched_by_npi} matched by NPI, "
            f"{self.matched_confidently} matched confidently, "
            + (
                f"{self.matched_by_staff} decided by staff earlier, "
                if self.matched_by_staff
                else ""
            )
            + f"{self.sent_to_review} sent to review, {self.unmatched} unmatched"
            + (f" ({self.created} created as pending listings)" if self.created else "")
            + f"; {self.certifications_added} certifications added, "
            f"{self.reconfirmed} re-confirmed, {self.unchanged} already up to date, "
            f"{self.flagged} flagged as not on this roster."
        )


def level_for(technique: Certification, level: str) -> Certification:
    """The row's level ("M2", "Spine", "Graston Technique M2 (Advanced)") as one of ours, or the
    technique itself when the row names none; ValueError naming the known levels otherwise."""
    if not level.strip():
        return technique
    want = _header_key(level)
    levels = list(technique.levels.all())
    for candidate in [technique, *levels]:
        short = candidate.slug.removeprefix(technique.slug + "-")
        names = {
            _header_key(candidate.name),
            _header_key(candidate.slug),
            _header_key(short),
            _header_key(re.sub(r"\s*\(.*\)", "", candidate.name)),
        }
        names |= {_header_key(x) for x in re.findall(r"\((.*?)\)", candidate.name)}
        stripped = re.sub(r"\s*\(.*\)", "", candidate.name)
        for prefix in (technique.name, re.sub(r"\s*\(.*\)", "", technique.name), technique.slug):
            if stripped.lower().startswith(prefix.lower()):
                names.add(_header_key(stripped[len(prefix) :]))
        if want in names - {""}:
            return candidate
    known = ", ".join(c.slug.removeprefix(technique.slug + "-") for c in levels) or "none"
    raise ValueError(f"level {level!r} is not a level of {technique.name} (known: {known})")


def _reason(roster: RosterImport) -> str:
    return f"Confirmed on the {roster.source}"


def record_certificate(
    *,
    roster: RosterImport,
    practitioner_id: int,
    row: RosterRow,
    how: str,
    certification: Certification,
    summary: RosterSummary,
    user: AbstractBaseUser | None = None,
) -> None:
    """The certificate a roster row proves, verified on the roster's date against the roster;
    the listing joins the roster's entries (what a newer roster compares against)."""
    verifier = user if user is not None and user.is_authenticated else None
    RosterEntry.objects.update_or_create(
        roster=roster, practitioner_id=practitioner_id, defaults={"line": row.line, "how": how}
    )
    record = (
        PractitionerCertification.objects.filter(
            practitioner_id=practitioner_id, certification=certification
        )
        .select_for_update()
        .first()
    )
    wanted = {
        "verified_on": roster.as_of,
        "verification_source": roster.source,
        "self_reported": False,
    }
    if row.certified_on:
        wanted["earned_on"] = row.certified_on
    if row.expires_on:
        wanted["expires_on"] = row.expires_on
    if record is None:
        record = PractitionerCertification(
            practitioner_id=practitioner_id,
            certification=certification,
            verified_by=verifier,
            **wanted,
        )
        record._change_reason = _reason(roster)
        if verifier is not None:
            record._history_user = verifier
        record.save()
        summary.certifications_added += 1
        return
    changed = [name for name, value in wanted.items() if getattr(record, name) != value]
    # An older roster imported after a newer one never moves a verification back in time.
    if record.verified_on and record.verified_on > roster.as_of:
        changed = [name for name in changed if name not in ("verified_on", "verification_source")]
    if not changed:
        summary.unchanged += 1
        return
    for name in changed:
        setattr(record, name, wanted[name])
    record.verified_by = verifier
    bulk_update_with_history(
        [record],
        PractitionerCertification,
        [*changed, "verified_by"],
        default_user=verifier,
        default_change_reason=_reason(roster),
    )
    Practitioner.objects.filter(pk=practitioner_id).update(last_confirmed_on=roster.as_of)
    summary.reconfirmed += 1


def _flag_absent(
    *, roster: RosterImport, on_roster: set[int], maybe: set[int], summary: RosterSummary
) -> None:
    """Listings an earlier roster of this body confirmed and this newer one does not list: their
    certificates stop reading "verified" (back to the staff queue) and staff get a review row.
    Nothing is deleted: people drop off rosters by mistake too."""
    if RosterImport.objects.filter(technique=roster.technique, as_of__gt=roster.as_of).exists():
        return  # an older roster read late says nothing about who left since
    earlier = RosterImport.objects.filter(technique=roster.technique, as_of__lt=roster.as_of)
    gone = (
        RosterEntry.objects.filter(roster__in=earlier)
        .exclude(practitioner_id__in=on_roster | maybe)
        .values_list("practitioner_id", flat=True)
        .distinct()
    )
    sources = [r.source for r in earlier]
    note = f"Not on the {roster.source}"
    family = Certification.objects.filter(
        Q(pk=roster.technique_id) | Q(parent_id=roster.technique_id)
    )
    for practitioner_id in sorted(set(gone)):
        records = list(
            PractitionerCertification.objects.filter(
                practitioner_id=practitioner_id,
                certification__in=family,
                verification_source__in=sources,
            ).select_for_update()
        )
        _review, made = RosterReview.objects.get_or_create(
            roster=roster,
            kind=RosterReview.Kind.ABSENT,
            row_key=f"listing-{practitioner_id}",
            defaults={
                "practitioner_id": practitioner_id,
                "row": {
                    "name": Practitioner.objects.filter(pk=practitioner_id)
                    .values_list("name", flat=True)
                    .first()
                    or ""
                },
            },
        )
        if not records and not made:
            continue
        for record in records:
            record.verified_on = None
            record.verification_source = f"{note} (was: {record.verification_source})"[:200]
        if records:
            bulk_update_with_history(
                records,
                PractitionerCertification,
                ["verified_on", "verification_source"],
                default_change_reason=note,
            )
        summary.flagged += 1


def _create_pending(*, row: RosterRow, roster: RosterImport, technique: Certification) -> int:
    """An unmatched roster row as a pending listing for staff (only with --create-unmatched)."""
    practitioner = Practitioner(
        name=row.name[:200],
        credentials=row.credentials[:100],
        phone=row.phone[:30],
        email=row.email if "@" in row.email else "",
        npi="",
        status=Practitioner.Status.PENDING,
        status_reason=f"From the {roster.source}, line {row.line}: no listing matched"[:200],
        source=Practitioner.Source.CSV,
        slug=unique_listing_slugs([(row.name, row.city, "")])[0],
    )
    practitioner._change_reason = f"Created from the {roster.source}"
    practitioner.save()
    if row.address and row.city and row.state and row.postal_code:
        Location.objects.create(
            practitioner=practitioner,
            address_line1=row.address[:200],
            city=row.city[:100],
            state=row.state,
            postal_code=row.postal_code,
            phone=row.phone[:30],
            source=Location.Source.CSV,
        )
    return practitioner.pk


def import_roster(
    *,
    path: str | Path | None = None,
    stream: Iterable[str] | None = None,
    technique: Certification,
    as_of: dt.date | None = None,
    dry_run: bool = False,
    create_unmatched: bool = False,
    file_name: str = "",
    user: AbstractBaseUser | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RosterSummary:
    """Read, match and record one roster in one transaction (rolled back for a dry run, so the
    summary of a dry run is exactly what the real run would do)."""
    if technique.parent_id is not None:
        raise RosterError(
            [f"{technique.name} is a level; name the technique ({technique.parent.slug})."]
        )
    if stream is None:
        if path is None:
            raise ValueError("Give a path or a stream.")
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = read_roster(handle)
        file_name = file_name or Path(path).name
    else:
        rows = read_roster(stream)
    as_of = as_of or timezone.localdate()
    levels: dict[int, Certification] = {}
    errors = []
    for row in rows:
        try:
            levels[row.line] = level_for(technique, row.level)
        except ValueError as error:
            errors.append(f"line {row.line}: {error}")
    if errors:
        raise RosterError(errors)
    summary = RosterSummary(rows_read=len(rows))
    with transaction.atomic():
        roster, _ = RosterImport.objects.get_or_create(
            technique=technique,
            as_of=as_of,
            defaults={"body": technique.issuing_body or technique.name, "file_name": file_name},
        )
        decided = {
            key: pk
            for key, pk, status in roster.reviews.filter(kind=RosterReview.Kind.DOUBTFUL)
            .exclude(status=RosterReview.Status.OPEN)
            .values_list("row_key", "practitioner_id", "status")
            if status == RosterReview.Status.ACCEPTED or pk is None
        }
        outcomes = match_rows(rows, decided=decided)
        on_roster: set[int] = set()
        maybe: set[int] = set()
        for done, outcome in enumerate(outcomes, 1):
            row = outcome.row
            if outcome.listing_id is not None:
                counter = {
                    "npi": "matched_by_npi",
                    "confident": "matched_confidently",
                    "staff": "matched_by_staff",
                }
                setattr(summary, counter[outcome.how], getattr(summary, counter[outcome.how]) + 1)
                record_certificate(
                    roster=roster,
                    practitioner_id=outcome.listing_id,
                    row=row,
                    how=outcome.how,
                    certification=levels[row.line],
                    summary=summary,
                    user=user,
                )
                on_roster.add(outcome.listing_id)
            elif outcome.how == "review":
                summary.sent_to_review += 1
                maybe |= {c.listing.pk for c in outcome.candidates}
                RosterReview.objects.update_or_create(
                    roster=roster,
                    kind=RosterReview.Kind.DOUBTFUL,
                    row_key=row.key,
                    defaults={
                        "line": row.line,
                        "row": row.shown(),
                        "candidates": [c.shown() for c in outcome.candidates],
                    },
                )
            else:
                summary.unmatched += 1
                summary.unmatched_rows.append(row)
                if create_unmatched and row.key not in decided:
                    pk = _create_pending(row=row, roster=roster, technique=technique)
                    summary.created += 1
                    record_certificate(
                        roster=roster,
                        practitioner_id=pk,
                        row=row,
                        how="created",
                        certification=levels[row.line],
                        summary=summary,
                        user=user,
                    )
                    on_roster.add(pk)
            if progress is not None:
                progress(done, len(outcomes))
        _flag_absent(roster=roster, on_roster=on_roster, maybe=maybe, summary=summary)
        roster.summary = {k: v for k, v in asdict(summary).items() if k != "unmatched_rows"}
        roster.file_name = file_name or roster.file_name
        roster.save(update_fields=["summary", "file_name", "imported_at"])
        if dry_run:
            transaction.set_rollback(True)
    return summary


# --- Staff decisions --------------------------------------------------------------------------


@transaction.atomic
def decide_review(
    *, review: RosterReview, practitioner_id: int | None, user: AbstractBaseUser | None = None
) -> None:
    """Staff accept one candidate of a doubtful row (its certificate is recorded as a confident
    match's would be) or none of them (``practitioner_id=None``). A re-run keeps the decision."""
    review = (
        RosterReview.objects.select_for_update()
        .select_related("roster__technique")
        .get(pk=review.pk)
    )
    if review.kind != RosterReview.Kind.DOUBTFUL:
        raise ValueError("Only a doubtful match has candidates to accept.")
    if review.status != RosterReview.Status.OPEN:
        raise ValueError("This row was already decided.")
    allowed = {c["practitioner_id"] for c in review.candidates}
    if practitioner_id is not None and practitioner_id not in allowed:
        raise ValueError("Choose one of the row's candidates.")
    roster = review.roster
    if practitioner_id is not None:
        if RosterEntry.objects.filter(roster=roster, practitioner_id=practitioner_id).exists():
            raise ValueError("That listing is already matched to another row of this roster.")
        data = review.row
        row = RosterRow(
            line=review.line,
            name=data.get("name", ""),
            certified_on=parse_date(data.get("certified_on", "")),
            expires_on=parse_date(data.get("expires_on", "")),
        )
        record_certificate(
            roster=roster,
            practitioner_id=practitioner_id,
            row=row,
            how="staff",
            certification=level_for(roster.technique, data.get("level", "")),
            summary=RosterSummary(),
            user=user,
        )
    review.practitioner_id = practitioner_id
    review.status = (
        RosterReview.Status.ACCEPTED if practitioner_id else RosterReview.Status.REJECTED
    )
    review.decided_by = user if user is not None and user.is_authenticated else None
    review.decided_at = timezone.now()
    review.save()
