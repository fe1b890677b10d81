"""One search request, statement by statement: where its time goes.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/pl_bench_1m_main \\
        .venv/bin/python bench/search_statements.py \\
        'zip=10001&radius=10&insurance=medicare&self_pay=true&open=weekends' --requests 200

Against a directory loaded by ``bench/search_bench.py`` (``DATABASE_URL``, or ``--n`` for
SQLite's bench/out/ file), it times the API request ``--requests`` times (p50, p95, and every
request slower than ``--slow`` ms by its position: a pause that recurs every N requests is the
garbage collector, not the database), then re-runs each statement the request sent on its own
(p50 and max of ``--runs``), and with ``--explain K`` prints statement K's EXPLAIN (ANALYZE,
BUFFERS) on PostgreSQL. Never part of the tests.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("query", help="the API query string, e.g. 'zip=38117&radius=25'")
    parser.add_argument("--requests", type=int, default=200, help="timed requests")
    parser.add_argument("--runs", type=int, default=50, help="timed runs of each statement")
    parser.add_argument("--slow", type=float, default=100.0, help="list requests over this (ms)")
    parser.add_argument("--explain", type=int, default=None, help="EXPLAIN ANALYZE statement K")
    parser.add_argument("--n", type=int, default=100_000, help="the directory's size (SQLite)")
    args = parser.parse_args()
    # The benchmark's own set-up: production-like settings, its data by default.
    from search_bench import setup_django

    setup_django(args.n)
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    path = f"/api/practitioners/?{args.query}"
    response = client.get(path)
    if response.status_code != 200:
        raise SystemExit(f"{path}: {response.status_code} {response.content[:300]!r}")
    timings = []
    for _ in range(args.requests):
        started = time.perf_counter()
        client.get(path)
        timings.append((time.perf_counter() - started) * 1000)
    ordered = sorted(timings)
    print(f"{connection.vendor}, {path}")
    print(
        f"request: p50 {statistics.median(timings):.1f} ms, "
        f"p95 {ordered[max(0, round(0.95 * len(ordered)) - 1)]:.1f} ms over {len(timings)}"
    )
    slow = [f"#{k + 1}: {t:.0f} ms" for k, t in enumerate(timings) if t > args.slow]
    print(f"slower than {args.slow:g} ms: {', '.join(slow) or 'none'}")
    with CaptureQueriesContext(connection) as captured:
        client.get(path)
    statements = [query["sql"] for query in captured.captured_queries]
    with connection.cursor() as cursor:
        for k, sql in enumerate(statements):
            runs = []
            for _ in range(args.runs):
                started = time.perf_counter()
                cursor.execute(sql)
                cursor.fetchall()
                runs.append((time.perf_counter() - started) * 1000)
            print(
                f"statement {k}: p50 {statistics.median(runs):.2f} ms, max {max(runs):.2f} ms, "
                f"{len(sql):,} characters: {sql[:70]}..."
            )
        if args.explain is not None and connection.vendor == "postgresql":
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {statements[args.explain]}")
            print("\n".join(row[0] for row in cursor.fetchall()))


if __name__ == "__main__":
    main()
