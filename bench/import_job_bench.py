"""The admin's CSV import as a job, on a big file: how long the requests take (upload, the job
page while the worker runs, confirm), and the worker's time and peak memory for the preview and
for the import.

Writes a CSV of ``--rows`` rows padded to about ``--mb`` megabytes (the issue's file: 160,000 rows,
50 MB, which used to be killed at the 30 s worker timeout at 1.16 GB), migrates an empty database,
then drives the admin with Django's test client in this process (the real views, the real
upload handling; the database task backend, as in production) and runs each task in a real
``manage.py db_worker --batch`` child process, reading its peak RSS from ``wait4`` (what
``/usr/bin/time -v`` prints as "Maximum resident set size"). While the worker runs, the job page
is requested every second, and its progress line and answer time recorded.

    flock /work/bench.lock .venv/bin/python bench/import_job_bench.py --rows 160000 --mb 50 \\
        --out bench/results/import-job-160k.md
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/pl_import_job_bench ... (PostgreSQL)
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = (ROOT / "bench" / "out").resolve()
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))


def write_csv(path: Path, rows: int, megabytes: float) -> int:
    """``rows`` rows from the search benchmark's synthetic directory, bios padded so the file is
    about ``megabytes`` MB. Returns the number of practitioners."""
    import dataset

    # The importer's own columns, in its order: the file is what an export would write.
    from practitioners.ingest.csv import COLUMNS

    per_row = int(megabytes * 1e6 / rows)
    written = practitioners = 0
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        for listing in dataset.listings(rows):
            practitioners += 1
            values = listing.values
            # Every row of a listing repeats its bio (rows that differ are bad rows), so the bio
            # is padded once, from the listing's first row.
            bio = None
            for clinic in listing.clinics:
                fields = [
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
                if bio is None:
                    length = sum(len(str(f)) for f in fields) + len(fields)
                    bio = fields[18]
                    if length < per_row:
                        bio = (bio + " " + "Evidence-based manual therapy." * 20)[
                            : len(bio) + per_row - length
                        ]
                fields[18] = bio
                writer.writerow(fields)
                written += 1
                if written == rows:
                    return practitioners
    return practitioners


def worker(env: dict[str, str]) -> tuple[float, int, int, str]:
    """Run every queued task in a db_worker child: (seconds, peak RSS MB, exit code, output)."""
    command = [
        sys.executable,
        str(ROOT / "manage.py"),
        "db_worker",
        "--batch",
        "--queue-name",
        "*",
        "--no-startup-delay",
        "--no-reload",
    ]
    started = time.perf_counter()
    with (OUT / "import-job-worker.log").open("w+") as log:
        child = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        log.seek(0)
        tail = "\n".join(log.read().splitlines()[-3:])
    return seconds, usage.ru_maxrss // 1024, os.waitstatus_to_exitcode(status), tail


def timed(call):
    started = time.perf_counter()
    result = call()
    return result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=160_000)
    parser.add_argument("--mb", type=float, default=50.0)
    parser.add_argument("--out", type=Path, help="also write the report here (Markdown)")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    sqlite = OUT / "import-job-bench.sqlite3"
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "DEBUG": "false",
        "TESTING": "false",
        "SECRET_KEY": "import-job-bench-only-" + "x" * 40,
        "ALLOWED_HOSTS": "testserver",
        "SECURE_COOKIES": "false",
        "TASKS_BACKEND": "database",
        "GEOCODER": "zip",
        "LOG_LEVEL": "WARNING",
        "IMPORT_UPLOAD_DIR": str(OUT / "import-job-uploads"),
        "IMPORT_MAX_UPLOAD_MB": "100",
        "STATIC_ROOT": str(OUT / "import-job-static"),
    }
    env.setdefault("DATABASE_URL", f"sqlite:///{sqlite}")
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "directory.settings"
    database = env["DATABASE_URL"]

    path = OUT / f"import-job-{args.rows}.csv"
    if not path.exists():
        import django

        django.setup()
        started = time.perf_counter()
        practitioners = write_csv(path, args.rows, args.mb)
        print(
            f"wrote {path}: {practitioners:,} practitioners in {time.perf_counter() - started:.0f}s"
        )
    size_mb = path.stat().st_size / 1e6

    if database.startswith("sqlite"):
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{sqlite}{suffix}").unlink(missing_ok=True)
    else:
        name = database.rsplit("/", 1)[1]
        admin_url = database.rsplit("/", 1)[0] + "/postgres"
        subprocess.run(["psql", admin_url, "-qc", f"DROP DATABASE IF EXISTS {name}"], check=True)
        subprocess.run(["psql", admin_url, "-qc", f"CREATE DATABASE {name}"], check=True)
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], env=env, cwd=ROOT, check=True)
    # Production settings serve collectstatic's manifest; the admin pages need it.
    subprocess.run(
        [*manage, "collectstatic", "--noinput", "-v", "0"], env=env, cwd=ROOT, check=True
    )

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test import Client

    from practitioners.models import ImportJob, Location, Practitioner

    user = get_user_model().objects.create_superuser("bench", "b@example.org", "x")
    client = Client()
    client.force_login(user)
    page = "/admin/practitioners/practitioner/import-csv/"
    client.get(page)  # warm up: URLconf, templates

    content = path.read_bytes()
    upload = SimpleUploadedFile(path.name, content, content_type="text/csv")
    response, upload_s = timed(lambda: client.post(page, {"file": upload}))
    assert response.status_code == 302, response.content[:500]
    job_url = response["Location"]

    def watch(stop: threading.Event, samples: list) -> None:
        while not stop.wait(1.0):
            reply, seconds = timed(lambda: client.get(job_url))
            text = re.sub(r"<[^>]+>", " ", reply.content.decode())
            found = re.search(r"([\d,]+)(?: of ([\d,]+))? rows read, ([\d,]+) bad so far", text)
            samples.append((seconds, found.group(0) if found else "(done)"))

    results = {}
    for phase in ("preview", "import"):
        if phase == "import":
            response, confirm_s = timed(lambda: client.post(job_url, {"mode": "all"}))
            assert response.status_code == 302
            results["confirm_s"] = confirm_s
        samples: list = []
        stop = threading.Event()
        thread = threading.Thread(target=watch, args=(stop, samples), daemon=True)
        thread.start()
        results[phase] = worker(env)
        stop.set()
        thread.join()
        results[f"{phase}_samples"] = samples
        job = ImportJob.objects.get()
        print(phase, results[phase][:3], job.state, job.message[:200], flush=True)
        if phase == "preview":
            preview = job.preview or {}
            print(
                "preview:",
                preview.get("summary"),
                preview.get("file_error"),
                preview.get("errors", [])[:3],
                flush=True,
            )
    job = ImportJob.objects.get()
    report = job.result or {}
    vendor = "PostgreSQL" if database.startswith("postgres") else "SQLite"
    lines = [
        f"# The admin CSV import as a job: {args.rows:,} rows ({size_mb:,.1f} MB) on {vendor}",
        "",
        f"Command: `flock /work/bench.lock .venv/bin/python bench/import_job_bench.py "
        f"{' '.join(sys.argv[1:])}` (Python {platform.python_version()}, "
        f"{os.cpu_count()} cores shared with other sessions; load average "
        f"{os.getloadavg()[0]:.1f} at the end).",
        "Requests: Django's test client in the bench process (the real admin views and upload",
        "handling). Tasks: the database backend, run by a `manage.py db_worker --batch` child",
        "process per phase; peak RSS is that child's `ru_maxrss`.",
        "",
        "| step | seconds | peak RSS (MB) |",
        "| --- | ---: | ---: |",
        f"| upload request (stores the file, queues the preview) | {upload_s:.2f} | |",
        f"| preview task (worker) | {results['preview'][0]:.1f} | {results['preview'][1]:,} |",
        f"| confirm request (queues the import) | {results['confirm_s']:.2f} | |",
        f"| import task (worker) | {results['import'][0]:.1f} | {results['import'][1]:,} |",
        "",
        f"Job: {job.get_state_display()}; {report.get('summary', job.message)}",
        f"Written: {Practitioner.objects.count():,} practitioners, {Location.objects.count():,} "
        "clinics.",
        "",
        "The job page while the worker ran (answer time, the progress line it showed):",
        "",
    ]
    for phase in ("preview", "import"):
        samples = results[f"{phase}_samples"]
        if samples:
            slowest = max(seconds for seconds, _ in samples)
            lines.append(
                f"- {phase}: {len(samples)} requests, slowest {slowest:.3f} s; "
                + "; ".join(f"{text}" for _, text in samples[:: max(1, len(samples) // 6)])
            )
    lines += ["", "Worker output (last lines):", "", "```"]
    lines += [results["preview"][3], results["import"][3], "```"]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
