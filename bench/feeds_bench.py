"""Feeds benchmark: a page of 100 FHIR / HSDS resources and the whole HSDS export at N listings.

    flock /work/bench.lock .venv/bin/python bench/feeds_bench.py --n 1000000   # SQLite, bench/out/
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/pl_bench \\
        flock /work/bench.lock .venv/bin/python bench/feeds_bench.py --n 1000000

The directory is built by bench/search_bench.py's loader (the same data and the same database
file, so ``search_bench.py --n N --load-only`` builds it once for both). Each endpoint is asked
through Django's whole request path (``django.test.Client``) ``--requests`` times: p50, p95 and the
statements one request runs. Then ``manage.py export_hsds`` runs in a child process over every
listing: wall time, the child's peak resident memory (its VmHWM) and what it wrote. Prints
Markdown (bench/results/feeds.md is its output). Never part of the test run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import search_bench  # noqa: E402  (the loader and the Django set-up)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="practitioners (default 100000)")
    parser.add_argument("--requests", type=int, default=20, help="timed requests per endpoint")
    parser.add_argument("--batch", type=int, default=100_000, help="practitioners per import")
    parser.add_argument("--no-export", action="store_true", help="skip the export_hsds run")
    parser.add_argument("--no-pages", action="store_true", help="only the export_hsds run")
    parser.add_argument(
        "--fhir-check",
        action="store_true",
        help="parse every FHIR response back through fhirclient (FHIR_CHECK_RESPONSES, what "
        "DEBUG and the tests do); default: production, unchecked",
    )
    parser.add_argument(
        "--touch",
        action="store_true",
        help="edit --changed listings first, for the incremental pulls (writes: own database)",
    )
    parser.add_argument("--changed", type=int, default=1000, help="listings --touch edits (1000)")
    parser.add_argument("--only", default="", help="endpoints whose name starts with this")
    return parser.parse_args()


def endpoints(middle_pk: int, recent: str, pulled: str) -> list[tuple[str, str]]:
    return [
        ("FHIR Practitioner, first page", "/fhir/Practitioner?_count=100"),
        (
            "FHIR Practitioner, deep page (_cursor)",
            f"/fhir/Practitioner?_count=100&_cursor={middle_pk}",
        ),
        (
            "FHIR Practitioner?qualification-code=graston-m2",
            "/fhir/Practitioner?_count=100&qualification-code=graston-m2",
        ),
        (
            f"FHIR Practitioner?_lastUpdated=gt ({pulled})",
            f"/fhir/Practitioner?_count=100&_lastUpdated=gt{recent}",
        ),
        (
            "FHIR Practitioner?_lastUpdated=gt2000-01-01 (everything)",
            "/fhir/Practitioner?_count=100&_lastUpdated=gt2000-01-01",
        ),
        (
            f"FHIR PractitionerRole?_lastUpdated=gt ({pulled})",
            f"/fhir/PractitionerRole?_count=100&_lastUpdated=gt{recent}",
        ),
        (
            f"FHIR Location?_lastUpdated=gt ({pulled})",
            f"/fhir/Location?_count=100&_lastUpdated=gt{recent}",
        ),
        ("FHIR PractitionerRole?_include=*", "/fhir/PractitionerRole?_count=100&_include=*"),
        ("FHIR Location", "/fhir/Location?_count=100"),
        ("FHIR Location?address-city=Memphis", "/fhir/Location?_count=100&address-city=Memphis"),
        (
            "FHIR Location?near= Manhattan 10 mi",
            "/fhir/Location?_count=100&near=40.7506|-73.9972|10|mi",
        ),
        ("FHIR Organization", "/fhir/Organization?_count=100"),
        ("HSDS organizations, page 1", "/hsds/organizations?per_page=100"),
        ("HSDS organizations, page 5000", "/hsds/organizations?per_page=100&page=5000"),
        ("HSDS services, page 1", "/hsds/services?per_page=100"),
        ("HSDS locations, page 1", "/hsds/locations?per_page=100"),
        ("HSDS services, page 5000", "/hsds/services?per_page=100&page=5000"),
        (
            f"HSDS organizations?modified_after ({pulled})",
            f"/hsds/organizations?per_page=100&modified_after={recent}",
        ),
        (
            f"HSDS services?modified_after ({pulled})",
            f"/hsds/services?per_page=100&modified_after={recent}",
        ),
        (
            f"HSDS locations?modified_after ({pulled})",
            f"/hsds/locations?per_page=100&modified_after={recent}",
        ),
        (
            "HSDS services?modified_after=2000-01-01 (everything)",
            "/hsds/services?per_page=100&modified_after=2000-01-01",
        ),
    ]


def measure(client, url: str, requests: int) -> tuple[float, float, float, int, int]:
    """(first, p50, p95) in ms, statements of the first request, bytes. The first request runs
    with an empty cache (the HSDS totals are cached); the timed ones after it."""
    from django.core.cache import cache
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    cache.clear()
    with CaptureQueriesContext(connection) as captured:
        started = time.perf_counter()
        response = client.get(url)
        first = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, (url, response.content[:300])
    statements = len(captured.captured_queries)
    size = len(response.content)
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        client.get(url)
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    p95 = samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]
    return first, statistics.median(samples), p95, statements, size


def _high_water_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_export(n: int) -> tuple[float, float, dict[str, int], str]:
    target = Path(tempfile.mkdtemp(prefix="hsds-export-"))
    env = dict(os.environ)
    started = time.perf_counter()
    # Peak memory from the child's own VmHWM, polled: getrusage(RUSAGE_CHILDREN) reported the
    # benchmark's own resident set (424 MB after the page requests), which the forked child
    # carries until it execs and Linux keeps as the child's maximum across the exec.
    with (
        tempfile.TemporaryFile("w+") as out,
        tempfile.TemporaryFile("w+") as err,
        subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "export_hsds", str(target), "-v", "2"],
            env=env,
            stdout=out,
            stderr=err,
            text=True,
        ) as child,
    ):
        peak_kb = 0
        while child.poll() is None:
            peak_kb = max(peak_kb, _high_water_kb(child.pid))
            time.sleep(0.5)
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if child.returncode != 0:
        raise SystemExit(stderr[-2000:])
    peak_mb = peak_kb / 1024
    sizes = {path.name: path.stat().st_size for path in sorted(target.iterdir())}
    shutil.rmtree(target)
    return seconds, peak_mb, sizes, stdout.strip()


def main() -> None:
    args = parse_args()
    os.environ["FHIR_CHECK_RESPONSES"] = "true" if args.fhir_check else "false"
    vendor = search_bench.setup_django(args.n)
    search_bench.load(args.n, args.batch, reload=False)
    from django.db.models import Max, Min
    from django.test import Client
    from django.utils import timezone

    from practitioners.models import Location, Practitioner, PractitionerCertification

    listings = Practitioner.objects.count()
    clinics = Location.objects.count()
    records = PractitionerCertification.objects.count()
    bounds = Practitioner.objects.aggregate(low=Min("pk"), high=Max("pk"))
    middle = (bounds["low"] + bounds["high"]) // 2
    # An incremental pull: what changed after a moment. The loader stamps every row alike, so
    # with --touch (a database of one's own: it writes) --changed listings spread over the
    # table and their clinics are edited now; without, the pull is from the last change on
    # and finds nothing (what a client polling an unchanged directory asks).
    if args.touch:
        ids = list(Practitioner.objects.published().order_by("pk").values_list("pk", flat=True))
        ids = ids[:: max(1, len(ids) // args.changed)][: args.changed]
        moment = timezone.now()
        time.sleep(0.01)
        touched = timezone.now()
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            Practitioner.objects.filter(pk__in=chunk).update(updated_at=touched)
            Location.objects.filter(practitioner_id__in=chunk).update(updated_at=touched)
        pulled = f"the {len(ids):,} listings edited"
    else:
        last = Practitioner.objects.aggregate(last=Max("updated_at"))["last"]
        moment = last + dt.timedelta(milliseconds=1)
        pulled = "nothing changed"
    recent = moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    load = os.getloadavg()
    print(
        f"## Feeds, {vendor}, {listings:,} practitioners, {clinics:,} clinics, "
        f"{records:,} certificates (load average {load[0]:.2f} at the start)\n"
    )
    check = "checked through fhirclient" if args.fhir_check else "unchecked (production)"
    print(
        f"{args.requests} requests each after a first one with an empty cache; times in ms "
        f"through the whole Django request path (django.test.Client); FHIR responses {check}; "
        f"incremental pulls from {recent}.\n"
    )
    if not args.no_pages:
        print("| request (page of 100) | first ms | p50 ms | p95 ms | statements | bytes |")
        print("|---|---:|---:|---:|---:|---:|")
        client = Client()
        for name, url in endpoints(middle, recent, pulled):
            if not name.startswith(args.only):
                continue
            first, p50, p95, statements, size = measure(client, url, args.requests)
            print(
                f"| {name} | {first:.1f} | {p50:.1f} | {p95:.1f} | {statements} | {size:,} |",
                flush=True,
            )
        print(f"\nload average after the requests: {os.getloadavg()[0]:.2f}\n")
    if args.no_export:
        return
    seconds, peak_mb, sizes, summary = run_export(args.n)
    print(f"### export_hsds over {listings:,} listings\n")
    print(f"- wall time {seconds:.1f} s ({listings / seconds:,.0f} listings/s)")
    print(f"- peak resident memory of the export process {peak_mb:.0f} MB")
    print(f"- load average after the export: {os.getloadavg()[0]:.2f}")
    print(f"- {summary.splitlines()[-1]}\n")
    print("| file | bytes |")
    print("|---|---:|")
    for name, size in sizes.items():
        print(f"| {name} | {size:,} |")


if __name__ == "__main__":
    main()
