"""Search benchmark: N practitioners, the fixed query mix, latency percentiles, correctness.

    .venv/bin/python bench/search_bench.py --n 100000                 # SQLite, bench/out/
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/pl_bench \\
        .venv/bin/python bench/search_bench.py --n 100000             # PostgreSQL

It builds the directory through ``importing.write_records`` (the import path the CSV import and
the admin use), then, against the same database, times the JSON API and the HTML page through
Django's whole request path (``django.test.Client``: URL routing, middleware, FilterSet, search,
serializer or template) next to ``/healthz`` measured the same way and a brute-force reference
(every clinic's distance computed, then sorted). It checks that the API returns exactly the
brute force's practitioners in the same order (first page and a deep page, and the count), prints
a table with the ratios and the query plans (EXPLAIN) of the slowest queries of each search.

Never part of the test run. The data lives in bench/out/ (gitignored) or the database you name;
a second run with the same ``--n`` reuses it (``--reload`` rebuilds).
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


@dataclass(frozen=True)
class Query:
    name: str
    params: tuple[tuple[str, str], ...]
    deep: bool = False  # ask for the deepest page the capped count offers

    def query_string(self, page: int | None = None) -> str:
        params = list(self.params)
        if page is not None:
            params.append(("page", str(page)))
        return urlencode(params)


QUERIES = [
    Query(
        "Memphis 38117, 25 mi, ART+Graston",
        (
            ("zip", "38117"),
            ("radius", "25"),
            ("certification", "art"),
            ("certification", "graston"),
        ),
    ),
    Query("Manhattan 10001, 10 mi, any", (("zip", "10001"), ("radius", "10"))),
    Query("rural 59001, 100 mi", (("zip", "59001"), ("radius", "100"))),
    Query("Anchorage 99501, 250 mi", (("zip", "99501"), ("radius", "250"))),
    Query("Honolulu 96813, 50 mi", (("zip", "96813"), ("radius", "50"))),
    Query("Manhattan 10001, 10 mi, deep page", (("zip", "10001"), ("radius", "10")), deep=True),
    # Three practice filters each (docs/filters.md): two on the practitioner or one on the
    # practitioner and two on the clinic shown.
    Query(
        "Memphis 38117, 25 mi, Spanish + wheelchair + open evenings",
        (
            ("zip", "38117"),
            ("radius", "25"),
            ("language", "es"),
            ("wheelchair", "true"),
            ("open", "evenings"),
        ),
    ),
    Query(
        "Manhattan 10001, 10 mi, Medicare + self-pay + open weekends",
        (
            ("zip", "10001"),
            ("radius", "10"),
            ("insurance", "medicare"),
            ("self_pay", "true"),
            ("open", "weekends"),
        ),
    ),
]
PRACTICE_PARAMETERS = {"language", "insurance", "self_pay", "sliding_scale", "wheelchair", "open"}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="practitioners (default 100000)")
    parser.add_argument("--requests", type=int, default=200, help="timed requests per search")
    parser.add_argument(
        "--seconds", type=float, default=20.0, help="stop a search's timing after this long"
    )
    parser.add_argument("--brute-runs", type=int, default=3, help="timed brute-force runs")
    parser.add_argument("--batch", type=int, default=100_000, help="practitioners per import")
    parser.add_argument("--reload", action="store_true", help="rebuild the data even if present")
    parser.add_argument("--load-only", action="store_true", help="build the data, then stop")
    parser.add_argument("--no-explain", action="store_true", help="skip the query plans")
    parser.add_argument(
        "--check-only",
        action="store_true",
        help="only hold each search to the brute force (no timing: needs no benchmark lock)",
    )
    parser.add_argument(
        "--only", default="", help="comma-separated query numbers to run (1-8), default all"
    )
    return parser.parse_args()


def setup_django(n: int) -> str:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "directory.settings")
    # Production-like: no DEBUG query log, a throwaway key.
    os.environ["DEBUG"] = "false"
    os.environ.setdefault("SECRET_KEY", "bench-only-" + "x" * 40)
    os.environ.setdefault("LOG_LEVEL", "ERROR")
    # django.test.Client's host ("testserver") and the static files served from source
    # without collectstatic: what the settings do under the tests. Nothing the search runs.
    os.environ.setdefault("TESTING", "true")
    if not os.environ.get("DATABASE_URL"):
        OUT.mkdir(parents=True, exist_ok=True)
        os.environ["DATABASE_URL"] = f"sqlite:///{OUT / f'bench-{n}.sqlite3'}"
    import django

    django.setup()
    from django.db import connection

    return connection.vendor


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- load -------------------------------------------------------------------------------------


def vacuum(connection) -> None:
    """On PostgreSQL, what autovacuum would do after a bulk load or a migration that rewrote
    rows: index-only scans need the visibility map, and a vacuum that starts mid-run would
    skew the timings."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for table in (
            "practitioners_practitioner",
            "practitioners_location",
            "practitioners_practitionercertification",
        ):
            cursor.execute(f"VACUUM ANALYZE {table}")


