"""Roster matching benchmark: a directory and a roster with known truth, then precision, recall,
review share, time and peak memory of :func:`practitioners.ingest.roster.match_rows` (and with
--import, of the whole ``import_roster``).

The directory: --listings fictional practitioners at the benchmark's ZIPs (bench/dataset.py's
weighted ZIPs), named from formal first names and a few thousand made-up surnames, in a fresh
SQLite file. The roster (--rows): real listed people with the changes a body's spreadsheet has
(a nickname, an initial, a typo in the last name, another credential order, a new phone, a clinic
moved within the same 3-digit ZIP area, a hyphenated married name), some with their NPI; people
not in the directory; and decoys (a listed person's name in another state; a "twin" with the
listed person's last name and city but another first name), whose truth is "no listing".

    flock /work/bench.lock .venv/bin/python bench/roster_bench.py --listings 100000 --rows 2000
    flock /work/bench.lock .venv/bin/python bench/roster_bench.py --listings 1000000 --rows 10000 \
        --import [--reuse] [--database-url postgres://postgres@127.0.0.1:5432/roster_bench]

Never part of the test run; it writes only its own database (--database-url, default a SQLite
file in /tmp), emptied first unless --reuse finds the same directory in it.
"""

from __future__ import annotations

import argparse
import os
import random
import string
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FORMAL = [
    "Robert", "William", "Elizabeth", "Richard", "James", "John", "Michael", "Joseph", "Thomas",
    "Charles", "Christopher", "Daniel", "David", "Edward", "Anthony", "Andrew", "Matthew",
    "Nicholas", "Steven", "Timothy", "Benjamin", "Samuel", "Katherine", "Margaret", "Jennifer",
    "Rebecca", "Susan", "Deborah", "Kimberly", "Jessica", "Victoria", "Patricia", "Gregory",
    "Maria", "Laura", "Sarah", "Emily", "Hannah", "Olivia", "Sophia", "Grace", "Priya", "Wei",
    "Carlos", "Luis", "Ahmed", "Fatima", "Keisha", "Tyrone", "Megan", "Rachel", "Nora", "Paul",
]  # fmt: skip
NICK = {
    "Robert": "Bob", "William": "Bill", "Elizabeth": "Liz", "Richard": "Rick", "James": "Jim",
    "Michael": "Mike", "Joseph": "Joe", "Thomas": "Tom", "Charles": "Chuck", "Daniel": "Dan",
    "David": "Dave", "Edward": "Ed", "Anthony": "Tony", "Andrew": "Andy", "Matthew": "Matt",
    "Katherine": "Kate", "Margaret": "Peggy", "Jennifer": "Jen", "Rebecca": "Becky",
    "Susan": "Sue", "Timothy": "Tim", "Benjamin": "Ben", "Samuel": "Sam", "Gregory": "Greg",
}  # fmt: skip
SYLLABLES = [
    "an",
    "ber",
    "ca",
    "dor",
    "el",
    "fin",
    "gar",
    "hol",
    "is",
    "jen",
    "kov",
    "lan",
    "mor",
    "nel",
    "os",
    "pet",
    "quin",
    "ros",
    "sen",
    "tor",
    "ul",
    "ven",
]
CREDENTIALS = ["DC", "DC, CCSP", "PT, DPT", "LMT", "ATC", "DPT, OCS", "DC, DACBSP"]


def surnames(rng: random.Random, n: int) -> list[str]:
    names: set[str] = set()
    # Two or three syllables make 11,132 names at most; past that (a million listings want
    # 50,000) four-syllable names join in. Below it the names are those of the earlier runs.
    lengths = [2, 3] if n <= 10_000 else [2, 3, 4]
    while len(names) < n:
        names.add("".join(rng.choice(SYLLABLES) for _ in range(rng.choice(lengths))).title())
    return sorted(names)


def npi_for(number: int) -> str:
    """A valid NPI (Luhn over 80840 + nine digits, computed: a million of them are needed)."""
    base = f"1{number:08d}"
    total = 0
    for i, c in enumerate(reversed("80840" + base)):
        d = int(c)
        if i % 2 == 0:  # from the right, every other digit doubled, starting with the last
            d *= 2
            d = d - 9 if d > 9 else d
        total += d
    return base + str((10 - total % 10) % 10)


def typo(rng: random.Random, word: str) -> str:
    i = rng.randrange(1, len(word))
    return word[:i] + rng.choice(string.ascii_lowercase) + word[i + 1 :]


