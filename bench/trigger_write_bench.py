"""What the search-index triggers cost writes on PostgreSQL: bulk hours and languages, and one
clinic's week saved, with this tree's triggers installed (whatever generation was there goes).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/pl_small \\
        .venv/bin/python bench/trigger_write_bench.py

Against a directory loaded by ``bench/search_bench.py --n 20000 --load-only``: it deletes and
rewrites every clinic's hours and everyone's English, so run it on a benchmark database only.
Run it from two trees (``git worktree``) to compare their triggers. Never part of the tests.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

HOURS_COLUMNS = "location_id, weekday, opens, closes, start_minute, end_minute"
ENGLISH = "(SELECT id FROM practitioners_language WHERE code = 'en')"
EDITS = 300


def main() -> None:
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        raise SystemExit("PostgreSQL only (DATABASE_URL): SQLite's triggers are per row")
    from search_bench import setup_django

    setup_django(20_000)
    import practice_data
    from django.db import connection, transaction

    from practitioners.practice import minutes_of_week
    from practitioners.search import index

    tables = {
        "certification": index.RECORD,
        "language": index.LANGUAGES,
        "payer": index.PAYERS,
        "hours": index.HOURS,
    }
    with connection.cursor() as cursor:
        for name, table in tables.items():
            for event in ("insert", "delete", "update"):
                cursor.execute(f"DROP TRIGGER IF EXISTS {name}_{event}_to_locations ON {table}")
    index.install_triggers(connection)

    def timed(label: str, sql: str) -> None:
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(sql, [])
            rows = cursor.rowcount
        print(f"  {label}: {time.perf_counter() - started:.2f} s ({rows:,} rows)", flush=True)

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {index.LOCATION}")
        print(f"{cursor.fetchone()[0]:,} clinics")
        cursor.execute(
            "CREATE TEMPORARY TABLE bench_schedule (kind integer, weekday integer, opens time, "
            "closes time, start_minute integer, end_minute integer)"
        )
        for kind, weekday, opens, closes in practice_data.SCHEDULES:
            start, end = minutes_of_week(weekday, opens, closes)
            cursor.execute(
                "INSERT INTO bench_schedule VALUES (%s, %s, %s, %s, %s, %s)",
                [kind, weekday, opens, closes, start, end],
            )
    timed("delete every clinic's hours (one statement)", f"DELETE FROM {index.HOURS}")
    timed(
        "insert every clinic's hours (one statement)",
        f"INSERT INTO {index.HOURS} ({HOURS_COLUMNS}) SELECT l.id, s.weekday, s.opens, s.closes, "
        f"s.start_minute, s.end_minute FROM {index.LOCATION} l "
        f"JOIN bench_schedule s ON s.kind = l.id %% 10",
    )
    timed(
        "update every Saturday row (one statement)",
        f"UPDATE {index.HOURS} SET end_minute = end_minute + 60 WHERE weekday = 5",
    )
    timed(
        "delete everyone's English (one statement)",
        f"DELETE FROM {index.LANGUAGES} WHERE language_id = {ENGLISH}",
    )
    timed(
        "insert everyone's English (one statement)",
        f"INSERT INTO {index.LANGUAGES} (practitioner_id, language_id) "
        f"SELECT id, {ENGLISH} FROM practitioners_practitioner",
    )
    # One clinic at a time, as the admin's hours editor saves: its rows replaced by five.
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {index.LOCATION} WHERE id %% 10 = 0 ORDER BY id LIMIT %s", [EDITS]
        )
        clinics = [row[0] for row in cursor.fetchall()]
    started = time.perf_counter()
    for clinic in clinics:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {index.HOURS} WHERE location_id = %s", [clinic])
            for day in range(5):
                cursor.execute(
                    f"INSERT INTO {index.HOURS} ({HOURS_COLUMNS}) "
                    "VALUES (%s, %s, '08:00', '18:00', %s, %s)",
                    [clinic, day, day * 1440 + 480, day * 1440 + 1080],
                )
    each = (time.perf_counter() - started) / len(clinics) * 1000
    print(f"  one clinic's week saved (delete + 5 inserts, one transaction): {each:.2f} ms each")


if __name__ == "__main__":
    main()
