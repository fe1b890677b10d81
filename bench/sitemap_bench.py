"""Sitemap benchmark: every sitemap section page at N listings, timed, with peak memory.

    .venv/bin/python bench/sitemap_bench.py --n 1000000            # SQLite, bench/out/
    .venv/bin/python bench/sitemap_bench.py --database bench/out/copy.sqlite3

It uses the search benchmark's data (bench/search_bench.py builds it, ``--load-only``), migrates
it, refreshes the stored place list the place sections read (timed: what runs after publishing
and imports, not in a request), then requests /sitemap.xml and every section page it lists
through Django's whole request path (``django.test.Client``), each ``--runs`` times. For each
page: the URLs in it, the median and slowest time, and the process's peak memory so far, which
shows that no page loads every listing. Every page is checked against the sitemap protocol's
XML schemas (tests/fixtures).

Never part of the test run.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit
from xml.etree import ElementTree

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))
NS = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="listings (default 1000000)")
    parser.add_argument("--database", help="SQLite file (default bench/out/bench-N.sqlite3)")
    parser.add_argument("--runs", type=int, default=3, help="timed requests per page")
    parser.add_argument("--no-validate", action="store_true", help="skip the XML schemas")
    parser.add_argument(
        "--rollback",
        action="store_true",
        help="leave the data as found (after migrate): the place list's refresh and every "
        "request run inside one transaction, rolled back at the end (a shared database)",
    )
    return parser.parse_args()


def setup_django(args: argparse.Namespace) -> str:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "directory.settings")
    os.environ["DEBUG"] = "false"
    os.environ.setdefault("SECRET_KEY", "bench-only-" + "x" * 40)
    os.environ.setdefault("LOG_LEVEL", "ERROR")
    os.environ.setdefault("ALLOWED_HOSTS", "testserver")
    if not os.environ.get("DATABASE_URL"):
        path = Path(args.database) if args.database else OUT / f"bench-{args.n}.sqlite3"
        if not path.exists():
            sys.exit(f"{path} does not exist: build it with bench/search_bench.py --load-only")
        os.environ["DATABASE_URL"] = f"sqlite:///{path.resolve()}"
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    rebuild_place_index(connection)
    return connection.vendor


def rebuild_place_index(connection) -> None:
    """A database migrated by the first version of 0011 has ``location_place`` on UPPER(city);
    build it as the model now declares it (plain columns, which SQLite reads as covering)."""
    if connection.vendor != "sqlite":
        return
    from practitioners.models import Location

    with connection.cursor() as cursor:
        cursor.execute("PRAGMA index_xinfo(location_place)")
        expression = any(row[1] == -2 for row in cursor.fetchall())  # cid -2: an expression
    if not expression:
        return
    print("rebuilding location_place on plain columns", file=sys.stderr)
    [index] = [i for i in Location._meta.indexes if i.name == "location_place"]
    with connection.schema_editor() as editor:
        editor.execute("DROP INDEX location_place")
        editor.add_index(Location, index)


def get(client, path: str):
    parts = urlsplit(path)
    return client.get(parts.path, dict(p.split("=", 1) for p in parts.query.split("&") if p))


def main() -> None:
    args = parse_args()
    vendor = setup_django(args)
    if not args.rollback:
        run(args, vendor)
        return
    from django.db import transaction

    with transaction.atomic():
        # The test client runs each request on this same connection, inside this transaction.
        run(args, vendor)
        transaction.set_rollback(True)


def run(args: argparse.Namespace, vendor: str) -> None:
    import xmlschema
    from django.test import Client

    from practitioners import place_pages
    from practitioners.models import Location, Practitioner

    urlset = xmlschema.XMLSchema(ROOT / "tests" / "fixtures" / "sitemap.xsd")
    index = xmlschema.XMLSchema(ROOT / "tests" / "fixtures" / "siteindex.xsd")
    client = Client(HTTP_HOST="testserver")
    published = Practitioner.objects.published().count()
    clinics = Location.objects.count()
    print(f"{vendor}: {published:,} published listings, {clinics:,} clinics", file=sys.stderr)

    # The stored place list the place sections read (place_pages.py): what the task after
    # publishing and imports, and the hourly command, run.
    t0 = time.perf_counter()
    refreshed = place_pages.refresh()
    refresh_s = time.perf_counter() - t0
    print(f"  refresh_place_pages: {refresh_s:.1f} s, {refreshed}", file=sys.stderr)

    # A warm process, as a server's is: the URLconf, middleware and views load on the first
    # request, which is not the sitemap's cost.
    client.get("/robots.txt")
    top_times = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        top = client.get("/sitemap.xml")
        top_times.append((time.perf_counter() - t0) * 1000)
    assert top.status_code == 200, top.status_code
    root = ElementTree.fromstring(top.content)
    if root.tag.endswith("sitemapindex"):
        if not args.no_validate:
            index.validate(top.content.decode())
        pages = [s.findtext("s:loc", namespaces=NS) for s in root.findall("s:sitemap", NS)]
    else:
        pages = []
    rows = []
    all_valid = True
    total_urls = 0
    for loc in pages:
        path = loc.split("testserver", 1)[1]
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            response = get(client, path)
            times.append((time.perf_counter() - t0) * 1000)
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        assert response.status_code == 200, (path, response.status_code)
        body = response.content
        urls = body.count(b"<url>")
        total_urls += urls
        valid = True
        if not args.no_validate:
            valid = urlset.is_valid(body.decode())
            all_valid &= valid
        rows.append((path, urls, len(body), statistics.median(times), max(times), grown, valid))
        print(f"  {path}: {urls:,} URLs, {statistics.median(times):.0f} ms", file=sys.stderr)

    print(
        f"\n## Sitemap, {vendor}, {published:,} published listings, {clinics:,} clinics "
        f"(load average {os.getloadavg()[0]:.2f}; {args.runs} requests a page, times in ms)\n"
    )
    print(
        f"/sitemap.xml (the index, {len(pages)} pages): p50 {statistics.median(top_times):.0f} "
        f"ms, max {max(top_times):.0f} ms\n"
    )
    print(
        f"refresh_place_pages (the stored place list, not a request): {refresh_s:.1f} s for "
        f"{refreshed.places:,} places and {refreshed.place_techniques:,} places by technique\n"
    )
    print("| page | URLs | bytes | p50 | max | process peak RSS so far (MB) | valid (XSD) |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for path, urls, size, p50, slowest, grown, valid in rows:
        print(
            f"| {path} | {urls:,} | {size:,} | {p50:.0f} | {slowest:.0f} "
            f"| {grown / 1e6:.1f} | {'yes' if valid else 'NO'} |"
        )
    print(f"\n{total_urls:,} URLs in all; every page valid: {'yes' if all_valid else 'NO'}")
    if not all_valid:
        sys.exit(1)


if __name__ == "__main__":
    main()
