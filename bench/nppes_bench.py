"""NPPES import benchmark: a synthetic registry file in the real V2 layout, imported end to end.

    .venv/bin/python bench/nppes_bench.py --rows 1000000            # SQLite in bench/out/
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/pl_nppes_bench \\
        .venv/bin/python bench/nppes_bench.py --rows 1000000        # PostgreSQL

It writes ``bench/out/npidata_bench_<rows>.csv`` (reused by later runs) with the full 330-column
V2 header and every value in double quotes, as CMS ships it. As in the real file, most rows are
not ours: organisations, physicians, nurses, pharmacies..., a few blank deactivated rows, and
about 6% individuals in our professions (the national file has ~9.7M rows and several hundred
thousand of ours). Then it runs ``import_nppes`` on an empty database (every match is a new
listing: the heaviest write path) and, with ``--rerun``, a second time (the monthly re-run:
nothing changes) and reports rows scanned per second, matches per second and the peak memory
of the process (``resource.getrusage``). Never part of the test run.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))


def v2_header() -> list[str]:
    """The NPPES V2 main file header (npidata_pfile_*.csv), all 330 columns in CMS's order."""
    header = [
        "NPI",
        "Entity Type Code",
        "Replacement NPI",
        "Employer Identification Number (EIN)",
        "Provider Organization Name (Legal Business Name)",
        "Provider Last Name (Legal Name)",
        "Provider First Name",
        "Provider Middle Name",
        "Provider Name Prefix Text",
        "Provider Name Suffix Text",
        "Provider Credential Text",
        "Provider Other Organization Name",
        "Provider Other Organization Name Type Code",
        "Provider Other Last Name",
        "Provider Other First Name",
        "Provider Other Middle Name",
        "Provider Other Name Prefix Text",
        "Provider Other Name Suffix Text",
        "Provider Other Credential Text",
        "Provider Other Last Name Type Code",
        "Provider First Line Business Mailing Address",
        "Provider Second Line Business Mailing Address",
        "Provider Business Mailing Address City Name",
        "Provider Business Mailing Address State Name",
        "Provider Business Mailing Address Postal Code",
        "Provider Business Mailing Address Country Code (If outside U.S.)",
        "Provider Business Mailing Address Telephone Number",
        "Provider Business Mailing Address Fax Number",
        "Provider First Line Business Practice Location Address",
        "Provider Second Line Business Practice Location Address",
        "Provider Business Practice Location Address City Name",
        "Provider Business Practice Location Address State Name",
        "Provider Business Practice Location Address Postal Code",
        "Provider Business Practice Location Address Country Code (If outside U.S.)",
        "Provider Business Practice Location Address Telephone Number",
        "Provider Business Practice Location Address Fax Number",
        "Provider Enumeration Date",
        "Last Update Date",
        "NPI Deactivation Reason Code",
        "NPI Deactivation Date",
        "NPI Reactivation Date",
        "Provider Sex Code",
        "Authorized Official Last Name",
        "Authorized Official First Name",
        "Authorized Official Middle Name",
        "Authorized Official Title or Position",
        "Authorized Official Telephone Number",
    ]
    for n in range(1, 16):
        header += [
            f"Healthcare Provider Taxonomy Code_{n}",
            f"Provider License Number_{n}",
            f"Provider License Number State Code_{n}",
            f"Healthcare Provider Primary Taxonomy Switch_{n}",
        ]
    for n in range(1, 51):
        header += [
            f"Other Provider Identifier_{n}",
            f"Other Provider Identifier Type Code_{n}",
            f"Other Provider Identifier State_{n}",
            f"Other Provider Identifier Issuer_{n}",
        ]
    header += [
        "Is Sole Proprietor",
        "Is Organization Subpart",
        "Parent Organization LBN",
        "Parent Organization TIN",
        "Authorized Official Name Prefix Text",
        "Authorized Official Name Suffix Text",
        "Authorized Official Credential Text",
    ]
    header += [f"Healthcare Provider Taxonomy Group_{n}" for n in range(1, 16)]
    header.append("Certification Date")
    assert len(header) == 330
    return header


def with_check_digit(first_nine: int) -> str:
    digits = [int(c) for c in f"80840{first_nine:09d}"]
    total = 0
    for i, digit in enumerate(reversed(digits)):
        if i % 2 == 0:
            digit = digit * 2 - 9 if digit * 2 > 9 else digit * 2
        total += digit
    return f"{first_nine:09d}{(10 - total % 10) % 10}"


OURS = ["111N00000X", "111NS0005X", "225100000X", "2251S0007X", "225700000X", "2255A2300X"]
OURS += ["171100000X", "225X00000X", "225XH1200X", "204D00000X"]
NOT_OURS = ["207Q00000X", "163W00000X", "363LF0000X", "1223G0001X", "390200000X", "207R00000X"]
NOT_OURS += ["332B00000X", "261QM1300X", "363A00000X", "3336C0003X", "101YM0800X", "208D00000X"]
STREETS = ["MAIN ST", "POPLAR AVE", "BROADWAY", "OAK DR", "MEDICAL CENTER BLVD", "UNION AVE"]
LAST = ["SMITH", "JOHNSON", "O'NEIL", "MCDONALD", "NGUYEN", "GARCIA", "BROWN", "DAVIS", "LEE"]
FIRST = ["JANE", "ROBERT", "MARIA", "JAMES", "LINH", "DAVID", "SARAH", "MICHAEL", "ANNA"]