def load(n: int, batch: int, reload: bool) -> dict[str, float] | None:
    """Build the directory unless it is already there; returns the load timings."""
    from django.core.management import call_command
    from django.db import connection, transaction

    from practitioners.models import Practitioner

    call_command("migrate", verbosity=0)
    present = Practitioner.objects.filter(source=Practitioner.Source.CSV).count()
    if present == n and not reload:
        log(f"reusing the {n:,} practitioners already in the database")
        vacuum(connection)
        return None
    log(f"building {n:,} practitioners (found {present:,})")
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "TRUNCATE practitioners_practitioner, practitioners_location, "
                "practitioners_practitionercertification, "
                "practitioners_historicalpractitioner, practitioners_historicallocation, "
                "practitioners_historicalpractitionercertification CASCADE"
            )
        else:
            for table in (
                "practitioners_practitionercertification",
                "practitioners_location",
                "practitioners_listingreport",
                "practitioners_duplicatedismissal",
                "practitioners_practitioner",
            ):
                cursor.execute(f"DELETE FROM {table}")
    import dataset

    from practitioners.ingest.bulk import (
        ImportReport,
        LocationRecord,
        PractitionerRecord,
        write_records,
    )
    from practitioners.models import Certification, Profession

    log(dataset.describe())
    professions = dict(Profession.objects.values_list("slug", "id"))
    certifications = dict(Certification.objects.values_list("slug", "id"))
    timings = {"generate": 0.0, "write_records": 0.0}
    done = 0
    listings = dataset.listings(n)
    report = ImportReport()
    started = time.perf_counter()
    while done < n:
        size = min(batch, n - done)
        t0 = time.perf_counter()
        records: dict[str, PractitionerRecord] = {}
        for line, listing in enumerate((next(listings) for _ in range(size)), start=done + 2):
            values = dict(listing.values)
            values["profession_id"] = professions[values.pop("profession")]
            records[listing.external_id] = PractitionerRecord(
                line=line,
                external_id=listing.external_id,
                values=values,
                certification_ids={certifications[s] for s in listing.certification_slugs},
                locations=[LocationRecord(line=line, **clinic) for clinic in listing.clinics],
            )
        t1 = time.perf_counter()
        batch_report = ImportReport()
        with transaction.atomic():
            write_records(records, batch_report, source=Practitioner.Source.CSV)
        report.locations_created += batch_report.locations_created
        report.certifications_added += batch_report.certifications_added
        t2 = time.perf_counter()
        timings["generate"] += t1 - t0
        timings["write_records"] += t2 - t1
        done += size
        rate = done / (time.perf_counter() - started)
        log(f"  {done:,}/{n:,} practitioners ({rate:,.0f}/s)")
    # A few certificates have lapsed: they must not match.
    t0 = time.perf_counter()
    from django.db.models.functions import Mod

    from practitioners.models import PractitionerCertification

    lapsed = PractitionerCertification.objects.annotate(m=Mod("id", 29)).filter(m=0)
    PractitionerCertification.objects.filter(pk__in=lapsed.values("pk")).update(
        expires_on="2020-01-01"
    )
    vacuum(connection)
    timings["expire+analyze"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - started
    timings["locations"] = report.locations_created
    timings["certifications"] = report.certifications_added
    return timings


# --- timing -----------------------------------------------------------------------------------


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]

    return pick(0.50), pick(0.95), pick(0.99)


def time_get(client, url: str, requests: int, seconds: float) -> list[float]:
    for _ in range(3):  # warm caches and connections
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
    samples: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(samples) < requests and (len(samples) < 20 or time.perf_counter() < deadline):
        t0 = time.perf_counter()
        response = client.get(url)
        samples.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return samples


