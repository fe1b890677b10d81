"""Roster matching: blocking, scores and the one-to-one assignment (see ingest/roster.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Q

from ..models import (
    Location,
    Practitioner,
)
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