PL_HEADER = [
    "NPI",
    "Provider Secondary Practice Location Address- Address Line 1",
    "Provider Secondary Practice Location Address-  Address Line 2",
    "Provider Secondary Practice Location Address - City Name",
    "Provider Secondary Practice Location Address - State Name",
    "Provider Secondary Practice Location Address - Postal Code",
    "Provider Secondary Practice Location Address - Country Code (If outside U.S.)",
    "Provider Secondary Practice Location Address - Telephone Number",
    "Provider Secondary Practice Location Address - Telephone Extension",
    "Provider Practice Location Address - Fax Number",
]


def write_file(path: Path, pl_path: Path, rows: int, ours_share: float, seed: int = 7) -> int:
    """Writes the synthetic main file and its practice location file (about 8% as many rows,
    as in the real pair); returns how many rows are individuals in our professions."""
    setup_django()
    from practitioners.search import geo

    rng = random.Random(seed)
    pl_rng = random.Random(seed + 1)  # the main file stays the same with or without it
    pl_out = pl_path.open("w", encoding="utf-8", newline="")
    pl_out.write('"' + '","'.join(PL_HEADER) + '"\r\n')
    zips = sorted(geo._zip_index())[::37]
    header = v2_header()
    col = {name: i for i, name in enumerate(header)}
    practice = "Provider Business Practice Location Address"
    ours = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write('"' + '","'.join(header) + '"\r\n')
        for n in range(rows):
            npi = with_check_digit(100_000_000 + n)
            values = [""] * 330
            values[col["NPI"]] = npi
            if rng.random() < 0.01:  # deactivated: blank but for the NPI and the dates
                values[col["NPI Deactivation Date"]] = "05/01/2025"
                out.write('"' + '","'.join(values) + '"\r\n')
                continue
            mine = rng.random() < ours_share
            individual = mine or rng.random() < 0.72
            ours += mine
            zip_code = rng.choice(zips) + (
                f"{rng.randrange(10000):04d}" if rng.random() < 0.6 else ""
            )
            city, state = "SOMEWHERE", "TN"
            street = f"{rng.randrange(1, 9999)} {rng.choice(STREETS)}"
            values[col["Entity Type Code"]] = "1" if individual else "2"
            if individual:
                values[col["Provider Last Name (Legal Name)"]] = rng.choice(LAST)
                values[col["Provider First Name"]] = rng.choice(FIRST)
                values[col["Provider Middle Name"]] = rng.choice(["", "A", "MARIE"])
                values[col["Provider Credential Text"]] = rng.choice(["DC", "PT, DPT", "MD", "RN"])
                values[col["Provider Sex Code"]] = rng.choice("FM")
            else:
                values[col["Provider Organization Name (Legal Business Name)"]] = "ACME HEALTH LLC"
                values[col["Employer Identification Number (EIN)"]] = "<UNAVAIL>"
                values[col["Authorized Official Last Name"]] = rng.choice(LAST)
                values[col["Authorized Official First Name"]] = rng.choice(FIRST)
                values[col["Authorized Official Title or Position"]] = "OWNER"
                values[col["Authorized Official Telephone Number"]] = "9015550100"
            values[col["Provider First Line Business Mailing Address"]] = street
            values[col["Provider Business Mailing Address City Name"]] = city
            values[col["Provider Business Mailing Address State Name"]] = state
            values[col["Provider Business Mailing Address Postal Code"]] = zip_code
            values[col["Provider Business Mailing Address Country Code (If outside U.S.)"]] = "US"
            values[col["Provider Business Mailing Address Telephone Number"]] = "9015550100"
            values[col["Provider First Line Business Practice Location Address"]] = street
            values[col[f"{practice} City Name"]] = city
            values[col[f"{practice} State Name"]] = state
            values[col[f"{practice} Postal Code"]] = zip_code
            values[col[f"{practice} Country Code (If outside U.S.)"]] = "US"
            values[col[f"{practice} Telephone Number"]] = f"901555{rng.randrange(10000):04d}"
            values[col["Provider Enumeration Date"]] = "05/23/2005"
            values[col["Last Update Date"]] = "07/08/2025"
            values[col["Certification Date"]] = "07/08/2025"
            values[col["Is Sole Proprietor"]] = "N"
            codes = [rng.choice(NOT_OURS) for _ in range(rng.choice([1, 1, 1, 2, 3]))]
            if mine:
                codes.insert(rng.randrange(len(codes) + 1), rng.choice(OURS))
            primary = rng.randrange(len(codes))
            for slot, code in enumerate(codes, start=1):
                values[col[f"Healthcare Provider Taxonomy Code_{slot}"]] = code
                values[col[f"Provider License Number_{slot}"]] = f"{rng.randrange(10**7)}"
                values[col[f"Provider License Number State Code_{slot}"]] = state
                switch = "Y" if slot - 1 == primary else "N"
                values[col[f"Healthcare Provider Primary Taxonomy Switch_{slot}"]] = switch
            for slot in range(1, rng.choice([1, 2, 3]) + 1):
                values[col[f"Other Provider Identifier_{slot}"]] = f"{rng.randrange(10**9)}"
                values[col[f"Other Provider Identifier Type Code_{slot}"]] = "05"
                values[col[f"Other Provider Identifier State_{slot}"]] = state
                values[col[f"Other Provider Identifier Issuer_{slot}"]] = "MEDICAID"
            out.write('"' + '","'.join(values) + '"\r\n')
            for _ in range(pl_rng.choice([1, 2]) if pl_rng.random() < 0.08 else 0):
                secondary = [npi, f"{pl_rng.randrange(1, 9999)} {pl_rng.choice(STREETS)}", ""]
                secondary += [city, state, pl_rng.choice(zips), "US", "9015550199", "", ""]
                pl_out.write('"' + '","'.join(secondary) + '"\r\n')
    pl_out.close()
    return ours