def brute_force_practice(query: Query) -> list[tuple[int, float]]:
    """The reference answer with practice filters, in the ORM (not the search's SQL): every
    passing clinic's distance, the nearest per practitioner, no bounding box."""
    from django.db.models import F, Min, Q

    from practitioners.models import Certification, Location, Practitioner
    from practitioners.practice import OpeningHours
    from practitioners.search import geo

    params = dict(query.params)
    origin = geo.origin_from_zip(params["zip"])
    radius = float(params["radius"])
    slugs = [v for k, v in query.params if k == "certification"]
    practitioners = Practitioner.objects.published().holding(
        list(Certification.objects.filter(slug__in=slugs)), params.get("match", "all")
    )
    languages = [v for k, v in query.params if k == "language"]
    if languages:
        speaks = Practitioner.languages.through.objects.filter(language__code__in=languages)
        practitioners = practitioners.filter(pk__in=speaks.values("practitioner_id"))
    if "insurance" in params:
        takes = Practitioner.payers.through.objects.filter(payer__slug=params["insurance"])
        practitioners = practitioners.filter(pk__in=takes.values("practitioner_id"))
    for flag in ("self_pay", "sliding_scale"):
        if params.get(flag) == "true":
            practitioners = practitioners.filter(**{flag: True})
    clinics = Location.objects.filter(practitioner__in=practitioners.values("pk"))
    if params.get("wheelchair") == "true":
        clinics = clinics.filter(wheelchair_entrance=True)
    if "open" in params:
        hours = {
            "evenings": OpeningHours.objects.filter(
                weekday__lt=5, end_minute__gt=F("weekday") * 1440 + 17 * 60
            ),
            "weekends": OpeningHours.objects.filter(weekday__gte=5),
        }[params["open"]]
        today = dt.date.today()  # the bench's closures end in 2099: any zone's today will do
        clinics = clinics.filter(
            Q(reopens_on__isnull=True) | Q(reopens_on__lte=today),
            pk__in=hours.values("location_id"),
        )
    nearest = dict(
        clinics.annotate(distance=geo.distance_expression(origin))
        .values("practitioner_id")
        .annotate(nearest=Min("distance"))
        .filter(nearest__lte=radius)
        .values_list("practitioner_id", "nearest")
    )
    names = dict(Practitioner.objects.filter(pk__in=list(nearest)).values_list("pk", "name"))
    return sorted(nearest.items(), key=lambda item: (item[1], names[item[0]], item[0]))


def brute_force(query: Query) -> list[tuple[int, float]]:
    """Every clinic's distance, no bounding box, no index: the reference answer."""
    if PRACTICE_PARAMETERS & {name for name, _ in query.params}:
        return brute_force_practice(query)
    from django.db.models import F, Min

    from practitioners.models import Certification, Practitioner
    from practitioners.search import geo

    params = dict(query.params)
    origin = geo.origin_from_zip(params["zip"])
    radius = float(params["radius"])
    slugs = [v for k, v in query.params if k == "certification"]
    certs = list(Certification.objects.filter(slug__in=slugs))
    distance = geo.distance_expression(origin, "locations__latitude", "locations__longitude")
    rows = (
        Practitioner.objects.published()
        .holding(certs, params.get("match", "all"))
        .values("pk", "name")
        .annotate(distance=Min(distance))
        .filter(distance__lte=radius)
        .order_by(F("distance"), "name", "pk")
        .values_list("pk", "distance")
    )
    return list(rows)