def generate_people(rng: random.Random, n: int) -> list[dict]:
    """The directory's people, from the seed alone (so a reused database gets the same list)."""
    from bench.dataset import weighted_zips

    zips = weighted_zips()
    lasts = surnames(rng, max(2000, n // 20))
    people = []
    for number in range(1, n + 1):
        z = rng.choice(zips)
        people.append(
            {
                "first": rng.choice(FORMAL),
                "middle": rng.choice("ABCDEFGHJKLMNPRSTW"),
                "last": rng.choice(lasts),
                "credentials": rng.choice(CREDENTIALS),
                "zip": z,
                "phone": f"{rng.randint(201, 989)}-555-{rng.randint(0, 9999):04d}",
                "email": f"office{number}@example.com",
                "npi": npi_for(number) if rng.random() < 0.6 else "",
                "external_id": f"bench-{number - 1}",
            }
        )
    return people


class _template:
    """One model's INSERT: every column's value from an unsaved instance, as the ORM would
    write it, and per row only the columns given."""

    def __init__(self, instance) -> None:
        from django.db import connection

        model = type(instance)
        fields = [f for f in model._meta.concrete_fields if not f.primary_key]
        self.columns = [f.column for f in fields]
        self.values = [
            f.get_db_prep_save(f.pre_save(instance, add=True), connection) for f in fields
        ]
        self.position = {f.attname: i for i, f in enumerate(fields)}
        quoted = ", ".join(connection.ops.quote_name(c) for c in self.columns)
        marks = ", ".join(["%s"] * len(self.columns))
        self.sql = f"INSERT INTO {model._meta.db_table} ({quoted}) VALUES ({marks})"

    def insert(self, rows: list[dict]) -> None:
        from django.db import connection, transaction

        out = []
        for row in rows:
            values = list(self.values)
            for name, value in row.items():
                values[self.position[name]] = value
            out.append(values)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(self.sql, out)


def build_directory(people: list[dict], *, reuse: bool) -> str:
    """Write the people as listings (one clinic each), or find them already written. The search
    index's triggers are off while the rows go in (they are caught up after): the benchmark
    times the matching, not the search index's upkeep."""
    from django.db import connection

    from practitioners.models import Location, Practitioner, Profession
    from practitioners.search import index as search_index

    n = len(people)
    have = Practitioner.objects.filter(external_id__startswith="bench-").count()
    if reuse and have == n:
        ids = dict(
            Practitioner.objects.filter(external_id__startswith="bench-").values_list(
                "external_id", "pk"
            )
        )
        for p in people:
            p["pk"] = ids[p["external_id"]]
        return "reused"
    if have:
        raise SystemExit(
            f"The database holds {have:,} benchmark listings, not {n:,}: use a fresh one "
            "(or the same --listings with --reuse)."
        )
    profession = Profession.objects.get(slug="chiropractor")
    if connection.vendor == "sqlite":
        search_index.drop_sqlite_triggers(connection)
    else:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE practitioners_location DISABLE TRIGGER USER")
            cursor.execute("ALTER TABLE practitioners_practitioner DISABLE TRIGGER USER")
    # Plain INSERTs of a template row with the few columns that differ: a million model
    # instances through bulk_create cost minutes of CPU on a shared machine.
    practitioner = _template(
        Practitioner(profession=profession, status="published", name="x", slug="x")
    )
    location = _template(
        Location(practitioner_id=1, address_line1="1 Main St", city="x", state="x")
    )
    batch = 20000
    for start in range(0, n, batch):
        chunk = people[start : start + batch]
        practitioner.insert(
            [
                {
                    "name": f"{p['first']} {p['middle']}. {p['last']}",
                    "credentials": p["credentials"],
                    "phone": p["phone"],
                    "email": p["email"],
                    "npi": p["npi"],
                    "slug": p["external_id"],
                    "external_id": p["external_id"],
                }
                for p in chunk
            ]
        )
        if (start // batch) % 10 == 9:
            print(f"  {start + len(chunk):,} listings written", flush=True)
    ids = dict(
        Practitioner.objects.filter(external_id__startswith="bench-").values_list(
            "external_id", "pk"
        )
    )
    for start in range(0, n, batch):
        chunk = people[start : start + batch]
        for p in chunk:
            p["pk"] = ids[p["external_id"]]
        location.insert(
            [
                {
                    "practitioner_id": p["pk"],
                    "city": p["zip"].city,
                    "state": p["zip"].state,
                    "postal_code": p["zip"].code,
                    "phone": p["phone"],
                }
                for p in chunk
            ]
        )
    print("  clinics written", flush=True)
    if connection.vendor == "sqlite":
        search_index.recompute_all(connection)
        search_index.install_triggers(connection)
    else:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE practitioners_location ENABLE TRIGGER USER")
            cursor.execute("ALTER TABLE practitioners_practitioner ENABLE TRIGGER USER")
        search_index.recompute_all(connection)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return "built"


def roster_rows(rng: random.Random, people: list[dict], rows: int):
    """(RosterRow, the true listing id or None, what kind of row) triples."""
    from bench.dataset import weighted_zips
    from practitioners.ingest.roster import RosterRow

    zips = weighted_zips()
    by_area: dict[str, list] = {}
    for z in zips:
        by_area.setdefault(z.code[:3], []).append(z)
    chosen = rng.sample(people, rows)
    out = []
    for line, p in enumerate(chosen, 2):
        roll = rng.random()
        first, last, z = p["first"], p["last"], p["zip"]
        phone, email, credentials, npi = p["phone"], "", p["credentials"], ""
        truth: int | None = p["pk"]
        kind = "exact"
        if roll < 0.70:
            change = rng.choice(["nickname", "initial", "typo", "credentials", "phone", "moved",
                                 "married", "npi", "email", "exact"])  # fmt: skip
            kind = change
            if change == "nickname":
                first = NICK.get(first, first)
            elif change == "initial":
                first = first[0] + "."
            elif change == "typo":
                last = typo(rng, last)
            elif change == "credentials":
                credentials = ", ".join(reversed(credentials.split(", ")))
            elif change == "phone":
                phone = f"{rng.randint(201, 989)}-555-{rng.randint(0, 9999):04d}"
            elif change == "moved":
                z = rng.choice(by_area[z.code[:3]])
                phone = ""
            elif change == "married":
                last = f"{last}-{rng.choice(['Smith', 'Lee', 'Park'])}"
            elif change == "npi":
                npi = p["npi"]
            elif change == "email":
                email = p["email"]
        elif roll < 0.80:
            kind, truth = "not listed", None
            first, last = rng.choice(FORMAL), typo(rng, typo(rng, last)) + "son"
            z = rng.choice(zips)
            phone = f"{rng.randint(201, 989)}-555-{rng.randint(0, 9999):04d}"
        elif roll < 0.90:
            kind, truth = "decoy: another state", None
            others = [o for o in zips if o.state != z.state]
            z = rng.choice(others)
            phone = f"{rng.randint(201, 989)}-555-{rng.randint(0, 9999):04d}"
        else:
            kind, truth = "decoy: twin", None
            first = rng.choice([f for f in FORMAL if f != first and f[0] != first[0]])
            phone = f"{rng.randint(201, 989)}-555-{rng.randint(0, 9999):04d}"
        row = RosterRow(
            line=line,
            name=f"{first} {last}",
            first=first,
            last=last,
            credentials=credentials,
            city=z.city,
            state=z.state,
            postal_code=z.code,
            phone=phone,
            email=email,
            npi=npi,
        )
        out.append((row, truth, kind))
    return out


def write_csv(sample, path: Path) -> None:
    """The roster as the file a body would send (what import_roster reads)."""
    import csv

    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(
            ["first_name", "last_name", "credentials", "city", "state", "zip", "phone", "email",
             "npi"]
        )  # fmt: skip
        for row, _, _ in sample:
            out.writerow(
                [row.first, row.last, row.credentials, row.city, row.state, row.postal_code,
                 row.phone, row.email, row.npi]
            )  # fmt: skip


def _status_mib(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def start_peak_memory() -> float | None:
    """Linux: reset the process's peak resident memory (VmHWM), so that the peak read after a
    step is that step's; returns the resident memory now (MiB), or None elsewhere."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return None
    return _status_mib("VmRSS")


def peak_memory(before: float | None) -> str:
    peak = _status_mib("VmHWM") if before is not None else None
    if peak is None:
        return "peak memory not measured (needs Linux's /proc/self/clear_refs)"
    return (
        f"peak resident memory {peak:,.0f} MiB, {peak - before:,.0f} MiB above the "
        f"{before:,.0f} MiB before this step (the benchmark's own people list and Django)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listings", type=int, default=20000)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument(
        "--database-url",
        default="sqlite:////tmp/roster_bench.sqlite3",
        help="Where the benchmark directory lives (SQLite file or PostgreSQL database); it is "
        "emptied first unless --reuse finds the same directory there.",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="Keep a directory of --listings benchmark listings already in the database.",
    )
    parser.add_argument(
        "--import",
        dest="full_import",
        action="store_true",
        help="Also time the whole import_roster (reading the CSV, matching, recording every "
        "certificate and review row) as a dry run, rolled back.",
    )
    parser.add_argument(
        "--tracemalloc",
        action="store_true",
        help="Also report the peak of Python's own allocations while matching (tracemalloc; it "
        "slows allocation-heavy code, so the time is then not the real one).",
    )
    parser.add_argument(
        "--build-only",
        action="store_true",
        help="Write the directory and stop (then time with --reuse under the benchmark lock).",
    )
    args = parser.parse_args()
    os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("DEBUG", "true")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "directory.settings")
    if args.database_url.startswith("sqlite") and not args.reuse:
        Path(args.database_url.removeprefix("sqlite:///")).unlink(missing_ok=True)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from practitioners.ingest.roster import match_rows

    if connection.vendor == "postgresql" and not args.reuse:
        with connection.cursor() as cursor:
            cursor.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    call_command("migrate", verbosity=0)
    print(f"database: {connection.vendor} ({connection.settings_dict['NAME']})")
    rng = random.Random(args.seed)
    started = time.monotonic()
    people = generate_people(rng, args.listings)
    how = build_directory(people, reuse=args.reuse)
    print(f"directory: {args.listings:,} listings {how} in {time.monotonic() - started:.1f} s")
    if args.build_only:
        return 0
    sample = roster_rows(rng, people, args.rows)
    truth = {row.line: (pk, kind) for row, pk, kind in sample}
    if args.tracemalloc:
        tracemalloc.start()
    before = start_peak_memory()
    started = time.monotonic()
    outcomes = match_rows([row for row, _, _ in sample])
    seconds = time.monotonic() - started
    memory = peak_memory(before)
    if args.tracemalloc:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        memory += f"; peak Python allocations {peak / 2**20:.1f} MiB (tracemalloc)"
    matched = [o for o in outcomes if o.listing_id is not None]
    right = [o for o in matched if o.listing_id == truth[o.row.line][0]]
    findable = [line for line, (pk, _) in truth.items() if pk is not None]
    review = [o for o in outcomes if o.how == "review"]
    wrong_by_kind: dict[str, int] = {}
    for o in matched:
        if o.listing_id != truth[o.row.line][0]:
            kind = truth[o.row.line][1]
            wrong_by_kind[kind] = wrong_by_kind.get(kind, 0) + 1
    missed_by_kind: dict[str, int] = {}
    got = {o.row.line for o in right}
    for line in findable:
        if line not in got:
            kind = truth[line][1]
            missed_by_kind[kind] = missed_by_kind.get(kind, 0) + 1
    precision = len(right) / len(matched) if matched else 1.0
    recall = len(right) / len(findable) if findable else 1.0
    print(f"roster: {args.rows:,} rows ({len(findable):,} truly listed), seed {args.seed}")
    print(f"matched (NPI + confident): {len(matched):,}; right: {len(right):,}")
    print(f"precision {precision:.4f}  recall {recall:.4f}  review {len(review) / args.rows:.1%}")
    print(f"time {seconds:.1f} s ({args.rows / seconds:,.0f} rows/s); {memory}")
    print(f"load average {' '.join(f'{n:.2f}' for n in os.getloadavg())}")
    print(f"wrong matches by row kind: {wrong_by_kind or 'none'}")
    print(f"missed (review or unmatched) by row kind: {missed_by_kind or 'none'}")
    review_by_kind: dict[str, int] = {}
    for o in review:
        kind = truth[o.row.line][1]
        review_by_kind[kind] = review_by_kind.get(kind, 0) + 1
    print(f"sent to review by row kind: {review_by_kind or 'none'}")
    if args.full_import:
        import tempfile

        from practitioners.ingest.roster import import_roster
        from practitioners.models import Certification

        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "roster.csv"
            write_csv(sample, path)
            before = start_peak_memory()
            started = time.monotonic()
            summary = import_roster(
                path=path, technique=Certification.objects.get(slug="graston"), dry_run=True
            )
            seconds = time.monotonic() - started
            memory = peak_memory(before)
        print(f"import_roster (dry run, rolled back): {seconds:.1f} s; {memory}")
        print(f"  {summary.line()}")
        print(f"load average {' '.join(f'{n:.2f}' for n in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
