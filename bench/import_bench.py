"""How long ``manage.py import_practitioners`` takes on a big CSV, and its peak resident memory.

Writes a CSV of ``--rows`` rows (one per clinic, from the search benchmark's synthetic directory,
so 1,000,000 rows are about 725,000 practitioners), then runs the real command in a subprocess
against an empty, migrated database and reads the child's peak RSS from ``wait4`` (the same
figure ``/usr/bin/time -v`` prints as "Maximum resident set size"). Scenarios, each on the same
file:

- ``new``: every row is new (the first import of a directory);
- ``again``: the same file once more (every listing unchanged: nothing written);
- ``bad-last-row``: the file with one bad row at the very end (all-or-nothing: nothing written).

    flock /work/bench.lock .venv/bin/python bench/import_bench.py --rows 1000000 \\
        --out bench/results/import-1m.md
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/pl_import_bench ... (the same on PostgreSQL)

``--tree DIR`` runs the command of another checkout (e.g. a worktree of an older commit) on the
same file and database, to compare old and new code in one run.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = (ROOT / "bench" / "out").resolve()  # bench/out may be a symlink to a shared disk
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))


def write_csv(path: Path, rows: int) -> tuple[int, int]:
    """``rows`` CSV rows; returns (rows, practitioners)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "directory.settings")
    import django

    django.setup()
    import dataset

    # The importer's own columns, in its order: the file is what an export would write.
    from practitioners.ingest.csv import COLUMNS

    written = practitioners = 0
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        for listing in dataset.listings(rows):
            practitioners += 1
            values = listing.values
            for clinic in listing.clinics:
                writer.writerow(
                    [
                        listing.external_id,
                        values["name"],
                        values["credentials"],
                        values["profession"],
                        ";".join(listing.certification_slugs),
                        clinic["name"],
                        clinic["address_line1"],
                        clinic["address_line2"],
                        clinic["city"],
                        clinic["state"],
                        clinic["postal_code"],
                        clinic["latitude"],
                        clinic["longitude"],
                        clinic["phone"],
                        values["website"],
                        values["email"],
                        "true" if values["new_patients"] == "accepting" else "false",
                        "true" if values["telehealth"] else "false",
                        values["bio"],
                        values["status"],
                    ]
                )
                written += 1
                if written == rows:
                    return written, practitioners
    return written, practitioners


def run(command: list[str], env: dict[str, str], cwd: Path) -> tuple[float, int, int, str]:
    """(seconds, peak RSS in MB, exit code, last lines of output) of one child process."""
    started = time.perf_counter()
    with (OUT / "import-bench-child.log").open("w+") as log:
        child = subprocess.Popen(command, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        log.seek(0)
        tail = [line.rstrip() for line in log.read().replace("\r", "\n").splitlines() if line]
    return seconds, usage.ru_maxrss // 1024, child.returncode, "\n".join(tail[-4:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--scenario",
        action="append",
        choices=["new", "again", "bad-last-row"],
        help="default: all three, in that order",
    )
    parser.add_argument("--tree", type=Path, help="run this checkout's command instead")
    parser.add_argument("--out", type=Path, help="also write the report here (Markdown)")
    args = parser.parse_args()
    scenarios = args.scenario or ["new", "again", "bad-last-row"]
    tree = (args.tree or ROOT).resolve()
    OUT.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("SECRET_KEY", "import-bench-only-" + "x" * 40)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    sqlite = OUT / "import-bench.sqlite3"
    env.setdefault("DATABASE_URL", f"sqlite:///{sqlite}")
    database = env["DATABASE_URL"]

    path = OUT / f"import-{args.rows}.csv"
    started = time.perf_counter()
    if not path.exists():
        rows, practitioners = write_csv(path, args.rows)
        print(
            f"wrote {path} ({rows:,} rows, {practitioners:,} practitioners) in "
            f"{time.perf_counter() - started:.0f}s",
            flush=True,
        )
    size_mb = path.stat().st_size / 1e6

    python = str(ROOT / ".venv" / "bin" / "python")
    manage = [python, str(tree / "manage.py")]
    if database.startswith("sqlite"):
        sqlite.unlink(missing_ok=True)
        for suffix in ("-wal", "-shm", "-journal"):
            Path(f"{sqlite}{suffix}").unlink(missing_ok=True)
    else:
        name = database.rsplit("/", 1)[1]
        admin_url = database.rsplit("/", 1)[0] + "/postgres"
        subprocess.run(["psql", admin_url, "-qc", f"DROP DATABASE IF EXISTS {name}"], check=True)
        subprocess.run(["psql", admin_url, "-qc", f"CREATE DATABASE {name}"], check=True)
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], env=env, cwd=tree, check=True)

    results = []
    for scenario in scenarios:
        target = path
        if scenario == "bad-last-row":
            target = OUT / f"import-{args.rows}-bad-last-row.csv"
            shutil.copyfile(path, target)
            with target.open("a", newline="", encoding="utf-8") as out:
                csv.writer(out).writerow(
                    [
                        "bad-1",
                        "Bad Row",
                        "",
                        "wizard",
                        "",
                        "",
                        "1 Main St",
                        "",
                        "Memphis",
                        "TN",
                        "38117",
                        "",
                        "",
                        "",
                        "",
                        "",
                        "",
                        "",
                        "",
                        "published",
                    ]
                )
        command = [*manage, "import_practitioners", str(target), "--no-geocode", "-v", "1"]
        print(f"{scenario}: {' '.join(command[1:])}", flush=True)
        seconds, peak_mb, code, tail = run(command, env, tree)
        print(f"  {seconds:.1f} s, peak RSS {peak_mb:,} MB, exit {code}\n  {tail}", flush=True)
        results.append((scenario, seconds, peak_mb, code, tail))

    vendor = "PostgreSQL" if database.startswith("postgres") else "SQLite"
    lines = [
        f"# import_practitioners: {args.rows:,} rows ({size_mb:,.0f} MB) on {vendor}",
        "",
        f"Command: `{' '.join(['bench/import_bench.py', *sys.argv[1:]])}`, code in `{tree}`, "
        f"{platform.python_version()}, {os.cpu_count()} cores shared with other sessions.",
        "Peak RSS is the child's `ru_maxrss` (what `/usr/bin/time -v` reports).",
        "",
        "| scenario | rows | seconds | rows/s | peak RSS (MB) | exit |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for scenario, seconds, peak_mb, code, _ in results:
        lines.append(
            f"| {scenario} | {args.rows:,} | {seconds:,.1f} | {args.rows / seconds:,.0f} | "
            f"{peak_mb:,} | {code} |"
        )
    lines += ["", "Last lines of each run's output:", ""]
    for scenario, *_, tail in results:
        lines += [f"- {scenario}:", "", "```", tail, "```", ""]
    report = "\n".join(lines)
    print(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report + "\n")


if __name__ == "__main__":
    main()