def explain_request(client, url: str, vendor: str, top: int) -> list[str]:
    """The queries one request runs, and the plans of the slowest ``top`` of them."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        client.get(url)
    lines = [f"{len(captured)} queries, {sum(float(q['time']) for q in captured) * 1000:.1f} ms"]
    slowest = sorted(captured.captured_queries, key=lambda q: -float(q["time"]))[:top]
    for q in slowest:
        sql = q["sql"]
        shown = sql[:400] + ("…" if len(sql) > 400 else "")
        lines.append(f"-- {float(q['time']) * 1000:.1f} ms: {shown}")
        with connection.cursor() as cursor:
            if vendor == "postgresql":
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql)
                lines += [row[0] for row in cursor.fetchall()]
            else:
                cursor.execute("EXPLAIN QUERY PLAN " + sql)
                lines += [f"{'  ' * 0}{row[-1]} (id={row[0]}, parent={row[1]})" for row in cursor]
    return lines


def main() -> None:
    args = parse_args()
    vendor = setup_django(args.n)
    from django.conf import settings
    from django.db import connection
    from django.test import Client

    timings = load(args.n, args.batch, args.reload)
    import practice_data

    practice_data.fill(connection, log=log)
    if args.load_only:
        print_load(timings, args.n, vendor)
        return
    from practitioners.models import Location, Practitioner

    practitioners = Practitioner.objects.count()
    locations = Location.objects.count()
    client = Client()
    cap = settings.SEARCH_COUNT_CAP
    per_page = settings.SEARCH_PAGE_SIZE
    queries = QUERIES
    if args.only:
        wanted = {int(x) for x in args.only.split(",")}
        queries = [q for i, q in enumerate(QUERIES, start=1) if i in wanted]

    if args.check_only:
        print(
            f"\n## Correctness only, {vendor}, {practitioners:,} practitioners, "
            f"{locations:,} clinics\n"
        )
        print("| search | brute-force matches | API count | first page same as brute force |")
        print("|---|---:|---:|---|")
        args.brute_runs = 1
    else:
        healthz = percentiles(time_get(client, "/healthz", args.requests, args.seconds))
    rows = []
    plans: list[str] = []
    all_same = True
    for query in queries:
        log(f"{query.name}: brute force")
        brute_times = []
        reference: list[tuple[int, float]] = []
        for _ in range(max(1, args.brute_runs)):
            t0 = time.perf_counter()
            reference = brute_force(query)
            brute_times.append((time.perf_counter() - t0) * 1000)
        brute_ms = statistics.median(brute_times)
        shown = min(len(reference), cap)
        page = max(1, math.ceil(shown / per_page)) if query.deep else None
        api_url = f"/api/practitioners/?{query.query_string(page)}"
        html_url = f"/search/?{query.query_string(page)}"

        # Correctness first: the same practitioners in the same order as the brute force.
        body = client.get(api_url).json()
        got = [r["id"] for r in body["results"]]
        start = ((page or 1) - 1) * per_page
        expected = [pk for pk, _ in reference[start : start + per_page]]
        count_ok = body["count"] == shown and body["count_is_capped"] == (len(reference) > cap)
        same = got == expected and count_ok
        all_same &= same
        if not same:
            log(f"  MISMATCH: api {got[:5]} count {body['count']}; brute {expected[:5]} {shown}")
        if args.check_only:
            print(
                f"| {query.name} | {len(reference):,} | {body['count']:,} "
                f"| {'yes' if same else 'NO'} |"
            )
            continue

        log(f"{query.name}: timing API and page")
        api = percentiles(time_get(client, api_url, args.requests, args.seconds))
        html = percentiles(time_get(client, html_url, args.requests, args.seconds))
        rows.append((query, page, len(reference), api, html, brute_ms, same))
        if not args.no_explain:
            plans.append(f"\n### {query.name} (API, page {page or 1})")
            plans += explain_request(client, api_url, vendor, top=2)

    if args.check_only:
        print(f"\nEvery search returned the brute force's results: {'yes' if all_same else 'NO'}")
        connection.close()
        sys.exit(0 if all_same else 1)
    print_load(timings, args.n, vendor)
    print(
        f"\n## Search, {vendor}, {practitioners:,} practitioners, {locations:,} clinics "
        f"(load average {os.getloadavg()[0]:.2f}; {args.requests} requests a search, "
        f"times in ms)\n"
    )
    print(
        "| search | matches | API p50 | API p95 | API p99 | HTML p50 | HTML p95 | HTML p99 "
        "| brute force | brute / API p50 | API p50 / healthz p50 | same as brute force |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for query, page, matches, api, html, brute_ms, same in rows:
        label = query.name + (f" (page {page})" if page else "")
        print(
            f"| {label} | {matches:,} | {api[0]:.1f} | {api[1]:.1f} | {api[2]:.1f} "
            f"| {html[0]:.1f} | {html[1]:.1f} | {html[2]:.1f} | {brute_ms:.0f} "
            f"| {brute_ms / api[0]:.0f}x | {api[0] / healthz[0]:.1f}x | {'yes' if same else 'NO'} |"
        )
    print(
        f"| /healthz (baseline) | | {healthz[0]:.2f} | {healthz[1]:.2f} | {healthz[2]:.2f} "
        "| | | | | | | |"
    )
    print(f"\nEvery search returned the brute force's results: {'yes' if all_same else 'NO'}")
    if plans:
        print(f"\n## Query plans ({vendor}): the two slowest queries of one API request\n")
        print("\n".join(plans))
    connection.close()
    if not all_same:
        sys.exit(1)


def print_load(timings: dict[str, float] | None, n: int, vendor: str) -> None:
    if timings is None:
        print(f"\n## Load ({vendor}): reused existing data ({n:,} practitioners)")
        return
    print(
        f"\n## Load ({vendor}): {n:,} practitioners, {int(timings['locations']):,} clinics, "
        f"{int(timings['certifications']):,} certifications through ingest.csv.write_records\n"
    )
    print(
        f"total {timings['total']:.1f} s = generate records {timings['generate']:.1f} s + "
        f"write_records {timings['write_records']:.1f} s + expire/analyze "
        f"{timings['expire+analyze']:.1f} s ({n / timings['total']:,.0f} practitioners/s)"
    )


if __name__ == "__main__":
    main()
