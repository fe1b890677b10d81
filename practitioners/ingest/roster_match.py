"""Roster matching: blocking, scores and the one-to-one assignment (see ingest/roster.py)."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

from rapidfuzz import fuzz, process
from rapidfuzz.distance import DamerauLevenshtein

from ..models import (
    Location,
    Practitioner,
)
from ..search import geo
from .roster import (
    PersonName,
    RosterRow,
    credential_set,
    digits,
    first_name_score,
    fold,
    last_name_score,
)

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


# A clinic this close to the row's ZIP (centroid to centroid) counts as a move in the same metro.
NEARBY_MILES = 25.0


def _miles_apart(zip_code: str, zips: list[str]) -> float | None:
    here = geo.zip_centroid(zip_code) if zip_code else None
    if here is None:
        return None
    distances = [
        geo.distance_mi(here.latitude, here.longitude, there.latitude, there.longitude)
        for there in (geo.zip_centroid(z) for z in zips)
        if there is not None
    ]
    return min(distances, default=None)


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
    same_city = bool(city) and any(
        fold(c) == city and s == (row.state or s) for c, s, _ in listing.places
    )
    if same_city:
        points += 10
        evidence.append("same city")
    elif "same ZIP" not in evidence:
        # A practitioner who moved clinics in the same metro: the roster has the new address
        # (or the old one). Nearby counts for less than the same ZIP or city, so a nearby
        # namesake needs a credential, phone or e-mail besides to be confident.
        miles = _miles_apart(row.postal_code, [z for _, _, z in listing.places])
        if miles is not None and miles <= NEARBY_MILES:
            points += 8
            evidence.append(f"a clinic {miles:.0f} mi from the row's ZIP")
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


# Rows and ids per query: well under SQLite's and PostgreSQL's limits on parameters.
CHUNK = 2000


def _chunks(items: list, size: int = CHUNK):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _load_listings(ids: set[int]) -> dict[int, Listing]:
    listings: dict[int, Listing] = {}
    wanted = sorted(ids)
    for chunk in _chunks(wanted):
        for pk, name, credentials, email, phone, npi in Practitioner.objects.filter(
            pk__in=chunk
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
    for chunk in _chunks(wanted):
        for pk, city, state, zip_code, phone in Location.objects.filter(
            practitioner_id__in=chunk
        ).values_list("practitioner_id", "city", "state", "postal_code", "phone"):
            listing = listings.get(pk)
            if listing is not None:
                listing.places.append((city, state, zip_code))
                if digits(phone):
                    listing.phones.add(digits(phone))
    return listings


# --- Blocking ---------------------------------------------------------------------------------
#
# Blocking picks, for every row, the few listings worth scoring, with indexed queries and one
# pass per state however long the roster: a state's clinics are read once from the index
# location_roster_block (state, postal_code, practitioner), each listing's name is cut into
# surname keys in Python, and rows find their candidates there; phones are looked up by index.
# Only a listing whose surname last_name_score can give points to is kept (the same name, a part
# of it, nearly the same, one letter off): any other scores nothing, so loading and scoring it
# was wasted work, and with a million listings that work was most of the directory (names that
# merely share their first letters with a row's are many; namesakes and near-namesakes, few).
# Surnames are compared with rapidfuzz's C code, a bucket at a time.

# Words in a listing's name that are never a surname: generational suffixes. (Credentials are
# their own field, and after a comma when written into the name; "Do" and "Ma" are surnames.)
NOT_SURNAMES = frozenset({"jr", "sr", "ii", "iii", "iv"})
# last_name_score's "nearly the same" (rapidfuzz ratio, 0-100) and "one letter off" (a
# Damerau-Levenshtein distance of 1 between names of this many letters or more).
NEARLY_THE_SAME = 88
ONE_LETTER_OFF_FROM = 4
_WORD_BREAK = re.compile(r"[\s\-]+")


def surname_words(name: str) -> tuple[str, ...]:
    """The words of a listing's name that may be its surname: all but the given name (so a
    maiden name kept as a middle name, and each part of a hyphenated name, count too)."""
    base = name.split(",", 1)[0]
    words = [w for w in _WORD_BREAK.split(fold(base)) if len(w) > 1 and w not in NOT_SURNAMES]
    return tuple(words[1:] if len(words) > 1 else words)


def surname_forms(name: str) -> tuple[str, ...]:
    """The surname words and, for a name of several, each run of them to the end ("van der
    berg", "der berg"): a surname of several words is compared whole, as last_name_score does."""
    words = surname_words(name)
    if len(words) < 2:
        return words
    return words + tuple(" ".join(words[i:]) for i in range(len(words) - 1))


def keys_of(word: str) -> tuple[str, ...]:
    """A surname's blocking keys: its first three letters and its last three, so a typo near
    either end still shares one key with the right name."""
    return (word[:3], "~" + word[-3:]) if len(word) > 3 else (word,)


def row_surnames(person: PersonName) -> set[str]:
    names = {p for p in person.lasts if len(p) > 1}
    if len(person.middle) > 1:
        names.add(person.middle.split(" ")[0])  # the row's maiden name kept as a middle name
    return names


def row_state(row: RosterRow) -> str:
    """The row's state, or the state of its ZIP (geo's offline ZIP table) when it names none."""
    if row.state:
        return row.state
    if row.postal_code:
        centroid = geo.zip_centroid(row.postal_code)
        if centroid is not None:
            return centroid.state
    return ""


def _scoring(word: str, forms: list[str]) -> list[str]:
    """The forms last_name_score would give points to against ``word`` (C code, one call each)."""
    found = [
        form
        for form, _score, _index in process.extract(
            word, forms, scorer=fuzz.ratio, score_cutoff=NEARLY_THE_SAME, limit=None
        )
    ]
    if len(word) >= ONE_LETTER_OFF_FROM:
        found += [
            form
            for form, _distance, _index in process.extract(
                word, forms, scorer=DamerauLevenshtein.distance, score_cutoff=1, limit=None
            )
            if len(form) >= ONE_LETTER_OFF_FROM
        ]
    return found


def _could_score(surnames: set[str], forms: tuple[str, ...]) -> bool:
    return any(_scoring(word, list(forms)) for word in surnames) if forms else False


def block_rows(rows: list[RosterRow], people: dict[int, PersonName]) -> dict[int, set[int]]:
    """Blocking for a whole roster: line -> the ids of the listings worth scoring."""
    found: dict[int, set[int]] = {row.line: set() for row in rows}
    surnames = {row.line: row_surnames(people[row.line]) for row in rows}
    by_state: dict[str, list[RosterRow]] = defaultdict(list)
    for row in rows:
        state = row_state(row)
        if state:
            by_state[state].append(row)
    # One query a state, so only one state's buckets are in memory. One query for all states in
    # state order was measured slower on PostgreSQL (140 s against 97 s for 10,000 rows against
    # a million listings), so it was not kept.
    for state, state_rows in sorted(by_state.items()):
        wanted_keys = {k for row in state_rows for w in surnames[row.line] for k in keys_of(w)}
        zips = {row.postal_code for row in state_rows if row.postal_code}
        # key -> surname form -> listing ids; ZIP -> surname form -> listing ids (a row's
        # ZIP-mates are its candidates too, for a typo that changes both keys of a short name).
        bucket: dict[str, dict[str, set[int]]] = defaultdict(lambda: defaultdict(set))
        in_zip: dict[str, dict[str, set[int]]] = defaultdict(lambda: defaultdict(set))
        forms_of: dict[int, tuple[str, ...]] = {}
        scan = (
            Location.objects.filter(state=state)
            .values_list("practitioner_id", "postal_code", "practitioner__name")
            .order_by()
        )
        for pk, zip_code, name in scan.iterator(chunk_size=5000):
            forms = forms_of.get(pk)
            if forms is None:
                forms = forms_of[pk] = surname_forms(name)
            for form in forms:
                for key in keys_of(form):
                    if key in wanted_keys:
                        bucket[key][form].add(pk)
            if zip_code in zips:
                for form in forms:
                    in_zip[zip_code][form].add(pk)
        del forms_of
        listed: dict[tuple[str, str], list[str]] = {}  # each pool's forms, listed once
        for row in state_rows:
            ids = found[row.line]
            for word in surnames[row.line]:
                pools = [("key", key) for key in keys_of(word) if key in bucket]
                if row.postal_code in in_zip:
                    pools.append(("zip", row.postal_code))
                for kind, name in pools:
                    pool = bucket[name] if kind == "key" else in_zip[name]
                    forms = listed.get((kind, name))
                    if forms is None:
                        forms = listed[(kind, name)] = list(pool)
                    for form in _scoring(word, forms):
                        ids |= pool[form]
        del bucket, in_zip, listed
    _block_by_phone(rows, surnames, found)
    return found


def _block_by_phone(
    rows: list[RosterRow], surnames: dict[int, set[str]], found: dict[int, set[int]]
) -> None:
    """Listings with the row's phone, on the listing or one of its clinics, in any state."""
    forms: dict[str, list[int]] = defaultdict(list)
    for row in rows:
        for form in _phone_forms(row.phone):
            forms[form].append(row.line)
    if not forms:
        return
    hits: list[tuple[int, str, str]] = []
    for chunk in _chunks(sorted(forms)):
        # exclude(phone="") repeats the partial indexes' condition, so both databases use them.
        hits += (
            Location.objects.filter(phone__in=chunk)
            .exclude(phone="")
            .values_list("practitioner_id", "phone", "practitioner__name")
        )
        hits += (
            Practitioner.objects.filter(phone__in=chunk)
            .exclude(phone="")
            .values_list("pk", "phone", "name")
        )
    for pk, phone, name in hits:
        surname = surname_forms(name)
        for line in forms.get(phone, ()):
            if pk not in found[line] and _could_score(surnames[line], surname):
                found[line].add(pk)


def candidate_ids(row: RosterRow, person: PersonName) -> set[int]:
    """Blocking for one row (what :func:`block_rows` does for a whole roster)."""
    return block_rows([row], {row.line: person})[row.line]


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
    blocks = {line: ids - taken for line, ids in block_rows(pending, people).items()}
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
    # Listing -> (score, line) of every row that wants it, for the rival check below.
    wanting: dict[int, list[tuple[float, int]]] = defaultdict(list)
    for score, line, candidate in pairs:
        wanting[candidate.listing.pk].append((score, line))
    for score, line, candidate in pairs:
        if line in outcomes or candidate.listing.pk in taken:
            continue
        row = by_line[line]
        others = [c.score for c in scored[line] if c is not candidate]
        # The best rival for the listing among the other rows not matched elsewhere counts too
        # (including rows already sent to staff): two roster rows wanting one listing is as
        # doubtful as one row with two listings.
        rivals = [
            rival
            for rival, other in wanting[candidate.listing.pk]
            if other != line and (other not in outcomes or outcomes[other].listing_id is None)
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
