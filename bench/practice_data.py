"""Practice details for the benchmark's directory: languages, payers, self-pay, access, hours.

Filled in SQL straight on the loaded tables (a million listings in a minute), deterministic from
the row ids, in proportions like the demo data's: everyone speaks English, 30% Spanish, 4%
Mandarin, 2% ASL; 67% take Medicare, 25% Aetna; 70% self-pay, 12% sliding scale; 80% of
clinics have a wheelchair-accessible entrance; clinic hours from five weekly schedules (one in
ten clinics lists none, 20% open evenings, 10% on Saturdays), one clinic in fifty temporarily
closed. Idempotent: a second run finds the hours there and does nothing.
"""

from __future__ import annotations

import datetime as dt

T = dt.time
# (kind = clinic id % 10, weekday, opens, closes); kinds without rows list no hours.
SCHEDULES = (
    [(k, d, T(8), T(18)) for k in range(5) for d in range(5)]
    + [(k, d, a, b) for k in (5, 6) for d in range(5) for a, b in ((T(8), T(12)), (T(13), T(17)))]
    + [(7, d, T(9), T(17)) for d in (0, 2, 4)]
    + [(7, d, T(12), T(20)) for d in (1, 3)]
    + [(8, d, T(9), T(19)) for d in range(6)]
)
LANGUAGES = [
    ("en", None),
    ("es", "p.id %% 10 < 3"),
    ("cmn", "p.id %% 25 = 0"),
    ("ase", "p.id %% 50 = 7"),
]
PAYERS = [("medicare", "p.id %% 3 <> 0"), ("aetna", "p.id %% 4 = 1")]


def fill(connection, log=print) -> bool:
    """Fill the practice details unless already there; True when it wrote them."""
    from practitioners.models import Location, Practitioner
    from practitioners.practice import Language, OpeningHours, Payer, minutes_of_week

    hours_table = OpeningHours._meta.db_table
    location = Location._meta.db_table
    practitioner = Practitioner._meta.db_table
    languages = Practitioner.languages.through._meta.db_table
    payers = Practitioner.payers.through._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {hours_table})")
        if cursor.fetchone()[0]:
            log("practice details already there")
            return False
        log("filling practice details (languages, payers, self-pay, access, hours)")
        cursor.execute(
            f"UPDATE {practitioner} SET self_pay = (id %% 10 < 7), sliding_scale = (id %% 8 = 0), "
            f"hsa_fsa = (id %% 2 = 0), "
            f"self_pay_min = CASE WHEN id %% 10 < 7 THEN 60 + id %% 9 * 10 END, "
            f"self_pay_max = CASE WHEN id %% 10 < 7 THEN 100 + id %% 9 * 10 END, "
            f"gender = CASE WHEN id %% 25 = 0 THEN '' WHEN id %% 2 = 0 THEN 'female' "
            f"ELSE 'male' END, "
            f"new_patients = CASE WHEN new_patients = 'not_accepting' AND id %% 3 = 0 "
            f"THEN 'existing_only' ELSE new_patients END",
            [],  # with parameters, both backends read %% as the modulo operator
        )
        for code, condition in LANGUAGES:
            language_id = Language.objects.get(code=code).pk
            cursor.execute(
                f"INSERT INTO {languages} (practitioner_id, language_id) "
                f"SELECT p.id, %s FROM {practitioner} p"
                + (f" WHERE {condition}" if condition else ""),
                [language_id],
            )
        for slug, condition in PAYERS:
            payer_id = Payer.objects.get(slug=slug).pk
            cursor.execute(
                f"INSERT INTO {payers} (practitioner_id, payer_id) "
                f"SELECT p.id, %s FROM {practitioner} p WHERE {condition}",
                [payer_id],
            )
        cursor.execute(
            f"UPDATE {location} SET wheelchair_entrance = (id %% 5 <> 0), "
            f"accessible_restroom = (id %% 5 = 1 OR id %% 5 = 2), parking = (id %% 3 <> 0), "
            f"reopens_on = CASE WHEN id %% 50 = 3 THEN %s END",
            [connection.ops.adapt_datefield_value(dt.date(2099, 1, 1))],
        )
        cursor.execute(
            "CREATE TEMPORARY TABLE bench_schedule (kind integer, weekday integer, opens time, "
            "closes time, start_minute integer, end_minute integer)"
        )
        for kind, weekday, opens, closes in SCHEDULES:
            start, end = minutes_of_week(weekday, opens, closes)
            cursor.execute(
                "INSERT INTO bench_schedule VALUES (%s, %s, %s, %s, %s, %s)",
                [
                    kind,
                    weekday,
                    connection.ops.adapt_timefield_value(opens),
                    connection.ops.adapt_timefield_value(closes),
                    start,
                    end,
                ],
            )
        cursor.execute(
            f"INSERT INTO {hours_table} (location_id, weekday, opens, closes, start_minute, "
            f"end_minute) SELECT l.id, s.weekday, s.opens, s.closes, s.start_minute, "
            f"s.end_minute FROM {location} l JOIN bench_schedule s ON s.kind = l.id %% 10",
            [],
        )
        cursor.execute("DROP TABLE bench_schedule")
        if connection.vendor == "postgresql":
            for table in (practitioner, location, languages, payers, hours_table):
                cursor.execute(f"VACUUM ANALYZE {table}")
        else:
            cursor.execute("ANALYZE")
    return True
