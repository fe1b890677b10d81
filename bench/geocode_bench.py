"""Geocoding benchmark: 1,000 new addresses through geopy's Nominatim client against the loopback
server of the tests (GEOCODER_MIN_DELAY_SECONDS=0), then 1,000 more locations at the same addresses,
which must come from the cache without a single request.

    .venv/bin/python bench/geocode_bench.py [--n 1000]                          # SQLite (in memory)
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/pl_bench \\
        .venv/bin/python bench/geocode_bench.py                                # PostgreSQL

It runs in a throwaway test database (Django's test-database machinery: in-memory SQLite, or
``test_<name>`` on PostgreSQL, dropped at the end). Never part of the test run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "directory.settings")
    os.environ["DEBUG"] = "false"  # no query log eating memory
    os.environ.setdefault("SECRET_KEY", "bench-only-" + "x" * 40)
    os.environ.setdefault("LOG_LEVEL", "ERROR")
    import django

    django.setup()


def make_locations(n: int, zips: list, *, line2: str) -> list[int]:
    from practitioners.models import Location, Practitioner

    practitioners = Practitioner.objects.bulk_create(
        Practitioner(name=f"Bench {line2} {i}", slug=f"bench-{line2}-{i}".lower()) for i in range(n)
    )
    locations = Location.objects.bulk_create(
        Location(
            practitioner=practitioner,
            address_line1=f"{100 + i} Bench St",
            address_line2=line2,
            city=zips[i % len(zips)].city,
            state=zips[i % len(zips)].state,
            postal_code=zips[i % len(zips)].zip,
            precision=Location.Precision.ZIP,
            geocode_status=Location.GeocodeStatus.PENDING,
        )
        for i, practitioner in enumerate(practitioners)
    )
    return [location.pk for location in locations]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="addresses (default 1000)")
    args = parser.parse_args()
    setup_django()

    from django.db import connection
    from django.test.utils import override_settings

    from practitioners.geocoding import geocode_locations
    from practitioners.models import Location
    from practitioners.search import geo
    from tests.geocoder_server import GeocoderServer, Reply

    def near_the_zip(request) -> Reply:
        centroid = geo.zip_centroid(request.params.get("postalcode", ""))
        if centroid is None:
            return Reply.empty()
        return Reply.found(centroid.latitude + 0.004, centroid.longitude - 0.003, "Bench St")

    zips = [z for z in geo._zip_index().values() if z.state not in ("AA", "AE", "AP")][:500]
    database = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        with (
            GeocoderServer(default=near_the_zip) as server,
            override_settings(
                GEOCODER="nominatim",
                GEOCODER_DOMAIN=server.domain,
                GEOCODER_SCHEME="http",
                GEOCODER_TIMEOUT=5.0,
                GEOCODER_MIN_DELAY_SECONDS=0,
            ),
        ):
            print(f"database: {connection.vendor} ({database}); {args.n} addresses")
            for label, line2 in (("new addresses", "first"), ("all cached", "second")):
                ids = make_locations(args.n, zips, line2=line2)
                before = server.request_count
                started = time.perf_counter()
                summary = geocode_locations(queryset=Location.objects.filter(pk__in=ids))
                elapsed = time.perf_counter() - started
                sent = server.request_count - before
                print(
                    f"{label:>13}: {elapsed:6.2f} s for {args.n} locations "
                    f"({elapsed / args.n * 1000:.2f} ms each), {sent} request(s) seen by the "
                    f"server. {summary.line()}"
                )
    finally:
        connection.creation.destroy_test_db(database, verbosity=0)


if __name__ == "__main__":
    main()