def setup_django() -> str:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "directory.settings")
    os.environ["DEBUG"] = "false"
    os.environ.setdefault("SECRET_KEY", "bench-only-" + "x" * 40)
    OUT.mkdir(parents=True, exist_ok=True)
    if not os.environ.get("DATABASE_URL"):
        database = OUT / "nppes-bench.sqlite3"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)
        os.environ["DATABASE_URL"] = f"sqlite:///{database}"
    import django

    django.setup()
    return os.environ["DATABASE_URL"].split("@")[-1]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--ours", type=float, default=0.06, help="share of rows that match")
    parser.add_argument("--rerun", action="store_true", help="import the same file again")
    parser.add_argument(
        "--locations", action="store_true", help="also import the practice location file"
    )
    args = parser.parse_args()

    database = setup_django()
    from django.core.management import call_command
    from django.db import connection

    from practitioners.ingest.nppes import import_nppes
    from practitioners.models import Location, Practitioner

    call_command("migrate", verbosity=0)
    if connection.vendor == "postgresql":  # start empty, without loading the rows to delete
        tables = [m._meta.db_table for m in (Practitioner, Location)]
        tables += [m.history.model._meta.db_table for m in (Practitioner, Location)]
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {', '.join(tables)} CASCADE")
    path = OUT / f"npidata_bench_{args.rows}_{args.ours}.csv"
    pl_path = OUT / f"pl_bench_{args.rows}_{args.ours}.csv"
    if not (path.exists() and pl_path.exists()):
        # In a child process, so that the peak memory reported below is the import's own.
        started = time.perf_counter()
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            ours = pool.apply(write_file, (path, pl_path, args.rows, args.ours))
        print(f"wrote {path.name}: {args.rows:,} rows, {ours:,} ours, ", end="")
        print(f"{path.stat().st_size / 2**20:,.0f} MiB in {time.perf_counter() - started:.0f}s")
    size_mib = path.stat().st_size / 2**20
    print(f"database: {connection.vendor} ({database}); file {size_mib:,.0f} MiB")
    print(f"peak RSS before the import: {peak_rss_mb():.0f} MB")

    runs = ["first import (all new)"] + (["re-run (nothing changes)"] if args.rerun else [])
    for label in runs:
        started, cpu_started = time.perf_counter(), cpu_seconds()
        with (
            path.open("rb", buffering=1 << 20) as stream,
            pl_path.open("rb", buffering=1 << 20) as pl_stream,
        ):
            report = import_nppes(
                stream=stream, locations_stream=pl_stream if args.locations else None
            )
        elapsed = time.perf_counter() - started
        cpu = cpu_seconds() - cpu_started
        matches = report.matched_total
        print(
            f"{label}: {report.scanned:,} rows in {elapsed:.1f}s = "
            f"{report.scanned / elapsed:,.0f} rows scanned/s; {matches:,} matches = "
            f"{matches / elapsed:,.0f} matches/s; created {report.created:,}, "
            f"updated {report.updated:,}, unchanged {report.unchanged:,}; locations created "
            f"{report.locations_created:,}; "
            f"peak RSS {peak_rss_mb():.0f} MB"
        )
        national = 9_700_000 / (report.scanned / elapsed)
        print(f"  at this rate the national file (9.7M rows) scans in {national / 60:.1f} min")
        # Wall time depends on what else the machine runs; this process's CPU time does not
        # (the database server's own work, on PostgreSQL, is not in it).
        print(
            f"  CPU time of this process {cpu:.1f}s = {report.scanned / cpu:,.0f} rows/CPU-s, "
            f"{matches / cpu:,.0f} matches/CPU-s; load average {os.getloadavg()[0]:.1f}"
        )
    print(f"locations written: {Location.objects.count():,}")


if __name__ == "__main__":
    main()
