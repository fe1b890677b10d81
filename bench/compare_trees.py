"""Old code against new code, on the same data, in one run: the searches of search_bench.py.

    flock /work/bench.lock .venv/bin/python bench/compare_trees.py \\
        --old /work/wt-old --n 1000000 --out bench/results/house-sqlite-1m.md
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/pl_bench_1m flock /work/bench.lock \\
        .venv/bin/python bench/compare_trees.py --old /work/wt-old --n 1000000 \\
        --out bench/results/house-pg-1m.md

Build the data first with ``bench/search_bench.py --n N --load-only`` (this tree's import).
Django cannot hold two versions of the project in one process, so each tree gets a worker
process (``--worker``, started from that tree's root with its own ``sys.path``), and this driver
interleaves them: for every search, ``--rounds`` rounds, each timing ``--batch`` requests on the
old tree, then on the new one (the order alternates from round to round), so a busy neighbour or
a cache warming up hits both alike. Each worker times the JSON API and the HTML page through
Django's whole request path (``django.test.Client``), as search_bench.py does; both must return
the same practitioners in the same order and the same count, or the script exits 1.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


# --- the worker: runs inside one tree ---------------------------------------------------------


def worker(tree: Path) -> None:
    """Answer JSON lines on stdin: {"url", "requests"} -> the samples in ms; {"body"} -> the
    API's ids and count for a URL."""
    sys.path.insert(0, str(tree))
    os.chdir(tree)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "directory.settings")
    os.environ["DEBUG"] = "false"
    os.environ.setdefault("SECRET_KEY", "bench-only-" + "x" * 40)
    os.environ.setdefault("LOG_LEVEL", "ERROR")
    # django.test.Client's host ("testserver") and the static files served from source
    # without collectstatic: what the settings do under the tests. Nothing the search runs.
    os.environ.setdefault("TESTING", "true")
    import django

    django.setup()
    from django.db import connection
    from django.test import Client

    client = Client()
    print(json.dumps({"ready": str(tree), "vendor": connection.vendor}), flush=True)
    for line in sys.stdin:
        ask = json.loads(line)
        url = ask["url"]
        if "body" in ask:
            body = client.get(url).json()
            reply = {
                "ids": [r["id"] for r in body["results"]],
                "count": body["count"],
                "capped": body["count_is_capped"],
            }
        else:
            samples = []
            for _ in range(ask["requests"]):
                t0 = time.perf_counter()
                response = client.get(url)
                samples.append((time.perf_counter() - t0) * 1000)
                assert response.status_code == 200, (url, response.status_code)
            reply = {"samples": samples}
        print(json.dumps(reply), flush=True)


class Tree:
    def __init__(self, name: str, root: Path, env: dict[str, str]) -> None:
        self.name = name
        self.process = subprocess.Popen(
            [str(root / ".venv" / "bin" / "python"), __file__, "--worker", str(root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=root,
        )
        self.ready = self._read()

    def _read(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"the {self.name} worker stopped")
        return json.loads(line)

    def ask(self, **ask) -> dict:
        self.process.stdin.write(json.dumps(ask) + "\n")
        self.process.stdin.flush()
        return self._read()

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--old", type=Path, help="the old tree (a worktree at the old commit)")
    parser.add_argument("--new", type=Path, default=ROOT, help="the new tree (default: this one)")
    parser.add_argument("--n", type=int, default=1_000_000, help="practitioners in the data")
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds per search")
    parser.add_argument("--batch", type=int, default=10, help="requests per tree per round")
    parser.add_argument("--out", type=Path, help="also write the report here")
    args = parser.parse_args()
    if args.worker:
        worker(Path(args.worker))
        return
    if args.old is None:
        parser.error("--old is required")

    sys.path.insert(0, str(ROOT / "bench"))
    from search_bench import OUT, QUERIES

    env = dict(os.environ)
    if not env.get("DATABASE_URL"):
        env["DATABASE_URL"] = f"sqlite:///{OUT / f'bench-{args.n}.sqlite3'}"
    trees = [Tree("old", args.old.resolve(), env), Tree("new", args.new.resolve(), env)]
    vendor = trees[0].ready["vendor"]
    commits = {
        tree.name: subprocess.run(
            ["git", "-C", tree.ready["ready"], "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        for tree in trees
    }
    lines = []
    all_same = True
    started = time.time()
    for query in QUERIES:
        first = trees[1].ask(url=f"/api/practitioners/?{query.query_string()}", body=True)
        page = max(1, math.ceil(first["count"] / 20)) if query.deep else None
        api_url = f"/api/practitioners/?{query.query_string(page)}"
        answers = [tree.ask(url=api_url, body=True) for tree in trees]
        same = answers[0] == answers[1]
        all_same &= same
        for kind, path in (("API", "/api/practitioners/"), ("HTML", "/search/")):
            url = f"{path}?{query.query_string(page)}"
            samples: dict[str, list[float]] = {"old": [], "new": []}
            for tree in trees:  # warm both
                tree.ask(url=url, requests=3)
            for round_ in range(args.rounds):
                order = trees if round_ % 2 == 0 else trees[::-1]
                for tree in order:
                    samples[tree.name] += tree.ask(url=url, requests=args.batch)["samples"]
            old, new = (percentile(samples[name], 0.5) for name in ("old", "new"))
            old95, new95 = (percentile(samples[name], 0.95) for name in ("old", "new"))
            label = query.name + (f" (page {page})" if page else "")
            lines.append(
                f"| {label} | {kind} | {first['count']:,}{'+' if first['capped'] else ''} "
                f"| {old:.1f} | {new:.1f} | {(new - old) / old * 100:+.0f}% "
                f"| {old95:.1f} | {new95:.1f} | {'yes' if same else 'NO'} |"
            )
            print(lines[-1], file=sys.stderr, flush=True)
    for tree in trees:
        tree.close()
    report = [
        f"# Old code against new code: the searches at {args.n:,} listings, {vendor}",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))} on this 2-core "
        f"machine (load average {os.getloadavg()[0]:.2f} at the end) by "
        f"`bench/compare_trees.py --n {args.n} --rounds {args.rounds} --batch {args.batch}`: "
        f"old = `{commits['old']}`, new = `{commits['new']}`, the same database, "
        f"{args.rounds * args.batch} requests per tree per row, interleaved in rounds of "
        f"{args.batch}. Times in ms through Django's whole request path; the change is new "
        "against old at p50 (negative is faster).",
        "",
        "| search | | matches | old p50 | new p50 | change | old p95 | new p95 | same results |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
        *lines,
        "",
        f"Both trees returned the same practitioners in the same order: "
        f"{'yes' if all_same else 'NO'}",
    ]
    text = "\n".join(report) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)
    if not all_same:
        sys.exit(1)


if __name__ == "__main__":
    main()
