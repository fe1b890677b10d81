"""Condition search benchmark: a condition search against the certification search it expands
to, at N listings, through Django's whole request path.

    .venv/bin/python bench/condition_bench.py --n 1000000          # SQLite, bench/out/

Uses the search benchmark's data (bench/search_bench.py). For each origin it checks that the
condition search returns exactly the practitioners (and count) of the equivalent
certification search, then times both (API and HTML page), p50/p95/p99 in ms, requested in turn
(condition, certification, condition, ...) so that the machine's changing load falls on both.
Never part of the test run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from sitemap_bench import setup_django  # noqa: E402  (the same database set-up)

CASES = [
    ("Memphis 38117, 25 mi", "zip=38117&radius=25"),
    ("Manhattan 10001, 10 mi", "zip=10001&radius=10"),
    ("rural 59001, 100 mi", "zip=59001&radius=100"),
]
CONDITION = "plantar-fasciitis"


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    return statistics.median(ordered), pick(0.95), pick(0.99)


def timed(client, urls: list[str], requests: int) -> list[tuple[float, float, float]]:
    """Each URL's percentiles, the URLs requested in turn (A, B, A, B, ...) so that a change in
    the machine's load falls on both alike: a shared machine's load moves within a run."""
    for url in urls:
        client.get(url)  # warm
    samples: list[list[float]] = [[] for _ in urls]
    for _ in range(requests):
        for url, times in zip(urls, samples, strict=True):
            t0 = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, (url, response.status_code)
    return [percentiles(times) for times in samples]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--database", help="SQLite file (default bench/out/bench-N.sqlite3)")
    parser.add_argument("--requests", type=int, default=100)
    args = parser.parse_args()
    # Static files from the finders (no collectstatic manifest needed for the page timings).
    os.environ.setdefault("TESTING", "true")
    vendor = setup_django(args)
    from django.test import Client

    from practitioners import conditions
    from practitioners.models import Condition

    client = Client(HTTP_HOST="testserver")
    condition = Condition.objects.get(slug=CONDITION)
    techniques = conditions.techniques_for(condition)
    expanded = "&".join(f"certification={t.slug}" for t in techniques) + "&match=any"
    print(
        f"\n## Condition search, {vendor}, {args.n:,} listings (load average "
        f"{os.getloadavg()[0]:.2f}; {args.requests} requests each, ms)\n\n"
        f"condition={CONDITION} expands to {expanded}\n"
    )
    print("| origin | matches | same results | condition API p50/p95/p99 | certification API "
          "p50/p95/p99 | condition page p50 | certification page p50 |")  # fmt: skip
    print("|---|---:|---|---|---|---:|---:|")
    all_same = True
    for name, origin in CASES:
        by_condition = f"?{origin}&condition={CONDITION}"
        by_certification = f"?{origin}&{expanded}"
        a = client.get(f"/api/practitioners/{by_condition}").json()
        b = client.get(f"/api/practitioners/{by_certification}").json()
        same = [r["id"] for r in a["results"]] == [r["id"] for r in b["results"]] and (
            a["count"] == b["count"]
        )
        all_same &= same
        api_c, api_e = timed(
            client,
            [f"/api/practitioners/{by_condition}", f"/api/practitioners/{by_certification}"],
            args.requests,
        )
        page_c, page_e = timed(
            client,
            [f"/search/{by_condition}", f"/search/{by_certification}"],
            max(10, args.requests // 4),
        )
        print(
            f"| {name} | {a['count']:,}{'+' if a['count_is_capped'] else ''} "
            f"| {'yes' if same else 'NO'} "
            f"| {api_c[0]:.1f} / {api_c[1]:.1f} / {api_c[2]:.1f} "
            f"| {api_e[0]:.1f} / {api_e[1]:.1f} / {api_e[2]:.1f} "
            f"| {page_c[0]:.1f} | {page_e[0]:.1f} |"
        )
    print(f"\nThe condition search returned the certification search's results: {all_same}")
    if not all_same:
        sys.exit(1)


if __name__ == "__main__":
    main()
