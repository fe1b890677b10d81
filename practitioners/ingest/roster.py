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
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from functools import lru_cache

from nameparser import HumanName
from nameparser.config import CONSTANTS as NAME_CONSTANTS
from rapidfuzz import fuzz
from rapidfuzz.distance import DamerauLevenshtein

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


_NOT_NAME_LETTERS = re.compile(r"[^a-z\- ]+")


def fold(text: str) -> str:
    """Lower case, accents off, letters, spaces and hyphens only: how names are compared."""
    if not text:
        return ""
    # Blocking folds every name of a state's clinics: ASCII text (nearly all of them) skips
    # the Unicode decomposition, which leaves it unchanged anyway.
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return _NOT_NAME_LETTERS.sub("", text.lower().replace(".", " ")).strip()


def read_roster(stream: io.TextIOBase | Iterable[str]) -> list[RosterRow]:
    """Every row of the file, or :class:`RosterError` with line-numbered messages."""
    reader = csv.DictReader(stream)
    try:
        return _read_rows(reader)
    except UnicodeDecodeError:
        raise RosterError(
            [
                f"line {reader.line_num + 1}: the file is not UTF-8 text (save the spreadsheet "
                "as CSV UTF-8)"
            ]
        ) from None
    except csv.Error as error:
        raise RosterError(
            [f"line {reader.line_num + 1}: the file cannot be read ({error})"]
        ) from None


def _read_rows(reader: csv.DictReader) -> list[RosterRow]:
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


_SIMPLE_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*\.?")


def _plain_word(word: str) -> bool:
    """A word nameparser would read as a plain name: not a title, suffix, particle or
    conjunction ("Dr", "Jr", "van", "y")."""
    key = word.lower().rstrip(".")
    return bool(_SIMPLE_WORD.fullmatch(word)) and not (
        key in NAME_CONSTANTS.titles
        or key in NAME_CONSTANTS.suffix_acronyms
        or key in NAME_CONSTANTS.suffix_not_acronyms
        or key in NAME_CONSTANTS.prefixes
        or key in NAME_CONSTANTS.conjunctions
    )


@lru_cache(maxsize=200_000)
def _split_name(full: str) -> tuple[str, str, str]:
    # nameparser takes one to several milliseconds a name, which made it most of a big roster's
    # matching time. "First Last" and "First M. Last" of plain words (most of the directory)
    # are split directly, as nameparser would split them (tests assert the two agree); every
    # other shape (titles, suffixes, particles, commas) goes to nameparser.
    words = full.split()
    if 2 <= len(words) <= 3 and all(_plain_word(w) for w in words):
        if len(words) == 2:
            return words[0], "", words[1]
        if len(words[1].rstrip(".")) == 1:
            return words[0], words[1], words[2]
    parsed = HumanName(full)
    return parsed.first, parsed.middle, parsed.last


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
            first, middle, last = _split_name(full)
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
    # A typo in a short name: one letter wrong, missing, extra or two swapped leaves a ratio
    # under 88 in a five-letter name ("Anber"/"Anbar" is 80), yet is what spreadsheets hold. It
    # counts for less, so the place, phone or e-mail must agree besides.
    if (
        min(len(row.last), len(listing.last)) >= 4
        and DamerauLevenshtein.distance(row.last, listing.last, score_cutoff=1) <= 1
    ):
        return 0.75, "last name one letter off"
    return 0.0, "different last name"


def credential_set(text: str) -> set[str]:
    return {c for c in re.split(r"[^A-Z]+", (text or "").upper().replace(".", "")) if len(c) > 1}


# The matching and the recording have their own modules; these names are the package's API.
from .roster_import import RosterSummary, decide_review, import_roster  # noqa: E402, F401
from .roster_match import RowOutcome, match_rows, score_pair  # noqa: E402, F401
