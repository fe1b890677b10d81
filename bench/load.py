"""Load benchmark: nginx in front of gunicorn (the repository's gunicorn.conf.py) on 127.0.0.1,
against PostgreSQL with the benchmark's listings, driven by wrk.

Scenarios (each --seconds long, default 30, at --connections, default 16):
  steady     every search of bench/search_bench.py's QUERIES, API and HTML, one wrk run each,
             and /healthz in the same run of this script as the baseline; then the whole mix at
             once (a wrk Lua script cycling through the paths). Pass: no error, p99 within 4x p50.
  pg-restart the mix while PostgreSQL is restarted once (pg_ctlcluster restart): only 503s while it
             is down, never a 500 or a dropped connection, and a 200 within 5 s of PostgreSQL
             accepting connections again.
  sighup     the mix while gunicorn is sent SIGHUP (reload): no failed request.

Per-request latencies of the mix come from nginx's access log ($request_time, $status, $msec),
so every path of the mix is reported on its own. Run it under the shared lock:

    flock /work/bench.lock .venv/bin/python bench/load.py --database pl_bench_1m \\
        --scenario steady --scenario sighup --out bench/results/load-pg-1m.md

Never part of the test run. It only reads the database (the restart scenario restarts the
server: other sessions' connections break for a second or two).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from search_bench import QUERIES  # noqa: E402

PYTHON = Path(sys.executable)
GUNICORN = PYTHON.with_name("gunicorn")
NGINX = Path("/usr/sbin/nginx")
WRK = Path("/usr/bin/wrk")
SECRET_KEY = "bench-load-" + "q8Vn3Lr7Tz1Wx5Kp9Mb2Hd6Jf4Gs0Ay" * 2

# The deep page: the last page the capped count (1,000 at 20 a page) offers.
DEEP_PAGE = 50

WRK_LUA = r"""
local paths = {%(paths)s}
local counter = 0
init = function(args)
  counter = math.random(0, #paths - 1)
end
request = function()
  counter = counter + 1
  return wrk.format("GET", paths[(counter %% #paths) + 1])
end
done = function(summary, latency, requests)
  io.write(string.format(
    'WRKJSON {"requests": %%d, "duration_us": %%d, "connect": %%d, "read": %%d, "write": %%d, ' ..
    '"status": %%d, "timeout": %%d, "p50_us": %%d, "p99_us": %%d, "mean_us": %%f}\n',
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.status, summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean))
end
"""

NGINX_CONF = """
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    include /etc/nginx/mime.types;
    log_format timing '$msec $status $request_time "$request_uri"';
    access_log {prefix}/access.log timing;
    upstream app {{ server 127.0.0.1:{app_port} fail_timeout=0; }}
    server {{
        listen 127.0.0.1:{port};
        # What deploy/nginx/practitioner-locator.conf does, without TLS.
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Request-ID $request_id;
            proxy_set_header Connection "";
            proxy_connect_timeout 5s;
            proxy_read_timeout 35s;
            proxy_next_upstream off;
        }}
    }}
}}
"""


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Endpoint:
    name: str
    path: str


def endpoints() -> list[Endpoint]:
    found = [Endpoint("/healthz (baseline)", "/healthz")]
    for query in QUERIES:
        qs = query.query_string(DEEP_PAGE if query.deep else None)
        found.append(Endpoint(f"{query.name} · API", f"/api/practitioners/?{qs}"))
        found.append(Endpoint(f"{query.name} · HTML", f"/search/?{qs}"))
    return found


@dataclass
class Stack:
    """gunicorn + nginx, started and stopped by this script."""

    database_url: str
    workers: int
    replica_urls: str = ""
    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="pl-load-")))
    app_port: int = 8701
    port: int = 8780

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST"))}
        env.update(
            DJANGO_SETTINGS_MODULE="directory.settings",
            DEBUG="false",
            TESTING="false",
            SECRET_KEY=SECRET_KEY,
            ALLOWED_HOSTS="127.0.0.1,localhost",
            DATABASE_URL=self.database_url,
            DATABASE_REPLICA_URLS=self.replica_urls,
            REDIS_URL="redis://127.0.0.1:6379/14",
            CACHE_KEY_PREFIX="bench-load",
            TRUSTED_PROXY_HOPS="1",
            SECURE_COOKIES="false",
            STATIC_ROOT=str(self.tmp / "static"),
            GUNICORN_BIND=f"127.0.0.1:{self.app_port}",
            WEB_CONCURRENCY=str(self.workers),
            LOG_LEVEL="INFO",
        )
        return env

    def start(self) -> None:
        env = self.env()
        subprocess.run(
            [str(PYTHON), "manage.py", "collectstatic", "--noinput", "-v0"],
            cwd=ROOT,
            env=env,
            check=True,
        )
        self.app_log = (self.tmp / "gunicorn.log").open("wb")
        self.gunicorn = subprocess.Popen(
            [str(GUNICORN), "-c", str(ROOT / "gunicorn.conf.py")],
            cwd=ROOT,
            env=env,
            stdout=self.app_log,
            stderr=subprocess.STDOUT,
        )
        (self.tmp / "nginx.conf").write_text(
            NGINX_CONF.format(prefix=self.tmp, app_port=self.app_port, port=self.port)
        )
        subprocess.run(
            [str(NGINX), "-p", str(self.tmp), "-c", str(self.tmp / "nginx.conf")],
            check=True,
            stderr=subprocess.DEVNULL,
        )
        self.wait_until_ready()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def status(self, path: str) -> int:
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as reply:
                return reply.status
        except urllib.error.HTTPError as error:
            return error.code
        except OSError:
            return 0

    def wait_until_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.status("/readyz") == 200:
                return
            time.sleep(0.2)
        raise SystemExit(f"the stack did not become ready; see {self.tmp}")

    def warm(self, paths: list[str], rounds: int = 3) -> None:
        for _ in range(rounds):
            for path in paths:
                self.status(path)

    def log_offset(self) -> int:
        path = self.tmp / "access.log"
        return path.stat().st_size if path.exists() else 0

    def hits_since(self, offset: int, until: float) -> list[Hit]:
        """The mix's requests from nginx's log. When wrk stops it closes its connections with
        requests in flight; nginx logs those as 499 (client went away) at that moment: they
        are wrk's, not the server's, and are left out. Any other 499 stays (and fails)."""
        time.sleep(0.5)
        with (self.tmp / "access.log").open() as log_file:
            log_file.seek(offset)
            hits = parse_hits(log_file.read())
        return [h for h in hits if not (h.status == 499 and h.at >= until - 0.5)]

    def stop(self) -> None:
        subprocess.run(
            [str(NGINX), "-p", str(self.tmp), "-c", str(self.tmp / "nginx.conf"), "-s", "quit"],
            check=False,
            stderr=subprocess.DEVNULL,
        )
        if self.gunicorn.poll() is None:
            self.gunicorn.terminate()
            try:
                self.gunicorn.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.gunicorn.kill()
        self.app_log.close()


def wrk(url: str, paths: list[str], seconds: float, connections: int, threads: int = 2) -> dict:
    """One wrk run cycling through ``paths``; returns its summary (latencies in ms)."""
    lua = Path(tempfile.mkstemp(suffix=".lua")[1])
    lua.write_text(WRK_LUA % {"paths": ", ".join(json.dumps(p) for p in paths)})
    try:
        result = subprocess.run(
            [
                str(WRK),
                f"-t{threads}",
                f"-c{connections}",
                f"-d{seconds:.0f}s",
                "--timeout",
                "10s",
                "-s",
                str(lua),
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        lua.unlink()
    line = next(x for x in result.stdout.splitlines() if x.startswith("WRKJSON "))
    data = json.loads(line.removeprefix("WRKJSON "))
    seconds_run = data["duration_us"] / 1e6
    return {
        "requests": data["requests"],
        "rps": data["requests"] / seconds_run,
        "p50": data["p50_us"] / 1000,
        "p99": data["p99_us"] / 1000,
        "socket_errors": data["connect"] + data["read"] + data["write"] + data["timeout"],
        "status_errors": data["status"],
        "seconds": seconds_run,
    }


@dataclass
class Hit:
    at: float
    status: int
    seconds: float
    path: str


def parse_hits(text: str) -> list[Hit]:
    hits = []
    for line in text.splitlines():
        at, status, request_time, uri = line.split(" ", 3)
        hits.append(Hit(float(at), int(status), float(request_time), uri.strip('"')))
    return hits


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    index = min(len(ordered) - 1, max(0, math.ceil(pct / 100 * len(ordered)) - 1))
    return ordered[index]


def per_path(hits: list[Hit], names: dict[str, str], seconds: float) -> list[dict]:
    by_path: dict[str, list[Hit]] = defaultdict(list)
    for hit in hits:
        by_path[hit.path].append(hit)
    rows = []
    for path, name in names.items():
        group = by_path.get(path, [])
        times = [h.seconds * 1000 for h in group]
        rows.append(
            {
                "name": name,
                "requests": len(group),
                "rps": len(group) / seconds,
                "p50": percentile(times, 50),
                "p99": percentile(times, 99),
                "errors": sum(1 for h in group if h.status >= 400),
                "statuses": sorted({h.status for h in group}),
            }
        )
    return rows


def fmt_ms(value: float) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:.1f}" if value >= 1 else f"{value:.2f}"


class Report:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.failures: list[str] = []

    def add(self, text: str = "") -> None:
        self.lines.append(text)
        print(text, flush=True)

    def check(self, ok: bool, what: str) -> None:
        self.add(f"- {'PASS' if ok else 'FAIL'}: {what}")
        if not ok:
            self.failures.append(what)


def steady(stack: Stack, args, report: Report) -> None:
    found = endpoints()
    stack.warm([e.path for e in found])
    report.add(
        f"## 1. Steady load: each endpoint alone, {args.endpoint_seconds:.0f} s at "
        f"{args.connections} connections"
    )
    report.add()
    report.add(
        "| endpoint | requests | req/s | p50 ms | p99 ms | p99/p50 | errors | req/s vs /healthz |"
    )
    report.add("|---|---:|---:|---:|---:|---:|---:|---:|")
    baseline = None
    for endpoint in found:
        log(f"steady: {endpoint.name}")
        r = wrk(stack.url, [endpoint.path], args.endpoint_seconds, args.connections)
        if baseline is None:
            baseline = r["rps"]
        errors = r["socket_errors"] + r["status_errors"]
        ratio = r["p99"] / r["p50"] if r["p50"] else math.nan
        report.add(
            f"| {endpoint.name} | {r['requests']:,} | {r['rps']:.0f} | {fmt_ms(r['p50'])} | "
            f"{fmt_ms(r['p99'])} | {ratio:.1f}x | {errors} | {r['rps'] / baseline:.2f} |"
        )
        report.failures += ([f"{endpoint.name}: {errors} errors"] if errors else []) + (
            [f"{endpoint.name}: p99 {ratio:.1f}x p50"] if ratio > 4 else []
        )
    report.add()
    mix(stack, args, report, heading="### The whole mix at once")


def mix(stack: Stack, args, report: Report, heading: str = "## Steady load: the whole mix") -> None:
    found = endpoints()
    stack.warm([e.path for e in found])
    report.add(f"{heading}, {args.seconds:.0f} s at {args.connections} connections")
    report.add()
    offset = stack.log_offset()
    r = wrk(stack.url, [e.path for e in found], args.seconds, args.connections)
    hits = stack.hits_since(offset, until=time.time())
    rows = per_path(hits, {e.path: e.name for e in found}, r["seconds"])
    report.add("| endpoint | requests | req/s | p50 ms | p99 ms | p99/p50 | errors |")
    report.add("|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        ratio = row["p99"] / row["p50"] if row["p50"] else math.nan
        report.add(
            f"| {row['name']} | {row['requests']:,} | {row['rps']:.1f} | {fmt_ms(row['p50'])} | "
            f"{fmt_ms(row['p99'])} | {ratio:.1f}x | {row['errors']} |"
        )
    report.add(
        f"| all | {r['requests']:,} | {r['rps']:.0f} | {fmt_ms(r['p50'])} | {fmt_ms(r['p99'])} "
        f"| {r['p99'] / r['p50']:.1f}x | {r['socket_errors'] + r['status_errors']} |"
    )
    report.add()
    report.check(
        r["socket_errors"] + r["status_errors"] == 0 and all(x["errors"] == 0 for x in rows),
        "steady mix: 0 errors",
    )
    searches = [row for row in rows if "healthz" not in row["name"]]
    worst = max(searches, key=lambda row: row["p99"] / row["p50"] if row["p50"] else math.inf)
    report.check(
        worst["p99"] / worst["p50"] <= 4,
        f"steady mix: every search's p99 within 4x its p50 (worst {worst['name']}: "
        f"{worst['p99'] / worst['p50']:.1f}x)",
    )
    report.add()


def run_mix_with(stack: Stack, args, action, label: str) -> tuple[dict, list[Hit], dict]:
    """Run the mix for --seconds, calling ``action`` a third of the way in (in a thread)."""
    found = endpoints()
    stack.warm([e.path for e in found], rounds=1)
    offset = stack.log_offset()
    marks: dict = {}

    def later() -> None:
        time.sleep(args.seconds / 3)
        log(label)
        action(marks)

    thread = threading.Thread(target=later)
    thread.start()
    result = wrk(stack.url, [e.path for e in found], args.seconds, args.connections)
    thread.join()
    return result, stack.hits_since(offset, until=time.time()), marks


def accepting(port: int = 5432) -> bool:
    return (
        subprocess.run(
            ["pg_isready", "-h", "127.0.0.1", "-p", str(port), "-q"], check=False
        ).returncode
        == 0
    )


def pg_restart(stack: Stack, args, report: Report) -> None:
    cluster = args.cluster or sorted(os.listdir("/etc/postgresql"))[0]

    def restart(marks: dict) -> None:
        marks["stop_at"] = time.time()
        process = subprocess.Popen(
            ["pg_ctlcluster", "--skip-systemctl-redirect", "-m", "fast", cluster, "main", "restart"]
        )
        # The moment PostgreSQL stops accepting, then accepts again.
        while accepting() and process.poll() is None:
            time.sleep(0.01)
        marks["down_at"] = time.time()
        while not accepting():
            time.sleep(0.01)
        marks["up_at"] = time.time()
        process.wait()

    report.add(
        f"## 2. PostgreSQL restarted mid-load ({args.seconds:.0f} s, "
        f"{args.connections} connections)"
    )
    report.add()
    r, hits, marks = run_mix_with(stack, args, restart, "restarting PostgreSQL")
    up = marks["up_at"]
    statuses: dict[int, int] = defaultdict(int)
    for hit in hits:
        statuses[hit.status] += 1
    during = [h for h in hits if marks["stop_at"] <= h.at <= up]
    # /healthz asks nothing of the database: only the searches say when the site is back.
    searches = [h for h in hits if not h.path.startswith("/healthz")]
    after_ok = [h.at for h in searches if h.at > up and h.status == 200]
    first_ok = min(after_ok) - up if after_ok else math.inf
    last_503 = max((h.at for h in searches if h.status == 503), default=math.nan)
    failing_after = [h for h in hits if h.at > up + 5 and h.status != 200]
    report.add(
        f"PostgreSQL stopped accepting at +{marks['down_at'] - marks['stop_at']:.2f} s after the "
        f"restart began and accepted again {up - marks['down_at']:.2f} s later."
    )
    report.add()
    report.add("| status | responses |")
    report.add("|---|---:|")
    for status, count in sorted(statuses.items()):
        report.add(f"| {status} | {count:,} |")
    report.add(f"| wrk socket errors | {r['socket_errors']} |")
    report.add()
    report.check(
        all(h.status in (200, 503) for h in hits) and r["socket_errors"] == 0,
        f"only 200 and 503 answered, no 500, no dropped connection "
        f"({sum(1 for h in during if h.status == 503)} x 503 while it restarted)",
    )
    first_503 = min((h.at for h in searches if h.status == 503), default=math.nan)
    healthz_down = sum(1 for h in during if h.path.startswith("/healthz"))
    report.add(
        f"Searches answered 503 from +{first_503 - marks['stop_at']:.2f} s to "
        f"+{last_503 - marks['stop_at']:.2f} s after the restart began; /healthz answered 200 "
        f"throughout ({healthz_down} times while it was down)."
    )
    report.add()
    report.check(
        first_ok <= 5,
        f"a search answered 200 {first_ok:.2f} s after PostgreSQL accepted again (<= 5 s)",
    )
    report.check(not failing_after, f"nothing but 200 from 5 s after ({len(failing_after)} others)")
    report.add()


def sighup(stack: Stack, args, report: Report) -> None:
    def reload(marks: dict) -> None:
        marks["at"] = time.time()
        os.kill(stack.gunicorn.pid, signal.SIGHUP)

    report.add(
        f"## 3. gunicorn reloaded (SIGHUP) mid-load ({args.seconds:.0f} s, "
        f"{args.connections} connections)"
    )
    report.add()
    r, hits, marks = run_mix_with(stack, args, reload, "SIGHUP to gunicorn")
    failed = [h for h in hits if h.status != 200]
    if failed:
        counts: dict[int, int] = defaultdict(int)
        for hit in failed:
            counts[hit.status] += 1
        report.add(f"Non-200 answers: {dict(counts)}; e.g. {failed[0].path}")
        report.add()
    window = [h.seconds * 1000 for h in hits if marks["at"] <= h.at <= marks["at"] + 5]
    report.add(
        f"{r['requests']:,} requests, {r['rps']:.0f} req/s; in the 5 s after the signal p50 "
        f"{fmt_ms(percentile(window, 50))} ms, max {fmt_ms(max(window, default=math.nan))} ms "
        f"(the new workers starting)."
    )
    report.add()
    report.check(
        not failed and r["socket_errors"] == 0 and r["status_errors"] == 0,
        f"0 failed requests ({len(failed)} non-200, {r['socket_errors']} socket errors)",
    )
    report.add()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default="pl_bench_1m", help="PostgreSQL database name")
    parser.add_argument("--database-url", default="", help="instead of --database")
    parser.add_argument("--replica-urls", default="", help="DATABASE_REPLICA_URLS for the app")
    parser.add_argument(
        "--scenario",
        action="append",
        choices=["steady", "mix", "pg-restart", "sighup"],
        help="repeatable; default steady and sighup (pg-restart only when asked)",
    )
    parser.add_argument("--seconds", type=float, default=30, help="length of each mixed run")
    parser.add_argument(
        "--endpoint-seconds", type=float, default=10, help="length of each single-endpoint run"
    )
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=5, help="gunicorn workers (WEB_CONCURRENCY)")
    parser.add_argument("--cluster", default="", help="PostgreSQL version for pg_ctlcluster")
    parser.add_argument("--out", default="", help="also write the report (Markdown) here")
    args = parser.parse_args()
    scenarios = args.scenario or ["steady", "sighup"]
    for tool in (NGINX, WRK):
        if not tool.exists():
            raise SystemExit(f"{tool} is missing: apt-get install -y nginx wrk")

    # Stopped from outside: still stop nginx and gunicorn (the finally below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    url = args.database_url or f"postgres://postgres@127.0.0.1:5432/{args.database}"
    stack = Stack(url, args.workers, args.replica_urls)
    report = Report()
    report.add(f"# Load: nginx -> gunicorn ({args.workers} sync workers) -> PostgreSQL")
    report.add()
    replicas = f" with replicas {args.replica_urls}" if args.replica_urls else ""
    report.add(
        f"Database `{url.rsplit('/', 1)[-1]}`{replicas}; {os.cpu_count()} cores shared by wrk, "
        f"nginx, gunicorn and PostgreSQL (and other sessions on this machine); wrk 2 threads, "
        f"{args.connections} connections. Latencies as wrk saw them for single endpoints, as nginx "
        f"saw them ($request_time) for each path of the mix. "
        f"`{' '.join(sys.argv)}`, {time.strftime('%Y-%m-%d %H:%M')}."
    )
    report.add()
    report.add(f"Load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}.")
    report.add()
    log(f"starting nginx and gunicorn in {stack.tmp}")
    stack.start()
    try:
        for scenario in scenarios:
            scenarios_by_name = {
                "steady": steady,
                "mix": mix,
                "pg-restart": pg_restart,
                "sighup": sighup,
            }
            scenarios_by_name[scenario](stack, args, report)
            stack.wait_until_ready()
    finally:
        stack.stop()
    report.add(f"Load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}.")
    report.add()
    report.add(
        "Result: " + ("all checks passed" if not report.failures else "; ".join(report.failures))
    )
    if args.out:
        Path(args.out).write_text("\n".join(report.lines) + "\n")
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
